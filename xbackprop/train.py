"""The pure train step, and the state it carries from one step to the next.

A step is one pure function `(state, batch) -> (state, loss)` over a `TrainState` that holds
everything a step changes: parameters, optimizer state, non-trainable model state (BatchNorm
statistics), the step count and the random key. On JAX the whole step, hand-written backward
included, is compiled by `jax.jit`. `fit` (xbackprop/fit.py) is a loop around it.

A batch is `(x, y)` or `(x, y, mask)`: `mask: (N,)` marks real samples (1) and padding (0)
that fills a batch up to a fixed size, so a compiled step sees one shape. Padded samples
count for nothing: not in the loss, not in the gradients, not in BatchNorm's statistics.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from .backends import Array, Backend, backend_of, get_backend, owner_of, trusted
from .layers.base import Context, Layer
from .losses import Loss, get_loss, targets_checked
from .metrics import batch_stats
from .optim import Optimizer, get_optimizer
from .random import fold_in, make_key
from .tree import first_leaf, tree_leaves, tree_map

__all__ = ["TrainState", "TrainingDivergedError", "loss_and_grads", "make_train_step",
           "step_function", "compile_step", "compiled", "all_finite", "copy_state"]

Batch = Sequence[Array]  # (x, y) or (x, y, mask)


class TrainingDivergedError(FloatingPointError):
    """The loss or a gradient became NaN or infinite."""

    #: set where fit raises it (diagnose.diverged): the TrainState from before the step, the
    #: history so far and the step's index
    state: TrainState
    history: Any
    step: int


class TrainState(NamedTuple):
    """Everything a train step reads and replaces; a pytree, so JAX can compile over it
    and a checkpoint can save it by name."""

    params: Any
    opt_state: Any
    model_state: Any
    step: Any  # updates done: a Python int on NumPy/CuPy, an int32 array on JAX
    key: Array  # uint32[2] random key; step keys are fold_in(key, step)

    @classmethod
    def create(cls, params: Any, optimizer: Optimizer | str, model_state: Any = None,
               seed: int = 0) -> TrainState:
        backend = backend_of(*tree_leaves(params))
        return cls(params, get_optimizer(optimizer).init(params), model_state,
                   backend.counter(0), make_key(seed, backend))


def loss_and_grads(model: Layer, loss: Loss, params: Any, batch: Batch, ctx: Context
                   ) -> tuple[Array, Any, Any]:
    """Forward, loss, backward: `(loss value, parameter gradients, the model's caches)`.
    With a mask in the batch (or in `ctx`), padded samples count for nothing."""
    x, y, mask = _unpack(batch)
    if mask is not None and ctx.mask is None:
        ctx = Context(ctx.train, ctx.key, ctx.state, mask)
    out, caches = model.forward(params, x, ctx)
    value, loss_cache = loss.forward(out, y, ctx.mask)
    grads = model.param_grads(params, caches, loss.backward(loss_cache))
    return value, grads, caches


def _unpack(batch: Batch) -> tuple[Array, Array, Array | None]:
    if len(batch) == 2:
        return batch[0], batch[1], None
    if len(batch) == 3:
        return batch[0], batch[1], batch[2]
    raise ValueError(f"a batch is (x, y) or (x, y, mask), not a sequence of {len(batch)}")


def make_train_step(model: Layer, loss: Loss | str, optimizer: Optimizer | str, *,
                    backend: str | Backend | None = None, jit: bool = True,
                    donate: bool = False
                    ) -> Callable[[TrainState, Batch], tuple[TrainState, Array]]:
    """The pure train step `(state, (x, y)) -> (state, loss)` for `model`, compiled where
    the backend compiles (JAX: `jax.jit`). A batch may carry a mask: `(x, y, mask)`.

    backend: the backend to compile for; by default the one the state's parameters are on,
    found at the first call (so a step on JAX arrays is compiled, never silently run op by
    op) and again for a state of another backend.

    donate=True lets the step reuse the input state's buffers for its output: the optimizer
    updates parameters and slots in place on NumPy and CuPy, and JAX may donate them on
    GPUs. The numbers are the same; the state you passed in is then stale, so keep only
    the one the step returns (fit does this).

    The step does not check its targets' values (that would read them back from a device
    every step): check your data once with `loss.check_target(y, pred_shape)`, as `fit` and
    `evaluate` do.
    """
    step = step_function(model, get_loss(loss), get_optimizer(optimizer), donate=donate,
                         aux=False, guard=None)
    donate_argnums = (0,) if donate else ()

    def made(target: Backend) -> Callable:
        target.prepare_training()
        if target.compiles and jit:
            return _compile_keeping_key(target, step, donate_argnums,
                                        getattr(model, "stochastic", False))
        return compile_step(target, step, jit, donate_argnums=donate_argnums)

    if backend is not None:
        return made(get_backend(backend))
    steps: dict[Backend, Callable] = {}

    @functools.wraps(step)
    def on_the_state_backend(state: TrainState, batch: Batch) -> tuple[TrainState, Array]:
        target = backend_of(first_leaf(state.params))
        fn = steps.get(target)
        if fn is None:
            fn = steps[target] = made(target)
        return fn(state, batch)

    return on_the_state_backend


def _compile_keeping_key(backend: Backend, step: Callable, donate_argnums: tuple[int, ...],
                         stochastic: bool) -> Callable:
    """`step` compiled with the state's random key as an argument of its own (None for a
    model that draws no random numbers), returned by the caller instead of by the compiled
    function. A step never changes the key (step keys are `fold_in(key, step)`), but every
    array a compiled call takes costs about 0.5 µs on JAX's CPU, and every array it returns
    a copy and 1.5 µs (a tenth of a tiny network's step); and the key stays out of the
    donated state, so it remains valid for the state the step returns."""
    def without_key(head: tuple, key: Array | None, batch: Batch) -> tuple[tuple, Any]:
        new, out = step(TrainState._make((*head, key)), batch)
        return tuple(new[:4]), out

    fn = compile_step(backend, without_key, True, donate_argnums=donate_argnums)

    @functools.wraps(step)
    def run(state: TrainState, batch: Batch) -> tuple[TrainState, Any]:
        head, out = fn(state[:4], state.key if stochastic else None, batch)
        return TrainState._make((*head, state.key)), out
    return run


def step_function(model: Layer, loss: Loss, optimizer: Optimizer, *, donate: bool, aux: bool,
                  guard: str | None, stats: frozenset[str] | None = None) -> Callable:
    """The step function, uncompiled.

    aux=True returns `(state, {"loss", "finite", <metric statistics>})` instead of
    `(state, loss)`: what `fit` records; `stats` limits the metric statistics to those
    (`metrics.stats_for`; None: all the loss's task has, "count" always). guard, for a loss
    or gradient that is not finite:
    None (update anyway), "check" (test first and skip the update, for backends whose
    values are on the host: NumPy), "select" (compute the update and keep the old state
    where it is not finite: compiled backends). "check-skip" and "select" advance the step
    count past a skipped batch; "check" leaves the state as it was, to be reported.
    """
    if guard is not None and not aux:
        raise ValueError(f"step_function: guard={guard!r} reads the statistics of aux=True; "
                         "pass aux=True with a guard")
    stochastic = getattr(model, "stochastic", False)

    def step(state: TrainState, batch: Batch) -> tuple[TrainState, Any]:
        x, y, mask = _unpack(batch)
        key = fold_in(state.key, state.step) if stochastic else None
        ctx = Context(train=True, key=key, state=state.model_state, mask=mask)
        out, caches = model.forward(state.params, x, ctx)
        with targets_checked():  # by fit, once; a step never reads its targets back
            value, loss_cache = loss.forward(out, y, mask)
        grads = model.param_grads(state.params, caches, loss.backward(loss_cache))
        info: dict[str, Any] = {}  # (guard needs aux: checked above)
        if aux:
            info = {"loss": value, "finite": all_finite(value, grads),
                    **batch_stats(out, y, loss.task, threshold=loss.threshold, mask=mask,
                                  stats=stats)}
        if guard in ("check", "check-skip") and not bool(info["finite"]):
            if guard == "check":
                return state, info  # untouched: the last good state, for the report
            return state._replace(step=state.step + 1), info
        params, opt_state = optimizer.update(state.params, grads, state.opt_state,
                                             inplace=donate)
        model_state = model.next_state(state.model_state, caches)
        if guard == "select":
            keep = info["finite"]
            params, opt_state, model_state = _select(keep, (params, opt_state, model_state),
                                                     (state.params, state.opt_state,
                                                      state.model_state))
        new = TrainState(params, opt_state, model_state, state.step + 1, state.key)
        return new, (info if aux else value)

    return step


def all_finite(value: Array, grads: Any) -> Array:
    """True (a 0-d array) when the loss and every gradient are finite: one scalar, tested
    once (`Backend.all_finite`: the loss plus each gradient's sum)."""
    return backend_of(value).all_finite(value, tree_leaves(grads))


def _select(keep: Array, new: Any, old: Any) -> Any:
    """`new` where `keep` is true, else `old`, leaf by leaf (Python numbers included)."""
    def one(a: Any, b: Any) -> Any:
        owner = backend_of(a, b)
        return owner.xp.where(keep, a, b)
    return tree_map(one, new, old)


def compile_step(backend: Backend, step: Callable, jit: bool,
                 donate_argnums: tuple[int, ...] = (), **shardings: Any) -> Callable:
    """A train step `(state, *inputs) -> ...` made to run on `backend`: compiled where it
    compiles; elsewhere its first call runs with every check (each layer's arrays, what each
    layer returns), and later calls check the state and inputs once at the boundary and run
    `trusted` inside, since per-call checks cost more than a tiny network's arithmetic."""
    fn = compiled(backend, step, jit, donate_argnums, **shardings)
    if backend.compiles and jit:
        return fn  # checked while tracing, once per shape
    first = [True]

    @functools.wraps(step)
    def run(state: TrainState, *inputs: Any) -> Any:
        if first[0]:
            out = fn(state, *inputs)
            first[0] = False
            return out
        with trusted(backend_of(state.key, *tree_leaves(inputs))):  # one check, here
            return fn(state, *inputs)
    return run


def compiled(backend: Backend, fn: Callable, jit: bool, donate_argnums: tuple[int, ...] = (),
             in_shardings: Any = None, out_shardings: Any = None) -> Callable:
    """`fn` compiled by `backend` (JAX: jit, with the placements of its arguments and
    outputs: see `Backend.compile`), or with jit=False run op by op in the same numerics
    (JAX on a GPU: full float32 matrix products either way) on arrays placed as they are."""
    if jit:
        return backend.compile(fn, donate_argnums=donate_argnums, in_shardings=in_shardings,
                               out_shardings=out_shardings)

    @functools.wraps(fn)
    def eager(*args: Any) -> Any:
        with backend.scope(), backend.numerics():
            return fn(*args)
    return eager


def copy_state(tree: Any) -> Any:
    """`tree` with every array copied (train steps that donate their state update its arrays
    in place on NumPy and CuPy: a state kept for later must be a copy)."""
    def one(leaf: Any) -> Any:
        owner = owner_of(leaf)
        return leaf if owner is None else owner.xp.asarray(leaf, copy=True)
    return tree_map(one, tree)
