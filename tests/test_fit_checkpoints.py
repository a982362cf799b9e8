"""fit's checkpoints: written every k epochs, at the end and on Ctrl-C, rotated; a run
resumed in a new process is the same run (bit-equal on NumPy, 1e-6 on JAX: parameters,
optimizer and BatchNorm state, data order, dropout masks, history); and Ctrl-C always ends
with status 130, also while JAX compiles."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import xbackprop as xb
from xbackprop.tree import tree_leaves

# The run every test here trains: dropout (randomness from the step) and BatchNorm
# (statistics in the state), validation, 3 steps per epoch with a partial last batch.
RUN = """
import json, sys
import numpy as np
import xbackprop as xb

rng = np.random.default_rng(0)
x = rng.normal(size=(70, 5)).astype(np.float32)
y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0)
model = xb.Sequential([xb.Dense(16, use_bias=False), xb.BatchNorm(), xb.ReLU(),
                       xb.Dropout(0.3), xb.Dense(3)])


def train(backend, **kwargs):
    return xb.fit(model, x, y, loss="cross_entropy", optimizer=xb.optim.adam(0.01),
                  batch_size=32, seed=3, backend=backend, progress=False,
                  validation_data=(x[:40], y[:40]), **kwargs)


def dump(result, path):
    leaves = [np.asarray(a) for a in xb.tree.tree_leaves(xb.to_numpy(result.state))]
    np.savez(path, *leaves)
    history = {k: v for k, v in result.history.items() if k != "time"}
    with open(str(path) + ".json", "w") as f:
        json.dump(history, f)
