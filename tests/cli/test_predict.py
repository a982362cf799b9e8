"""`xbackprop predict MODEL FILE`: the rows it prints are the model's own predictions (classes
and probabilities, or values), from .npy and CSV files, on every backend; bad input exits 2
with a message that says what is wrong; it works from any folder and into `head`."""

from __future__ import annotations

import csv
import io
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import xbackprop as xb
from xbackprop.cli import main

pytestmark = pytest.mark.usefixtures("clean_backend_choice")


def rows(text: str) -> tuple[list[str], np.ndarray]:
    table = list(csv.reader(io.StringIO(text)))
    return table[0], np.asarray(table[1:], dtype=np.float64)


@pytest.fixture(scope="module")
def digits():
    return xb.data.load_digits(seed=0)


@pytest.fixture
def classifier(tmp_path, digits):
    """A digits classifier saved with its loss and input shape, and its own predictions."""
    model = xb.Sequential([xb.Dense(16), xb.ReLU(), xb.Dense(10)])
    params = xb.fit(model, digits.x_train[:200], digits.y_train[:200], loss="cross_entropy",
                    optimizer=xb.optim.adam(1e-2), epochs=3, progress=False).params
    path = xb.save_model(tmp_path / "digits.safetensors", model, params, input_shape=(64,),
                         loss="cross_entropy")
    logits = xb.predict(model, params, digits.x_test[:20])
    return path, np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)


def test_classes_and_probabilities_from_npy_on_every_backend(backend, classifier, digits,
                                                             tmp_path, capsys):
    path, probs = classifier
    np.save(tmp_path / "x.npy", digits.x_test[:20])
    assert main(["predict", str(path), str(tmp_path / "x.npy"), "--backend", backend.name,
                 "--batch-size", "7"]) == 0
    header, table = rows(capsys.readouterr().out)
    assert header == ["class"] + [f"prob_{j}" for j in range(10)] and len(table) == 20
    np.testing.assert_allclose(table[:, 1:], probs, rtol=1e-4, atol=1e-6)
    assert (table[:, 0] == probs.argmax(axis=1)).all()


def test_csv_with_or_without_a_header_and_stdin(classifier, digits, tmp_path, capsys,
                                                monkeypatch):
    path, probs = classifier
    x = digits.x_test[:5]
    np.savetxt(tmp_path / "h.csv", x, delimiter=",", comments="",
               header=",".join(f"pixel{i}" for i in range(64)))
    np.savetxt(tmp_path / "plain.csv", x, delimiter=";")
    for name in ("h.csv", "plain.csv"):
        assert main(["predict", str(path), str(tmp_path / name)]) == 0
        _, table = rows(capsys.readouterr().out)
        np.testing.assert_allclose(table[:, 1:], probs[:5], rtol=1e-4, atol=1e-6)
    monkeypatch.setattr(sys, "stdin", io.StringIO((tmp_path / "h.csv").read_text()))
    assert main(["predict", str(path), "-"]) == 0
    assert len(rows(capsys.readouterr().out)[1]) == 5


def test_output_file_holds_what_stdout_would(classifier, digits, tmp_path, capsys,
                                             monkeypatch):
    path, _ = classifier
    np.save(tmp_path / "x.npy", digits.x_test[:20])
    assert main(["predict", str(path), str(tmp_path / "x.npy")]) == 0
    printed = capsys.readouterr().out
    # "-" is stdout, as for the input (it wrote a file named "-"); .NPY is a .npy too
    monkeypatch.chdir(tmp_path)
    np.save(tmp_path / "upper.npy", digits.x_test[:20])
    (tmp_path / "upper.npy").rename(tmp_path / "X.NPY")
    assert main(["predict", str(path), "X.NPY", "--output", "-"]) == 0
    assert capsys.readouterr().out == printed and not (tmp_path / "-").exists()
    out = tmp_path / "predictions.csv"
    assert main(["predict", str(path), str(tmp_path / "x.npy"), "--output", str(out)]) == 0
    assert f"wrote 20 predictions (class, prob_0, prob_1, ...) to {out}" in \
        capsys.readouterr().out
    assert out.read_text() == printed


def test_a_cnn_takes_rows_of_pixels(tmp_path, digits, capsys):
    model = xb.Sequential([xb.Conv2D(2, 3, padding=1), xb.ReLU(), xb.Flatten(), xb.Dense(10)])
    params = xb.init_params(model, 0, (1, 8, 8))
    path = xb.save_model(tmp_path / "cnn.safetensors", model, params, input_shape=(1, 8, 8),
                         loss="cross_entropy")
    np.savetxt(tmp_path / "x.csv", digits.x_test[:3], delimiter=",")
    assert main(["predict", str(path), str(tmp_path / "x.csv")]) == 0
    _, table = rows(capsys.readouterr().out)
    logits = xb.predict(model, params, digits.x_test[:3].reshape(3, 1, 8, 8))
    assert (table[:, 0] == logits.argmax(axis=1)).all()


