"""Optimizers as pairs of pure functions, in the manner of optax:

    state = opt.init(params)
    params, state = opt.update(params, grads, state)

Each rule is written once for one array (`p`, its gradient `g`, its slots such as Adam's
moments) and applied to every leaf of the parameter tree. Learning rates are numbers or
schedules (`xbackprop.schedules`), evaluated at the number of updates done so far.
Weight decay is L2, one step shared by every rule: g ← g + λ p before the rule sees the
gradient (PyTorch's `weight_decay`, optax's `add_decayed_weights`), except in AdamW, where
it is decoupled from the adaptive step (Loshchilov & Hutter, 2019).
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from .backends import backend_of, is_trusted
from .schedules import Schedule, as_schedule
from .tree import tree_flatten, tree_leaves, tree_map, tree_paths, tree_unflatten

__all__ = ["Optimizer", "OptState", "sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop",
           "adagrad", "masked", "freeze", "get_optimizer", "OPTIMIZERS", "DEFAULT_LR",
           "Trajectory", "minimize"]

Params = Any


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


class _Pure:
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


class _InPlace:
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
        """The backend's one-kernel form of update rule `name`, if it has one (CuPy)."""
        return backend_of(p).fused_update(name)


# A rule: (p, g, slots, hyper, ops) -> (new p, new slots), for one array; `hyper` holds the
# scalars of this update (learning rate, bias corrections), computed once per update, and
# `ops` is _Pure or _InPlace.
Rule = Callable[[Any, Any, tuple, dict, Any], tuple[Any, tuple]]


def _check_numbers(params: Params) -> None:
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


def _rebuilt(tree: Any, old: list, new: list, structure: Any) -> Any:
    """`tree` with leaves `new` in place of `old`: the same tree where every array was
    updated in place (nothing to rebuild), else a new one of `structure` (None: the
    parameters', found now)."""
    if all(a is b for a, b in zip(old, new)):
        return tree
    return tree_unflatten(tree_flatten(tree)[1] if structure is None else structure, new)


def _float_count(count: Any, dtype: Any) -> Any:
    """The update count as a number that does not promote `dtype` arrays: a Python int stays
    one, an array (a traced JAX integer) is cast to the parameters' float dtype."""
    return count if isinstance(count, int) else backend_of(count).xp.astype(count, dtype)


def _optimizer(rule: Rule, slots: dict[str, float], lr: float | Schedule,
               prepare: Callable[[Any], dict] | None = None, weight_decay: float = 0.0
               ) -> Optimizer:
    """Build an Optimizer from a per-array `rule`, its slots (name -> initial value), a
    `prepare(t, lr)` giving the per-update scalars for update number t (1, 2, ...) and the
    L2 `weight_decay` every rule shares: the rule gets g + λ p as its gradient."""
    schedule = as_schedule(lr)

    def init(params: Params) -> OptState:
        _check_numbers(params)

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
        ops = _InPlace if inplace and backend.inplace_updates else _Pure
        # Python and NumPy scalars as parameters (a toy function's x, y) have a dtype too
        leaf = p_leaves[0] if p_leaves else None
        dtype = np.float32 if leaf is None else getattr(leaf, "dtype", None) or \
            np.result_type(leaf)
        count = state.count + 1
        hyper = {"lr": schedule(_float_count(state.count, dtype))}
        if prepare is not None:
            hyper.update(prepare(_float_count(count, dtype), hyper["lr"]))
        new_p, new_slots = [], [[] for _ in slots]
        for i, (p, g) in enumerate(zip(p_leaves, g_leaves)):
            if weight_decay:
                g = g + weight_decay * p                 # L2: the gradient of λ/2 ‖p‖²
            p, values = rule(p, g, [leaves[i] for leaves in slot_leaves], hyper, ops)
            new_p.append(p)
            for out, v in zip(new_slots, values):
                out.append(v)
        slot_trees = dict(zip(slots, (_rebuilt(state.slots[name], old, new, structure)
                                      for name, old, new in zip(slots, slot_leaves,
                                                                new_slots))))
        return (_rebuilt(params, p_leaves, new_p, structure), OptState(count, slot_trees))

    return Optimizer(init, update)


