"""The loop of `fit`: the steps, the statistics waiting on the device, and turning them into
rows of the history. `fit` (fit.py) wires it up; what it calls plugs in beside it: a feed
(feeds.py) gives each step its batch, `FitProgress` shows progress, callbacks run after a
step or a row, `RunCheckpoints` saves.

The loop reads nothing back from the device per step. Each step returns small statistics
(its loss, whether it stayed finite, metric sums) that wait on the device until the loop
needs them: at the end of a row that something reports (a progress line, validation, a
callback, a log line, a checkpoint), and at least every few thousand steps. Rows reported
together are summed up together, vectorised.

A row of the history is an epoch (counting in epochs) or the steps between two
evaluations (counting in steps: every `eval_every` steps, and at the end). Rows are fixed by
the step count, so a resumed run writes the rows of the run it continues.

Every step checks that its loss and gradients are finite. On NumPy, whose values are on the
host anyway, it checks before it updates, so the state stays the last good one. Elsewhere
the flags are read with the statistics, and the steps since the last read are replayed from
the state copied then (from a batch source: its batches again, or those kept of an
iterable), to recover the last good state. Either way the error names the step and the
first layer whose output or gradient went non-finite. `on_nonfinite="skip"` skips such
batches instead and counts them ("skipped" in the history).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from .backends import Array, Backend, backend_of, to_numpy
from .callbacks import Callback, History, step_callbacks
from .checkpoint.resume import RunCheckpoints
from .diagnose import diverged
from .evaluate import evaluate
from .interrupt import Interrupt
from .layers.base import Layer
from .losses import Loss
from .metrics import reduce_stats, scores, stats_for
from .optim import Optimizer
from .progress import FitProgress
from .sources import SourceError
from .train import TrainingDivergedError, TrainState, compile_step, copy_state, step_function

__all__ = ["Loop", "MAX_PENDING"]

#: the longest the loop lets step statistics wait on the device, in steps
MAX_PENDING = 4096


class Loop:
    """The steps of one `fit` call, the statistics waiting on the device, and turning them
    into rows of the history.

    period: steps per row (an epoch's steps, or `eval_every`). spe: steps per epoch of
    arrays (for naming a step's epoch and batch; None for a source). counting_steps: rows
    carry their step count ("step") and the last one closes where the run ends. metrics:
    the loss's metrics that rows carry (and their validation twins), the steps computing
    only the sums those need; None: all.
    """

    def __init__(self, model: Layer, loss: Loss, optimizer: Optimizer, backend: Backend,
                 feed: Any, *, jit: bool, skip: bool, val: tuple[Array, Array] | None,
                 val_batch_size: int, period: int, spe: int | None,
                 counting_steps: bool, metrics: Any = None) -> None:
        self.model, self.loss, self.backend, self.feed = model, loss, backend, feed
        self.val, self.val_batch_size, self.jit, self.skip = val, val_batch_size, jit, skip
        self.period, self.spe, self.counting_steps = period, spe, counting_steps
        stats = stats_for(loss.task, metrics)
        self.metrics = None if metrics is None else frozenset(metrics)
        self.skipped = 0
        guard: str | None
        if backend.host_arrays:  # reading a value costs nothing: check before updating
            guard = "check-skip" if skip else "check"
        elif backend.compiles:  # check in the compiled step; read the flags in bulk
            guard = "select" if skip else None
        else:  # an asynchronous device (CuPy): read the flags in bulk, skipping syncs
            guard = "check-skip" if skip else None
        self.check_each_step = guard in ("check", "check-skip")
        core = step_function(model, loss, optimizer, donate=True, aux=True, guard=guard,
                             stats=stats)
        backend.prepare_training()
        step = feed.wrap(core)
        #: a compiled step's statistics come back as one vector: [(name, shape)] to unpack
        self.layout: list[tuple[str, tuple[int, ...]]] | None = None
        if backend.compiles and jit:
            step = self._packed(step)
        self.step = compile_step(backend, step, jit, donate_argnums=(0,), **feed.shardings)

    def _packed(self, step: Callable) -> Callable:
        """`step` returning its statistics concatenated into one vector of the loss's dtype:
        each array a compiled call returns costs about 1.6 µs on a CPU, and each read back
        another transfer, more than a tiny network's step (flags and counts are exact as
        floats)."""
        def packed(state: TrainState, *args: Any) -> tuple[TrainState, Array]:
            state, aux = step(state, *args)
            keys = sorted(aux)
            xp, dtype = backend_of(aux["loss"]).xp, aux["loss"].dtype
            self.layout = [(k, tuple(aux[k].shape)) for k in keys]  # set while tracing
            return state, xp.concat([xp.reshape(xp.astype(aux[k], dtype), (-1,))
                                     for k in keys])
        return packed

    def unpack(self, host: Any) -> dict[str, Any]:
        """A step's statistics on the host as a dict (`host`: what `to_numpy` gave)."""
        if self.layout is None:
            return host
        out, at = {}, 0
        for key, shape in self.layout:
            size = math.prod(shape)
            value = host[at:at + size].reshape(shape)
            out[key] = value.astype(bool) if key == "finite" else value
            at += size
        return out

    def host(self, auxs: list[Any]) -> list[dict[str, Any]]:
        """Steps' statistics on the host, as dicts: a compiled step's vectors moved together;
        an uncompiled step's arrays each by the backend's own `to_numpy` (the generic one
        looks for each array's owner first: on NumPy that was a fifth of what `fit` adds
        to a tiny network's step)."""
        if self.layout is not None:
            return [self.unpack(h) for h in to_numpy(auxs)]
        move = self.backend.to_numpy
        return [{k: move(v) for k, v in aux.items()} for aux in auxs]

    def loss_of(self, aux: Any) -> float:
        """The loss of one step's statistics, still on the device."""
        if self.layout is None:
            return float(aux["loss"])
        return float(to_numpy(aux)[[k for k, _ in self.layout].index("loss")])

    def upto(self, s: int, planned: int) -> int:
        """Rows are complete for the steps before this, `s` steps being done: the rows that
        ended by `s`, and at the run's planned end the last, shorter one too."""
        return s if s == planned else s // self.period * self.period

    def run(self, state: TrainState, start: int, end: int, planned: int, history: History,
            progress: FitProgress, callbacks: list[Callback], rows: list[tuple[int, dict]],
            interrupt: Interrupt, checkpoints: RunCheckpoints | None) -> TrainState:
        """Steps `start` to `end` (`planned`: where the run ends, `end` being earlier when
        max_steps cuts it); `rows` holds the host statistics of the steps of an unfinished
        row before `start` (from a checkpoint), and gets this run's."""
        period, feed = self.period, self.feed
        per_step = step_callbacks(callbacks)
        keeps = getattr(feed, "keeps_batches", False)  # an iterable's batches, for a replay
        pending: list[tuple[int, Any]] = []   # (step, statistics still on the device)
        anchor = (start, state if self.check_each_step else copy_state(state))
        if keeps:
            feed.anchor(start, replays=not self.check_each_step)
        clock = time.perf_counter()
        s = start
        while s < end:
            try:
                args = feed.args(s)
            except SourceError as e:
                raise self._bad_batch(e, checkpoints) from None
            state, aux = self.step(state, *args)
            if self.check_each_step and not aux["finite"] and not self.skip:
                rows += [(st, to_numpy(a)) for st, a in pending] + [(s, to_numpy(aux))]
                self._report(rows, s // period * period, history, None, None, clock, [])
                raise self._diverged(s, state, history, checkpoints)
            pending.append((s, aux))
            s += 1
            progress.step(pending, self.loss_of)
            stopping = interrupt.requested
            # a list, not a generator: every callback runs, not only up to the first True
            if per_step and any([cb.on_step(s, state) for cb in per_step]):  # noqa: C419
                end = planned = s  # stop here; the steps since the last row make a row
            at_row = s % period == 0 or s == planned
            if not (at_row or s == end or stopping or len(pending) >= MAX_PENDING
                    or (keeps and feed.must_sync())):
                continue
            row = (s - 1) // period
            due = checkpoints is not None and at_row and checkpoints.due(row)
            if not (stopping or due or s == end or len(pending) >= MAX_PENDING
                    or progress.wants(row) or callbacks or self.val is not None
                    or (keeps and feed.must_sync())):
                continue
            # read the statistics back; find the first step that went non-finite, if any
            host = self.host([aux for _, aux in pending])
            bad = next((i for i, h in enumerate(host) if not h["finite"]), None)
            if bad is not None and not self.skip:
                bad_step = pending[bad][0]
                good = self._replay(anchor, bad_step)
                rows += [(st, h) for (st, _), h in zip(pending[:bad], host[:bad])]
                self._report(rows, bad_step // period * period, history, None, None, clock,
                             [])
                raise self._diverged(bad_step, good, history, checkpoints)
            rows += [(st, h) for (st, _), h in zip(pending, host)]
            pending = []
            reported = len(history.get("loss", ()))
            stop = self._report(rows, self.upto(s, planned), history, state, progress, clock,
                                callbacks)
            if len(history.get("loss", ())) != reported:
                clock = time.perf_counter()
            saved = None
            if checkpoints is not None and (due or stopping or stop or s == end):
                saved = checkpoints.save(state, history, rows)
            if stopping:
                where = f"; saved {saved}" if saved else ""
                epoch = f" (epoch {(s - 1) // period + 1})" if not self.counting_steps else ""
                raise KeyboardInterrupt(f"training interrupted after step {s}{epoch}{where}")
            if stop:
                break
            if not self.check_each_step:
                anchor = (s, copy_state(state))
                if keeps:
                    feed.anchor(s, replays=True)
        return state

    def _report(self, rows: list, upto: int, history: History, state: Any,
                progress: FitProgress | None, clock: float, callbacks: list[Callback]) -> bool:
        """Append the rows of the steps before `upto` (all in `rows`, which loses them) to
        the history; validate, report and call back on the last of them when `state` is
        given. Returns True if a callback asks to stop."""
        done = [r for r in rows if r[0] < upto]
        if not done:
            return False
        del rows[:len(done)]
        steps = np.array([st for st, _ in done])
        groups = steps // self.period
        starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
        stats = [h for _, h in done]
        keys = [k for k in stats[0] if all(k in h for h in stats)]  # (a checkpoint's rows
        stacked = {k: np.stack([np.asarray(h[k], dtype=np.float64) for h in stats])  # may
                   for k in keys}                                    # hold more sums)
        metric_keys = [k for k in stacked if k not in ("loss", "finite")]
        totals = reduce_stats({k: stacked[k] for k in metric_keys}, starts)
        losses = np.add.reduceat(stacked["loss"] * (stacked["count"] if
                                                    self.loss.reduction == "mean" else 1.0),
                                 starts)
        if self.loss.reduction == "mean":
            losses = losses / totals["count"]
        metrics = scores(totals, self.loss.task) if len(starts) > 1 else {
            k: np.atleast_1d(v) for k, v in scores(totals, self.loss.task).items()}
        if self.metrics is not None:  # those asked for ("r2" needs "mse"'s sums, not "mse")
            metrics = {k: v for k, v in metrics.items() if self.wanted(k)}
        skipped = np.add.reduceat(1.0 - stacked["finite"], starts)
        self.skipped += int(skipped.sum())
        seconds = (time.perf_counter() - clock) / len(starts)
        ends = np.r_[starts[1:], len(steps)] - 1
        stop = False
        for j, row in enumerate(groups[starts]):
            logs: dict[str, Any] = {"step": int(steps[ends[j]]) + 1} if self.counting_steps \
                else {}
            logs.update({"loss": float(losses[j]),
                         **{k: float(v[j]) for k, v in metrics.items()}})
            if self.skip:
                logs["skipped"] = int(skipped[j])
            last = j == len(starts) - 1
            if last and state is not None and self.val is not None:
                val = evaluate(self.model, state.params, *self.val, self.loss,
                               model_state=state.model_state, jit=self.jit,
                               batch_size=self.val_batch_size)
                logs.update({f"val_{k}": v for k, v in val.items()
                             if k == "loss" or self.wanted(k)})
            logs["time"] = seconds
            history.append(logs)
            if progress is not None:
                progress.row(int(row), logs)
            if last and state is not None:
                # a list, not a generator: every callback runs, not only up to the first True
                stop = any([cb.on_logs(int(row), logs, state) for cb in callbacks])  # noqa: C419
        return stop

    def wanted(self, key: str) -> bool:
        """Whether the rows carry metric `key` ("r2", or per output "r2[1]")."""
        return self.metrics is None or key.split("[")[0] in self.metrics

    @staticmethod
    def _bad_batch(error: SourceError, checkpoints: RunCheckpoints | None) -> SourceError:
        """`error` saying that nothing was trained on the batch, and which checkpoint is the
        last (untouched: fit resumes from it once the source is mended)."""
        latest = checkpoints.latest() if checkpoints is not None else None
        kept = (f" The newest checkpoint, {latest}, is as it was: resume=True goes on from it."
                if latest is not None else "")
        return SourceError(f"{error} (nothing was trained on this batch.{kept})", error.step)

    def _replay(self, anchor: tuple[int, TrainState], bad_step: int) -> TrainState:
        """The state before `bad_step`: the steps from the anchor's, replayed."""
        step, state = anchor
        state = copy_state(state)  # the anchor itself stays as it was
        for s in range(step, bad_step):
            state, _ = self.step(state, *self.feed.args(s))
        return state

    def _diverged(self, step: int, state: TrainState, history: History,
                  checkpoints: RunCheckpoints | None) -> TrainingDivergedError:
        """The error for a step whose loss or gradients went non-finite, from the state
        before it."""
        position = ""
        if self.spe is not None:
            epoch, i = divmod(step, self.spe)
            position = f"epoch {epoch + 1}, batch {i + 1} of {self.spe}"
        return diverged(self.model, self.loss, self.backend, state,
                        lambda: self.feed.batch(step), step, position, history=history,
                        checkpoint=checkpoints.latest() if checkpoints is not None else None)
