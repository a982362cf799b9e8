"""JAX as its users write a train step: a forward function, `jax.value_and_grad`, optax, the
whole step under `jax.jit` (full float32 products on the GPU, as xbackprop traces its
steps; JAX's default there is TF32)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks.workloads import LSTM_SIZES, MLP_SIZES, Runner, Unavailable, Workload

#: implementation -> setting (none)
IMPLS = {"jax-autodiff": None}


def _jax() -> tuple[Any, Any, Any]:
    try:
        import jax
        import jax.numpy as jnp
        import optax
    except ImportError as e:
        raise Unavailable("JAX autodiff: needs jax and optax (pip install -e '.[benchmarks]')"
                          ) from e
    return jax, jnp, optax


def full_float32(jax: Any, fn: Callable) -> Callable:
    """`fn` traced with full float32 matrix products; JAX fixes the precision at trace
    time."""
    def traced(*args: Any) -> Any:
        with jax.default_matmul_precision("float32"):
            return fn(*args)
    return traced


class _Init:
    """He-normal weights and zero biases from one key."""

    def __init__(self, jax: Any, jnp: Any) -> None:
        self.jax, self.jnp = jax, jnp
        self.keys = iter(jax.random.split(jax.random.PRNGKey(0), 8))

    def dense(self, a: int, b: int) -> dict:
        return {"W": self.jax.random.normal(next(self.keys), (a, b)) * np.sqrt(2.0 / a),
                "b": self.jnp.zeros(b)}

    def conv(self, c_in: int, c_out: int) -> dict:
        return {"W": self.jax.random.normal(next(self.keys), (c_out, c_in, 3, 3))
                * np.sqrt(2 / (9 * c_in)), "b": self.jnp.zeros(c_out)}


def mlp(jax: Any, jnp: Any) -> tuple[Any, Callable]:
    init = _Init(jax, jnp)
    params = [init.dense(a, b) for a, b in zip(MLP_SIZES[:-1], MLP_SIZES[1:])]

    def forward(p, h):
        for i, layer in enumerate(p):
            h = h @ layer["W"] + layer["b"]
            h = jax.nn.relu(h) if i < len(p) - 1 else h
        return h
    return params, forward


def cnn(jax: Any, jnp: Any) -> tuple[Any, Callable]:
    init = _Init(jax, jnp)
    params = [init.conv(1, 16), init.conv(16, 32), init.dense(32 * 7 * 7, 10)]

    def block(layer, h):
        h = jax.lax.conv_general_dilated(h, layer["W"], (1, 1), ((1, 1), (1, 1)),
                                         dimension_numbers=("NCHW", "OIHW", "NCHW"))
        h = jax.nn.relu(h + layer["b"][None, :, None, None])
        return jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, (1, 1, 2, 2), (1, 1, 2, 2),
                                     "VALID")

    def forward(p, h):
        h = block(p[1], block(p[0], h))
        return h.reshape(h.shape[0], -1) @ p[2]["W"] + p[2]["b"]
    return params, forward


def xor(jax: Any, jnp: Any) -> tuple[Any, Callable]:
    init = _Init(jax, jnp)
    params = [init.dense(2, 4), init.dense(4, 1)]

    def forward(p, h):
        for layer in p:
            h = jax.nn.sigmoid(h @ layer["W"] + layer["b"])
        return h
    return params, forward


def lstm(jax: Any, jnp: Any) -> tuple[Any, Callable]:
    """An LSTM as a JAX user writes it for speed: the input projection of every step in one
    product before `lax.scan`, the recurrence in the scan, autodiff for the backward."""
    n = LSTM_SIZES
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(0), 3)
    f, h, g = n["features"], n["hidden"], 4 * n["hidden"]
    params = {"W_x": jax.random.uniform(k1, (f, g), minval=-1, maxval=1) * np.sqrt(6 / (f + g)),
              "W_h": jax.random.normal(k2, (h, g)) / np.sqrt(h), "b": jnp.zeros(g),
              "out": {"W": jax.random.normal(k3, (h, n["classes"])) / np.sqrt(h),
                      "b": jnp.zeros(n["classes"])}}

    def forward(p, x):
        a_x = jnp.swapaxes(x, 0, 1) @ p["W_x"] + p["b"]           # (T, B, 4H)

        def step(carry, a_t):
            hid, cell = carry
            i, fg, gg, o = jnp.split(a_t + hid @ p["W_h"], 4, axis=-1)
            cell = jax.nn.sigmoid(fg) * cell + jax.nn.sigmoid(i) * jnp.tanh(gg)
            hid = jax.nn.sigmoid(o) * jnp.tanh(cell)
            return (hid, cell), None

        zeros = jnp.zeros((x.shape[0], h), x.dtype)
        (hid, _), _ = jax.lax.scan(step, (zeros, zeros), a_x)
        return hid @ p["out"]["W"] + p["out"]["b"]
    return params, forward


MODELS = {"mlp": mlp, "cnn": cnn, "xor": xor, "lstm": lstm}


def train_step(workload: Workload, setting: None) -> Runner:
    jax, jnp, optax = _jax()
    x, y = (jnp.asarray(a) for a in workload.data())
    params, forward = MODELS[workload.name](jax, jnp)
    losses = {
        "softmax_xent": lambda p, xb, yb: optax.softmax_cross_entropy_with_integer_labels(
            forward(p, xb), yb).mean(),
        "mse": lambda p, xb, yb: jnp.mean((forward(p, xb) - yb) ** 2),
    }
    loss_fn = losses[workload.loss]
    tx = getattr(optax, workload.optimizer)(workload.lr)
    donate = (0, 1) if jax.devices()[0].platform != "cpu" else ()

    def _step(p, s, xb, yb):
        value, grads = jax.value_and_grad(loss_fn)(p, xb, yb)
        updates, s = tx.update(grads, s, p)
        return optax.apply_updates(p, updates), s, value

    step = jax.jit(full_float32(jax, _step), donate_argnums=donate)
    holder = {"p": params, "s": tx.init(params), "loss": None}

    def run() -> None:
        holder["p"], holder["s"], holder["loss"] = step(holder["p"], holder["s"], x, y)

    return Runner(run, lambda: jax.block_until_ready(holder["loss"]),
                  lambda: float(holder["loss"]), str(jax.devices()[0]))


def matmul(workload: Workload, setting: None) -> Runner:
    jax, jnp, _ = _jax()
    a, b = (jnp.asarray(m) for m in workload.data())
    product = jax.jit(full_float32(jax, jnp.matmul))
    out = [None]

    def run() -> None:
        out[0] = product(a, b)

    return Runner(run, lambda: jax.block_until_ready(out[0]), lambda: 0.0,
                  str(jax.devices()[0]))
