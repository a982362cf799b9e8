"""The package's layout, read from its source with `ast` (nothing is imported): no circle of
imports between its modules, no import of another module's private name, a function-local
import only where it breaks a cycle or defers a heavy optional library (and a comment says
which), and no module over ~500 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: modules allowed past the ~500 lines, and why
LONG = {
    "xbackprop.plot": "one function per picture (the issue's exception for plots)",
}
MAX_LINES = 500
#: libraries worth deferring to the moment they are needed (heavy, optional)
HEAVY = {"jax", "jaxlib", "torch", "cupy", "cupyx", "matplotlib", "PIL", "array_api_strict",
         "array_api_compat"}


def modules() -> dict[str, Path]:
    """Every module of the installed package by its dotted name (backends/ is
    xbackprop.backends)."""
    out = {}
    for folder, package in ((ROOT / "xbackprop", "xbackprop"),
                            (ROOT / "backends", "xbackprop.backends")):
        for path in sorted(folder.rglob("*.py")):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join([package, *parts])] = path
    return out


MODULES = modules()


def is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def resolve(importer: str, node: ast.ImportFrom) -> str:
    """The absolute module name an ImportFrom names."""
    if not node.level:
        return node.module or ""
    base = importer.split(".")
    base = base if is_package(importer) else base[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports(name: str) -> list[tuple[ast.stmt, list[str], bool, list[str]]]:
    """(node, modules it imports, inside a function?, names it imports) for every import."""
    tree = ast.parse(MODULES[name].read_text())
    out = []

    def visit(node: ast.AST, local: bool, typing_only: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = local or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                ast.Lambda))
            guarded = typing_only or (isinstance(child, ast.If) and "TYPE_CHECKING" in
                                      ast.unparse(child.test))
            if isinstance(child, ast.Import):
                out.append((child, [a.name for a in child.names], inner, []))
            elif isinstance(child, ast.ImportFrom) and not typing_only:
                target = resolve(name, child)
                names = [a.name for a in child.names]
                subs = [f"{target}.{n}" for n in names if f"{target}.{n}" in MODULES]
                # `from package import submodule` runs the submodule, not the package's
                # __init__ again (it is running already: a submodule's parent always is)
                found = ([target] if len(subs) < len(names) else []) + subs
                out.append((child, found, inner, names))
            visit(child, inner, guarded)

    visit(tree, False, False)
    return out


def module_graph() -> dict[str, list[str]]:
    """Each module's module-level imports of the package's modules."""
    return {name: sorted({m for node, found, local, _ in imports(name) if not local
                          for m in found if m in MODULES and m != name})
            for name in MODULES}


def test_no_circle_of_imports():
    graph = module_graph()
    # Tarjan's strongly connected components: a component of more than one module is a circle
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in graph:
        if v not in index:
            strong(v)
    assert not circles, f"modules that import each other (at module level): {circles}"


def test_checkpoints_never_import_the_training_loop():
    """The checkpoint package stands below fit: nothing it imports, directly or through
    other modules, is fit's (fit.py, loop.py)."""
    graph = module_graph()
    seen, todo = set(), [m for m in MODULES if m.startswith("xbackprop.checkpoint")]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += graph[name]
    assert not seen & {"xbackprop.fit", "xbackprop.loop"}


def test_no_import_of_another_modules_private_name():
    bad = []
    for name in MODULES:
        package = name if is_package(name) else name.rpartition(".")[0]
        for node, found, _, names in imports(name):
            if not isinstance(node, ast.ImportFrom):
                continue
            target = resolve(name, node)
            private = [n for n in names if n.startswith("_") and not n.startswith("__")
                       and f"{target}.{n}" not in MODULES]
            hidden = [p for p in target.split(".") if p.startswith("_")]
            owner = target.rpartition(".")[0] if hidden else ""
            if target in MODULES and (private or (hidden and not package.startswith(owner))):
                bad.append(f"{MODULES[name].relative_to(ROOT)}:{node.lineno}: "
                           f"{ast.unparse(node)}")
    assert not bad, "imports of another module's private names:\n" + "\n".join(bad)


def test_function_local_imports_say_why():
    """A function-local import breaks a cycle or defers a heavy optional library, and a
    comment on its line (or the line above) says which."""
    bad = []
    for name, path in MODULES.items():
        lines = path.read_text().splitlines()
        for node, found, local, _ in imports(name):
            if not local:
                continue
            roots = {m.split(".")[0] for m in found}
            said = " ".join(lines[max(0, node.lineno - 2):node.end_lineno]).lower()
            heavy = roots & HEAVY
            ok = "cycle" in said or any(h.lower() in said.split("#", 1)[-1] for h in heavy)
            if "#" not in said or not ok:
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
    assert not bad, ("function-local imports that neither break a cycle nor defer a heavy "
                     "library (with a comment saying which):\n" + "\n".join(bad))


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_hold_one_concept_of_at_most_500_lines(name):
    lines = len(MODULES[name].read_text().splitlines())
    if name in LONG:
        return
    assert lines <= MAX_LINES, (f"{MODULES[name].relative_to(ROOT)} has {lines} lines: a "
                                "second concept moved in? Split it.")
