"""Optimizers made from optimizers: clip the gradients first, or leave some parameters alone.

Each takes an `Optimizer` and returns one, with the same state (so a checkpoint of the inner
optimizer is a checkpoint of the wrapped one), and composes with every rule and with each
other: `clip_by_global_norm(freeze(adamw(1e-3), ["0.*"]), 1.0)`.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Callable, Sequence
from typing import Any

from ..backends import backend_of
from ..tree import tree_flatten, tree_leaves, tree_map, tree_paths, tree_unflatten
from .base import Optimizer

__all__ = ["global_norm", "clip_by_global_norm", "clip_by_value", "masked", "freeze"]

Params = Any


def global_norm(grads: Params) -> Any:
    """‖g‖₂ over every leaf of the tree together: √(Σ_leaves Σ g²), a 0-d array."""
    leaves = tree_leaves(grads)
    xp = backend_of(*leaves).xp
    total = xp.sum(leaves[0] * leaves[0])
    for g in leaves[1:]:
        total = total + xp.sum(g * g)
    return xp.sqrt(total)


def _check_limit(name: str, value: float) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and \
        math.isfinite(value) and value > 0
    if not ok:
        raise ValueError(f"{name}: the limit is a finite number > 0, not {value!r}")
    return float(value)


def clip_by_global_norm(optimizer: Optimizer, max_norm: float) -> Optimizer:
    """`optimizer` on gradients rescaled, all together, to a global norm of at most
    `max_norm`:  g ← g · min(1, max_norm / ‖g‖₂)  with ‖g‖₂ over every parameter's gradient
    (Pascanu et al., 2013; optax.clip_by_global_norm, torch.nn.utils.clip_grad_norm_).
    The direction of the step is kept; only its length is bounded. nanoGPT clips to 1.0."""
    limit = _check_limit("clip_by_global_norm", max_norm)

    def update(params: Params, grads: Params, state: Any, *, inplace: bool = False
               ) -> tuple[Params, Any]:
        norm = global_norm(grads)
        xp = backend_of(norm).xp
        # max_norm / max(‖g‖, max_norm): 1 while the norm is within bounds, no division by 0
        scale = limit / xp.clip(norm, limit, None)
        return optimizer.update(params, tree_map(lambda g: g * scale, grads), state,
                                inplace=inplace)

    return Optimizer(optimizer.init, update)


def clip_by_value(optimizer: Optimizer, limit: float) -> Optimizer:
    """`optimizer` on gradients clipped element by element to [-limit, limit]:
    g ← min(max(g, -limit), limit) (min-char-rnn's `np.clip(dparam, -5, 5)`; optax.clip)."""
    bound = _check_limit("clip_by_value", limit)

    def update(params: Params, grads: Params, state: Any, *, inplace: bool = False
               ) -> tuple[Params, Any]:
        clipped = tree_map(lambda g: backend_of(g).xp.clip(g, -bound, bound), grads)
        return optimizer.update(params, clipped, state, inplace=inplace)

    return Optimizer(optimizer.init, update)


def masked(optimizer: Optimizer, trainable: Callable[[str], bool]) -> Optimizer:
    """`optimizer` applied only to the parameters whose path (e.g. "2.W", see
    `xbackprop.tree.tree_paths`) `trainable(path)` accepts; the others stay as they are."""

    def update(params: Params, grads: Params, state: Any, *, inplace: bool = False
               ) -> tuple[Params, Any]:
        # never in place: the frozen parameters must keep their old values
        new_params, state = optimizer.update(params, grads, state)
        keep = [trainable(path) for path, _ in tree_paths(params)]
        leaves, structure = tree_flatten(params)
        merged = [new if k else old for k, old, new in zip(keep, leaves, tree_leaves(new_params))]
        return tree_unflatten(structure, merged), state

    return Optimizer(optimizer.init, update)


def freeze(optimizer: Optimizer, patterns: Sequence[str]) -> Optimizer:
    """`optimizer` with the parameters matching any glob pattern frozen, e.g.
    `freeze(sgd(0.5), ["*.b"])` trains the weights and keeps every bias as it is.

    Paths are those of `xbackprop.tree.tree_paths` ("0.W", "2.b", "3.0.W" in a nested
    model). A pattern that matches no parameter is an error listing the paths there are (a
    typo such as "*.bias" would otherwise train everything it meant to freeze)."""
    if isinstance(patterns, str):
        patterns = [patterns]
    patterns = list(patterns)
    checked: set[tuple[str, ...]] = set()

    def check(params: Params) -> None:
        paths = tuple(path for path, _ in tree_paths(params))
        if paths in checked:  # once per parameter structure
            return
        unmatched = [pat for pat in patterns
                     if not any(fnmatch.fnmatchcase(path, pat) for path in paths)]
        if unmatched:
            raise ValueError(
                f"freeze: {', '.join(map(repr, unmatched))} matches no parameter, so nothing "
                f"would be frozen by it. The parameters are {', '.join(paths) or 'none'} "
                "(a layer's index, then the array's name: '0.W', '*.b' for every bias).")
        checked.add(paths)

    def trainable(path: str) -> bool:
        return not any(fnmatch.fnmatchcase(path, pat) for pat in patterns)

    inner = masked(optimizer, trainable)

    def init(params: Params) -> Any:
        check(params)
        return inner.init(params)

    def update(params: Params, grads: Params, state: Any, *, inplace: bool = False
               ) -> tuple[Params, Any]:
        check(params)
        return inner.update(params, grads, state, inplace=inplace)

    return Optimizer(init, update)
