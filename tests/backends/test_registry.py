"""The seam's shape: a backend is one module in backends/ plus one line in the registry, and
no code outside backends/ branches on which backend it runs on (checked by reading it)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from xbackprop import backends
from xbackprop.backends import Backend, _registry, _select

ROOT = Path(__file__).resolve().parents[2]
#: modules whose math must never import an array library (they get `xp` from their inputs)
MATH = ["layers", "losses.py", "optim", "random.py", "schedules.py", "initializers.py",
        "model.py", "tree.py", "metrics.py"]
LIBRARIES = {"jax", "jaxlib", "cupy", "torch", "array_api_strict", "array_api_compat"}
#: the names backend values go by in xbackprop's code
BACKEND_VALUES = {"backend", "target", "owner", "other", "chosen", "found", "b"}


def test_each_registry_line_names_one_backend_module():
    classes = [_select._load(entry) for entry in _registry.BACKENDS]
    assert [cls.name for cls in classes] == list(backends.BACKEND_NAMES)
    assert len(set(backends.BACKEND_NAMES)) == len(classes)
    for entry, cls in zip(_registry.BACKENDS, classes):
        module = entry.partition(":")[0]
        assert (ROOT / "backends" / f"{module}.py").is_file(), entry
        assert issubclass(cls, Backend) and cls is not Backend
        assert cls.modules and all(isinstance(m, str) for m in cls.modules), cls
        for capability in ("inplace_updates", "compiles", "host_arrays"):
            assert isinstance(getattr(cls, capability), bool), (cls, capability)


def test_backend_modules_do_not_import_their_library_when_loaded():
    """Loading the registry must not import JAX or CuPy: classes are read, not built."""
    import subprocess
    import sys

    code = ("import sys, xbackprop\n"
            "from xbackprop.backends import BACKEND_NAMES\n"
            "assert len(BACKEND_NAMES) >= 4\n"
            "print(sorted(m for m in ('jax', 'cupy', 'array_api_strict', 'torch', "
            "'array_api_compat') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def _code_strings(path: Path) -> list[str]:
    """String constants used in code (docstrings left out)."""
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)}
    return [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)
            and isinstance(node.value, str) and id(node) not in docstrings]


def test_selection_names_no_backend():
    """No factories or tables per backend where backends are chosen."""
    named = [s for s in _code_strings(ROOT / "backends" / "_select.py")
             if s.lower() in backends.BACKEND_NAMES]
    assert named == [], f"_select.py names backends {named}"


def test_the_test_fixture_has_no_table_of_backends():
    """The `backend` fixture runs every registered backend; no labels or lists by name."""
    tree = ast.parse((ROOT / "tests" / "conftest.py").read_text())
    tables = [ast.unparse(node) for node in ast.walk(tree)
              if isinstance(node, (ast.Dict, ast.List, ast.Tuple, ast.Set))
              and any(isinstance(e, ast.Constant) and e.value in backends.BACKEND_NAMES
                      for e in getattr(node, "keys", None) or getattr(node, "elts", []))]
    assert tables == []


def _is_backend_value(node: ast.AST) -> bool:
    if isinstance(node, ast.Name):
        return node.id in BACKEND_VALUES
    if isinstance(node, ast.Attribute):
        return node.attr in BACKEND_VALUES
    if isinstance(node, ast.Call) and isinstance(node.func, (ast.Name, ast.Attribute)):
        name = node.func.id if isinstance(node.func, ast.Name) else node.func.attr
        return name in ("get_backend", "backend_of", "owner_of")
    return False


def backend_branches(source: str) -> list[str]:
    """Places in `source` that decide by a backend's name or class: `backend.name == ...`,
    `args.backend == "jax"`, `isinstance(x, JaxBackend)`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            for a in operands:
                if isinstance(a, ast.Attribute) and a.attr == "name" and _is_backend_value(
                        a.value):
                    found.append(ast.unparse(node))
                if isinstance(a, ast.Constant) and a.value in backends.BACKEND_NAMES and any(
                        _is_backend_value(b) for b in operands if b is not a):
                    found.append(ast.unparse(node))
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "isinstance":
            classes = ast.unparse(node.args[1]) if len(node.args) > 1 else ""
            if any(word.endswith("Backend") and word != "Backend"
                   for word in classes.replace(",", " ").replace("(", " ").replace(")", " ")
                   .replace(".", " ").split()):
                found.append(ast.unparse(node))
    return found


def test_the_branch_detector_finds_what_it_looks_for():
    assert backend_branches("if backend.name == 'jax': pass")
    assert backend_branches("x = 1 if 'cupy' != args.backend else 2")
    assert backend_branches("ok = get_backend().name in ('numpy', 'cupy')")
    assert backend_branches("isinstance(b, (JaxBackend, int))")
    assert not backend_branches("if which == 'jax': pass")  # gradcheck's oracle, not a backend
    assert not backend_branches("isinstance(b, Backend)")


def test_no_code_outside_backends_branches_on_a_backend():
    offenders = {}
    for path in sorted((ROOT / "xbackprop").rglob("*.py")):
        found = backend_branches(path.read_text())
        if found:
            offenders[str(path.relative_to(ROOT))] = found
    assert offenders == {}, ("backend knowledge outside backends/: give the backend a "
                             f"capability or a primitive instead: {offenders}")


@pytest.mark.parametrize("module", MATH)
def test_math_never_imports_an_array_library(module):
    paths = sorted((ROOT / "xbackprop" / module).rglob("*.py")) if not module.endswith(
        ".py") else [ROOT / "xbackprop" / module]
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            assert not {n.partition(".")[0] for n in names} & LIBRARIES, (path, names)


def test_a_backend_module_is_importable_alone():
    """Each registered module imports with only NumPy and the seam (its library is imported
    when the backend is built)."""
    for entry in _registry.BACKENDS:
        module = importlib.import_module(f"xbackprop.backends.{entry.partition(':')[0]}")
        assert hasattr(module, entry.partition(":")[2])
