"""xbackprop: neural networks whose layers, losses and optimizers are written by hand, forward
and backward side by side, and run unchanged on NumPy, CuPy, JAX and PyTorch.

    import xbackprop as xb
    model = xb.Sequential([xb.Dense(64), xb.ReLU(), xb.Dense(10)])
    result = xb.fit(model, x, y, loss=xb.SoftmaxCrossEntropy(), optimizer=xb.optim.adam(1e-3))

The backend comes from `backend=...`, `with xb.use_backend(...)`, `xb.set_backend(...)` or
the environment variable XBACKPROP_BACKEND (default numpy). Importing xbackprop imports
NumPy only. `fit(..., backend="jax", devices=4)` trains data-parallel over four devices;
`xb.initialize_distributed(...)` joins processes that train together.
"""

import importlib.util as _importlib_util
import os as _os
import sys as _sys

# First: as the `xbackprop` command, a Ctrl-C while the rest imports exits quietly (130).
from .interrupt import quiet_interrupts_if_command as _quiet_interrupts

_quiet_interrupts()


def _find_backends() -> None:
    """Make `xbackprop.backends` importable when this package was found in a source checkout.

    The backend layer lives in the checkout's top-level `backends/` folder and is installed
    as `xbackprop.backends` (setuptools' package-dir). An editable install maps it; a wheel
    copies it into the package. But Python run from the checkout's root finds the source
    `xbackprop/` first (the working directory is on `sys.path`), whatever is installed, and
    there the subpackage is one folder up: load it from there, under its installed name.
    """
    name = f"{__name__}.backends"
    if name in _sys.modules or _importlib_util.find_spec(name) is not None:
        return
    folder = _os.path.join(_os.path.dirname(_os.path.dirname(_os.path.abspath(__file__))),
                           "backends")
    init = _os.path.join(folder, "__init__.py")
    if not _os.path.isfile(init):
        return  # not a checkout either: the import below says what is missing
    spec = _importlib_util.spec_from_file_location(name, init,
                                                   submodule_search_locations=[folder])
    assert spec is not None and spec.loader is not None
    module = _importlib_util.module_from_spec(spec)
    _sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del _sys.modules[name]
        raise
    globals()["backends"] = module  # as the import system sets a loaded submodule


_find_backends()

from . import config, data, initializers, metrics, optim, plot, random, schedules, tree
from .backends import (
    Backend,
    BackendError,
    BackendUnavailableError,
    DtypeError,
    MixedBackendError,
    ShardingError,
    UnknownBackendError,
    asarray,
    available_backends,
    backend_of,
    get_backend,
    initialize_distributed,
    set_backend,
    to_numpy,
    tree_to_backend,
    use_backend,
)
from .callbacks import Callback, EarlyStopping, History
from .checkpoint import (
    Checkpoint,
    CheckpointError,
    CheckpointManager,
    SavedModel,
    checkpoint_info,
    load_checkpoint,
    load_model,
    save_checkpoint,
    save_model,
)
from .evaluate import evaluate, predict
from .explain import LayerStep, StepRecord, explain
from .fit import FitResult, fit
from .generate import generate
from .gradcheck import (
    GradientCheckError,
    GradReport,
    assert_gradients,
    assert_layer_gradients,
    check_function,
    check_layer,
    check_loss,
    check_model,
    check_parity,
)
from .layers import (
    EVAL,
    GELU,
    GRU,
    LSTM,
    RNN,
    AvgPool2D,
    BatchNorm,
    CausalSelfAttention,
    Context,
    Conv2D,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    GlobalAvgPool2D,
    Identity,
    Layer,
    LayerNorm,
    LeakyReLU,
    MaxPool2D,
    Parallel,
    PositionEmbedding,
    ReLU,
    Residual,
    Sigmoid,
    Softmax,
    Tanh,
)
from .losses import (
    MSE,
    BinaryCrossEntropy,
    BinaryCrossEntropyWithLogits,
    Loss,
    SoftmaxCrossEntropy,
)
from .model import Sequential, count_params, init_params, init_state
from .sources import SourceError
from .train import TrainingDivergedError, TrainState, loss_and_grads, make_train_step

# isort: split
from . import language  # (after the checkpoints it saves with)
from .version import __version__ as __version__  # (re-exported: xbackprop.__version__)

__all__ = [
    # backends
    "Backend", "BackendError", "BackendUnavailableError", "DtypeError", "MixedBackendError",
    "ShardingError", "UnknownBackendError", "asarray", "available_backends", "backend_of",
    "get_backend", "initialize_distributed", "set_backend", "to_numpy", "tree_to_backend",
    "use_backend",
    # layers
    "Context", "EVAL", "Layer", "Dense", "Identity", "Sigmoid", "Tanh", "ReLU", "LeakyReLU",
    "Softmax", "Conv2D", "MaxPool2D", "AvgPool2D", "GlobalAvgPool2D", "Flatten", "Dropout",
    "BatchNorm", "GELU", "LayerNorm", "Embedding", "PositionEmbedding", "CausalSelfAttention",
    "Residual", "Parallel", "RNN", "LSTM", "GRU",
    # losses
    "Loss", "MSE", "BinaryCrossEntropy", "BinaryCrossEntropyWithLogits", "SoftmaxCrossEntropy",
    # models and training
    "Sequential", "init_params", "init_state", "count_params", "TrainState", "FitResult",
    "History", "TrainingDivergedError", "fit", "predict", "evaluate", "loss_and_grads",
    "make_train_step", "EarlyStopping", "Callback", "SourceError",
    # explaining a step
    "explain", "StepRecord", "LayerStep",
    # language models
    "generate",
    # gradient checking
    "GradReport", "GradientCheckError", "check_layer", "check_loss", "check_model",
    "check_function", "check_parity", "assert_layer_gradients", "assert_gradients",
    # checkpoints and saved models
    "save_checkpoint", "load_checkpoint", "checkpoint_info", "Checkpoint", "CheckpointManager",
    "CheckpointError", "save_model", "load_model", "SavedModel",
    # submodules
    "checkpoint", "config", "data", "initializers", "language", "metrics", "optim", "plot",
    "random", "schedules", "tree",
]
