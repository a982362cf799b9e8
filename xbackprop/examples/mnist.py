"""mnist: the classic network on MNIST: 784 pixels -> 100 hidden units (ReLU or sigmoid) -> 10
class scores, softmax cross-entropy, mini-batch SGD. After training, the hand-written
gradients are checked numerically at the trained weights on a real batch, and the test
images show what the network gets wrong.

    xbackprop example mnist --data ../shared/data/mnist   # a folder with the IDX files
    xbackprop data download mnist && xbackprop example mnist         # the full 60,000
    xbackprop example mnist --dataset fashion-mnist --download       # clothes, same format

A folder with only the 10,000 test images (t10k-*) is split 8,000 / 2,000 for training and
testing; with the training files too, the network trains on the 60,000 and is tested on the
10,000.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np

import xbackprop as xb
from xbackprop import plot

SUMMARY = "MNIST with the classic 784-100-10 network: gradients checked, confusion, mistakes"

GALLERY = "misclassified.png"

OPTIONS = [
    (["--data"], {"metavar": "DIR", "help": "folder with the MNIST IDX files (default: the "
                                            "download cache, `xbackprop data path mnist`)"}),
    (["--download"], {"action": "store_true",
                      "help": "download the data set into that folder first (verified)"}),
    (["--dataset"], {"choices": ["mnist", "fashion-mnist"], "default": "mnist",
                     "help": "MNIST digits or Zalando's Fashion-MNIST (same format)"}),
    (["--activation"], {"choices": ["relu", "sigmoid"], "default": "relu",
                        "help": "hidden-layer activation"}),
    (["--epochs"], {"type": int, "help": "passes over the training images (default 10)"}),
    (["--lr"], {"type": float, "help": "SGD learning rate (default 0.1 for ReLU, 0.5 for "
                                       "sigmoid)"}),
]

HIDDEN = 100
BATCH = 32
CHECK_BATCH = 16
#: the split of a test-only folder (the issue's 8,000 / 2,000), and the sizes of --quick
TEST_ONLY_TRAIN_FRACTION = 0.8
QUICK = {"train": 2000, "test": 500, "epochs": 3}


@dataclasses.dataclass
class Result:
    """What `run` learned; `str(result)` is the report."""

    dataset: str
    source: str
    model: xb.Sequential
    params: Any
    history: xb.History
    train: dict[str, float]
    test: dict[str, float]
    confusion: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    predicted: np.ndarray
    classes: tuple[str, ...]
    gradcheck: xb.GradReport
    settings: str
    seconds: float

    def __str__(self) -> str:
        per_class = np.diag(self.confusion) / np.maximum(self.confusion.sum(axis=1), 1)
        width = max(len(c) for c in self.classes)
        off = self.confusion - np.diag(np.diag(self.confusion))
        worst = np.argsort(-off, axis=None)[:3]
        confused = ", ".join(f"{self.classes[i]} → {self.classes[j]} ({off[i, j]})"
                             for i, j in zip(*np.unravel_index(worst, off.shape)) if off[i, j])
        epochs = ["epoch  train loss  train accuracy  test accuracy"] + [
            f"{e + 1:5d}  {loss:10.4f}  {acc:14.4f}  {val:13.4f}" for e, (loss, acc, val) in
            enumerate(zip(self.history["loss"], self.history["accuracy"],
                          self.history["val_accuracy"]))]
        return "\n".join([
            f"{self.dataset}: {self.source}",
            self.settings,
            self.model.summary((784,), xb.to_numpy(self.params)),
            "",
            *epochs,
            "(test accuracy per epoch is for watching only: nothing is tuned on it)",
            "",
            f"train  loss {self.train['loss']:.4f}  accuracy {self.train['accuracy']:.4f}",
            f"test   loss {self.test['loss']:.4f}  accuracy {self.test['accuracy']:.4f}",
            f"trained in {self.seconds:.1f} s",
            "",
            (f"gradient check of the trained network at its weights, on {CHECK_BATCH} "
             "training images (central finite differences, float64):"),
            str(self.gradcheck),
            "",
            "test accuracy per class:",
            *(f"  {c:>{width}s}  {a:.3f}" for c, a in zip(self.classes, per_class)),
            f"most often confused (true → predicted): {confused or 'nothing'}",
        ])


def _load(data: str | None, download: bool, dataset: str, quick: bool, seed: int
          ) -> tuple[xb.data.Dataset, str]:
    try:
        split = xb.data.load_mnist(data, download=download, flatten=True, name=dataset)
    except xb.data.DataFileError as e:
        raise xb.data.DataFileError(f"{e}\n(example mnist: --data DIR names the folder, "
                                    "--download fetches the files into it)") from None
    folder = Path(data) if data else xb.data.data_home() / dataset
    rng = np.random.default_rng(seed)
    if len(split.x_train) == 0:
        x, y = split.x_test, split.y_test
        if quick:
            keep = rng.permutation(len(x))[:QUICK["train"] + QUICK["test"]]
            x, y = x[keep], y[keep]
        split = xb.data.train_test_split(x, y, test_fraction=1 - TEST_ONLY_TRAIN_FRACTION,
                                         seed=seed)
        return split, (f"{len(split.x_train)} training / {len(split.x_test)} test images from "
                       f"{folder} (only the test files are there: split "
                       f"{TEST_ONLY_TRAIN_FRACTION:.0%} / {1 - TEST_ONLY_TRAIN_FRACTION:.0%}, "
                       f"stratified, seed {seed})")
    if quick:
        train = rng.permutation(len(split.x_train))[:QUICK["train"]]
        test = rng.permutation(len(split.x_test))[:QUICK["test"]]
        split = xb.data.Dataset(split.x_train[train], split.y_train[train],
                                split.x_test[test], split.y_test[test])
    return split, (f"{len(split.x_train)} training / {len(split.x_test)} test images from "
                   f"{folder}")


def network(activation: str = "relu") -> xb.Sequential:
    """784 -> 100 -> 10: ReLU units start He-initialised, sigmoid units Glorot-initialised."""
    if activation == "relu":
        return xb.Sequential([xb.Dense(HIDDEN, weight_init="he_normal"), xb.ReLU(),
                              xb.Dense(10)])
    return xb.Sequential([xb.Dense(HIDDEN), xb.Sigmoid(), xb.Dense(10)])


def run(*, backend: str | None = None, seed: int = 0, quick: bool = False,
        data: str | None = None, download: bool = False, dataset: str = "mnist",
        activation: str = "relu", epochs: int | None = None, lr: float | None = None,
        progress: bool = False) -> Result:
    epochs = (QUICK["epochs"] if quick else 10) if epochs is None else epochs  # 0: not default
    if epochs < 1:
        raise ValueError(f"--epochs must be at least 1, not {epochs}")
    split, source = _load(data, download, dataset, quick, seed)
    model = network(activation)
    loss = xb.SoftmaxCrossEntropy()
    lr = (0.1 if activation == "relu" else 0.5) if lr is None else lr
    t0 = time.perf_counter()
    fitted = xb.fit(model, split.x_train, split.y_train, loss=loss, optimizer=xb.optim.sgd(lr),
                    epochs=epochs, batch_size=BATCH, seed=seed, backend=backend,
                    validation_data=(split.x_test, split.y_test), progress=progress)
    seconds = time.perf_counter() - t0
    params = fitted.params
    train = xb.evaluate(model, params, split.x_train, split.y_train, loss)
    test = xb.evaluate(model, params, split.x_test, split.y_test, loss)
    predicted = np.argmax(xb.to_numpy(xb.predict(model, params, split.x_test)), axis=1)
    confusion = np.bincount(split.y_test * 10 + predicted, minlength=100).reshape(10, 10)
    check = xb.check_model(model, x=split.x_train[:CHECK_BATCH], params=params, loss=loss,
                           target=split.y_train[:CHECK_BATCH], backend=backend, oracle="fd")
    used = xb.get_backend(backend)
    settings = (f"784-{HIDDEN}-10 {activation}, softmax cross-entropy; SGD lr {lr}, batch "
                f"{BATCH}, {epochs} epochs, seed {seed}; backend {used.name} ({used.device})")
    classes = (xb.data.FASHION_MNIST_CLASSES if dataset == "fashion-mnist"
               else tuple(str(d) for d in range(10)))
    return Result(dataset, source, model, xb.to_numpy(params), fitted.history, train, test,
                  confusion, split.x_test, split.y_test, predicted, classes, check, settings,
                  seconds)


def draw(result: Result, out: Path) -> list[Path]:
    name = "Fashion-MNIST" if result.dataset == "fashion-mnist" else "MNIST"
    return [
        plot.plot_confusion_matrix(result.confusion, out / "confusion_matrix.png",
                                   labels=result.classes,
                                   title=f"{name} test images: true vs predicted class"),
        plot.plot_misclassified(result.x_test, result.y_test, result.predicted,
                                out / "misclassified.png", labels=result.classes,
                                title=f"{name} test images the network gets wrong"),
        plot.plot_history(result.history, out / "history.png",
                          title=f"{name}: loss and accuracy per epoch (val = test images)"),
    ]