def sgd(lr: float | Schedule = 0.01, momentum: float = 0.0, nesterov: bool = False,
        weight_decay: float = 0.0) -> Optimizer:
    """Stochastic gradient descent:  p ← p - lr · d.

    With momentum μ (heavy ball, as PyTorch and optax.trace): v ← g + μ v, d = v; Nesterov:
    d = g + μ v (Sutskever et al., 2013). Without momentum d = g.
    """
    if nesterov and momentum <= 0:
        raise ValueError("nesterov=True needs a momentum > 0")

    def rule(p, g, slots, h, ops):
        if not momentum:
            return ops.sub(p, h["lr"] * g), ()
        v = ops.scale_add(slots[0], momentum, g)
        d = g + momentum * v if nesterov else v
        return ops.sub(p, h["lr"] * d), (v,)

    return _optimizer(rule, {"trace": 0.0} if momentum else {}, lr, weight_decay=weight_decay)


def momentum(lr: float | Schedule = 0.01, momentum: float = 0.9,
             weight_decay: float = 0.0) -> Optimizer:
    """SGD with heavy-ball momentum (see `sgd`)."""
    return sgd(lr, momentum=momentum, weight_decay=weight_decay)


def nesterov(lr: float | Schedule = 0.01, momentum: float = 0.9,
             weight_decay: float = 0.0) -> Optimizer:
    """SGD with Nesterov momentum (see `sgd`)."""
    return sgd(lr, momentum=momentum, nesterov=True, weight_decay=weight_decay)


def _adam(lr, b1, b2, eps, weight_decay, decoupled) -> Optimizer:
    def prepare(t, lr):
        # bias corrections 1 - β^t (Kingma & Ba, 2015, Algorithm 1) folded into scalars:
        # lr · m̂ / (√v̂ + ε) = (lr / (1 - β1^t)) · m / (√v · (1 - β2^t)^-½ + ε)
        return {"step": lr / (1 - b1 ** t), "inv_sqrt_bc2": (1 - b2 ** t) ** -0.5}

    decay = weight_decay if decoupled else 0.0

    def rule(p, g, slots, h, ops):
        kernel = ops.fused(p, "adam")
        if kernel is not None:  # the arithmetic below, in one pass, bit for bit (CuPy)
            kernel(g, b1, 1 - b1, b2, 1 - b2, h["step"], h["inv_sqrt_bc2"], eps,
                   h["lr"] * decay, p, slots[0], slots[1])
            return p, slots
        m = ops.ema(slots[0], g, b1)                    # first moment
        v = ops.ema(slots[1], g * g, b2)                # second moment
        xp = backend_of(v).xp
        delta = h["step"] * m / (xp.sqrt(v) * h["inv_sqrt_bc2"] + eps)
        if decay:
            delta = delta + (h["lr"] * decay) * p      # AdamW: decay outside the moments
        return ops.sub(p, delta), (m, v)

    return _optimizer(rule, {"mu": 0.0, "nu": 0.0}, lr, prepare,
                      weight_decay=0.0 if decoupled else weight_decay)


def adam(lr: float | Schedule = 1e-3, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
         weight_decay: float = 0.0) -> Optimizer:
    """Adam (Kingma & Ba, 2015): p ← p - lr · m̂ / (√v̂ + ε), with bias-corrected moments
    m̂ = m / (1 - β1^t), v̂ = v / (1 - β2^t). `weight_decay` is L2 on the gradient."""
    return _adam(lr, b1, b2, eps, weight_decay, decoupled=False)


def adamw(lr: float | Schedule = 1e-3, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
          weight_decay: float = 1e-4) -> Optimizer:
    """AdamW (Loshchilov & Hutter, 2019): p ← p - lr · (m̂ / (√v̂ + ε) + λ p), the decay
    decoupled from the adaptive step (optax.adamw; PyTorch's AdamW)."""
    return _adam(lr, b1, b2, eps, weight_decay, decoupled=True)


