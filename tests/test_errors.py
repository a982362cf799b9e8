"""The catalogue of clear errors (issue 12): bad input gets an error that names what was
wrong, where, and the fix — never a raw Python/NumPy message, never silent damage.

One entry per case in `CASES` (a call, the exception it must raise, and a regular
expression its message must match), run by one parametrised test; then the cases that
need a subprocess, a warning or the command line. Cases tested where their module is:

    MaxPool2D routes a NaN window's gradient to its NaN    tests/layers/test_pooling.py
    Python floats as optimizer parameters                   tests/optim/test_rules.py
    clipping limits, weight-decay masks                     tests/optim/test_transforms.py
    make_train_step compiles for the state's backend        tests/test_train.py
    any install mode, from the checkout's root or not       tests/test_import.py
    Ctrl-C ends with status 130 (and a checkpoint)          tests/test_fit_checkpoints.py
    the NaN guard names the step, epoch and layer           tests/test_fit.py
    corrupt, truncated, foreign and pickled checkpoints,    tests/test_checkpoint.py
      a checkpoint on a full disk
    a batch source's bad batch at step N, settings that     tests/test_fit_sources.py
    do not fit a source (steps with epochs, ...)
    callbacks that are neither Callback nor function        tests/test_callbacks.py
    module layout: import circles, private names            tests/test_layout.py
    loaders' CSV and IDX errors                             tests/data/

Issue 20 (part A), each with its message asserted:

    full disk, read-only folder, file for folder and the     tests/cli/test_files.py
      reverse, any OSError (one line, status 2)               (and tests/test_fserrors.py)
    a failed download exits 2                               tests/data/test_remote.py
    gradcheck: --module exiting at import or defining       tests/test_gradcheck.py
      nothing, a backward of another library (torch,          (test_cli_gradcheck_*,
      array-api-strict; on JAX the layer, not a tracer)       test_the_library_checker_*)
    predict: a 0-d .npy, 1e39 in float32, a binary or       tests/cli/test_predict.py
      non-UTF-8 file, a header of another width, one
      line with an empty cell, a BOM, a folder
    IDX sizes past int64                                    tests/data/test_idx.py
    Ctrl-C while the command imports                        tests/test_interrupt.py
    --devices 3 of 4 host devices (one call at a time)      tests/backends/test_jax_backend.py
    explain's float64 targets on torch                      tests/test_explain.py
    forest-fires --csv with a constant target               tests/examples/test_forest_fires.py
    negative counts and seeds, --save checked               tests/test_cli.py, tests/cli/test_train.py
    settings of layers and losses, seeds in the library     CASES below

Issue 20 (part B), each with its message asserted:

    a second writer on a checkpoint folder (the command,    tests/test_checkpoint_lock.py
      fit, a manager), named; kill -9 then resume at once;    (real processes)
      readers during writes; stale temporaries
    resume with another optimizer (momentum -> Adam or      tests/test_fit_checkpoints.py
      RMSprop, Adam -> SGD), another dtype, nothing left        (fit), tests/cli/
      to train; a folder holding a run without --resume;       test_checkpoints.py
      where --resume goes on from; another --batch-size;        (the command)
      --resume in an empty folder; --checkpoint ''
    --checkpoint a file, under a file, read-only, on a      tests/cli/test_checkpoints.py
      full disk (the earlier checkpoint whole)
    a header retyped (F32 -> I32), renamed, reshaped or     tests/test_checkpoint.py
      re-stepped; a format 1 file retyped; no checksum
      (verify=False warns); nested 100,000 deep; NaN or
      infinite weights at saving and loading
    hostile inputs around checkpoints, resume, sources      tests/test_checkpoint_hostile.py
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
import textwrap
import types
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import pytest

import xbackprop as xb
from xbackprop import backends, optim
from xbackprop.cli import MODULE_FAILED, main

RNG = np.random.default_rng(0)
X = RNG.normal(size=(40, 64)).astype(np.float32)
Y = np.arange(40) % 10
MODEL = xb.Sequential([xb.Dense(10)])
PARAMS = xb.init_params(MODEL, 0, (64,), backend="numpy")
OTHER = xb.init_params(xb.Sequential([xb.Dense(16)]), 0, (64,), backend="numpy")  # 16 wide
SGD = optim.sgd(0.1)


def quiet_fit(model: xb.Layer, x: Any, y: Any, **kwargs: Any) -> Any:
    options = dict(loss="cross_entropy", optimizer=SGD, epochs=1, progress=False) | kwargs
    return xb.fit(model, x, y, **options)


@dataclasses.dataclass(frozen=True)
class OneValue(xb.Layer):
    """A user layer whose backward forgets the parameter gradients."""

    def forward(self, params, x, ctx=xb.EVAL):
        return x, None

    def backward(self, params, cache, dy):
        return dy


@dataclasses.dataclass(frozen=True)
class NumpyExp(xb.Layer):
    """A user layer that calls NumPy instead of the namespace of its inputs."""

    def forward(self, params, x, ctx=xb.EVAL):
        return np.exp(x), x

    def backward(self, params, cache, dy):
        return dy * np.exp(cache), {}


def jax_array(a: Any) -> Any:
    return xb.asarray(a, backend="jax")


def fake_cupy(device_count: Callable[[], int]) -> types.ModuleType:
    """A stand-in `cupy` module with no usable device, for machines with or without CuPy."""
    cupy = types.ModuleType("cupy")
    cupy.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(
        getDeviceCount=device_count))
    return cupy


def no_driver() -> int:
    raise RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")


def load_table(text: str, **kwargs: Any) -> Any:
    """`xb.data.load_csv` of a file table.csv holding `text`, in a temporary folder."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "table.csv")
        with open(path, "w") as f:
            f.write(text)
        return xb.data.load_csv(path, **kwargs)