def test_regressors_print_values_and_binary_classifiers_one_probability(tmp_path, capsys):
    x = np.random.default_rng(0).normal(size=(6, 3))
    np.save(tmp_path / "x.npy", x)
    model = xb.Sequential([xb.Dense(2)])
    params = xb.init_params(model, 0, (3,), dtype="float64")
    values = xb.save_model(tmp_path / "reg.safetensors", model, params, loss="mse")
    assert main(["predict", str(values), str(tmp_path / "x.npy")]) == 0
    captured = capsys.readouterr()
    header, table = rows(captured.out)
    assert header == ["value_0", "value_1"] and captured.err == ""
    np.testing.assert_allclose(table, xb.predict(model, params, x), rtol=1e-7)

    binary = xb.Sequential([xb.Dense(1)])
    bparams = xb.init_params(binary, 1, (3,))
    path = xb.save_model(tmp_path / "bin.safetensors", binary, bparams, loss="bce_logits")
    assert main(["predict", str(path), str(tmp_path / "x.npy")]) == 0
    header, table = rows(capsys.readouterr().out)
    p = 1 / (1 + np.exp(-xb.predict(binary, bparams, x)[:, 0]))
    assert header == ["class", "prob_1"]
    np.testing.assert_allclose(table[:, 1], p, rtol=1e-5)
    assert (table[:, 0] == (p > 0.5)).all()

    unknown = xb.save_model(tmp_path / "noloss.safetensors", model, params)
    assert main(["predict", str(unknown), str(tmp_path / "x.npy")]) == 0
    assert "records no loss, so its outputs are printed as values" in capsys.readouterr().err


@pytest.mark.parametrize("content,message", [
    ("a,b,c\n1,2,3\n", r"takes 64 features per sample, but .*bad.csv has 3 per sample"),
    ("a,b\n1,x\n", r"bad.csv line 2, column 2 \(b\): 'x' is not a number"),
    ("1,2\n1,2,3\n", r"bad.csv line 2 has 3 values, but the lines before it have 2"),
    ("a,b\n", "holds a header row but no samples"),
    ("1,nan\n", "holds NaN or infinite values"),
    # issue 20: one line of data with an empty cell read as a header; a header of another
    # width than the rows (10 names, 64 values: the rows were taken as they were)
    ("1,2,\n", r"bad.csv holds one line, which reads as a header because column 3 is empty, "
                r"and no samples: fill in every value"),
    (",".join(f"c{i}" for i in range(10)) + "\n" + ",".join(["0.5"] * 64) + "\n",
     r"bad.csv line 2 has 64 values, but the header row names 10 columns \(c0, c1, c2, c3, c4, "
     r"\.\.\.\): a header of another file"),
    (",".join(["1e39"] * 64) + "\n", r"bad.csv: sample 0 holds 1e\+39, beyond the range of "
                                     r"float32 \(±3.4e\+38\), the model's dtype; scale the "
                                     r"inputs"),
    (b"\x1f\x8b\x08\x00rest", r"bad.csv is a binary file, not a CSV of numbers"),
    (b"1,\xff\xfe2\n", r"bad.csv is not UTF-8 text \(byte 2\): not a CSV of numbers\?"),
])
def test_bad_input_files_exit_2_saying_what_is_wrong(content, message, classifier, tmp_path,
                                                     capsys):
    path, _ = classifier
    if isinstance(content, bytes):
        (tmp_path / "bad.csv").write_bytes(content)
    else:
        (tmp_path / "bad.csv").write_text(content)
    assert main(["predict", str(path), str(tmp_path / "bad.csv")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("xbackprop: error: ") and re.search(message, err), err
    assert "Traceback" not in err and "Warning" not in err


def test_bad_npy_files_exit_2(classifier, tmp_path, capsys):
    """A 0-d array raised an IndexError; values beyond float32 gave rows of NaN, exit 0,
    and two raw NumPy warnings."""
    path, _ = classifier
    big = np.zeros((3, 64))
    big[1, 5] = -1e39
    for name, array, message in [
            ("scalar.npy", np.array(3.0), r"scalar.npy holds a single number \(a 0-d array\), "
                                          r"not samples: save an array of shape \(N, "
                                          r"features\.\.\.\)"),
            ("big.npy", big, r"big.npy: sample 1 holds -1e\+39, beyond the range of float32")]:
        np.save(tmp_path / name, array)
        assert main(["predict", str(path), str(tmp_path / name)]) == 2
        err = capsys.readouterr().err
        assert re.search(message, err) and err.count("\n") == 1, err


def test_a_csv_saved_with_a_byte_order_mark(classifier, digits, tmp_path, capsys):
    """Spreadsheets save UTF-8 with a BOM: it glued itself to the first number, which made
    the first sample a "header", dropped without a word."""
    path, probs = classifier
    text = io.StringIO()
    np.savetxt(text, digits.x_test[:5], delimiter=",")
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbf" + text.getvalue().encode())
    assert main(["predict", str(path), str(tmp_path / "bom.csv")]) == 0
    _, table = rows(capsys.readouterr().out)
    assert len(table) == 5
    np.testing.assert_allclose(table[:, 1:], probs[:5], rtol=1e-4, atol=1e-6)


def test_bad_model_files_exit_2(classifier, tmp_path, capsys):
    path, _ = classifier
    np.save(tmp_path / "x.npy", np.zeros((2, 64)))
    (tmp_path / "model.pkl").write_bytes(b"\x80\x04\x95" + bytes(20))
    for model, message in [(tmp_path / "model.pkl", "is a Python pickle"),
                           (tmp_path / "missing.safetensors", "no checkpoint file at"),
                           (tmp_path / "x.npy", "is a NumPy .npy file")]:
        assert main(["predict", str(model), str(tmp_path / "x.npy")]) == 2
        assert message in capsys.readouterr().err
    assert main(["predict", str(path), str(tmp_path / "nope.npy")]) == 2
    assert "nope.npy: no such file" in capsys.readouterr().err
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object))
    assert main(["predict", str(path), str(tmp_path / "obj.npy")]) == 2
    assert "not a .npy array of numbers" in capsys.readouterr().err


