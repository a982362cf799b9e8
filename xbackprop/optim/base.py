"""What an optimizer is, and the machinery that applies a per-array update rule to a tree.

    state = opt.init(params)
    params, state = opt.update(params, grads, state)

A rule is written once for one array (`p`, its gradient `g`, its slots such as Adam's
moments) and `make_optimizer` applies it to every leaf of the parameter tree, with the
learning rate (a number or a schedule, evaluated at the number of updates done so far) and
the weight decay every rule shares.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from ..backends import backend_of, is_trusted
from ..schedules import Schedule, as_schedule
from ..tree import tree_flatten, tree_leaves, tree_map, tree_paths, tree_unflatten

__all__ = ["Optimizer", "OptState", "Rule", "DecayMask", "make_optimizer", "PureOps",
           "InPlaceOps"]

Params = Any
#: which parameters weight decay applies to: `mask(path, param) -> bool`, with `path` as
#: `xbackprop.tree.tree_paths` names it ("0.W", "3.1.b"); None: every parameter
DecayMask = Callable[[str, Any], bool]


class Optimizer(NamedTuple):
    """`init(params) -> state` and `update(params, grads, state) -> (params, state)`.

    `update(..., inplace=True)` may overwrite `params` and `state` with the result instead
    of allocating new arrays (NumPy, CuPy; ignored on JAX): the same numbers, bit for bit,
    for a caller that owns those buffers, as a train step with donated state does.
    """

    init: Callable[[Params], Any]
    update: Callable[..., tuple[Params, Any]]


class OptState(NamedTuple):
    """`count`: updates done so far; `slots`: per-parameter buffers by name (e.g. mu, nu)."""

    count: Any
    slots: dict[str, Any]


class PureOps:
    """The update arithmetic, returning new arrays."""

    @staticmethod
    def ema(a: Any, b: Any, decay: float) -> Any:
        """decay · a + (1 - decay) · b"""
        return decay * a + (1 - decay) * b

    @staticmethod
    def scale_add(a: Any, scale: float, b: Any) -> Any:
        """scale · a + b"""
        return scale * a + b

    @staticmethod
    def add(a: Any, b: Any) -> Any:
        return a + b

    @staticmethod
    def sub(a: Any, b: Any) -> Any:
        return a - b

    @staticmethod
    def fused(p: Any, name: str) -> Callable | None:
        return None


class InPlaceOps:
    """The same arithmetic, in the same order (so the same bits), written into `a`."""

    @staticmethod
    def ema(a: Any, b: Any, decay: float) -> Any:
        a *= decay
        a += (1 - decay) * b
        return a

    @staticmethod
    def scale_add(a: Any, scale: float, b: Any) -> Any:
        a *= scale
        a += b
        return a

    @staticmethod
    def add(a: Any, b: Any) -> Any:
        a += b
        return a

    @staticmethod
    def sub(a: Any, b: Any) -> Any:
        a -= b
        return a

    @staticmethod
    def fused(p: Any, name: str) -> Callable | None:
        """The backend's fused, in-place form of update rule `name`, if it has one (NumPy,
        CuPy and PyTorch for Adam), for a parameter that is an array (not a Python float)."""
        backend = backend_of(p)
        return backend.fused_update(name) if backend.is_array(p) else None


# A rule: (p, g, slots, hyper, ops) -> (new p, new slots), for one array; `hyper` holds the
# scalars of this update (learning rate, bias corrections, "wd": the decoupled weight decay
# for this array, 0.0 where the decay mask leaves it out), computed once per update, and
# `ops` is PureOps or InPlaceOps.
Rule = Callable[[Any, Any, list, dict, Any], tuple[Any, tuple]]


def check_numbers(params: Params) -> None:
    """Raise a TypeError naming the first parameter that is neither an array nor a real
    number (Python floats are fine: a toy function's x and y)."""
    for path, leaf in tree_paths(params):
        number = isinstance(leaf, (int, float, np.integer, np.floating)) and \
            not isinstance(leaf, bool)
        if not number and not (hasattr(leaf, "dtype") and hasattr(leaf, "shape")):
            where = f"parameter {path!r}" if path else "the parameter"
            raise TypeError(
                f"optimizers update arrays and numbers, but {where} is a "
                f"{type(leaf).__name__} ({leaf!r}); to minimise a function of a few numbers "
                "see also xb.optim.minimize(f, grad, x0, optimizer, steps)")


def rebuilt(tree: Any, old: list, new: list, structure: Any) -> Any:
    """`tree` with leaves `new` in place of `old`: the same tree where every array was
    updated in place (nothing to rebuild), else a new one of `structure` (None: the
    tree's own, found now)."""
    if all(a is b for a, b in zip(old, new)):
        return tree
    return tree_unflatten(tree_flatten(tree)[1] if structure is None else structure, new)


def _float_count(count: Any, dtype: Any) -> Any:
    """The update count as a number that does not promote `dtype` arrays: a Python int stays
    one, an array (a traced JAX integer) is cast to the parameters' float dtype."""
    return count if isinstance(count, int) else backend_of(count).xp.astype(count, dtype)


def decay_flags(params: Params, mask: DecayMask) -> list[bool]:
    """Per leaf of `params` (in `tree_leaves` order): does `mask` let weight decay apply?"""
    flags = []
    for path, p in tree_paths(params):
        flag = mask(path, p)
        if not isinstance(flag, (bool, np.bool_)):
            raise TypeError(f"decay_mask({path!r}, ...) returned {flag!r}; it must return True "
                            "(decay this parameter) or False")
        flags.append(bool(flag))
    return flags


def make_optimizer(rule: Rule, slots: dict[str, float], lr: float | Schedule,
                   prepare: Callable[[Any, Any], dict] | None = None, *,
                   weight_decay: float = 0.0, decoupled: bool = False,
                   decay_mask: DecayMask | None = None) -> Optimizer:
    """Build an Optimizer from a per-array `rule`, its slots (name -> initial value), a
    `prepare(t, lr)` giving the per-update scalars for update number t (1, 2, ...) and the
    weight decay λ every rule shares: L2 (the rule gets g + λ p as its gradient), or with
    `decoupled` the rule reads λ as `hyper["wd"]` and applies it itself (AdamW).
    `decay_mask(path, param)` picks the parameters that decay (default: all)."""
    schedule = as_schedule(lr)
    _check_weight_decay(weight_decay, decay_mask)

    def init(params: Params) -> OptState:
        check_numbers(params)

        def filled(value: float) -> Any:
            return tree_map(lambda p: backend_of(p).xp.full_like(p, value), params)
        count = backend_of(*tree_leaves(params)).counter(0)
        return OptState(count, {name: filled(v) for name, v in slots.items()})

    def update(params: Params, grads: Params, state: OptState, *, inplace: bool = False
               ) -> tuple[Params, OptState]:
        # flat lists of leaves, each tree's structure checked against the parameters'
        # (inside a trusted step, checked on its first call: see backends.trusted)
        if is_trusted():
            p_leaves, g_leaves, structure = tree_leaves(params), tree_leaves(grads), None
        else:
            p_leaves, structure = tree_flatten(params)
            g_leaves, g_structure = tree_flatten(grads)
            if g_structure != structure:
                raise ValueError("gradients do not have the structure of the parameters: "
                                 f"{[p for p, _ in tree_paths(grads)]} vs "
                                 f"{[p for p, _ in tree_paths(params)]}")
        slot_leaves = [tree_leaves(state.slots[name]) for name in slots]
        # one backend for everything: never move p to g's backend silently
        backend = backend_of(*p_leaves, *g_leaves, *(a for leaves in slot_leaves for a in leaves))
        ops = InPlaceOps if inplace and backend.inplace_updates else PureOps
        # Python and NumPy scalars as parameters (a toy function's x, y) have a dtype too
        leaf = p_leaves[0] if p_leaves else None
        dtype = np.float32 if leaf is None else getattr(leaf, "dtype", None) or \
            np.result_type(leaf)
        count = state.count + 1
        hyper = {"lr": schedule(_float_count(state.count, dtype)),
                 "wd": weight_decay if decoupled else 0.0}
        if prepare is not None:
            hyper.update(prepare(_float_count(count, dtype), hyper["lr"]))
        # per leaf: does the decay apply? (None: to every leaf)
        decays = decay_flags(params, decay_mask) if weight_decay and decay_mask else None
        undecayed = hyper if decays is None else {**hyper, "wd": 0.0}
        new_p: list[Any] = []
        new_slots: list[list[Any]] = [[] for _ in slots]
        for i, (p, g) in enumerate(zip(p_leaves, g_leaves)):
            decays_i = decays is None or decays[i]
            if weight_decay and not decoupled and decays_i:
                g = g + weight_decay * p                 # L2: the gradient of λ/2 ‖p‖²
            p, values = rule(p, g, [leaves[i] for leaves in slot_leaves],
                             hyper if decays_i else undecayed, ops)
            new_p.append(p)
            for out, v in zip(new_slots, values):
                out.append(v)
        slot_trees = dict(zip(slots, (rebuilt(state.slots[name], old, new, structure)
                                      for name, old, new in zip(slots, slot_leaves,
                                                                new_slots))))
        return (rebuilt(params, p_leaves, new_p, structure), OptState(count, slot_trees))

    return Optimizer(init, update)


def _check_weight_decay(weight_decay: float, mask: DecayMask | None) -> None:
    number = isinstance(weight_decay, (int, float, np.integer, np.floating)) and \
        not isinstance(weight_decay, bool)
    if not number or not math.isfinite(weight_decay) or weight_decay < 0:
        raise ValueError(f"weight_decay is a number >= 0, not {weight_decay!r}")
    if mask is not None and not callable(mask):
        raise TypeError(f"decay_mask is a function (path, param) -> bool, e.g. "
                        f"lambda path, p: p.ndim >= 2, not {mask!r}")
