"""xbackprop on each backend: the hand-written layers, a train step from `make_train_step`
(compiled by `jax.jit` on JAX), donated state. The CNN and XOR models are the ones
`xbackprop train digits-cnn` and `xbackprop train xor` train (`xbackprop.recipes`)."""

from __future__ import annotations

from typing import Any

from benchmarks.workloads import LSTM_SIZES, MLP_SIZES, Runner, Unavailable, Workload

#: implementation -> the backend it runs on
IMPLS = {"xbackprop-numpy": "numpy", "xbackprop-jax": "jax", "xbackprop-cupy": "cupy",
         "xbackprop-torch": "torch:cpu", "xbackprop-torch-cuda": "torch:cuda"}


def mlp() -> Any:
    """784-512-512-10, ReLU, He-initialised."""
    import xbackprop as xb

    hidden = [layer for width in MLP_SIZES[1:-1]
              for layer in (xb.Dense(width, weight_init="he_normal"), xb.ReLU())]
    return xb.Sequential(hidden + [xb.Dense(MLP_SIZES[-1])])


def lstm() -> Any:
    """LSTM(256), its last hidden state into Dense(10)."""
    import xbackprop as xb

    return xb.Sequential([xb.LSTM(LSTM_SIZES["hidden"], return_sequences=False),
                          xb.Dense(LSTM_SIZES["classes"])])


def model(name: str) -> Any:
    """The workload's network: the CNN and XOR models are the recipes' own."""
    from xbackprop import recipes

    return {"mlp": mlp, "cnn": recipes.digits_cnn, "xor": recipes.xor_mlp,
            "lstm": lstm}[name]()


def _backend(spec: str) -> Any:
    import xbackprop as xb

    try:
        return xb.get_backend(spec)
    except xb.BackendUnavailableError as e:
        raise Unavailable(f"xbackprop on {spec}: {e}") from e


def train_step(workload: Workload, spec: str) -> Runner:
    import xbackprop as xb

    backend = _backend(spec)
    x, y = workload.data()
    loss = {"softmax_xent": xb.SoftmaxCrossEntropy, "mse": xb.MSE}[workload.loss]()
    optimizer = getattr(xb.optim, workload.optimizer)(workload.lr)
    net = model(workload.name)
    params = xb.init_params(net, 0, x.shape[1:], backend=backend)
    holder = {"state": xb.TrainState.create(params, optimizer), "loss": None}
    step = xb.make_train_step(net, loss, optimizer, backend=backend, donate=True)
    batch = (backend.asarray(x), backend.asarray(y))

    def run() -> None:
        holder["state"], holder["loss"] = step(holder["state"], batch)

    return Runner(run, lambda: backend.synchronize(holder["loss"]),
                  lambda: float(holder["loss"]), backend.device)


def matmul(workload: Workload, spec: str) -> Runner:
    backend = _backend(spec)
    a, b = (backend.asarray(m) for m in workload.data())
    product = backend.compile(lambda u, v: u @ v)
    out = [None]

    def run() -> None:
        out[0] = product(a, b)

    return Runner(run, lambda: backend.synchronize(out[0]), lambda: 0.0, backend.device)
