"""Figures a user can see, computed the way the user computes them, on NumPy: what the
training wing's restructuring (issue 19) must leave bit for bit as it was.

`python -m tests.recorded.figures --write` recorded them into `figures.json` (with the
code of commit f647d6a, before the restructuring) and wrote the checkpoint files in
`files/` with that code. `python -m tests.recorded.figures --check [--full]` recomputes
them with the code of today and names every figure that differs; `--full` adds the runs
too long for the test suite (the whole `xbackprop train digits-cnn`, every example on
the real MNIST where this checkout has it). The tests (`test_recorded.py`,
`tests/examples/test_same_numbers.py`) check the rest on every run.

Floats are stored with `repr`, so they read back bit for bit; parameters as the SHA-256 of
their bytes.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import io
import json
import re
import shutil
import sys
import tempfile
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import numpy as np

import xbackprop as xb

HERE = Path(__file__).resolve().parent
FIGURES = HERE / "figures.json"
FILES = HERE / "files"

#: (job, epochs) the suite runs; the full jobs (30 epochs of digits-cnn) are --full only
RECIPE_RUNS = [("digits", 30), ("xor", 2000), ("digits-cnn", 3)]
FULL_RECIPE_RUNS = [("digits-cnn", 30)]


def digest(tree: Any) -> str:
    """SHA-256 of every leaf's dtype, shape and bytes, in tree order."""
    h = hashlib.sha256()
    for leaf in xb.tree.tree_leaves(xb.to_numpy(tree)):
        a = np.ascontiguousarray(np.asarray(leaf))
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def history_figures(history: dict[str, Any]) -> dict[str, Any]:
    """A history without its timings, every number exactly: a long list as its first and
    last three values and the SHA-256 of all of them (as float64)."""
    out: dict[str, Any] = {}
    for k, values in history.items():
        if k == "time":
            continue
        if isinstance(values, dict):  # recorded already
            out[k] = values
            continue
        values = [float(v) for v in values]
        out[k] = values if len(values) <= 40 else {
            "first": values[:3], "last": values[-3:], "count": len(values),
            "sha256": hashlib.sha256(np.asarray(values, np.float64).tobytes()).hexdigest()}
    return out


def recipe_figures(job: str, epochs: int) -> dict[str, Any]:
    """`xbackprop train JOB --epochs E` (seed 0, float32, NumPy), as the command runs it:
    the history, the final train and test scores, the parameters, and the command's output
    (without its timings)."""
    from xbackprop.cli import main
    from xbackprop.recipes import get_recipe

    recipe = get_recipe(job)
    data = recipe.data(0)
    model, loss = recipe.build(), recipe.loss()
    result = xb.fit(model, data.x_train, data.y_train, loss=loss,
                    optimizer=xb.optim.get_optimizer(recipe.optimizer, recipe.lr),
                    epochs=epochs, batch_size=recipe.batch_size, seed=0,
                    validation_data=(data.x_test, data.y_test), backend="numpy",
                    dtype="float32", progress=False)
    state = result.state
    scores = {split: xb.evaluate(model, state.params, x, y, loss, model_state=state.model_state)
              for split, x, y in [("train", data.x_train, data.y_train),
                                  ("test", data.x_test, data.y_test)]}
    out = io.StringIO()
    with redirect_stdout(out):
        main(["train", job, "--backend", "numpy", "--quiet", "--epochs", str(epochs)])
    lines = [line for line in out.getvalue().splitlines() if not line.startswith("trained in")]
    return {"history": history_figures(result.history), "scores": scores,
            "params": digest(state), "output": lines}


# -- resume -----------------------------------------------------------------------------------

