"""Checkpoints: the exact state comes back on every backend, the file is real safetensors,
an interrupted save never damages the previous file, every bad file is a clear error, and
the manager keeps the newest and the best files and nothing else of its own."""

from __future__ import annotations

import json
import os
import pickle
import signal
import struct
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy as st

import xbackprop as xb
from xbackprop import checkpoint as ck
from xbackprop.atomic import TMP_SUFFIX
from xbackprop.checkpoint.lock import LOCK_NAME
from xbackprop.tree import tree_paths

#: files written by earlier versions (format 1), kept by tests/recorded
RECORDED_FILES = Path(__file__).parent / "recorded" / "files"

INPUT = (6,)


def small_model() -> xb.Sequential:
    """Every kind of state: Adam slots, BatchNorm statistics, Dropout's random key. (No bias
    before BatchNorm: its gradient is rounding noise, which Adam would blow up.)"""
    return xb.Sequential([xb.Dense(5, use_bias=False), xb.BatchNorm(), xb.ReLU(), xb.Dropout(0.3),
                          xb.Dense(3)])


def batches(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=(8, *INPUT)).astype(np.float32),
             rng.integers(0, 3, size=8).astype(np.int32)) for _ in range(n)]


def trained(backend, steps: int = 3, model=None):
    """(model, state, step function) after `steps` Adam steps on `backend`."""
    model = model or small_model()
    opt = xb.optim.adam(1e-2)
    params = xb.init_params(model, 0, INPUT, backend=backend)
    state = xb.TrainState.create(params, opt, xb.init_state(model, INPUT, backend=backend),
                                 seed=7)
    step = xb.make_train_step(model, "cross_entropy", opt, backend=backend)
    for batch in batches(steps):
        state, _ = step(state, tuple(backend.asarray(a) for a in batch))
    return model, state, step


def assert_same_state(a, b, exact: bool = True):
    """Same containers (TrainState, OptState, lists, dicts), same leaves; step counts the
    same number (a Python int on NumPy, an int32 array on JAX)."""
    assert type(a) is type(b) and type(a.opt_state) is type(b.opt_state)
    assert [p for p, _ in tree_paths(a)] == [p for p, _ in tree_paths(b)]
    assert type(a.params) is type(b.params) and type(a.model_state) is type(b.model_state)
    for (name, x), (_, y) in zip(tree_paths(a), tree_paths(b)):
        x, y = np.asarray(xb.to_numpy(x)), np.asarray(xb.to_numpy(y))
        if x.ndim == 0 and x.dtype.kind == "i":
            assert y.ndim == 0 and y.dtype.kind == "i" and int(x) == int(y), name
            continue
        assert x.dtype == y.dtype and x.shape == y.shape, name
        if exact:
            assert np.array_equal(x, y), name
        else:
            np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7, err_msg=name)


# -- round trips ---------------------------------------------------------------------------

def test_round_trip_keeps_every_part_of_the_state(backend, tmp_path):
    model, state, _ = trained(backend)
    history = xb.History(loss=[1.5, 1.2], val_loss=[1.6, 1.3])
    path = xb.save_checkpoint(tmp_path / "a.safetensors", state, model=model, history=history,
                              metadata={"epoch": 2, "position": np.int64(40), "note": "x"},
                              metrics={"val_loss": 1.3}, input_shape=INPUT, loss="cross_entropy")
    assert path == tmp_path / "a.safetensors"
    got = xb.load_checkpoint(path, backend)
    assert_same_state(state, got.state)
    assert got.step == 3 and got.saved_backend == backend.name and got.saved_dtype == "float32"
    assert got.model.layers == model.layers and got.model is not model
    assert got.history == history and isinstance(got.history, xb.History)
    assert got.metadata == {"epoch": 2, "position": 40, "note": "x"}
    assert got.metrics == {"val_loss": 1.3} and got.input_shape == INPUT
    assert got.loss == xb.SoftmaxCrossEntropy() and got.format_version == ck.FORMAT_VERSION
    assert got.saved_at.endswith("+00:00") and got.path == path
    # step counts in the form this backend's train step keeps them
    if not backend.compiles:
        assert type(got.state.step) is int and type(got.state.opt_state.count) is int
    else:
        assert got.state.step.dtype == np.int32 and got.state.step.shape == ()
        assert got.state.opt_state.count.dtype == np.int32


