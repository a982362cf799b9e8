"""Pytrees without JAX: nested dicts, lists, tuples and NamedTuples with arrays at the leaves.

Parameters, gradients and optimizer state are such trees, so they can be mapped over on
any backend, jitted by JAX (which knows these same containers), moved between backends and
saved by name without pickling. `None` is an empty subtree and dict keys are visited in
sorted order, as in JAX (so a dict that went through `jax.jit` still matches).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["tree_map", "tree_map_n", "first_leaf", "tree_leaves", "tree_paths",
           "tree_structure_equal", "tree_flatten", "tree_unflatten"]


def _is_namedtuple(x: Any) -> bool:
    return isinstance(x, tuple) and hasattr(x, "_fields")


def tree_map(fn: Callable[..., Any], tree: Any, *rest: Any) -> Any:
    """Apply `fn` to the leaves of `tree` (and the matching leaves of `rest`), keeping the
    structure. The trees in `rest` must have the structure of `tree`."""
    if tree is None:
        return None
    if isinstance(tree, dict):
        return {k: tree_map(fn, tree[k], *(r[k] for r in rest)) for k in sorted(tree)}
    if isinstance(tree, (list, tuple)):
        for r in rest:
            if len(r) != len(tree):
                raise ValueError(f"tree_map: containers of length {len(tree)} and {len(r)}")
        items = [tree_map(fn, v, *(r[i] for r in rest)) for i, v in enumerate(tree)]
        if _is_namedtuple(tree):
            return type(tree)(*items)
        return type(tree)(items) if isinstance(tree, tuple) else items
    return fn(tree, *rest)


def tree_map_n(fn: Callable[..., tuple], n: int, tree: Any, *rest: Any) -> tuple[Any, ...]:
    """Like `tree_map` for an `fn` that returns `n` values per leaf: returns `n` trees of the
    structure of `tree`, in one pass (the optimizers' hot path)."""
    if tree is None:
        return (None,) * n
    if isinstance(tree, dict):
        for r in rest:
            if len(r) != len(tree):
                raise KeyError(f"dicts with keys {sorted(tree)} and {sorted(r)}")
        outs: tuple[dict, ...] = tuple({} for _ in range(n))
        for k in sorted(tree):
            values = tree_map_n(fn, n, tree[k], *[r[k] for r in rest])
            for out, value in zip(outs, values):
                out[k] = value
        return outs
    if isinstance(tree, (list, tuple)):
        for r in rest:
            if len(r) != len(tree):
                raise ValueError(f"tree_map_n: containers of length {len(tree)} and {len(r)}")
        parts = [tree_map_n(fn, n, v, *[r[j] for r in rest]) for j, v in enumerate(tree)]
        columns = list(zip(*parts)) if parts else [()] * n
        if _is_namedtuple(tree):
            return tuple(type(tree)(*column) for column in columns)
        return tuple((type(tree) if isinstance(tree, tuple) else list)(column)
                     for column in columns)
    return fn(tree, *rest)


def _walk(tree: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    if tree is None:
        return
    if isinstance(tree, dict):
        for k in sorted(tree):
            yield from _walk(tree[k], f"{prefix}.{k}" if prefix else str(k))
    elif _is_namedtuple(tree):
        for k, v in zip(tree._fields, tree):
            yield from _walk(v, f"{prefix}.{k}" if prefix else k)
    elif isinstance(tree, (list, tuple)):
        for i, v in enumerate(tree):
            yield from _walk(v, f"{prefix}.{i}" if prefix else str(i))
    else:
        yield prefix, tree


def tree_paths(tree: Any) -> list[tuple[str, Any]]:
    """`(path, leaf)` pairs in a fixed order; paths are dotted names such as `"2.W"`."""
    return list(_walk(tree, ""))


def first_leaf(tree: Any) -> Any:
    """The first leaf of `tree` in `tree_paths` order, or None if it has none."""
    return next((leaf for _, leaf in _walk(tree, "")), None)


def tree_leaves(tree: Any) -> list[Any]:
    """The leaves of `tree`, in the order of `tree_paths` (without building the paths: a
    train step asks for leaves every step)."""
    out: list[Any] = []
    _collect(tree, out)
    return out


def _collect(tree: Any, out: list[Any]) -> None:
    kind = type(tree)
    if kind is dict or (kind is not list and kind is not tuple and isinstance(tree, dict)):
        items: Any = [tree[k] for k in sorted(tree)]
    elif kind is list or kind is tuple or isinstance(tree, (list, tuple)):
        items = tree  # (NamedTuples iterate in field order)
    elif tree is None:
        return
    else:
        out.append(tree)
        return
    for v in items:  # leaves taken here, without a call each
        if v is None or isinstance(v, (dict, list, tuple)):
            _collect(v, out)
        else:
            out.append(v)


def tree_structure_equal(a: Any, b: Any) -> bool:
    """True if `a` and `b` have the same containers, dict keys and number of leaves."""
    return tree_flatten(a)[1] == tree_flatten(b)[1]


_LEAF = "*"  # a leaf's place in a structure


def tree_flatten(tree: Any) -> tuple[list[Any], Any]:
    """The leaves of `tree` and its structure: nested tuples of container types, dict keys
    and children, which compare with == (two trees fit together exactly when their
    structures are equal) and from which `tree_unflatten` rebuilds the tree."""
    leaves: list[Any] = []
    return leaves, _structure(tree, leaves)


def _structure(tree: Any, leaves: list[Any]) -> Any:
    if isinstance(tree, dict):
        keys = sorted(tree)
        return (dict, tuple(keys), _children([tree[k] for k in keys], leaves))
    if isinstance(tree, (list, tuple)):
        container = type(tree) if isinstance(tree, tuple) else list
        return (container, _children(tree, leaves))
    if tree is None:
        return None
    leaves.append(tree)
    return _LEAF


def _children(items: Any, leaves: list[Any]) -> tuple:
    """The structures of a container's items; leaves are taken here, without a call each
    (parameter trees are mostly dicts of arrays)."""
    out = []
    for v in items:
        if v is None or isinstance(v, (dict, list, tuple)):
            out.append(_structure(v, leaves))
        else:
            leaves.append(v)
            out.append(_LEAF)
    return tuple(out)


def tree_unflatten(structure: Any, leaves: list[Any]) -> Any:
    """The tree of `structure` (from `tree_flatten`) with `leaves` in place of its leaves."""
    return _build(structure, iter(leaves))


def _build(structure: Any, leaves: Any) -> Any:
    if structure is _LEAF:
        return next(leaves)
    if structure is None:
        return None
    if structure[0] is dict:
        return {k: _build(s, leaves) for k, s in zip(structure[1], structure[2])}
    container, children = structure
    items = [_build(s, leaves) for s in children]
    if container is list:
        return items
    return container(*items) if hasattr(container, "_fields") else container(items)