"""

namespace: dict = {}
exec(compile(RUN, "RUN", "exec"), namespace)
train, dump = namespace["train"], namespace["dump"]


def python(code: str, *args: str, **kwargs) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "XBACKPROP_BACKEND"}
    return subprocess.run([sys.executable, "-c", RUN + textwrap.dedent(code), *args],
                          capture_output=True, text=True, env=env, timeout=240, **kwargs)


def loaded(path: Path) -> tuple[list[np.ndarray], dict]:
    with np.load(path, allow_pickle=False) as f:
        leaves = [f[f"arr_{i}"] for i in range(len(f.files))]
    return leaves, json.loads(Path(str(path) + ".json").read_text())


def assert_same_run(a: Path, b: Path, exact: bool) -> None:
    (la, ha), (lb, hb) = loaded(a), loaded(b)
    assert len(la) == len(lb) and ha.keys() == hb.keys()
    for x, y in zip(la, lb):
        if exact:
            np.testing.assert_array_equal(x, y)
        else:
            np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-6)
    for name in ha:
        if exact:
            assert ha[name] == hb[name], name
        else:
            np.testing.assert_allclose(ha[name], hb[name], rtol=1e-6, err_msg=name)


@pytest.mark.parametrize("stop_at", [3, 4])  # at an epoch's end, and in the middle of one
def test_resume_in_a_new_process_is_the_same_run(backend, tmp_path, stop_at):
    if backend.name not in ("numpy", "jax"):
        pytest.skip(f"{backend.name}: the subprocess runs NumPy and JAX")
    name = backend.name
    straight = python(f"dump(train({name!r}, epochs=3), sys.argv[1])", str(tmp_path / "a.npz"))
    assert straight.returncode == 0, straight.stderr
    first = python(f"train({name!r}, epochs=3, max_steps={stop_at}, checkpoint_dir=sys.argv[1])",
                   str(tmp_path / "ckpt"))
    assert first.returncode == 0, first.stderr
    assert xb.CheckpointManager(tmp_path / "ckpt").latest().name == f"ckpt-{stop_at:09d}.safetensors"
    rest = python(f"dump(train({name!r}, epochs=3, checkpoint_dir=sys.argv[1], resume=True), "
                  "sys.argv[2])", str(tmp_path / "ckpt"), str(tmp_path / "b.npz"))
    assert rest.returncode == 0, rest.stderr
    assert_same_run(tmp_path / "a.npz", tmp_path / "b.npz", exact=name == "numpy")


def test_checkpoints_rotate_keeping_the_newest_and_the_best(tmp_path):
    result = train("numpy", epochs=6, checkpoint_dir=tmp_path, keep_checkpoints=2)
    manager = xb.CheckpointManager(tmp_path)
    steps = [int(p.stem.split("-")[1]) for p in manager.checkpoints()]
    best_epoch = int(np.argmin(result.history["val_loss"]))
    assert set(steps) == {15, 18} | {3 * (best_epoch + 1)}
    assert manager.best().name == f"ckpt-{3 * (best_epoch + 1):09d}.safetensors"
    ckpt = xb.load_checkpoint(manager.latest())
    assert ckpt.history["loss"] == result.history["loss"]
    assert ckpt.metrics["val_loss"] == result.history["val_loss"][-1]
    assert ckpt.metadata["fit"] == {"samples": 70, "batch_size": 32, "seed": 3,
                                    "shuffle": True, "epochs": 6, "validation": True}
    train("numpy", epochs=7, checkpoint_dir=tmp_path, resume=True, checkpoint_every=2)
    assert int(manager.latest().stem.split("-")[1]) == 21  # the end, though not due


def test_resuming_a_finished_run_to_more_epochs(tmp_path):
    straight = train("numpy", epochs=4)
    train("numpy", epochs=2, checkpoint_dir=tmp_path)
    more = train("numpy", epochs=4, checkpoint_dir=tmp_path, resume=True)
    for a, b in zip(tree_leaves(xb.to_numpy(straight.state)),
                    tree_leaves(xb.to_numpy(more.state))):
        np.testing.assert_array_equal(a, b)
    assert more.history["loss"] == straight.history["loss"]


def test_resume_with_early_stopping_keeps_its_count_and_best(tmp_path):
    def stopper():
        return xb.EarlyStopping(patience=2)

    straight = stopper()
    a = train("numpy", epochs=40, early_stopping=straight)
    resumed = stopper()
    train("numpy", epochs=40, max_steps=3 * (straight.best_epoch + 2), checkpoint_dir=tmp_path,
          early_stopping=stopper())
    b = train("numpy", epochs=40, checkpoint_dir=tmp_path, resume=True, early_stopping=resumed)
    assert (resumed.best_epoch, resumed.stopped_epoch) == (straight.best_epoch,
                                                          straight.stopped_epoch)
    for x, y in zip(tree_leaves(xb.to_numpy(a.params)), tree_leaves(xb.to_numpy(b.params))):
        np.testing.assert_array_equal(x, y)  # both end with the best epoch's parameters


def test_clear_errors(tmp_path):
    train("numpy", epochs=1, checkpoint_dir=tmp_path)
    with pytest.raises(ValueError, match=r"already holds checkpoints \(the newest: "
                                         r"ckpt-000000003.safetensors\); pass resume=True"):
        train("numpy", epochs=2, checkpoint_dir=tmp_path)
    with pytest.raises(ValueError, match=r"made with other data or settings \(batch_size 32 "
                                         r"then, 16 now\)"):
        xb.fit(namespace["model"], namespace["x"], namespace["y"], loss="cross_entropy",
               optimizer=xb.optim.adam(0.01), batch_size=16, seed=3, epochs=2,
               checkpoint_dir=tmp_path, resume=True, progress=False)
    with pytest.raises(ValueError, match="resume=True continues from the checkpoints in "
                                         "checkpoint_dir"):
        train("numpy", epochs=1, resume=True)
    with pytest.raises(ValueError, match="do not pass state= or params= as well"):
        train("numpy", epochs=1, resume=True, checkpoint_dir=tmp_path,
              params=xb.init_params(namespace["model"], 0, (5,)))
    empty = train("numpy", epochs=2, checkpoint_dir=tmp_path / "new", resume=True)
    assert len(empty.history["loss"]) == 2  # nothing to resume: a fresh run


@pytest.fixture
def ctrl_c_reaches_children():
    """Children started here get SIGINT as a program started from a terminal does.

    A suite started in the background by a script (`pytest &` in a shell without job
    control, as a CI job may be) inherits SIGINT *ignored*, and so would every child: Python
    leaves an ignored SIGINT ignored (nohup's contract; so does fit's `deferred_interrupts`,
    and rightly), so the child never saw the test's SIGINT and ran on until the test's
    timeout. A disposition Python handles is reset to the default in a child at exec, so
    handling SIGINT here gives children the terminal's default."""
    previous = signal.getsignal(signal.SIGINT)
    if previous == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def wait_for(predicate, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


def test_ctrl_c_in_fit_saves_a_checkpoint_and_resume_finishes_the_run(tmp_path,
                                                                      ctrl_c_reaches_children):
    """SIGINT once the first checkpoint exists: fit stops after the current step, saves
    where it is (mid-epoch, usually), and KeyboardInterrupt ends the program; resuming
    gives the run that was never interrupted."""
    folder = tmp_path / "ckpt"
    child = subprocess.Popen([sys.executable, "-c", RUN + textwrap.dedent("""
        train("numpy", epochs=100000, checkpoint_dir=sys.argv[1])
    """), str(folder)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: folder.is_dir() and any(folder.glob("ckpt-*.safetensors")))
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode in (130, -signal.SIGINT), err
    assert "xbackprop: interrupted; stopping after this step" in err
    assert "KeyboardInterrupt: training interrupted after step" in err and "saved " in err
    latest = xb.CheckpointManager(folder).latest()
    step = int(latest.stem.split("-")[1])
    epochs = step // 3 + 2
    straight = train("numpy", epochs=epochs)
    resumed = train("numpy", epochs=epochs, checkpoint_dir=folder, resume=True)
    for a, b in zip(tree_leaves(xb.to_numpy(straight.state)),
                    tree_leaves(xb.to_numpy(resumed.state))):
        np.testing.assert_array_equal(a, b)
    assert resumed.history["loss"] == straight.history["loss"]


@pytest.mark.parametrize("delay", [0.6, 1.2, 2.0, 3.0])
def test_ctrl_c_always_ends_the_command_with_status_130(jax_backend, tmp_path, delay,
                                                         ctrl_c_reaches_children):
    """`xbackprop train digits-cnn --backend jax` interrupted while it imports, compiles or
    trains: status 130 every time (it was a segmentation fault in about half the runs
    interrupted during compilation), and a checkpoint once training has begun."""
    folder = tmp_path / "ckpt"
    env = {k: v for k, v in os.environ.items() if k != "XBACKPROP_BACKEND"}
    child = subprocess.Popen([sys.executable, "-m", "xbackprop", "train", "digits-cnn",
                              "--backend", "jax", "--quiet", "--epochs", "500", "--checkpoint",
                              str(folder)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=env)
    try:
        time.sleep(delay)
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=120)
    finally:
        child.kill()
    # 130, or killed by SIGINT before Python took the signal over (a shell shows 130 too)
    assert child.returncode in (130, -signal.SIGINT), err
    assert "Segmentation" not in err
    if child.returncode == 130:  # Python had started: the command's own message
        assert "xbackprop: interrupted" in err
    if "training interrupted after step" in err:
        assert "saved " in err and xb.CheckpointManager(folder).latest() is not None


# -- settings a resume cannot honour (issue 20, class 2) -------------------------------------

def fit_with(optimizer, folder, **kwargs):
    return xb.fit(namespace["model"], namespace["x"], namespace["y"], loss="cross_entropy",
                  optimizer=optimizer, batch_size=32, seed=3, backend="numpy", progress=False,
                  checkpoint_dir=folder, **kwargs)


@pytest.mark.parametrize("saved, asked, slots", [
    ("momentum", "adam", r"holds trace \(as momentum and nesterov keep\), but the optimizer "
                         r"asked for keeps mu, nu \(as adam and adamw keep\)"),
    ("adam", "sgd", r"holds mu, nu \(as adam and adamw keep\), but the optimizer asked for "
                    r"keeps no slots \(as sgd keeps\)"),
    ("momentum", "rmsprop", r"holds trace .*keeps nu \(as rmsprop keeps\)")])
def test_a_resume_with_another_kind_of_optimizer_is_refused(tmp_path, saved, asked, slots):
    """A momentum run resumed with Adam or RMSprop died with KeyError 'mu'; an Adam run
    resumed with SGD silently dropped its moments. Now both name the saved and the asked
    optimizer's state and what to do; another learning rate of the same rule goes on."""
    fit_with(xb.optim.get_optimizer(saved, 0.01), tmp_path, epochs=1)
    with pytest.raises(xb.checkpoint.ResumeMismatchError,
                       match=rf"cannot resume from .*ckpt-000000003.safetensors: its optimizer "
                             rf"state {slots}, so it cannot go on from that state \(resume "
                             r"with the run's kind of optimizer, at any learning rate") as info:
        fit_with(xb.optim.get_optimizer(asked, 0.01), tmp_path, epochs=2, resume=True)
    assert [k for k, *_ in info.value.differences] == ["optimizer"]
    assert info.value.path.name == "ckpt-000000003.safetensors"
    more = fit_with(xb.optim.get_optimizer(saved, 0.001), tmp_path, epochs=2, resume=True)
    assert int(more.state.step) == 6


def test_a_resume_keeps_the_runs_dtype_or_refuses_another(tmp_path):
    """A float64 run resumed with dtype float32 printed float32 and trained float64. Now a
    resume without dtype goes on in the run's dtype; another dtype is refused, naming both
    and the two ways on."""
    first = fit_with(xb.optim.adam(0.01), tmp_path, epochs=1, dtype="float64")
    assert first.state.params[0]["W"].dtype == np.float64
    with pytest.raises(xb.checkpoint.ResumeMismatchError,
                       match=r"the run trains in float64, this call asks for float32 \(leave "
                             r"dtype out to go on in float64: a resume keeps the run's dtype; "
                             r"to go on in float32, start a new run in another folder from "
                             r"its state, fit\(\.\.\., state=load_checkpoint\(path, "
                             r"dtype='float32'\)\.state\)\)"):
        fit_with(xb.optim.adam(0.01), tmp_path, epochs=2, dtype="float32", resume=True)
    more = fit_with(xb.optim.adam(0.01), tmp_path, epochs=2, resume=True)
    assert more.state.params[0]["W"].dtype == np.float64 and int(more.state.step) == 6
    with pytest.raises(ValueError, match=r"fit\(state=\.\.\.\): the state's parameters are "
                                         r"float64, but dtype='float32' was asked for"):
        fit_with(xb.optim.adam(0.01), None, epochs=1, dtype="float32", state=more.state)


def test_a_resume_with_nothing_left_to_train_says_so(tmp_path):
    """`epochs=2, resume=True` on a run at epoch 4 returned the old state as if it had
    trained. Fewer epochs than done: an error; exactly as many: a warning."""
    fit_with(xb.optim.adam(0.01), tmp_path, epochs=4)
    with pytest.raises(xb.checkpoint.NothingToTrainError,
                       match=r"fit\(resume=True\): the run in .* is at epoch 4 \(step 12\) "
                             r"already, past the epochs=2 in all asked for; a resume counts "
                             r"the whole run, so pass epochs > 4 to train on") as info:
        fit_with(xb.optim.adam(0.01), tmp_path, epochs=2, resume=True)
    assert (info.value.step, info.value.done, info.value.asked, info.value.unit) == \
        (12, 4, 2, "epochs")
    with pytest.warns(UserWarning, match=r"nothing left to train: the run in .* is at epoch 4 "
                                         r"\(step 12\), the end of the epochs=4 in all asked "
                                         r"for; returning its state and history"):
        same = fit_with(xb.optim.adam(0.01), tmp_path, epochs=4, resume=True)
    assert int(same.state.step) == 12 and len(same.history["loss"]) == 4