def test_exact_containers_come_back(tmp_path):
    params = [{"W": np.ones((2, 2), np.float32)}, {}]
    opt_state = {"a": (np.zeros(3), [np.arange(2), None]), "count": 4, "lr": 0.5, "on": True}
    state = xb.TrainState(params, opt_state, None, 9, xb.random.make_key(3, "numpy"))
    got = xb.load_checkpoint(xb.save_checkpoint(tmp_path / "t.safetensors", state)).state
    assert isinstance(got.opt_state["a"], tuple) and isinstance(got.opt_state["a"][1], list)
    assert got.opt_state["a"][1][1] is None and got.params[1] == {}
    assert got.opt_state["count"] == 4 and got.opt_state["lr"] == 0.5
    assert got.opt_state["on"] is True and got.model_state is None
    assert got.opt_state["a"][1][0].dtype == np.int64 and got.key.dtype == np.uint32


@pytest.mark.parametrize("direction", ["from numpy", "to numpy"])
def test_a_checkpoint_loads_on_another_backend_and_trains_on(backend, direction, tmp_path):
    numpy = xb.get_backend("numpy")
    source, target = (numpy, backend) if direction == "from numpy" else (backend, numpy)
    model, state, _ = trained(source)
    path = xb.save_checkpoint(tmp_path / "x.safetensors", state, model=model, input_shape=INPUT)
    got = xb.load_checkpoint(path, target)
    assert xb.backend_of(*xb.tree.tree_leaves(got.state.params)) is target
    assert got.saved_backend == source.name
    assert_same_state(xb.to_numpy(state), xb.to_numpy(got.state))
    # the loaded state trains on: one more step on the new backend matches the old one
    batch = batches(4)[3]
    new, _ = xb.make_train_step(model, "cross_entropy", xb.optim.adam(1e-2), backend=target)(
        got.state, tuple(target.asarray(a) for a in batch))
    ref, _ = xb.make_train_step(model, "cross_entropy", xb.optim.adam(1e-2), backend=source)(
        state, tuple(source.asarray(a) for a in batch))
    assert int(new.step) == int(ref.step) == 4
    for (name, a), (_, b) in zip(tree_paths(new.params), tree_paths(ref.params)):
        np.testing.assert_allclose(xb.to_numpy(a), xb.to_numpy(b), rtol=2e-5, atol=2e-6,
                                   err_msg=name)


@pytest.mark.parametrize("exact", [True, False], ids=["numpy-bit-equal", "jax-1e-6"])
def test_steps_resumed_from_a_checkpoint_equal_steps_in_one_go(exact, tmp_path, request):
    """N steps, save, load, N more == 2N steps: the file holds the optimizer's moments and
    count, BatchNorm's statistics, the step and the key that draws dropout masks."""
    backend = xb.get_backend("numpy") if exact else request.getfixturevalue("jax_backend")
    model, straight, step = trained(backend, steps=6)
    _, half, _ = trained(backend, steps=3)
    path = xb.save_checkpoint(tmp_path / "h.safetensors", half, model=model)
    resumed = xb.load_checkpoint(path, backend).state
    for batch in batches(6)[3:]:
        resumed, _ = step(resumed, tuple(backend.asarray(a) for a in batch))
    assert_same_state(straight, resumed, exact=exact)


def test_the_file_opens_in_the_safetensors_library(tmp_path):
    from safetensors import safe_open

    model, state, _ = trained(xb.get_backend("numpy"))
    path = xb.save_checkpoint(tmp_path / "s.safetensors", state, model=model)
    tensors = st.load_file(str(path))
    ours = dict(tree_paths(state))
    assert set(tensors) == {name for name, v in ours.items() if not isinstance(v, int)}
    for name, array in tensors.items():
        assert np.array_equal(array, ours[name]) and array.dtype == ours[name].dtype, name
    with safe_open(str(path), framework="numpy") as f:
        meta = f.metadata()
    assert meta["format"] == "xbackprop" and json.loads(meta["model"]) == xb.config.to_config(model)


def test_our_reader_opens_a_file_the_safetensors_library_wrote(tmp_path):
    rng = np.random.default_rng(0)
    tensors = {"f64": rng.normal(size=(3, 2)), "f32": rng.normal(size=5).astype(np.float32),
               "f16": np.arange(3, dtype=np.float16), "i64": np.arange(4, dtype=np.int64),
               "u8": np.arange(7, dtype=np.uint8), "flag": np.array([True, False]),
               "scalar": np.array(2.5, np.float32), "empty": np.zeros((0, 3), np.float32)}
    st.save_file(tensors, str(tmp_path / "lib.safetensors"), metadata={"k": "v"})
    got, meta = ck.read_safetensors(tmp_path / "lib.safetensors")
    assert meta == {"k": "v"} and set(got) == set(tensors)
    for name, array in tensors.items():
        assert got[name].dtype == array.dtype and got[name].shape == array.shape, name
        assert np.array_equal(got[name], array), name
    # and the library reads what our writer wrote, the same arrays in every dtype
    ck.write_safetensors(tmp_path / "ours.safetensors", tensors, {"k": "v"})
    back = st.load_file(str(tmp_path / "ours.safetensors"))
    assert all(np.array_equal(back[n], a) and back[n].dtype == a.dtype
               for n, a in tensors.items())


