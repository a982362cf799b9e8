"""The mnist example with --quick on NumPy and JAX: it learns (test accuracy well above
chance), its gradient check at the trained weights passes, its numbers agree with each
other, and its pictures are real PNGs. It runs on the real MNIST test pair where this
checkout has it, else on MNIST-like files made from the shipped 8x8 digits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import xbackprop as xb
from tests.examples.conftest import check_png
from xbackprop import examples
from xbackprop.cli import main


@pytest.mark.parametrize("name", ["numpy", "jax"])
def test_quick_run_learns_checks_its_gradients_and_draws(name, mnist_folder, tmp_path, request):
    if name == "jax":
        request.getfixturevalue("jax_backend")
    result = examples.run("mnist", backend=name, quick=True, data=str(mnist_folder))
    assert result.test["accuracy"] >= 0.80, result
    assert result.train["accuracy"] >= result.test["accuracy"] - 0.05
    assert result.gradcheck.ok, result.gradcheck
    assert result.gradcheck.subject.endswith("at the given params, x")
    assert result.confusion.sum() == len(result.y_test) == len(result.predicted)
    np.testing.assert_allclose(np.trace(result.confusion) / len(result.y_test),
                               result.test["accuracy"], atol=1e-9)
    assert len(result.history["loss"]) == 3
    report = str(result)
    assert f"backend {name}" in report and "only the test files are there" in report
    assert f"test   loss {result.test['loss']:.4f}  accuracy {result.test['accuracy']:.4f}" \
        in report
    assert "all gradients match" in report and "most often confused" in report
    paths = examples.draw("mnist", result, tmp_path)
    assert [p.name for p in paths] == ["confusion_matrix.png", "misclassified.png",
                                       "history.png"]
    for path in paths:  # the misclassified grid may be one row of ten digits: 1000x200 is enough
        check_png(path, (1000, 200) if path.name == "misclassified.png" else (500, 300))


def test_command_line(mnist_folder, tmp_path, capsys):
    assert main(["example", "mnist", "--quick", "--data", str(mnist_folder), "--activation",
                 "sigmoid", "--epochs", "2", "--out", str(tmp_path / "pics")]) == 0
    out = capsys.readouterr().out
    assert "784-100-10 sigmoid" in out and "SGD lr 0.5" in out and "2 epochs" in out
    assert "3 pictures in" in out and (tmp_path / "pics" / "misclassified.png").is_file()


def test_no_data_says_where_to_get_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XBACKPROP_DATA", str(tmp_path))
    assert main(["example", "mnist", "--quick", "--no-plots"]) == 2
    err = capsys.readouterr().err
    assert "no folder" in err and "xbackprop data download mnist" in err and "--data DIR" in err
