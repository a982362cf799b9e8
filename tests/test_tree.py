"""Pytrees without JAX: the same leaves, in the same order, as JAX's own tree utilities, so
a tree that went through `jax.jit` still lines up with the original."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pytest

from xbackprop.optim import OptState
from xbackprop.tree import (
    first_leaf,
    tree_flatten,
    tree_leaves,
    tree_map,
    tree_map_n,
    tree_paths,
    tree_structure_equal,
    tree_unflatten,
)


class Point(NamedTuple):
    x: object
    y: object


def sample_tree():
    return {"z": [1, (2, 3)], "a": {"k": 4, "b": None}, "m": Point(5, [6])}


def test_paths_visit_dict_keys_sorted_and_skip_none():
    assert tree_paths(sample_tree()) == [
        ("a.k", 4), ("m.x", 5), ("m.y.0", 6), ("z.0", 1), ("z.1.0", 2), ("z.1.1", 3)]
    assert tree_leaves(sample_tree()) == [4, 5, 6, 1, 2, 3]


def test_model_parameter_paths():
    params = [{"W": "w0", "b": "b0"}, {}, {"W": "w2"}]
    assert [p for p, _ in tree_paths(params)] == ["0.W", "0.b", "2.W"]


def test_leaves_match_jax_tree_util():
    jax = pytest.importorskip("jax")
    tree = {"z": [np.ones(1), (np.zeros(2), None)], "a": {"k": np.ones(3), "b": None},
            "m": Point(np.ones(4), [np.ones(5)]), "state": OptState(np.ones(6), {"mu": [7.0]})}
    ours = tree_leaves(tree)
    theirs = jax.tree_util.tree_leaves(tree)
    assert len(ours) == len(theirs) == 7
    assert all(a is b for a, b in zip(ours, theirs))


def test_structure_survives_jax_jit():
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    tree = {"b": [jnp.ones(2), jnp.zeros(3)], "a": Point(jnp.ones(1), None)}
    out = jax.jit(lambda t: tree_map(lambda v: v + 1, t))(tree)
    assert tree_structure_equal(tree, out)
    assert isinstance(out["a"], Point) and out["a"].y is None
    for before, after in zip(tree_leaves(tree), tree_leaves(out)):
        np.testing.assert_array_equal(np.asarray(after), np.asarray(before) + 1)


def test_tree_map_keeps_containers_and_maps_several_trees():
    a = sample_tree()
    b = tree_map(lambda v: 10 * v, a)
    assert b == {"z": [10, (20, 30)], "a": {"k": 40, "b": None}, "m": Point(50, [60])}
    assert isinstance(b["m"], Point) and isinstance(b["z"][1], tuple)
    c = tree_map(lambda u, v: u + v, a, b)
    assert tree_leaves(c) == [44, 55, 66, 11, 22, 33]


def test_tree_map_of_none_is_none():
    assert tree_map(lambda v: 1 / 0, None) is None
    assert tree_map(lambda v: v, {"a": None}) == {"a": None}


def test_tree_map_rejects_containers_of_different_lengths():
    with pytest.raises(ValueError, match="length 2 and 3"):
        tree_map(lambda u, v: u, [1, 2], [1, 2, 3])


def test_structure_equal():
    assert tree_structure_equal(sample_tree(), tree_map(str, sample_tree()))
    assert not tree_structure_equal({"a": 1}, {"b": 1})
    assert not tree_structure_equal([1, 2], [1, 2, 3])
    assert not tree_structure_equal({"a": 1}, {"a": [1]})


def test_flatten_unflatten_round_trip():
    tree = sample_tree()
    leaves, structure = tree_flatten(tree)
    assert leaves == tree_leaves(tree)
    assert tree_unflatten(structure, leaves) == tree
    rebuilt = tree_unflatten(structure, [v * 2 for v in leaves])
    assert rebuilt == tree_map(lambda v: v * 2, tree)
    assert isinstance(rebuilt["m"], Point)


def test_namedtuple_paths_use_field_names():
    state = OptState(0, {"mu": [{"W": 1}], "nu": [{"W": 2}]})
    assert [p for p, _ in tree_paths(state)] == ["count", "slots.mu.0.W", "slots.nu.0.W"]


def test_tree_map_n_returns_n_trees_in_one_pass():
    a = sample_tree()
    b = tree_map(lambda v: 10 * v, a)
    calls = []

    def fn(u, v):
        calls.append(u)
        return u + v, u * v, -u

    total, product, negative = tree_map_n(fn, 3, a, b)
    assert calls == [4, 5, 6, 1, 2, 3]  # each leaf once, in path order
    assert total == tree_map(lambda v: 11 * v, a)
    assert product == tree_map(lambda v: 10 * v * v, a)
    assert negative == tree_map(lambda v: -v, a)
    assert isinstance(total["m"], Point) and isinstance(total["z"][1], tuple)
    assert total["a"]["b"] is None


def test_tree_map_n_on_empty_containers():
    assert tree_map_n(lambda u: (u, u), 2, [{}, {}, []]) == ([{}, {}, []], [{}, {}, []])
    assert tree_map_n(lambda u: (u,), 1, ()) == ((),)
    assert tree_map_n(lambda u: (u, u), 2, None) == (None, None)


def test_tree_map_n_rejects_mismatched_trees():
    with pytest.raises(KeyError):
        tree_map_n(lambda u, v: (u,), 1, {"a": 1, "b": 2}, {"a": 1})
    with pytest.raises(KeyError):
        tree_map_n(lambda u, v: (u,), 1, {"a": 1, "b": 2}, {"a": 1, "c": 2})
    with pytest.raises(ValueError, match="length 2 and 1"):
        tree_map_n(lambda u, v: (u,), 1, [1, 2], [1])


def test_first_leaf():
    assert first_leaf(sample_tree()) == 4  # "a.k" comes first
    assert first_leaf([{}, None, {"W": 7}]) == 7
    assert first_leaf([{}, {}]) is None and first_leaf(None) is None