def test_header_is_padded_and_tensors_aligned(tmp_path):
    ck.write_safetensors(tmp_path / "a.safetensors", {"b": np.ones(3, np.uint8),
                                                      "a": np.ones(3, np.float64)})
    raw = (tmp_path / "a.safetensors").read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    assert n % 8 == 0 and header["a"]["data_offsets"] == [0, 24]  # widest first
    assert header["b"]["data_offsets"] == [24, 27] and len(raw) == 8 + n + 27


def test_saving_copies_and_never_changes_the_state(backend, tmp_path):
    _, state, _ = trained(backend)
    before = xb.to_numpy(xb.tree.tree_map(lambda a: np.array(xb.to_numpy(a)), state))
    xb.save_checkpoint(tmp_path / "a.safetensors", state)
    assert_same_state(before, xb.to_numpy(state))


# -- interrupted saves ---------------------------------------------------------------------

WRITER = """
import sys
import numpy as np
import xbackprop as xb

path, step = sys.argv[1], int(sys.argv[2])
params = [{"W": np.zeros((1024, 1024), np.float32)} for _ in range(6)]  # 24 MB
opt = xb.optim.sgd(0.1)
while True:
    step += 1
    for p in params:
        p["W"].fill(step)
    state = xb.TrainState(params, opt.init(params), None, step, xb.random.make_key(0, "numpy"))
    xb.save_checkpoint(path, state)
    print(step, flush=True)
"""


def temporaries(folder) -> list:
    return [p for p in folder.iterdir() if p.name.endswith(TMP_SUFFIX)]


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="SIGKILL: POSIX only")
def test_a_process_killed_while_saving_leaves_the_previous_checkpoint_intact(tmp_path):
    """Ten kills of a process that saves a 24 MB checkpoint over and over: half at random
    moments, half aimed at a save in progress (a temporary file exists); each time the file
    loads, and holds one whole save."""
    path = tmp_path / "ckpt.safetensors"
    rng = np.random.default_rng(0)
    last, interrupted = 0, 0
    for trial in range(10):
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(last)],
                                  stdout=subprocess.PIPE, text=True, cwd=tmp_path)
        first = int(writer.stdout.readline())  # one save done: the loop is running
        if trial % 2:
            deadline = time.monotonic() + 5
            while not temporaries(tmp_path) and time.monotonic() < deadline:
                time.sleep(0.0005)
            time.sleep(rng.uniform(0.0, 0.005))
        else:
            time.sleep(rng.uniform(0.0, 0.15))
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        done = [first] + [int(line) for line in writer.stdout.read().split()]
        writer.stdout.close()
        got = xb.load_checkpoint(path, "numpy")
        # the last save reported, or the one after it if the kill came between its rename
        # and its print; every array of that one step, none of another
        assert got.step in (done[-1], done[-1] + 1)
        assert all(np.all(p["W"] == got.step) for p in got.state.params)
        interrupted += bool(temporaries(tmp_path))
        for p in temporaries(tmp_path):
            p.unlink()
        last = got.step
    assert interrupted >= 3, f"only {interrupted} of 10 kills landed while a file was being " \
                             "written: the test did not exercise interrupted saves"


# -- bad files -----------------------------------------------------------------------------

@pytest.fixture
def good(tmp_path):
    """A valid checkpoint of a small model, its path and its bytes."""
    model, state, _ = trained(xb.get_backend("numpy"), steps=1)
    path = xb.save_checkpoint(tmp_path / "good.safetensors", state, model=model,
                              input_shape=INPUT)
    return path, path.read_bytes()


def header_of(raw: bytes) -> tuple[dict, bytes]:
    n = struct.unpack("<Q", raw[:8])[0]
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def with_header(header: dict, data: bytes) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def rewritten(raw: bytes, change) -> bytes:
    header, data = header_of(raw)
    change(header)
    return with_header(header, data)


def bump_version(h):
    h["__metadata__"]["format_version"] = str(ck.FORMAT_VERSION + 1)
    h["__metadata__"]["xbackprop_version"] = "9.0"


def shift_offsets(h):
    h["params.0.W"]["data_offsets"] = [h["params.0.W"]["data_offsets"][0] + 4,
                                       h["params.0.W"]["data_offsets"][1] + 4]


