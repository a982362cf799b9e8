"""The checks beside the tests: CI lints and type-checks before it tests, the README says so,
the package ships py.typed, and the type check sees backends/ under its installed name."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHECKS = ["ruff check xbackprop backends", "python .ci/typecheck.py"]


def test_ci_lints_and_type_checks_before_the_tests():
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert "pytest" in lines
    for command in CHECKS:
        assert command in lines, command
        assert lines.index(command) < lines.index("pytest"), command


def test_the_readme_gives_the_checks_ci_runs():
    assert " && ".join(CHECKS) in (ROOT / "README.md").read_text()


def test_the_test_extra_installs_the_checkers_pinned():
    """One minor version each: a new one brings new rules, and CI would fail on unchanged
    code. (pyproject.toml read as text: tomllib is Python 3.11+.)"""
    text = (ROOT / "pyproject.toml").read_text()
    test = re.search(r"^test = \[(.*?)\]$", text, re.DOTALL | re.MULTILINE)
    assert test is not None
    assert '"ruff>=0.17,<0.18"' in test.group(1) and '"mypy>=2.4,<2.5"' in test.group(1)


def test_the_package_ships_py_typed():
    """PEP 561: without the marker, users' type checkers ignore the annotations."""
    package_data = (ROOT / "pyproject.toml").read_text().split(
        "[tool.setuptools.package-data]")[1].split("\n[")[0]
    assert '\n"xbackprop" = ["py.typed"]' in package_data
    marker = ROOT / "xbackprop" / "py.typed"
    assert marker.is_file() and marker.read_bytes() == b""


def test_the_type_check_names_backends_as_installed():
    pytest.importorskip("mypy", reason="the type checker is in the [test] extra: "
                        "pip install -e '.[jax,test]'")
    spec = importlib.util.spec_from_file_location("typecheck", ROOT / ".ci" / "typecheck.py")
    assert spec is not None and spec.loader is not None
    typecheck = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(typecheck)
    assert typecheck.installed_name("backends") == "xbackprop.backends"
    assert typecheck.installed_name("backends._base") == "xbackprop.backends._base"
    for unchanged in ["xbackprop", "xbackprop.fit", "backends_extra", "backendsx.y"]:
        assert typecheck.installed_name(unchanged) == unchanged


def test_the_formatter_is_not_a_check_and_the_config_says_why():
    """`ruff format` would lay out 114 of 122 files anew (+21% lines, four modules over the
    500-line limit, the formula comments' alignment gone): pyproject.toml says so, and
    nothing half-configures it."""
    config = (ROOT / "pyproject.toml").read_text()
    assert "[tool.ruff.format]" not in config
    assert "ruff format" in config and "21%" in config
    assert "ruff format" not in (ROOT / ".ci" / "run").read_text()


def test_a_normal_install_ships_every_package():
    """`pip install .` (not -e) installs only the packages pyproject.toml lists: a new
    sub-package missing there imported in the checkout and failed once installed."""
    tomllib = pytest.importorskip("tomllib", reason="tomllib is Python 3.11's")
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
                 ["packages"])
    found = {".".join(p.relative_to(ROOT).parent.parts)
             for p in (ROOT / "xbackprop").rglob("__init__.py")}
    found |= {"xbackprop.backends"}  # from backends/ (package-dir)
    assert found <= listed, f"not in [tool.setuptools] packages: {sorted(found - listed)}"