def with_module(name: str, module: Any, call: Callable[[], Any]) -> Callable[[], Any]:
    """`call` with sys.modules[name] replaced (None: the import fails) for its duration."""
    def run() -> Any:
        saved = sys.modules.get(name, ...)
        sys.modules[name] = module
        try:
            return call()
        finally:
            if saved is ...:
                del sys.modules[name]
            else:
                sys.modules[name] = saved
    return run


class Case(NamedTuple):
    call: Callable[[], Any]
    error: type[BaseException]
    message: str  # a regular expression the message must match (re.search)
    needs_jax: bool = False


CASES: dict[str, Case] = {
    # -- layers and models ------------------------------------------------------------------
    "Dense(0)": Case(lambda: xb.Dense(0), ValueError,
                     r"Dense: units is the number of outputs, a positive int, not 0"),
    "Dense(-3)": Case(lambda: xb.Dense(-3), ValueError, r"positive int, not -3"),
    "Dense(2.5)": Case(lambda: xb.Dense(2.5), ValueError, r"positive int, not 2.5"),
    "Sequential([])": Case(lambda: xb.Sequential([]), ValueError,
                           r"Sequential\(\[\]\) has no layers: give it at least one"),
    "Sequential of a class": Case(lambda: xb.Sequential([xb.ReLU]), TypeError,
                                  r"item 0 is a type, not a Layer \(did you forget the "
                                  r"parentheses"),
    "init_params(model, 0, 64)": Case(
        lambda: xb.init_params(MODEL, 0, 64), TypeError,
        r"init_params: input_shape is one sample's shape, a tuple: \(64,\) for x: \(N, 64\), "
        r"not the int 64"),
    # (a Dense model takes (32, 64) as 32 positions of 64 features, so: a CNN)
    "init_params with the batch axis": Case(
        lambda: xb.init_params(xb.Sequential([xb.Conv2D(2, 3), xb.Flatten()]), 0,
                               (32, 1, 8, 8)), ValueError,
        r"one sample's shape, without the batch axis: \(1, 8, 8\) for x: \(32, 1, 8, 8\)\? "
        r"\(check_layer and check_model take the batch axis"),
    "check_model without the batch axis": Case(
        lambda: xb.check_model(MODEL, (64,), oracle="fd"), ValueError,
        r"the gradient checkers' input_shape includes the batch axis: \(4, 64\) for 4 "
        r"samples of shape \(64,\)\?"),
    "Dense W in (out, in) orientation": Case(
        lambda: MODEL.forward([{"W": PARAMS[0]["W"].T, "b": PARAMS[0]["b"]}], X),
        ValueError, r"Dense\(10\): W has shape \(10, 64\), which is \(units, in_features\).*"
                    r"\(in_features, units\) = \(64, 10\)\. Transpose it \(W\.T\)"),
    "input of the wrong shape names the layer": Case(
        lambda: MODEL.forward(PARAMS, X[:, :32]), ValueError,
        r"Dense\(10\) expects inputs of shape \(N, 64\), got \(40, 32\)"),
    "an image model given rows": Case(
        lambda: xb.Conv2D(4, 3).forward(
            xb.init_params(xb.Conv2D(4, 3), 0, (1, 8, 8)), X), ValueError,
        r"Conv2D\(4, 3\) expects inputs \(N, 1, H, W\), got \(40, 64\)"),
    "params missing a key, called directly": Case(
        lambda: MODEL.forward([{"W": PARAMS[0]["W"]}], X), KeyError,
        r"layer 0, Dense\(10\): its parameters have no 'b' \(they have 'W'\)\. Parameters of "
        r"another model\? Make them with xbackprop.init_params"),
    "params missing a key, in predict": Case(
        lambda: xb.predict(MODEL, [{"W": PARAMS[0]["W"]}], X), ValueError,
        r"predict: params does not fit the model: it has no params.0.b, which layer 0, "
        r"Dense\(10\) needs with shape \(10,\)"),
    "a user layer whose backward returns one value": Case(
        lambda: quiet_fit(xb.Sequential([xb.Dense(10), OneValue()]), X, Y), TypeError,
        r"layer 1, OneValue\(\)\.backward must return a pair \(dx, grads\).*it returned one "
        r"array of shape \(32, 10\)"),
    "a user layer calling np.* on JAX arrays, eagerly": Case(
        lambda: xb.predict(xb.Sequential([NumpyExp()]), [{}], jax_array(X), jit=False),
        TypeError, r"layer 0, NumpyExp\(\)\.forward was given a jax array and returned a "
                   r"numpy array.*xp = xbackprop\.backend_of\(x\)\.xp", needs_jax=True),
    "a user layer calling np.* on JAX arrays, under jit": Case(
        lambda: quiet_fit(xb.Sequential([xb.Dense(10), NumpyExp()]), X, Y, backend="jax"),
        TypeError, r"layer 1, NumpyExp\(\)\.forward called NumPy \(np\.\*\) on a jax array, "
                   r"which jax refuses.*xp = xbackprop\.backend_of\(x\)\.xp", needs_jax=True),
    # -- parameters of another architecture ----------------------------------------------------
    "Dense(16) params in a Dense(32) model: predict": Case(
        lambda: xb.predict(xb.Sequential([xb.Dense(32)]), OTHER, X), ValueError,
        r"predict: params does not fit the model \(another architecture\?\): params.0.W has "
        r"shape \(64, 16\), but layer 0, Dense\(32\) needs \(64, 32\)"),
    "... evaluate": Case(
        lambda: xb.evaluate(xb.Sequential([xb.Dense(32)]), OTHER, X, Y, "cross_entropy"),
        ValueError, r"evaluate: params does not fit the model \(another architecture\?\)"),
    "... fit(params=)": Case(
        lambda: quiet_fit(xb.Sequential([xb.Dense(32)]), X, Y, params=OTHER), ValueError,
        r"fit: params does not fit the model \(another architecture\?\): params.0.W"),
    "... fit(state=)": Case(
        lambda: quiet_fit(xb.Sequential([xb.Dense(32)]), X, Y,
                          state=xb.TrainState.create(OTHER, SGD)), ValueError,
        r"fit: params does not fit the model"),
    "a BatchNorm model without its state": Case(
        lambda: xb.predict(xb.Sequential([xb.Dense(4), xb.BatchNorm()]),
                           xb.init_params(xb.Sequential([xb.Dense(4), xb.BatchNorm()]), 0,
                                          (64,)), X), ValueError,
        r"predict: model_state does not fit the model: it has no model_state.1.\w+, which "
        r"layer 1, BatchNorm\(\) needs"),
    # -- inputs ------------------------------------------------------------------------------
    "predict on empty input": Case(
        lambda: xb.predict(MODEL, PARAMS, np.zeros((0, 64))), ValueError,
        r"predict: x has no samples \(shape \(0, 64\)\)"),
    "evaluate on empty input": Case(
        lambda: xb.evaluate(MODEL, PARAMS, np.zeros((0, 64)), np.zeros(0, int), "mse"),
        ValueError, r"evaluate: x has no samples"),
    "fit on empty data": Case(lambda: quiet_fit(MODEL, X[:0], Y[:0]), ValueError,
                              r"fit: the training data has no samples"),
    "predict on text": Case(lambda: xb.predict(MODEL, PARAMS, np.full((2, 64), "a")),
                            ValueError, r"predict: x holds text \(<U1\); inputs must be numbers"),
    "fit on text labels": Case(lambda: quiet_fit(MODEL, X, Y.astype(str)), ValueError,
                               r"training data: y holds text \(<U\d+\); it must be numbers"),
    "x and y of different lengths": Case(
        lambda: xb.evaluate(MODEL, PARAMS, X, Y[:10], "cross_entropy"), ValueError,
        r"evaluate: x has 40 samples but y has 10"),
    "validation_data that is not a pair": Case(
        lambda: quiet_fit(MODEL, X, Y, validation_data=X), ValueError,
        r"validation_data is a pair \(x_val, y_val\) or a validation source, not an ndarray"),
    "validation samples of another shape": Case(
        lambda: quiet_fit(MODEL, X, Y, validation_data=(X[:, :10], Y)), ValueError,
        r"validation data: samples of shape \(10,\), but the training samples have shape "
        r"\(64,\)"),
    "NaN in regression targets": Case(
        lambda: quiet_fit(MODEL, X, np.where(np.eye(40, 10) > 0, np.nan, 0.0), loss="mse"),
        ValueError, r"training data: y has 10 NaN or infinite values \(first at index "
                    r"\(0, 0\)\); clean the data"),
    # -- labels and targets ----------------------------------------------------------------
    "evaluate with every label 50": Case(
        lambda: xb.evaluate(MODEL, PARAMS, X, np.full(40, 50), "cross_entropy"), ValueError,
        r"evaluate: SoftmaxCrossEntropy: labels run from 50 to 50 \(label 0 is 50\), but the "
        r"predictions have 10 classes; labels must be in \[0, 10\)"),
    "out-of-range validation labels": Case(
        lambda: quiet_fit(MODEL, X, Y, validation_data=(X, Y + 20)), ValueError,
        r"validation data: SoftmaxCrossEntropy: labels run from 20 to 29"),
    "out-of-range training labels": Case(
        lambda: quiet_fit(MODEL, X, Y - 1), ValueError,
        r"training data: SoftmaxCrossEntropy: labels run from -1 to 8 \(label 0 is -1\)"),
    "labels given to a loss directly": Case(
        lambda: xb.SoftmaxCrossEntropy()(np.zeros((2, 3)), np.array([0, 7])), ValueError,
        r"labels run from 0 to 7 \(label 1 is 7\), but the predictions have 3 classes"),
    "fractional labels (y + 0.5)": Case(
        lambda: xb.evaluate(MODEL, PARAMS, X, Y + 0.5, "cross_entropy"), ValueError,
        r"labels are class indices, whole numbers, but label 0 is 0.5\. For soft targets give "
        r"probabilities of shape \(N, classes\)"),
    "NaN labels given to a loss": Case(
        lambda: xb.SoftmaxCrossEntropy()(np.zeros((2, 3)), np.array([0, np.nan])), ValueError,
        r"SoftmaxCrossEntropy: the labels hold 1 NaN or infinite values \(the first at index "
        r"1\)"),
    "BCE targets outside [0, 1]": Case(
        lambda: xb.BinaryCrossEntropyWithLogits()(np.zeros((3, 1)),
                                                  np.array([[1.0], [-1.0], [1.0]])),
        ValueError, r"targets are probabilities of class 1, in \[0, 1\] \(labels 0 and 1\), "
                    r"but these run from -1 to 1 .* Labels -1/1\? Use \(y \+ 1\) / 2\."),
    "BCE targets outside [0, 1] in fit": Case(
        lambda: quiet_fit(xb.Sequential([xb.Dense(1), xb.Sigmoid()]), X,
                          (Y[:, None] > 4) * 2.0, loss="bce"), ValueError,
        r"training data: BinaryCrossEntropy: targets are probabilities of class 1"),
    "BCE probabilities outside [0, 1]": Case(
        lambda: xb.BinaryCrossEntropy()(np.array([[0.5], [1.7]]), np.array([[1.0], [0.0]])),
        ValueError, r"BinaryCrossEntropy takes probabilities in \[0, 1\], but the predictions "
                    r"run from 0.5 to 1.7 .*End the model with Sigmoid\(\), or give the raw "
                    r"outputs to BinaryCrossEntropyWithLogits"),
    "BCE after a layer that gives any real number": Case(
        lambda: quiet_fit(xb.Sequential([xb.Dense(1)]), X, (Y[:, None] > 4) * 1.0,
                          loss="bce"), ValueError,
        r"training data: BinaryCrossEntropy\(\) takes probabilities, but the model ends in Dense\(1\), "
        r"whose outputs are any real number\. End it with Sigmoid\(\), or use "
        r"BinaryCrossEntropyWithLogits"),
    "probability targets that do not sum to 1": Case(
        lambda: xb.SoftmaxCrossEntropy()(np.zeros((2, 3)), np.full((2, 3), 0.5)), ValueError,
        r"target rows are probabilities and must sum to 1, but row 0 sums to 1.5\. Normalise"),
    "negative probability targets": Case(
        lambda: xb.SoftmaxCrossEntropy()(np.zeros((1, 2)), np.array([[1.5, -0.5]])),
        ValueError, r"target rows are probabilities, but the one at index \(0, 1\) is -0.5"),
    "targets of another shape than the predictions": Case(
        lambda: xb.MSE()(np.zeros((4, 1)), np.zeros(4)), ValueError,
        r"MSE: prediction \(4, 1\) and target \(4,\) differ in shape; reshape the target"),
    # -- optimizers ----------------------------------------------------------------------
    "freeze matching no parameter": Case(
        lambda: quiet_fit(MODEL, X, Y, optimizer=optim.freeze(SGD, ["*.bias"])), ValueError,
        r"freeze: '\*\.bias' matches no parameter, so nothing would be frozen by it\. The "
        r"parameters are 0\.W, 0\.b"),
    "fit(optimizer=xb.optim.adam), the function": Case(
        lambda: quiet_fit(MODEL, X, Y, optimizer=optim.adam), TypeError,
        r"got the function xbackprop\.optim\.adam; call it to make the optimizer"),
    "an unknown optimizer name": Case(
        lambda: quiet_fit(MODEL, X, Y, optimizer="adamax"), ValueError,
        r"unknown optimizer 'adamax'; choose one of \['adagrad', 'adam', 'adamw'"),
    "an unknown loss name": Case(lambda: quiet_fit(MODEL, X, Y, loss="hinge"), ValueError,
                                 r"unknown loss 'hinge'; choose one of"),
    # -- backends ----------------------------------------------------------------------------
    "an unknown backend": Case(lambda: xb.get_backend("tensorflow"), xb.UnknownBackendError,
                               r"unknown backend 'tensorflow' \(from the backend argument\); "
                               r"choose one of 'numpy', 'jax'"),
    "a missing optional library": Case(
        with_module("cupy", None, lambda: backends.cupy_backend.CupyBackend()),
        xb.BackendUnavailableError,
        r"backend 'cupy' needs CuPy, which is not installed.*pip install 'xbackprop\[cuda12\]'"),
    "no CUDA device": Case(
        with_module("cupy", fake_cupy(no_driver),
                    lambda: backends.cupy_backend.CupyBackend()),
        xb.BackendUnavailableError,
        r"CuPy is installed but no CUDA device is usable \(cudaErrorNoDevice.*choose 'numpy' "
        r"or 'jax'"),
    "a GPU that is not there": Case(
        with_module("cupy", fake_cupy(lambda: 0),
                    lambda: backends.cupy_backend.CupyBackend()),
        xb.BackendUnavailableError, r"CuPy is installed but found no CUDA device"),
    "mixed backends": Case(
        lambda: MODEL.forward(PARAMS, jax_array(X)), xb.MixedBackendError,
        r"arrays of two backends in one call: argument 0 is a .*\(jax\) and argument 1 is a "
        r"numpy.ndarray \(numpy\)\. Move them to one backend first", needs_jax=True),
    "float64 on JAX without 64-bit mode": Case(
        lambda: xb.init_params(MODEL, 0, (64,), backend="jax", dtype="float64"),
        xb.DtypeError, r"float64 on the JAX backend needs JAX's 64-bit mode", needs_jax=True),
    # -- data files and configurations ------------------------------------------------------
    "a non-numeric CSV column": Case(
        lambda: load_table("temp,area\n20.5,0\nhot,1.5\n", target="area"),
        ValueError, r"table\.csv, line 3, column 'temp': 'hot' is not a number"),
    "an unknown layer in a model configuration": Case(
        lambda: xb.config.from_config({"class": "Transformer", "module": "mine"}),
        xb.config.ConfigError, r"the model uses the class Transformer from module mine, "
                               r"which is not defined in this process: import mine"),
    # -- settings, checked where they are written (issue 20) -----------------------------------
    "LeakyReLU('abc')": Case(lambda: xb.LeakyReLU("abc"), ValueError,
                             r"^LeakyReLU: alpha must be a finite number, not 'abc'$"),
    "LeakyReLU(nan)": Case(lambda: xb.LeakyReLU(float("nan")), ValueError,
                           r"^LeakyReLU: alpha must be a finite number, not nan$"),
    "Dropout('abc')": Case(lambda: xb.Dropout("abc"), ValueError,
                           r"^Dropout: rate must be a finite number, not 'abc'$"),
    "Dropout(1.0)": Case(lambda: xb.Dropout(1.0), ValueError,
                         r"^Dropout: rate must be in \[0.0, 1.0\), not 1.0$"),
    "BatchNorm(eps=nan)": Case(lambda: xb.BatchNorm(eps=float("nan")), ValueError,
                               r"^BatchNorm: eps must be a finite number, not nan$"),
    "BatchNorm(momentum='x')": Case(lambda: xb.BatchNorm(momentum="x"), ValueError,
                                    r"^BatchNorm: momentum must be a finite number, not 'x'$"),
    "Conv2D(True, 3)": Case(lambda: xb.Conv2D(True, 3), ValueError,
                            r"^Conv2D: filters must be a positive int, not True$"),
    "MaxPool2D(True)": Case(lambda: xb.MaxPool2D(True), ValueError,
                            r"^kernel_size must be an int or a pair of ints, not True$"),
    "Softmax(axis=1.5)": Case(lambda: xb.Softmax(axis=1.5), ValueError,
                              r"^Softmax: axis must be an int, not 1.5$"),
    "MSE(scale=nan)": Case(lambda: xb.MSE(scale=float("nan")), ValueError,
                           r"^MSE: scale must be a finite number, not nan$"),
    "MSE(scale=0)": Case(lambda: xb.MSE(scale=0), ValueError,
                         r"^MSE: scale must be in \(0.0, inf\), not 0.0$"),
    "a negative seed to init_params": Case(
        lambda: xb.init_params(MODEL, -1, (64,)), ValueError,
        r"^a random seed is an int in \[0, 2\*\*64\), not -1$"),
    "a negative seed to a loader": Case(lambda: xb.data.load_digits(seed=-1), ValueError,
                                        r"^a random seed is an int in \[0, 2\*\*64\), not -1$"),
    "a fractional seed": Case(lambda: xb.data.train_test_split(X, Y, seed=1.5), ValueError,
                              r"^a random seed is an int in \[0, 2\*\*64\), not 1.5$"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_the_error_says_what_is_wrong(name, request, clean_backend_choice):
    case = CASES[name]
    if case.needs_jax:
        request.getfixturevalue("jax_backend")
    with pytest.raises(case.error) as info:
        case.call()
    assert re.search(case.message, str(info.value), re.S), str(info.value)


def test_the_catalogue_holds_at_least_35_cases():
    elsewhere = 8  # the modules named first in this file's docstring
    assert len(CASES) + elsewhere + len(CLI_CASES) >= 35


def test_numpy_integers_are_ints():
    """Dense(np.int64(3)) was refused as "a positive int, not np.int64(3)"; NumPy's integers
    now count, and come back as Python ints, so a saved model's configuration is JSON."""
    import json

    layers = [xb.Dense(np.int64(3)), xb.Conv2D(np.int32(2), (np.int64(3), 3)),
              xb.Softmax(axis=np.int8(-1))]
    assert [type(layers[0].units), type(layers[1].filters), type(layers[2].axis)] == [int] * 3
    json.dumps(xb.config.to_config(layers[0]))


def test_a_batch_larger_than_the_data_is_one_full_batch_with_a_warning():
    with pytest.warns(UserWarning, match=r"fit: batch_size 1000 is larger than the 40 training "
                                         r"samples; training on all 40 in one batch per epoch"):
        result = quiet_fit(MODEL, X, Y, epochs=3, batch_size=1000)
    assert int(result.state.step) == 3  # one step per epoch
    full = quiet_fit(MODEL, X, Y, epochs=3, batch_size=40)
    np.testing.assert_array_equal(result.params[0]["W"], full.params[0]["W"])


def test_a_direct_loss_call_under_jit_is_not_checked_and_not_slowed(jax_backend):
    """Tracers hold no values: under jax.jit the loss computes as before (the caller checks
    its data once), and the same bad labels outside jit are refused."""
    import jax

    loss = xb.SoftmaxCrossEntropy()
    logits, labels = jax_array(np.zeros((2, 3), np.float32)), jax_array(np.array([0, 7]))
    assert np.isfinite(float(jax.jit(loss)(logits, labels)))
    with pytest.raises(ValueError, match="labels run from 0 to 7"):
        loss(logits, labels)


def test_valid_targets_pass(backend):
    """The checks refuse only what a loss cannot mean: labels, one-hot and soft rows, binary
    labels and probabilities, regression values all pass on every backend."""
    def on(a: Any) -> Any:
        return backend.asarray(np.asarray(a, dtype=np.float32))

    z = on(RNG.normal(size=(4, 3)))
    assert np.isfinite(float(xb.SoftmaxCrossEntropy()(z, backend.asarray(np.array([0, 2, 1, 2])))))
    soft = np.full((4, 3), 0.2) + np.eye(4, 3) * 0.4
    soft[3] = 1 / 3
    assert np.isfinite(float(xb.SoftmaxCrossEntropy()(z, on(soft))))
    assert np.isfinite(float(xb.BinaryCrossEntropy()(on([[0.0], [1.0]]), on([[0.0], [0.3]]))))
    assert np.isfinite(float(xb.MSE()(z, on(RNG.normal(size=(4, 3)) * 1e3))))


# -- the command line ------------------------------------------------------------------------

@pytest.fixture
def in_tmp(tmp_path, monkeypatch, clean_backend_choice):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def cli(args: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = main(args)
    except SystemExit as e:  # argparse's refusal of an option's value: status 2
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


CLI_CASES = {
    # args, exit status, where to look, pattern
    "--backend JAX": (["train", "xor", "--backend", " JAX ", "--epochs", "1", "--quiet"], 0,
                      "out", r"backend jax \("),
    "a missing --plot folder, before training": (
        ["train", "xor", "--plot", "missing/h.png"], 2, "err",
        r"^xbackprop: error: --plot missing/h.png: the folder missing does not exist"),
    "--plot with another suffix": (["train", "xor", "--plot", "h.jpg"], 2, "err",
                                   r"--plot h.jpg: the picture is a PNG; give a name ending"),
    "a --module that does not import": (
        ["gradcheck", "--module", "mine.py"], MODULE_FAILED, "err",
        r"^xbackprop: error: --module mine.py: line 3: SyntaxError: .*\n    def swish\(x:\n"),
    "a --module with an import error": (
        ["gradcheck", "--module", "theirs.py"], MODULE_FAILED, "err",
        r"--module theirs.py: line 2: ModuleNotFoundError: No module named 'no_such_pkg'\n"
        r"    import no_such_pkg"),
    "xbackprop backends, nothing chosen": (["backends"], 0, "out", r"^(?!.*chosen by)"),
    # issue 20: values that were silently ignored or reached NumPy
    "an empty --plot (it was ignored)": (["train", "xor", "--plot", ""], 2, "err",
                                         r"^xbackprop: error: --plot needs a file name, not an "
                                         r"empty string"),
    "an empty --out (it was the current folder)": (
        ["example", "xor", "--out", ""], 2, "err",
        r"argument --out: a folder name, not an empty string"),
    "a negative gradcheck --seed": (["gradcheck", "--seed", "-1"], 2, "err",
                                    r"argument --seed: a seed is a whole number from 0 to "
                                    r"2\*\*64 - 1, not '-1'"),
    "--retries 0 (it was taken as 1)": (["data", "download", "mnist", "--retries", "0"], 2,
                                        "err", r"argument --retries: a whole number >= 1, not 0"),
    "predict --batch-size 0": (["predict", "m.safetensors", "x.npy", "--batch-size", "0"], 2,
                               "err", r"argument --batch-size: a whole number >= 1, not 0"),
}


@pytest.mark.parametrize("name", list(CLI_CASES))
def test_the_command_line_says_what_is_wrong(name, in_tmp, capsys, request):
    args, status, stream, pattern = CLI_CASES[name]
    if "JAX" in args:
        request.getfixturevalue("jax_backend")
    (in_tmp / "mine.py").write_text("import xbackprop as xb\n\ndef swish(x:\n    pass\n")
    (in_tmp / "theirs.py").write_text("import numpy\nimport no_such_pkg\n")
    code, out, err = cli(args, capsys)
    assert code == status, (out, err)
    assert re.search(pattern, {"out": out, "err": err}[stream], re.S), (out, err)
    assert "Traceback" not in err
    if status:
        assert "train loss" not in out  # failed before any training


def test_plot_without_matplotlib_fails_before_training(in_tmp, capsys, monkeypatch):
    import importlib.util

    from xbackprop.cli import train

    real = importlib.util.find_spec
    monkeypatch.setattr(train.importlib.util, "find_spec",
                        lambda name, *a: None if name == "matplotlib" else real(name, *a))
    code, out, err = cli(["train", "xor", "--plot", "h.png"], capsys)
    assert code == 2 and "train loss" not in out
    assert "--plot needs matplotlib, which is not installed: pip install 'xbackprop[plot]'" in err


def test_example_pictures_without_matplotlib_fail_before_the_run(in_tmp, capsys, monkeypatch):
    import importlib.util

    from xbackprop.cli import example

    real = importlib.util.find_spec
    monkeypatch.setattr(example.importlib.util, "find_spec",
                        lambda name, *a: None if name == "matplotlib" else real(name, *a))
    code, out, err = cli(["example", "forest-fires", "--quick"], capsys)
    assert code == 2 and out == ""
    assert "need matplotlib, which is not installed: pip install 'xbackprop[plot]', or pass " \
        "--no-plots" in err


def test_plot_without_a_suffix_writes_and_names_a_png(in_tmp, capsys):
    pytest.importorskip("matplotlib")
    code, out, _ = cli(["train", "xor", "--epochs", "2", "--quiet", "--plot", "noext"], capsys)
    assert code == 0 and "saved noext.png" in out
    assert (in_tmp / "noext.png").read_bytes()[:4] == b"\x89PNG"
    assert not (in_tmp / "noext").exists()


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith(f"xbackprop {xb.__version__} (Python ")


def test_any_command_into_head_ends_quietly(tmp_path):
    """`xbackprop ... | head`: the reader goes away mid-output; the command stops with status
    141 (128 + SIGPIPE, as a shell reports a process killed by it) and no traceback."""
    code = textwrap.dedent("""
        import sys
        from xbackprop import cli
        from xbackprop.cli import list_backends

        def run(args):  # a command with a lot to say
            for i in range(200_000):
                print('line', i)
            return 0

        list_backends.run = run
        sys.argv = ['xbackprop', 'backends']
        cli.console()
    """)
    shell = f"'{sys.executable}' -c \"$CODE\" 2>err.txt | head -1; echo \"${{PIPESTATUS[0]}}\""
    env = {k: v for k, v in os.environ.items() if k != backends.ENV_VAR} | {"CODE": code}
    out = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, cwd=tmp_path,
                         env=env, timeout=120)
    assert out.stdout.splitlines() == ["line 0", "141"], out
    assert (tmp_path / "err.txt").read_text() == ""


def test_targets_of_another_shape_fail_before_training():
    """fit checks the targets' shape against the model's outputs before the first step."""
    with pytest.raises(ValueError, match=r"training data: MSE: prediction \(40, 10\) and target "
                                         r"\(40,\) differ in shape; reshape the target"):
        quiet_fit(MODEL, X, Y.astype(np.float32), loss="mse")
    with pytest.raises(ValueError, match=r"training data: SoftmaxCrossEntropy: for logits "
                                         r"\(40, 10\) the target is integer labels of shape "
                                         r"\(40,\) or probabilities of shape \(40, 10\), not "
                                         r"\(40, 1\)"):
        quiet_fit(MODEL, X, Y[:, None])