def rmsprop(lr: float | Schedule = 1e-3, decay: float = 0.9, eps: float = 1e-8,
            momentum: float = 0.0, weight_decay: float = 0.0) -> Optimizer:
    """RMSProp (Tieleman & Hinton, 2012): ν ← ρ ν + (1 - ρ) g²;  d = g / (√ν + ε);
    with momentum μ: v ← d + μ v, d = v. (ε outside the root, as PyTorch and Keras;
    optax's `rmsprop(..., eps_in_sqrt=False)`.)"""

    def rule(p, g, slots, h, ops):
        nu = ops.ema(slots[0], g * g, decay)
        d = g / (backend_of(nu).xp.sqrt(nu) + eps)
        if not momentum:
            return ops.sub(p, h["lr"] * d), (nu,)
        v = ops.scale_add(slots[1], momentum, d)
        return ops.sub(p, h["lr"] * v), (nu, v)

    return _optimizer(rule, {"nu": 0.0, "trace": 0.0} if momentum else {"nu": 0.0}, lr,
                      weight_decay=weight_decay)


def adagrad(lr: float | Schedule = 0.01, initial_accumulator: float = 0.1, eps: float = 1e-7,
            weight_decay: float = 0.0) -> Optimizer:
    """AdaGrad (Duchi et al., 2011): G ← G + g²;  p ← p - lr · g / √(G + ε).
    Defaults as optax.adagrad (the accumulator starts at 0.1)."""

    def rule(p, g, slots, h, ops):
        acc = ops.add(slots[0], g * g)
        return ops.sub(p, h["lr"] * g / backend_of(acc).xp.sqrt(acc + eps)), (acc,)

    return _optimizer(rule, {"sum": initial_accumulator}, lr, weight_decay=weight_decay)


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

    Paths are those of `xbackprop.tree.tree_paths` ("0.W", "2.b", ...). A pattern that
    matches no parameter is an error listing the paths there are (a typo such as "*.bias"
    would otherwise train everything it meant to freeze)."""
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


OPTIMIZERS: dict[str, Callable[..., Optimizer]] = {
    "sgd": sgd, "momentum": momentum, "nesterov": nesterov, "adam": adam, "adamw": adamw,
    "rmsprop": rmsprop, "adagrad": adagrad,
}


#: a learning rate that suits each rule on a small dense network with mini-batches of 32
#: (`xbackprop train digits` reaches test accuracy ≥ 0.95 with each); `xbackprop train
#: --optimizer X` uses it when no --lr is given.
DEFAULT_LR: dict[str, float] = {
    "sgd": 0.1, "momentum": 0.01, "nesterov": 0.01, "adam": 1e-3, "adamw": 1e-3,
    "rmsprop": 1e-3, "adagrad": 0.05,
}


def get_optimizer(optimizer: str | Optimizer, lr: float | Schedule | None = None,
                  **kwargs: Any) -> Optimizer:
    """An Optimizer from an instance (returned as it is) or a name ("adam", "sgd", ...; the
    command line's `--optimizer`), with `lr` or that optimizer's default learning rate."""
    if isinstance(optimizer, Optimizer):
        if lr is not None or kwargs:
            raise ValueError("get_optimizer: a learning rate or settings go with an optimizer "
                             "name, not an Optimizer that already has them")
        return optimizer
    if callable(optimizer) and optimizer in OPTIMIZERS.values():
        raise TypeError(f"optimizer: got the function xbackprop.optim.{optimizer.__name__}; "
                        f"call it to make the optimizer: optim.{optimizer.__name__}(lr)")
    if not isinstance(optimizer, str):
        raise TypeError(f"optimizer: expected an xbackprop Optimizer (e.g. "
                        f"xbackprop.optim.adam(1e-3)) or a name from {sorted(OPTIMIZERS)}, not "
                        f"{type(optimizer).__name__}")
    name = optimizer.strip().lower()
    try:
        factory = OPTIMIZERS[name]
    except KeyError:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose one of {sorted(OPTIMIZERS)} "
                         "or pass one, e.g. xbackprop.optim.adam(1e-3)") from None
    return factory(DEFAULT_LR[name] if lr is None else lr, **kwargs)


# -- optimizers on a plain function --------------------------------------------------------

class Trajectory(NamedTuple):
    """Where `minimize` went: `points[k]` is x after k updates (`points[0]` is x0) and
    `values[k]` is f there; host NumPy arrays, `points: (steps + 1, *x0.shape)`."""

    points: np.ndarray
    values: np.ndarray

    @property
    def x(self) -> np.ndarray:
        """The last point."""
        return self.points[-1]

    @property
    def value(self) -> float:
        """f at the last point."""
        return float(self.values[-1])


def minimize(f: Callable[[Any], Any], grad: Callable[[Any], Any], x0: Any,
             optimizer: Optimizer, steps: int, *, backend: Any = None, dtype: Any = None,
             jit: bool = True) -> Trajectory:
    """Run `optimizer` on a function with a hand-written gradient: `steps` updates
    x ← update(x, grad(x)) from `x0`, and the path they take.

    x0: a Python float, a sequence of floats (e.g. `(-1.5, 2.0)`) or an array: the start.
    f(x) -> a scalar, grad(x) -> ∂f/∂x with x's shape (a tuple of entries is fine); both get
    x as an array of the backend and may use arithmetic, indexing (`x[0]`) and the array's
    namespace (`xb.backend_of(x).xp`). On JAX one update is compiled by `jax.jit`, so they
    must be traceable there (jit=False runs them op by op).
    backend: where to compute (default: x0's, if it is an array of a backend, else the
    current one); dtype: x0's if it is a float array, else float32.

        path = xb.optim.minimize(lambda p: p[0]**2 + p[1]**2, lambda p: 2 * p,
                                 (-1.5, 2.0), xb.optim.momentum(0.05), 100)
        path.points  # (101, 2), path.values  # (101,), path.x, path.value
    """
    from .backends import get_backend, owner_of

    if not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"steps must be a whole number >= 0, not {steps!r}")
    owner = owner_of(x0)
    target = get_backend(backend) if backend is not None or owner is None else owner
    x = _starting_point(x0, target, dtype)
    xp = target.xp

    def value_of(x: Any) -> Any:
        v = _as_array(xp, f(x), x.dtype)
        if math.prod(v.shape) != 1:
            raise ValueError(f"f returned shape {tuple(v.shape)}: it must return one number")
        return xp.reshape(v, ())

    def update(x: Any, state: Any) -> tuple[Any, Any, Any]:
        g = _as_array(xp, grad(x), x.dtype)
        if tuple(g.shape) != tuple(x.shape):
            raise ValueError(f"grad returned shape {tuple(g.shape)} for x of shape "
                             f"{tuple(x.shape)}: it must return ∂f/∂x, one entry per entry "
                             "of x")
        new_x, state = optimizer.update(x, g, state)
        return new_x, state, value_of(x)

    if jit:
        update, value_of = target.compile(update), target.compile(value_of)
    state = optimizer.init(x)
    points, values = [x], []
    for _ in range(int(steps)):
        x, state, value = update(x, state)
        points.append(x)
        values.append(value)
    values.append(value_of(x))
    # one array at a time: stacking thousands of JAX arrays would compile a huge concatenate
    return Trajectory(np.stack([target.to_numpy(p) for p in points]),
                      np.stack([target.to_numpy(v) for v in values]))


def _as_array(xp: Any, value: Any, dtype: Any) -> Any:
    """A function's result as one array: a tuple of entries (arrays or numbers) is stacked."""
    if isinstance(value, (tuple, list)):
        return xp.stack([xp.reshape(xp.asarray(v, dtype=dtype), ()) for v in value])
    return xp.asarray(value, dtype=dtype)


def _starting_point(x0: Any, backend: Any, dtype: Any) -> Any:
    """x0 as a float array of `backend`, checked: numbers only, all finite. Its dtype: `dtype`,
    else x0's if x0 is a float array of `backend` already, else float32."""
    if backend.is_array(x0):
        host = backend.to_numpy(x0)
    else:
        try:
            host = np.asarray(_host(x0))
        except (TypeError, ValueError) as e:
            raise TypeError(f"x0 must be a float, a sequence of floats or an array, not "
                            f"{type(x0).__name__} ({e})") from e
    if host.dtype.kind not in "iuf":
        raise TypeError(
            f"x0 must be a float, a sequence of floats or an array, not {x0!r}: minimize "
            "moves one array; put several parameters into it, e.g. x0=(x, y)")
    if dtype is None:
        dtype = host.dtype if backend.is_array(x0) and host.dtype.kind == "f" else "float32"
    dt = backend.check_dtype(dtype)
    if not np.isfinite(host).all():
        raise ValueError(f"x0 must be finite, got {host.tolist()}")
    return backend.asarray(host, dtype=dt)


def _host(x: Any) -> Any:
    """Arrays of any backend in `x` as NumPy; anything else as it is."""
    from .backends import to_numpy

    return to_numpy(x)
