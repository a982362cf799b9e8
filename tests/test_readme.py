"""The README's Python examples run as written, in order, in one namespace."""

from __future__ import annotations

import re
from pathlib import Path


README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run(jax_backend, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the files the examples save land here
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert len(blocks) >= 4
    namespace: dict = {}
    try:
        for block in blocks:
            exec(compile(block, str(README), "exec"), namespace)
    finally:
        namespace["xb"].set_backend(None)
    assert namespace["result"].history["val_accuracy"][-1] > 0.9
    assert "all gradients match" in capsys.readouterr().out  # the Swish layer checks out


def test_the_hand_written_step_loop_runs_on_its_own(capsys, tmp_path, monkeypatch):
    """The block that drives make_train_step by hand needs no name from an earlier block."""
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    loop = next(b for b in blocks if "xb.make_train_step(" in b)  # (the digits loop)
    exec(compile(loop, str(README), "exec"), {})
    scores = eval(capsys.readouterr().out.strip().splitlines()[-1], {})
    assert scores["accuracy"] > 0.9


def test_readme_documents_the_two_commands():
    text = README.read_text()
    assert 'pip install -e ".[jax]" && xbackprop train digits' in text
    assert 'pip install -e ".[jax,test]" && pytest' in text
    ci = (README.parent / ".ci" / "run").read_text()
    assert 'pip install -e ".[jax,test]"' in ci and "\npytest" in ci


def test_one_way_to_install_pytorch():
    """The backend's error, the tests' and the benchmarks' skip messages and the README give
    the same command (they gave two)."""
    from xbackprop.backends.torch_backend import INSTALL

    command = "pip install torch --index-url https://download.pytorch.org/whl/cpu"
    assert command in INSTALL and command in README.read_text()
    root = README.parent
    for path in [root / "tests" / "backends" / "test_torch_backend.py",
                 root / "benchmarks" / "impls" / "pytorch.py"]:
        text = path.read_text()
        assert "{INSTALL}" in text and "pip install torch" not in text, path


def test_the_lesson_count_is_the_lessons():
    """The README said "ten lessons" when there were 13."""
    from xbackprop import examples

    words = {10: "ten", 11: "eleven", 12: "twelve", 13: "thirteen", 14: "fourteen",
             15: "fifteen"}
    assert f"# {words[len(examples.NAMES)]} lessons, one line each" in README.read_text()