LAYER_FILE = '''
import dataclasses
import xbackprop as xb


@dataclasses.dataclass(frozen=True)
class Double(xb.Layer):
    """y = 2x"""

    def forward(self, params, x, ctx=xb.EVAL):
        return 2 * x, None

    def backward(self, params, cache, dy):
        return 2 * dy, {}
'''


def test_as_a_user_from_another_folder_with_their_own_layer_and_head(classifier, tmp_path):
    """The installed command, run from a folder outside the checkout: a model with the
    user's own layer needs --module; piping into `head` ends quietly with status 0."""
    script = shutil.which("xbackprop", path=str(Path(sys.executable).parent))
    assert script, "the xbackprop console script is not installed next to this Python"
    (tmp_path / "my_layers.py").write_text(textwrap.dedent(LAYER_FILE))
    make = textwrap.dedent("""
        import sys
        import numpy as np
        import xbackprop as xb
        sys.path.insert(0, ".")
        from my_layers import Double
        model = xb.Sequential([xb.Dense(3), Double()])
        params = xb.init_params(model, 0, (4,))
        xb.save_model("mine.safetensors", model, params, input_shape=(4,))
        np.save("x.npy", np.ones((5000, 4)))
        np.save("x64.npy", np.ones((5000, 64)))
    """)
    run = dict(cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert subprocess.run([sys.executable, "-c", make], **run).returncode == 0
    without = subprocess.run([script, "predict", "mine.safetensors", "x.npy"], **run)
    assert without.returncode == 2
    assert "class Double from module my_layers, which is not defined" in without.stderr
    ok = subprocess.run([script, "predict", "mine.safetensors", "x.npy", "--module",
                         "my_layers.py"], **run)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines()[0] == "value_0,value_1,value_2"
    assert len(ok.stdout.splitlines()) == 5001
    piped = subprocess.run(f"'{script}' predict {classifier[0]} x64.npy 2>err.txt | head -2; "
                           "exit ${PIPESTATUS[0]}", shell=True, executable="/bin/bash",
                           cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert piped.returncode == 0 and len(piped.stdout.splitlines()) == 2
    assert (tmp_path / "err.txt").read_text() == ""


def test_a_model_without_its_checksum_predicts_only_with_no_verify(classifier, digits,
                                                                   tmp_path, capsys):
    """The refusal pointed at `xbackprop predict --no-verify`, which did not exist; with it
    the file loads, and the warning is one line of the command's, not Python's."""
    path, probs = classifier
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = raw[8:8 + n].decode()
    unsealed = re.sub(r'"crc32":"[0-9a-f]{8}",?', "", header).replace(",}", "}")
    bad = tmp_path / "unsealed.safetensors"
    bad.write_bytes(len(unsealed).to_bytes(8, "little") + unsealed.encode() + raw[8 + n:])
    np.save(tmp_path / "x.npy", digits.x_test[:20])
    assert main(["predict", str(bad), str(tmp_path / "x.npy")]) == 2
    err = capsys.readouterr().err
    assert "has no integrity check" in err and "xbackprop predict --no-verify" in err
    assert main(["predict", str(bad), str(tmp_path / "x.npy"), "--no-verify"]) == 0
    out, err = capsys.readouterr()
    assert err == (f"xbackprop: warning: {bad} was loaded without an integrity check "
                   "(verify=False): it has no integrity check (no checksum in its header): "
                   "xbackprop writes one into every file, so this one was damaged or edited\n")
    _, table = rows(out)
    np.testing.assert_allclose(table[:, 1:], probs, rtol=1e-4, atol=1e-6)
