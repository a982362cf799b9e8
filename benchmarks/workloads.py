"""The benchmark workloads, each written for xbackprop and for the peers a user would pick
instead: PyTorch eager, JAX autodiff + optax under jax.jit, and plain hand-written NumPy.

`make(workload, impl)` returns a `Runner`: `step()` runs one train step (or one matmul for
"gemm") on data already on the device, `sync()` waits for the device, `loss()` reads the
last loss. A peer that is not installed raises `Unavailable` with the reason and the fix.
All float32, fixed seeds, synthetic data of the right shapes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

WORKLOADS = ("mlp", "cnn", "xor", "gemm")
IMPLS = ("xbackprop-numpy", "xbackprop-jax", "xbackprop-cupy", "torch", "torch-cuda",
         "jax-autodiff", "numpy-plain")
#: the peer each xbackprop backend is compared with, per workload, and the target ratio
TARGETS: dict[str, list[tuple[str, str, float]]] = {
    "mlp": [("xbackprop-numpy", "torch", 1.0), ("xbackprop-jax", "jax-autodiff", 1.05),
            ("xbackprop-cupy", "torch-cuda", 1.2)],
    "cnn": [("xbackprop-numpy", "torch", 2.0), ("xbackprop-jax", "jax-autodiff", 1.05),
            ("xbackprop-cupy", "torch-cuda", 2.0)],
    "xor": [("xbackprop-numpy", "numpy-plain", 1.5), ("xbackprop-jax", "jax-autodiff", 1.5),
            ("xbackprop-cupy", "torch-cuda", 1.5)],
}

MLP_SIZES = (784, 512, 512, 10)
MLP_BATCH = 256
CNN_BATCH = 64
GEMM_N = 1024


class Unavailable(Exception):
    """This implementation cannot run here; the message says why and what to install."""


@dataclasses.dataclass
class Runner:
    step: Callable[[], Any]
    sync: Callable[[], None]
    loss: Callable[[], float]
    device: str = "cpu"


def mlp_flops(batch: int = MLP_BATCH, sizes: tuple[int, ...] = MLP_SIZES) -> float:
    """Matrix-product FLOPs of one train step: forward, weight gradients, and input
    gradients of every layer but the first (nobody needs dL/dx of the data)."""
    layers = list(zip(sizes[:-1], sizes[1:]))
    forward = sum(2 * batch * a * b for a, b in layers)
    return 3 * forward - 2 * batch * sizes[0] * sizes[1]


def _data(workload: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    if workload == "mlp":
        return (rng.random((MLP_BATCH, MLP_SIZES[0]), dtype=np.float32),
                rng.integers(0, 10, MLP_BATCH).astype(np.int32))
    if workload == "cnn":
        return (rng.random((CNN_BATCH, 1, 28, 28), dtype=np.float32),
                rng.integers(0, 10, CNN_BATCH).astype(np.int32))
    if workload == "xor":
        return (np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32),
                np.array([[0], [1], [1], [0]], np.float32))
    return (rng.random((GEMM_N, GEMM_N), dtype=np.float32),
            rng.random((GEMM_N, GEMM_N), dtype=np.float32))


def make(workload: str, impl: str) -> Runner:
    if workload not in WORKLOADS:
        raise ValueError(f"unknown workload {workload!r}; choose from {WORKLOADS}")
    if impl.startswith("xbackprop-"):
        return _xbackprop(workload, impl.split("-", 1)[1])
    builders = {"torch": _torch, "torch-cuda": _torch, "jax-autodiff": _jax,
                "numpy-plain": _numpy_plain}
    if impl not in builders:
        raise ValueError(f"unknown implementation {impl!r}; choose from {IMPLS}")
    return builders[impl](workload, impl)


# -- xbackprop ---------------------------------------------------------------------------

def xbackprop_model(workload: str) -> Any:
    import xbackprop as xb

    if workload == "mlp":
        return xb.Sequential([xb.Dense(512, weight_init="he_normal"), xb.ReLU(),
                              xb.Dense(512, weight_init="he_normal"), xb.ReLU(), xb.Dense(10)])
    if workload == "cnn":
        return xb.Sequential([xb.Conv2D(16, 3, padding=1), xb.ReLU(), xb.MaxPool2D(2),
                              xb.Conv2D(32, 3, padding=1), xb.ReLU(), xb.MaxPool2D(2),
                              xb.Flatten(), xb.Dense(10)])
    return xb.Sequential([xb.Dense(4), xb.Sigmoid(), xb.Dense(1), xb.Sigmoid()])


def _xbackprop(workload: str, backend_name: str) -> Runner:
    import xbackprop as xb

    try:
        backend = xb.get_backend(backend_name)
    except xb.BackendUnavailableError as e:
        raise Unavailable(f"xbackprop-{backend_name}: {e}") from e
    x, y = _data(workload)
    if workload == "gemm":
        a, b = backend.asarray(x), backend.asarray(y)
        matmul = backend.compile(lambda u, v: u @ v)
        out = [None]

        def gemm() -> None:
            out[0] = matmul(a, b)
        return Runner(gemm, lambda: backend.synchronize(out[0]), lambda: 0.0, backend.device)
    model = xbackprop_model(workload)
    loss = xb.MSE() if workload == "xor" else xb.SoftmaxCrossEntropy()
    optimizer = xb.optim.sgd(0.5) if workload == "xor" else xb.optim.adam(1e-3)
    params = xb.init_params(model, 0, x.shape[1:], backend=backend)
    holder = {"state": xb.TrainState.create(params, optimizer), "loss": None}
    step = xb.make_train_step(model, loss, optimizer, backend=backend, donate=True)
    batch = (backend.asarray(x), backend.asarray(y))

    def run() -> None:
        holder["state"], holder["loss"] = step(holder["state"], batch)

    return Runner(run, lambda: backend.synchronize(holder["loss"]),
                  lambda: float(holder["loss"]), backend.device)


# -- PyTorch eager -----------------------------------------------------------------------

def _torch(workload: str, impl: str) -> Runner:
    try:
        import torch
    except ImportError as e:
        raise Unavailable("PyTorch: not installed (pip install -e '.[benchmarks]')") from e
    import os

    cuda = impl == "torch-cuda"
    if cuda and not torch.cuda.is_available():
        raise Unavailable("PyTorch CUDA: no CUDA device")
    device = torch.device("cuda" if cuda else "cpu")
    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(0)
    x, y = _data(workload)
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    if cuda:  # full float32 everywhere, as xbackprop computes (cuDNN would use TF32)
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    if workload == "gemm":
        a, b = torch.tensor(x, device=device), torch.tensor(y, device=device)
        return Runner(lambda: torch.mm(a, b), sync, lambda: 0.0, str(device))
    nn = torch.nn
    if workload == "mlp":
        net = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                            nn.Linear(512, 10))
    elif workload == "cnn":
        net = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                            nn.Flatten(), nn.Linear(1568, 10))
    else:
        net = nn.Sequential(nn.Linear(2, 4), nn.Sigmoid(), nn.Linear(4, 1), nn.Sigmoid())
    net = net.to(device)
    if workload == "xor":
        optimizer, criterion = torch.optim.SGD(net.parameters(), lr=0.5), nn.MSELoss()
        tx, ty = torch.tensor(x, device=device), torch.tensor(y, device=device)
    else:
        optimizer, criterion = torch.optim.Adam(net.parameters(), lr=1e-3), nn.CrossEntropyLoss()
        tx, ty = torch.tensor(x, device=device), torch.tensor(y, device=device).long()
    last = [torch.zeros(())]

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        value = criterion(net(tx), ty)
        value.backward()
        optimizer.step()
        last[0] = value.detach()

    return Runner(step, sync, lambda: float(last[0]), str(device))


# -- JAX autodiff + optax ----------------------------------------------------------------

def _jax(workload: str, impl: str) -> Runner:
    try:
        import jax
        import jax.numpy as jnp
        import optax
    except ImportError as e:
        raise Unavailable("JAX autodiff: needs jax and optax (pip install -e '.[benchmarks]')"
                          ) from e
    x, y = (jnp.asarray(a) for a in _data(workload))
    device = str(jax.devices()[0])
    gpu = jax.devices()[0].platform != "cpu"

    def full_float32(fn: Callable) -> Callable:
        """`fn` traced with full float32 matrix products, as xbackprop traces its steps
        (JAX's default on NVIDIA GPUs is TF32); JAX fixes the precision at trace time."""
        def traced(*args: Any) -> Any:
            with jax.default_matmul_precision("float32"):
                return fn(*args)
        return traced

    if workload == "gemm":
        matmul = jax.jit(full_float32(jnp.matmul))
        out = [None]

        def gemm() -> None:
            out[0] = matmul(x, y)
        return Runner(gemm, lambda: jax.block_until_ready(out[0]), lambda: 0.0, device)
    params, forward = _jax_model(workload, jax, jnp)
    if workload == "xor":
        def loss_fn(p, xb, yb):
            return jnp.mean((forward(p, xb) - yb) ** 2)
        tx = optax.sgd(0.5)
    else:
        def loss_fn(p, xb, yb):
            return optax.softmax_cross_entropy_with_integer_labels(forward(p, xb), yb).mean()
        tx = optax.adam(1e-3)
    donate = (0, 1) if gpu else ()

    def _step(p, s, xb, yb):
        value, grads = jax.value_and_grad(loss_fn)(p, xb, yb)
        updates, s = tx.update(grads, s, p)
        return optax.apply_updates(p, updates), s, value

    step = jax.jit(full_float32(_step), donate_argnums=donate)
    holder = {"p": params, "s": tx.init(params), "loss": None}

    def run() -> None:
        holder["p"], holder["s"], holder["loss"] = step(holder["p"], holder["s"], x, y)

    return Runner(run, lambda: jax.block_until_ready(holder["loss"]),
                  lambda: float(holder["loss"]), device)


def _jax_model(workload: str, jax: Any, jnp: Any) -> tuple[Any, Callable]:
    keys = iter(jax.random.split(jax.random.PRNGKey(0), 8))

    def dense(a: int, b: int) -> dict:
        return {"W": jax.random.normal(next(keys), (a, b)) * np.sqrt(2.0 / a),
                "b": jnp.zeros(b)}

    if workload == "mlp":
        params = [dense(a, b) for a, b in zip(MLP_SIZES[:-1], MLP_SIZES[1:])]

        def forward(p, h):
            for i, layer in enumerate(p):
                h = h @ layer["W"] + layer["b"]
                h = jax.nn.relu(h) if i < len(p) - 1 else h
            return h
        return params, forward
    if workload == "xor":
        params = [dense(2, 4), dense(4, 1)]

        def forward(p, h):
            for layer in p:
                h = jax.nn.sigmoid(h @ layer["W"] + layer["b"])
            return h
        return params, forward

    def conv(c_in: int, c_out: int) -> dict:
        return {"W": jax.random.normal(next(keys), (c_out, c_in, 3, 3)) * np.sqrt(2 / (9 * c_in)),
                "b": jnp.zeros(c_out)}

    params = [conv(1, 16), conv(16, 32), dense(1568, 10)]

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


# -- plain NumPy, written by hand --------------------------------------------------------

def _numpy_plain(workload: str, impl: str) -> Runner:
    x, y = _data(workload)
    if workload == "gemm":
        return Runner(lambda: x @ y, lambda: None, lambda: 0.0)
    model = {"mlp": PlainMLP, "cnn": PlainCNN, "xor": PlainXOR}[workload]()
    last = [0.0]

    def run() -> None:
        last[0] = model.step(x, y)

    return Runner(run, lambda: None, lambda: float(last[0]))


class _PlainAdam:
    """Adam written the way one writes it by hand in NumPy: in place, float32."""

    def __init__(self, params: list[np.ndarray], lr: float = 1e-3, b1: float = 0.9,
                 b2: float = 0.999, eps: float = 1e-8) -> None:
        self.params, self.lr, self.b1, self.b2, self.eps = params, lr, b1, b2, eps
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.t = 0

    def step(self, grads: list[np.ndarray]) -> None:
        self.t += 1
        step = self.lr / (1 - self.b1 ** self.t)
        inv_bc2 = (1 - self.b2 ** self.t) ** -0.5
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            m *= self.b1
            m += (1 - self.b1) * g
            v *= self.b2
            v += (1 - self.b2) * g * g
            p -= step * m / (np.sqrt(v) * inv_bc2 + self.eps)


def _softmax_xent(logits: np.ndarray, labels: np.ndarray) -> tuple[Any, np.ndarray]:
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    s = e.sum(axis=1, keepdims=True)
    n = len(labels)
    loss = np.mean(np.log(s[:, 0]) - shifted[np.arange(n), labels])
    d = e / s
    d[np.arange(n), labels] -= 1
    return loss, d / n


class PlainMLP:
    def __init__(self) -> None:
        rng = np.random.default_rng(0)
        self.W = [(rng.normal(size=(a, b)) * np.sqrt(2 / a)).astype(np.float32)
                  for a, b in zip(MLP_SIZES[:-1], MLP_SIZES[1:])]
        self.b = [np.zeros(b, np.float32) for b in MLP_SIZES[1:]]
        self.opt = _PlainAdam(self.W + self.b)

    def step(self, x: np.ndarray, y: np.ndarray) -> Any:
        hs = [x]
        for i, (W, b) in enumerate(zip(self.W, self.b)):
            z = hs[-1] @ W + b
            hs.append(np.maximum(z, 0) if i < len(self.W) - 1 else z)
        loss, d = _softmax_xent(hs[-1], y)
        gW, gb = [None] * 3, [None] * 3
        for i in range(len(self.W) - 1, -1, -1):
            gW[i], gb[i] = hs[i].T @ d, d.sum(axis=0)
            if i:
                d = (d @ self.W[i].T) * (hs[i] > 0)
        self.opt.step(gW + gb)
        return loss


class PlainCNN:
    """The straightforward im2col CNN: sliding_window_view patches, einsum products,
    col2im by adding each kernel tap back, max-pool by reshaping into 2x2 blocks."""

    def __init__(self) -> None:
        rng = np.random.default_rng(0)
        self.W1 = (rng.normal(size=(16, 1, 3, 3)) * np.sqrt(2 / 9)).astype(np.float32)
        self.W2 = (rng.normal(size=(32, 16, 3, 3)) * np.sqrt(2 / 144)).astype(np.float32)
        self.b1, self.b2 = np.zeros(16, np.float32), np.zeros(32, np.float32)
        self.W3 = (rng.normal(size=(1568, 10)) * np.sqrt(2 / 1568)).astype(np.float32)
        self.b3 = np.zeros(10, np.float32)
        self.opt = _PlainAdam([self.W1, self.b1, self.W2, self.b2, self.W3, self.b3])

    @staticmethod
    def _conv(x, W, b):
        xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
        cols = np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(2, 3))
        y = np.einsum("nchwij,fcij->nfhw", cols, W, optimize=True) + b[None, :, None, None]
        return y, cols

    @staticmethod
    def _conv_back(d, cols, W, x_shape, need_dx):
        dW = np.einsum("nfhw,nchwij->fcij", d, cols, optimize=True)
        db = d.sum(axis=(0, 2, 3))
        if not need_dx:
            return None, dW, db
        n, c, h, w = x_shape
        dxp = np.zeros((n, c, h + 2, w + 2), np.float32)
        for i in range(3):
            for j in range(3):
                dxp[:, :, i:i + h, j:j + w] += np.einsum("nfhw,fc->nchw", d, W[:, :, i, j],
                                                         optimize=True)
        return dxp[:, :, 1:-1, 1:-1], dW, db

    @staticmethod
    def _pool(x):
        n, c, h, w = x.shape
        blocks = x.reshape(n, c, h // 2, 2, w // 2, 2)
        y = blocks.max(axis=(3, 5))
        mask = blocks == y[:, :, :, None, :, None]
        return y, mask

    @staticmethod
    def _pool_back(d, mask):
        n, c, h, _, w, _ = mask.shape
        return (mask * d[:, :, :, None, :, None]).reshape(n, c, 2 * h, 2 * w)

    def step(self, x: np.ndarray, y: np.ndarray) -> Any:
        z1, cols1 = self._conv(x, self.W1, self.b1)
        a1 = np.maximum(z1, 0)
        p1, m1 = self._pool(a1)
        z2, cols2 = self._conv(p1, self.W2, self.b2)
        a2 = np.maximum(z2, 0)
        p2, m2 = self._pool(a2)
        flat = p2.reshape(len(x), -1)
        loss, d = _softmax_xent(flat @ self.W3 + self.b3, y)
        gW3, gb3 = flat.T @ d, d.sum(axis=0)
        d = (d @ self.W3.T).reshape(p2.shape)
        d = self._pool_back(d, m2) * (z2 > 0)
        d, gW2, gb2 = self._conv_back(d, cols2, self.W2, p1.shape, True)
        d = self._pool_back(d, m1) * (z1 > 0)
        _, gW1, gb1 = self._conv_back(d, cols1, self.W1, x.shape, False)
        self.opt.step([gW1, gb1, gW2, gb2, gW3, gb3])
        return loss


class PlainXOR:
    def __init__(self) -> None:
        rng = np.random.default_rng(0)
        self.W1 = rng.uniform(-1, 1, (2, 4)).astype(np.float32)
        self.W2 = rng.uniform(-1, 1, (4, 1)).astype(np.float32)
        self.b1, self.b2 = np.zeros(4, np.float32), np.zeros(1, np.float32)

    def step(self, x: np.ndarray, y: np.ndarray) -> Any:
        h = 1 / (1 + np.exp(-(x @ self.W1 + self.b1)))
        o = 1 / (1 + np.exp(-(h @ self.W2 + self.b2)))
        diff = o - y
        do = (2 / diff.size) * diff * o * (1 - o)
        dh = (do @ self.W2.T) * h * (1 - h)
        self.W2 -= 0.5 * (h.T @ do)
        self.b2 -= 0.5 * do.sum(axis=0)
        self.W1 -= 0.5 * (x.T @ dh)
        self.b1 -= 0.5 * dh.sum(axis=0)
        return np.mean(diff * diff)