def _resume_data() -> tuple[Any, np.ndarray, np.ndarray]:
    """tests/test_fit_checkpoints.py's run: dropout (randomness from the step), BatchNorm
    (statistics in the state), validation, 3 steps per epoch with a partial last batch."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(70, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0)
    model = xb.Sequential([xb.Dense(16, use_bias=False), xb.BatchNorm(), xb.ReLU(),
                           xb.Dropout(0.3), xb.Dense(3)])
    return model, x, y


def resume_train(**kwargs: Any) -> Any:
    model, x, y = _resume_data()
    return xb.fit(model, x, y, loss="cross_entropy", optimizer=xb.optim.adam(0.01),
                  batch_size=32, seed=3, backend="numpy", progress=False,
                  validation_data=(x[:40], y[:40]), **kwargs)


#: the resumed run: 12 epochs with early stopping (patience 3, keeps the best epoch), cut
#: at step 8 (in the middle of epoch 3) by max_steps
RESUME = {"epochs": 12, "cut": 8, "patience": 3}


def resume_figures(folder: Path) -> dict[str, Any]:
    """The run straight through, and cut at step 8 then resumed from its checkpoint folder
    (a new EarlyStopping each time, as a new process has): both must be the same run."""
    stop = xb.EarlyStopping(patience=RESUME["patience"])
    straight = resume_train(epochs=RESUME["epochs"], early_stopping=stop)
    resume_train(epochs=RESUME["epochs"], max_steps=RESUME["cut"], checkpoint_dir=folder,
                 early_stopping=xb.EarlyStopping(patience=RESUME["patience"]))
    resumed_stop = xb.EarlyStopping(patience=RESUME["patience"])
    resumed = resume_train(epochs=RESUME["epochs"], checkpoint_dir=folder, resume=True,
                           early_stopping=resumed_stop)
    return {"straight": {"history": history_figures(straight.history),
                         "params": digest(straight.state),
                         "best_epoch": stop.best_epoch, "stopped_epoch": stop.stopped_epoch},
            "resumed": {"history": history_figures(resumed.history),
                        "params": digest(resumed.state),
                        "best_epoch": resumed_stop.best_epoch,
                        "stopped_epoch": resumed_stop.stopped_epoch}}


# -- the examples -----------------------------------------------------------------------------

def example_report(result: Any) -> str:
    """An example's report without what changes from run to run: its timings (the
    `seconds` field, set to 0) and the data folder's path."""
    seconds = getattr(result, "seconds", None)
    if seconds is not None:
        zero = {k: 0.0 for k in seconds} if isinstance(seconds, dict) else 0.0
        result = (dataclasses.replace(result, seconds=zero) if dataclasses.is_dataclass(result)
                  else result._replace(seconds=zero))
    return re.sub(r"(?<![\w.])/[^\s()]+", "<path>", str(result))


def example_figures(result: Any) -> dict[str, Any]:
    """The report, and every history the result holds, exactly."""
    out: dict[str, Any] = {"report": example_report(result)}
    history = getattr(result, "history", None)
    if isinstance(history, dict):
        out["history"] = history_figures(history)
    histories = getattr(result, "histories", None)
    if isinstance(histories, dict):
        out["histories"] = {k: history_figures(h) for k, h in histories.items()}
    return out


def synthetic_mnist(folder: Path) -> Path:
    """tests/examples/conftest.py's MNIST-like pair made from the shipped digits (what the
    suite runs the mnist example on where the real MNIST is not there)."""
    digits = xb.data.load_digits(flatten=False, test_fraction=0.5)
    images = np.concatenate([digits.x_train, digits.x_test])[:, 0]
    images = np.pad(np.kron(images, np.ones((3, 3))), ((0, 0), (2, 2), (2, 2)))
    xb.data.save_idx(folder / "t10k-images-idx3-ubyte.gz", (images * 255).astype(np.uint8))
    xb.data.save_idx(folder / "t10k-labels-idx1-ubyte.gz",
                     np.concatenate([digits.y_train, digits.y_test]).astype(np.uint8))
    return folder


def real_mnist() -> Path | None:
    folder = Path("/work/shared/data/mnist")
    return folder if (folder / "t10k-images-idx3-ubyte.gz").is_file() else None