def break_tree(h):
    h["__metadata__"]["tree"] = h["__metadata__"]["tree"].replace('"tensor"', '"tenser"')


BAD_FILES = {
    "empty": (lambda raw: b"", ck.NotACheckpointError, "is empty"),
    "pickle": (lambda raw: pickle.dumps({"W": [1.0]}), ck.NotACheckpointError,
               "is a Python pickle.*never unpickles"),
    "png": (lambda raw: b"\x89PNG\r\n\x1a\n" + bytes(100), ck.NotACheckpointError,
            "is a PNG image"),
    "npy": (lambda raw: b"\x93NUMPY\x01\x00" + bytes(100), ck.NotACheckpointError,
            "is a NumPy .npy file"),
    "text": (lambda raw: b"hello, this is not a checkpoint\n", ck.NotACheckpointError,
             "is not a safetensors file"),
    "three bytes": (lambda raw: b"abc", ck.NotACheckpointError, "is not a safetensors file"),
    "cut in the header": (lambda raw: raw[:40], ck.CorruptCheckpointError,
                          "is truncated: its header should be"),
    "cut after 8 bytes": (lambda raw: raw[:8], ck.CorruptCheckpointError, "is truncated"),
    "cut in the data": (lambda raw: raw[:-100], ck.CorruptCheckpointError,
                        "is truncated: its tensors need"),
    "bytes appended": (lambda raw: raw + b"junk", ck.CorruptCheckpointError,
                       "4 unexpected bytes follow its last tensor"),
    "bad header JSON": (lambda raw: raw[:8] + b"{" + raw[9:].replace(b'"', b"'", 3),
                        ck.CorruptCheckpointError, "header is not valid JSON"),
    "offsets out of range": (lambda raw: rewritten(raw, shift_offsets),
                             ck.CorruptCheckpointError, "params.0.W' starts at byte|truncated"),
    "flipped data byte": (lambda raw: raw[:-3] + bytes([raw[-3] ^ 1]) + raw[-2:],
                          ck.CorruptCheckpointError, "do not match the checksum"),
    "damaged tree": (lambda raw: rewritten(raw, break_tree), ck.CorruptCheckpointError,
                     "header or its tensor bytes do not match the checksum"),
    "newer format": (lambda raw: rewritten(raw, bump_version), ck.CheckpointVersionError,
                     "written by xbackprop 9.0 in checkpoint format 3.*Upgrade xbackprop"),
    "no xbackprop metadata": (
        lambda raw: rewritten(raw, lambda h: h.pop("__metadata__")),
        ck.NotACheckpointError, r"a safetensors file \(\d+ tensors\) but not an xbackprop"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_a_bad_file_is_a_clear_error_naming_it(case, good, tmp_path):
    make, error, message = BAD_FILES[case]
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(make(good[1]))
    for load in (xb.load_checkpoint, xb.load_model, xb.checkpoint_info):
        if case in ("flipped data byte", "damaged tree") and load is xb.checkpoint_info:
            continue  # the header alone is fine; the arrays are not read
        with pytest.raises(error, match=message) as info:
            load(bad)
        assert str(info.value).startswith(str(bad)) and isinstance(info.value, ValueError)


def test_a_missing_file_or_a_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint file at .*nope"):
        xb.load_checkpoint(tmp_path / "nope.safetensors")
    with pytest.raises(IsADirectoryError, match="is a folder.*CheckpointManager"):
        xb.load_checkpoint(tmp_path)


def test_parameters_of_another_architecture_name_the_tensor_and_both_shapes(good):
    other = xb.Sequential([xb.Dense(4), xb.BatchNorm(), xb.ReLU(), xb.Dropout(0.3),
                           xb.Dense(3)])
    with pytest.raises(ck.ArchitectureMismatchError,
                       match=r"good.safetensors: the checkpoint does not fit the model.*"
                             r"params.0.W has shape \(6, 5\), but layer 0, Dense\(4\) needs "
                             r"\(6, 4\)"):
        xb.load_checkpoint(good[0], model=other)
    fewer = xb.Sequential([xb.Dense(5, use_bias=False), xb.BatchNorm(), xb.ReLU(),
                           xb.Dropout(0.3)])
    with pytest.raises(ck.ArchitectureMismatchError, match="params.4.W of shape .* no place"):
        xb.load_checkpoint(good[0], model=fewer)
    # the same architecture with another dropout rate is fine: shapes are what must agree
    same = xb.Sequential([xb.Dense(5, use_bias=False), xb.BatchNorm(), xb.ReLU(),
                          xb.Dropout(0.1), xb.Dense(3)])
    assert xb.load_checkpoint(good[0], model=same).model is same


def test_without_an_input_shape_the_model_configurations_must_agree(tmp_path):
    model, state, _ = trained(xb.get_backend("numpy"), steps=1)
    path = xb.save_checkpoint(tmp_path / "c.safetensors", state, model=model)
    assert xb.load_checkpoint(path, model=small_model()).model.layers == model.layers
    other = xb.Sequential([xb.Dense(5, use_bias=False), xb.BatchNorm(), xb.ReLU(),
                           xb.Dropout(0.3), xb.Dense(4)])
    with pytest.raises(ck.ArchitectureMismatchError,
                       match=r"saved from another model: layer 4 is Dense\(3\) in the "
                             r"checkpoint but Dense\(4\) in your model"):
        xb.load_checkpoint(path, model=other)


def test_saving_parameters_that_do_not_fit_the_model_is_an_error(tmp_path):
    params = xb.init_params(xb.Sequential([xb.Dense(16)]), 0, (4,))
    with pytest.raises(ck.ArchitectureMismatchError, match=r"params.0.W has shape \(4, 16\), "
                       r"but layer 0, Dense\(32\) needs \(4, 32\)"):
        xb.save_model(tmp_path / "m.safetensors", xb.Sequential([xb.Dense(32)]), params,
                      input_shape=(4,))
    assert not list(tmp_path.iterdir())


def test_wrong_kinds_of_file_say_which_loader_to_use(tmp_path, good):
    model = xb.Sequential([xb.Dense(2)])
    params = xb.init_params(model, 0, (3,))
    saved = xb.save_model(tmp_path / "m.safetensors", model, params)
    with pytest.raises(xb.CheckpointError, match="is a saved model.*xbackprop.load_model"):
        xb.load_checkpoint(saved)
    _, state, _ = trained(xb.get_backend("numpy"), steps=1)
    bare = xb.save_checkpoint(tmp_path / "bare.safetensors", state)
    with pytest.raises(xb.CheckpointError, match="no model configuration.*model=model"):
        xb.load_model(bare)
    assert xb.load_checkpoint(bare).model is None
    with pytest.raises(TypeError, match="saves a TrainState.*save_model"):
        xb.save_checkpoint(tmp_path / "p.safetensors", params)


def test_float64_on_jax_without_64_bit_mode_is_an_error_with_two_ways_out(jax_backend,
                                                                           tmp_path):
    model = xb.Sequential([xb.Dense(2)])
    params = xb.init_params(model, 0, (3,), dtype="float64")
    path = xb.save_model(tmp_path / "f64.safetensors", model, params)
    with pytest.raises(xb.DtypeError, match="f64.safetensors holds float64 arrays.*"
                       "jax_enable_x64.*dtype='float32'"):
        xb.load_model(path, "jax")
    assert xb.load_model(path, "jax", dtype="float32").params[0]["W"].dtype == np.float32
    import jax

    with jax.enable_x64(True):
        assert xb.load_model(path, "jax").params[0]["W"].dtype == np.float64


def test_unknown_namedtuples_are_refused_when_saving_and_loading(tmp_path):
    from typing import NamedTuple

    class MyState(NamedTuple):
        moment: np.ndarray

    params = [{"W": np.ones(2, np.float32)}]
    state = xb.TrainState(params, MyState(np.zeros(2)), None, 0, xb.random.make_key(0))
    with pytest.raises(TypeError, match="opt_state is a .*MyState, a NamedTuple that "
                       "checkpoints do not know.*register_namedtuple\\(MyState\\)"):
        xb.save_checkpoint(tmp_path / "n.safetensors", state)
    ck.register_namedtuple(MyState)
    try:
        path = xb.save_checkpoint(tmp_path / "n.safetensors", state)
        assert type(xb.load_checkpoint(path).state.opt_state) is MyState
    finally:
        ck.forget_namedtuple(MyState)
    with pytest.raises(xb.CheckpointError, match="NamedTuple 'MyState' that this process "
                       "does not know.*register_namedtuple"):
        xb.load_checkpoint(path)


def test_bad_things_to_save_are_clear_errors(tmp_path, jax_backend):
    params = [{"W": np.ones(2, np.float32)}]
    key = xb.random.make_key(0)
    with pytest.raises(TypeError, match="metadata must be JSON-able"):
        xb.save_checkpoint(tmp_path / "a.safetensors", xb.TrainState(params, None, None, 0, key),
                           metadata={"when": object()})
    mixed = xb.TrainState(params, None, None, 0, xb.random.make_key(0, "jax"))
    with pytest.raises(xb.MixedBackendError):
        xb.save_checkpoint(tmp_path / "a.safetensors", mixed)
    with pytest.raises(TypeError, match="opt_state.x: a str cannot be stored"):
        xb.save_checkpoint(tmp_path / "a.safetensors",
                           xb.TrainState(params, {"x": "text"}, None, 0, key))
    with pytest.raises(FileNotFoundError, match="the folder .*missing does not exist"):
        xb.save_checkpoint(tmp_path / "missing" / "a.safetensors",
                           xb.TrainState(params, None, None, 0, key))
    assert not list(tmp_path.iterdir())


# -- saved models --------------------------------------------------------------------------

def test_a_saved_model_predicts_as_before_on_any_backend(backend, tmp_path):
    model = xb.Sequential([xb.Conv2D(3, 3, padding=1), xb.BatchNorm(), xb.ReLU(),
                           xb.MaxPool2D(2), xb.Flatten(), xb.Dense(4)])
    data = np.random.default_rng(1).normal(size=(5, 2, 6, 6)).astype(np.float32)
    params = xb.init_params(model, 0, (2, 6, 6))
    mstate = xb.tree.tree_map(lambda a: a + 0.5, xb.init_state(model, (2, 6, 6)))
    path = xb.save_model(tmp_path / "cnn.safetensors", model, params, mstate,
                         input_shape=(2, 6, 6), metadata={"trained on": "noise"})
    loaded = xb.load_model(path, backend)
    assert loaded.model.layers == model.layers
    assert hash(loaded.model.layers)  # frozen layers hold tuples, not lists
    expected = xb.predict(model, params, data, model_state=mstate)
    got = xb.predict(loaded.model, loaded.params, data, model_state=loaded.model_state)
    np.testing.assert_allclose(xb.to_numpy(got), expected, rtol=1e-5, atol=1e-6)
    info = xb.checkpoint_info(path)
    assert info.kind == "model" and info.metadata == {"trained on": "noise"}
    assert info.tensors["params.0.W"] == ("float32", (3, 2, 3, 3)) and info.step is None


def test_load_model_takes_a_checkpoint_too(good):
    loaded = xb.load_model(good[0])
    state = xb.load_checkpoint(good[0]).state
    assert loaded.model.layers == small_model().layers
    assert_same_state(state, state._replace(params=loaded.params,
                                            model_state=loaded.model_state))


# -- the manager ---------------------------------------------------------------------------

def save_steps(manager, state, scores: dict[int, float]) -> None:
    for step, score in scores.items():
        manager.save(state._replace(step=step), metrics={"val_loss": score})


def test_manager_keeps_the_newest_and_the_best_and_nothing_else_of_its_own(tmp_path):
    _, state, _ = trained(xb.get_backend("numpy"), steps=1)
    others = ["notes.txt", "ckpt-best.safetensors", "ckpt-000000001.safetensors.bak",
              "model.safetensors"]
    for name in others:
        (tmp_path / name).write_text("not the manager's")
    manager = xb.CheckpointManager(tmp_path, keep=2)
    save_steps(manager, state, {10: 0.9, 20: 0.3, 30: 0.5, 40: 0.6, 50: 0.7})
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(others + ["ckpt-000000020.safetensors", "ckpt-000000040.safetensors",
                                     "ckpt-000000050.safetensors", LOCK_NAME])
    assert manager.latest().name == "ckpt-000000050.safetensors"
    assert manager.best().name == "ckpt-000000020.safetensors"
    # a restart: the best score is read back from the files' headers
    again = xb.CheckpointManager(tmp_path, keep=2)
    save_steps(again, state, {60: 0.4})
    assert again.best().name == "ckpt-000000020.safetensors"
    assert again.load_best().step == 20 and again.load_latest().step == 60
    save_steps(again, state, {70: 0.1})
    assert [p.name for p in again.checkpoints()] == ["ckpt-000000060.safetensors",
                                                     "ckpt-000000070.safetensors"]
    assert all((tmp_path / name).read_text() == "not the manager's" for name in others)


def test_manager_modes_and_no_monitor(tmp_path):
    _, state, _ = trained(xb.get_backend("numpy"), steps=1)
    high = xb.CheckpointManager(tmp_path / "max", keep=1, monitor="val_accuracy", mode="max")
    for step, acc in {1: 0.5, 2: 0.9, 3: float("nan"), 4: 0.7}.items():
        high.save(state._replace(step=step), metrics={"val_accuracy": acc})
    assert [p.name[5:14] for p in high.checkpoints()] == ["000000002", "000000004"]
    plain = xb.CheckpointManager(tmp_path / "plain", keep=1, monitor=None)
    save_steps(plain, state, {1: 0.1, 2: 0.2})
    assert [p.name for p in plain.checkpoints()] == ["ckpt-000000002.safetensors"]
    assert plain.best() is None and plain.load_best() is None
    with pytest.raises(ValueError, match="keep must be an int >= 1"):
        xb.CheckpointManager(tmp_path, keep=0)
    with pytest.raises(ValueError, match="mode must be 'min' or 'max'"):
        xb.CheckpointManager(tmp_path, mode="lowest")
    (tmp_path / "file").write_text("")
    with pytest.raises(NotADirectoryError, match="is a file, not a folder"):
        xb.CheckpointManager(tmp_path / "file")


def test_manager_loads_the_newest_file_that_loads(tmp_path):
    manager = xb.CheckpointManager(tmp_path / "run", keep=3)
    assert manager.latest() is None and manager.load_latest() is None
    model, state, _ = trained(xb.get_backend("numpy"), steps=1)
    for step in (1, 2):
        manager.save(state._replace(step=step), model=model)
    newest = manager.latest()
    newest.write_bytes(newest.read_bytes()[:-10])  # damaged after it was written
    with pytest.warns(UserWarning, match="skipping a checkpoint.*000000002.*truncated"):
        got = manager.load_latest()
    assert got.step == 1 and got.model.layers == model.layers
    manager.latest().write_bytes(b"")
    (tmp_path / "run" / "ckpt-000000001.safetensors").write_bytes(b"")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ck.CorruptCheckpointError, match="no checkpoint in .*run can be "
                           "loaded"):
            manager.load_latest()


def test_the_writer_removes_temporaries_of_killed_saves_only(tmp_path):
    """A manager made to read removes nothing; the writer, once it holds the folder's lock
    (no one else can be saving then), removes the temporaries of saves that were killed."""
    stale = tmp_path / f".ckpt-000000005.safetensors.abc123{TMP_SUFFIX}"
    foreign = tmp_path / f".other.safetensors.abc123{TMP_SUFFIX}"
    stale.write_bytes(b"half")
    foreign.write_bytes(b"someone else's")
    manager = xb.CheckpointManager(tmp_path)
    assert manager.latest() is None and manager.load_latest() is None
    assert stale.exists() and foreign.exists()
    _, state, _ = trained(xb.get_backend("numpy"), steps=1)
    manager.save(state)
    assert not stale.exists() and foreign.exists()


def test_checkpoint_names_sort_by_step(tmp_path):
    manager = xb.CheckpointManager(tmp_path, keep=5, monitor=None)
    _, state, _ = trained(xb.get_backend("numpy"), steps=1)
    for step in (9, 100, 12):
        manager.save(state._replace(step=step))
    names = [p.name for p in manager.checkpoints()]
    assert names == sorted(names) == [manager.path_for(s).name for s in (9, 12, 100)]
    assert os.path.basename(manager.latest()) == "ckpt-000000100.safetensors"


def test_a_full_disk_is_the_os_error_it_is_and_the_earlier_file_stays(small_disk):
    """The safetensors package reports a full disk as its own error ("I/O error: No space
    left on device (os error 28)"); a save says it as the file-system error it is, and the
    checkpoint saved before is whole."""
    from xbackprop import fserrors

    disk = small_disk("64k")
    params = [{"W": np.zeros((10, 10), np.float32)}]
    path = xb.save_checkpoint(disk / "ckpt.safetensors",
                              xb.TrainState(params, None, None, 1, xb.random.make_key(0)))
    big = [{"W": np.ones((200, 200), np.float32)}]  # 160 kB on a 64 kB disk
    with pytest.raises(OSError) as info:
        xb.save_checkpoint(path, xb.TrainState(big, None, None, 2, xb.random.make_key(0)))
    assert info.value.errno == 28
    assert fserrors.describe(info.value) == (
        f"cannot write {path}: no space left on device (the disk is full: free some space or "
        "write elsewhere; an earlier file of that name is unchanged)")
    assert xb.load_checkpoint(path).step == 1
    assert sorted(p.name for p in disk.iterdir()) == ["ckpt.safetensors"]  # no .tmp left


# -- the integrity check (issue 20, class 3) ------------------------------------------------

def retyped(h, name="params.0.W", dtype="I32"):
    h[name]["dtype"] = dtype  # F32 -> I32: the same byte count, so the package accepts it


def test_the_checksum_covers_the_tensor_table_and_the_metadata(good, tmp_path):
    """Format 2's checksum covers every byte of the header that describes the data (dtype,
    shape, offsets, names) and every metadata entry, not only the data: a dtype changed from
    F32 to I32, a renamed tensor or an edited step is caught, whichever loader reads it."""
    def renamed(h):
        h["params.0.Z"] = h.pop("params.0.W")

    def restepped(h):
        h["__metadata__"]["step"] = "999"

    def reshaped(h):
        h["params.0.W"]["shape"] = list(reversed(h["params.0.W"]["shape"]))

    for change in (retyped, renamed, restepped, reshaped):
        bad = tmp_path / f"{change.__name__}.safetensors"
        bad.write_bytes(rewritten(good[1], change))
        for load in (xb.load_checkpoint, xb.load_model):
            with pytest.raises(ck.CorruptCheckpointError,
                               match="its header or its tensor bytes do not match the "
                                     "checksum written with them"):
                load(bad)


def test_a_format_1_file_whose_dtype_was_changed_is_refused(tmp_path):
    """Files of format 1 check the data alone (`data_crc32`); a parameter's dtype changed from
    F32 to I32 keeps that checksum, and is refused because parameters are floating point."""
    raw = (RECORDED_FILES / "checkpoint.safetensors").read_bytes()
    header, _ = header_of(raw)
    assert header["__metadata__"]["format_version"] == "1"
    bad = tmp_path / "old.safetensors"
    bad.write_bytes(rewritten(raw, retyped))
    with pytest.raises(ck.CorruptCheckpointError,
                       match=r"parameter params.0.W is int32, but parameters"):
        xb.load_checkpoint(bad)


def test_a_file_without_its_checksum_loads_only_unchecked_with_a_warning(good, tmp_path):
    def unsealed(h):
        del h["__metadata__"]["crc32"]

    bad = tmp_path / "unsealed.safetensors"
    bad.write_bytes(rewritten(good[1], unsealed))
    for load in (xb.load_checkpoint, xb.load_model):
        with pytest.raises(ck.CorruptCheckpointError,
                           match="has no integrity check.*To load it anyway, unchecked: "
                                 r"verify=False \(xbackprop predict --no-verify\)"):
            load(bad)
    with pytest.warns(UserWarning, match="loaded without an integrity check.*has no integrity "
                                         "check"):
        ckpt = xb.load_checkpoint(bad, verify=False)
    assert_same_state(ckpt.state, xb.load_checkpoint(good[0]).state)


@pytest.mark.parametrize("where", ["metadata", "tree", "header"])
def test_a_header_nested_100000_deep_is_a_clear_error(good, tmp_path, where):
    """Python's JSON parser recurses: a record nested 100,000 deep would end in a
    RecursionError (or a crash). Nesting is bounded before parsing (codec.MAX_DEPTH)."""
    deep = "[" * 100_000 + "]" * 100_000
    bad = tmp_path / "deep.safetensors"
    if where == "header":  # the header itself: the package refuses it, explain() must too
        header, data = header_of(good[1])
        text = json.dumps(header).encode()[:-1] + b', "x": ' + deep.encode() + b"}"
        bad.write_bytes(struct.pack("<Q", len(text)) + text + data)
        message = "nests more than 200 levels deep|cannot read it"
    else:
        def nest(h):
            h["__metadata__"][where] = deep
        bad.write_bytes(rewritten(good[1], nest))
        message = f"is corrupt: its {where} record nests more than 200 levels deep"
    for load in (xb.load_checkpoint, xb.checkpoint_info, xb.load_model):
        with pytest.raises(ck.CorruptCheckpointError, match=message):
            load(bad)


def test_non_finite_weights_are_refused_at_saving_unless_asked_and_reported_at_loading(
        tmp_path):
    model, state, _ = trained(xb.get_backend("numpy"), steps=1)
    W = np.array(state.params[0]["W"])
    W[0, 0], W[1, 1] = np.nan, np.inf
    bad = state._replace(params=[{"W": W}, *state.params[1:]])
    path = tmp_path / "diverged.safetensors"
    with pytest.raises(ValueError, match=r"refusing to save .*diverged.safetensors: "
                                         r"params.0.W holds 1 NaN and 1 infinite values.*"
                                         r"allow_nonfinite=True"):
        xb.save_checkpoint(path, bad, model=model)
    with pytest.raises(ValueError, match="params.0.W holds 1 NaN"):
        xb.save_model(path, model, bad.params, bad.model_state)
    assert not path.exists()
    xb.save_checkpoint(path, bad, model=model, allow_nonfinite=True)
    with pytest.warns(UserWarning, match=r"diverged.safetensors.*params.0.W holds 1 NaN and "
                                         r"1 infinite values"):
        ckpt = xb.load_checkpoint(path)
    assert np.isnan(ckpt.state.params[0]["W"][0, 0])