def examples_figures(full: bool) -> dict[str, Any]:
    from xbackprop import examples

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        mnist = synthetic_mnist(Path(tmp))
        for name in examples.NAMES:
            options = {"data": str(mnist)} if name == "mnist" else {}
            out[name] = example_figures(examples.run(name, backend="numpy", quick=True,
                                                     **options))
    real = real_mnist()
    if full and real is not None:
        out["mnist (real)"] = example_figures(examples.run("mnist", backend="numpy",
                                                           quick=True, data=str(real)))
    return out


# -- checkpoint files written by the code before the restructuring ---------------------------

def file_state() -> tuple[Any, Any, Any]:
    """The small run the committed files hold: a model with BatchNorm (model state) and
    dropout, Adam (moments and a count), 7 steps, a history."""
    model = xb.Sequential([xb.Dense(6), xb.BatchNorm(), xb.Tanh(), xb.Dropout(0.2),
                           xb.Dense(3)])
    rng = np.random.default_rng(5)
    x = rng.normal(size=(20, 4)).astype(np.float32)
    y = rng.integers(0, 3, size=20)
    result = xb.fit(model, x, y, loss="cross_entropy", optimizer=xb.optim.adam(0.01),
                    epochs=2, batch_size=6, seed=1, backend="numpy", progress=False,
                    validation_data=(x[:8], y[:8]))
    return model, result, x


def write_files() -> dict[str, Any]:
    """Write `files/`: a checkpoint (save_checkpoint), a saved model (save_model) and the
    checkpoint folder of a fit run cut in the middle of an epoch (the resume record)."""
    if FILES.exists():
        shutil.rmtree(FILES)
    FILES.mkdir()
    model, result, x = file_state()
    xb.save_checkpoint(FILES / "checkpoint.safetensors", result.state, model=model,
                       history=result.history, input_shape=(4,), loss="cross_entropy",
                       metrics={"val_loss": result.history["val_loss"][-1]},
                       metadata={"note": "written before issue 19", "epochs": 2})
    xb.save_model(FILES / "model.safetensors", model, result.params, result.state.model_state,
                  input_shape=(4,), loss="cross_entropy", metadata={"note": "saved model"})
    resume_train(epochs=RESUME["epochs"], max_steps=RESUME["cut"],
                 checkpoint_dir=FILES / "fit-run",
                 early_stopping=xb.EarlyStopping(patience=RESUME["patience"]))
    predictions = xb.predict(model, result.params, x[:5], model_state=result.state.model_state)
    return {"state": digest(result.state), "params": digest(result.params),
            "model_state": digest(result.state.model_state), "step": int(result.state.step),
            "history": history_figures(result.history),
            "predictions": [[float(v) for v in row] for row in np.asarray(predictions)]}


def compute(full: bool = False) -> dict[str, Any]:
    runs = RECIPE_RUNS + (FULL_RECIPE_RUNS if full else [])
    with tempfile.TemporaryDirectory() as tmp:
        resume = resume_figures(Path(tmp) / "ckpt")
    return {"recipes": {f"{job}@{epochs}": recipe_figures(job, epochs) for job, epochs in runs},
            "resume": resume, "examples": examples_figures(full)}


def differences(recorded: Any, now: Any, where: str = "") -> list[str]:
    """Every place where `now` differs from `recorded` (only the keys both have)."""
    if isinstance(recorded, dict) and isinstance(now, dict):
        out = []
        for k in recorded.keys() & now.keys():
            out += differences(recorded[k], now[k], f"{where}/{k}")
        return out
    return [] if recorded == now else [f"{where}: {recorded!r:.300} then, {now!r:.300} now"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="record (only before the change)")
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--full", action="store_true")
    args = parser.parse_args(argv)
    if args.write:
        figures = compute(full=True)
        figures["files"] = write_files()
        FIGURES.write_text(json.dumps(figures, indent=1, ensure_ascii=False) + "\n")
        print(f"wrote {FIGURES} and {FILES}")
        return 0
    recorded = json.loads(FIGURES.read_text())
    diffs = differences(recorded, json.loads(json.dumps(compute(full=args.full))))
    print("\n".join(diffs) or "every recorded figure is the same")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
