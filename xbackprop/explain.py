"""One training step, explained: what every layer received, computed and sent back, taken
from the layers' own forward and backward passes, printed as tables.

    record = xb.explain(model, params, x, y, xb.MSE("sum", scale=0.5), xb.optim.sgd(0.5))
    print(record)                  # values and gradients per unit, parameters and updates
    record.layers[2].grads["W"]    # ∂L/∂W of layer 2, exactly as its backward returned it

A `Sequential` runs layer by layer: each layer's `forward` gives its output and cache, the
loss's `backward` gives ∂L/∂(output), and each layer's `backward`, last to first, turns the
gradient of its output (the "upstream" gradient it receives) into the gradient of its input
and of its parameters. Nothing is computed beside those passes, so the record shows what
training does. An optimizer, if given, makes the update from those gradients.

Activations are layers of their own, so the pre-activation of `Dense → Sigmoid` is the
Dense layer's output (the weighted sum z = x W + b) and the Sigmoid's input; the
Dense layer's upstream gradient ∂L/∂z is the "delta" δ of the classic derivations.

Tables use the tutorial's names where `names` supplies them: keys "input" (the input's
units), "0", "1", ... (layer i's output units), "0.W", "2.b", ... (a parameter's entries:
nested lists of the array's shape, without the batch axis) and "loss" (e.g. "E").
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .backends import Backend, backend_of, get_backend, to_numpy, tree_to_backend
from .layers.base import Context, Layer, describe
from .losses import Loss, get_loss
from .model import Sequential, init_state
from .optim import Optimizer
from .random import make_key
from .tree import tree_leaves, tree_paths

__all__ = ["explain", "StepRecord", "LayerStep", "format_table"]

Names = Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class LayerStep:
    """What layer `index` saw and did in one step; NumPy arrays, batch axis first.

    x: its input (N, ...);  y: its output (N, ...), for a Dense layer the weighted sum;
    dy: ∂L/∂y, the upstream gradient its backward received;  dx: ∂L/∂x, what it sent down;
    params, grads (∂L/∂param) and, with an optimizer, new_params: dicts by parameter name
    (by path within the layer for one that holds layers: "0.gamma", "1.W_qkv").
    """

    index: int
    layer: Layer
    x: np.ndarray
    y: np.ndarray
    dy: np.ndarray
    dx: np.ndarray
    params: dict[str, np.ndarray]
    grads: dict[str, np.ndarray]
    new_params: dict[str, np.ndarray] | None

    @property
    def name(self) -> str:
        """e.g. "2 Dense(2)"."""
        return f"{self.index} {describe(self.layer)}"

    @property
    def updates(self) -> dict[str, np.ndarray] | None:
        """new - old for every parameter (None without an optimizer)."""
        if self.new_params is None:
            return None
        return {k: self.new_params[k] - self.params[k] for k in self.params}


@dataclasses.dataclass(frozen=True)
class StepRecord:
    """One step: every layer's `LayerStep`, the loss and its gradient. `print()` it."""

    layers: tuple[LayerStep, ...]
    loss_fn: Loss
    loss: float
    target: np.ndarray
    dloss: np.ndarray  # ∂L/∂(model output), from the loss's backward
    backend: str
    dtype: str
    names: Names
    #: the optimizer's state after the update (NumPy): pass it as `opt_state` to explain the
    #: next step
    opt_state: Any = None

    @property
    def input(self) -> np.ndarray:
        return self.layers[0].x

    @property
    def output(self) -> np.ndarray:
        return self.layers[-1].y

    @property
    def grads(self) -> list[dict[str, np.ndarray]]:
        """∂L/∂param for every layer, shaped as a Sequential's parameters."""
        return [step.grads for step in self.layers]

    @property
    def new_params(self) -> list[dict[str, np.ndarray]] | None:
        """Every layer's parameters after the update (None without an optimizer)."""
        new = [step.new_params for step in self.layers if step.new_params is not None]
        return new if len(new) == len(self.layers) else None  # (all, or none: no optimizer)

    def label(self, key: str, index: tuple[int, ...]) -> str:
        """The name of entry `index` of "input", layer output "i" or parameter "i.W"."""
        return _label(self.names, key, index)

    def __str__(self) -> str:
        return self.format()

    def format(self, *, samples: Sequence[int] | None = None, precision: int = 6,
               max_rows: int = 8) -> str:
        """The step as text: a header, the units table (forward values, top to bottom, and
        their gradients, which the backward pass computes bottom to top) and the
        parameters table. `samples`: which samples to show (default: all of up to four,
        else the first); `max_rows`: units or entries shown per layer or parameter."""
        n = self.input.shape[0]
        shown = list(samples) if samples is not None else list(range(n if n <= 4 else 1))
        loss_name = self.names.get("loss", "L")
        head = (f"one training step on {self.backend} ({self.dtype}), {n} sample"
                f"{'s' * (n != 1)}; loss {describe(self.loss_fn)}: {loss_name} = "
                f"{self.loss:.{precision}g}")
        if len(shown) < n:
            head += f"\n(sample {', '.join(map(str, shown))} of {n}; format(samples=...) " \
                    "shows others)"
        return "\n\n".join([head, self._units_table(shown, precision, max_rows, loss_name),
                            self._params_table(precision, max_rows, loss_name)]).rstrip()

    def chain_rule(self, *, precision: int = 6, sample: int = 0) -> str:
        """Every weight's gradient split into the chain rule's factors, for Dense layers each
        followed by an elementwise activation (the classic derivation's network):

            ∂L/∂w_ij = ∂L/∂out_j × ∂out_j/∂net_j × ∂net_j/∂w_ij = δ_j × in_i

        ∂L/∂out_j is the activation's upstream gradient, ∂out_j/∂net_j the factor its
        backward multiplied it by (dx / dy), δ_j = ∂L/∂net_j what it sent down, in_i the
        Dense layer's input; the last column is the Dense backward's own ∂L/∂w_ij, which
        the product must equal. One sample: `sample` (of a batch, the sum over samples is
        the gradient, so the last column is shown for batches of one only)."""
        loss_name = self.names.get("loss", "L")
        header = ["weight", f"∂{loss_name}/∂out", "∂out/∂net", f"δ = ∂{loss_name}/∂net",
                  "∂net/∂w = in", "product", "Dense backward"]
        rows = []
        for dense, act in zip(self.layers, self.layers[1:]):
            if "W" not in dense.params or dense.params["W"].ndim != 2:
                continue
            if not act.layer.elementwise:
                raise ValueError(f"chain_rule: {dense.name} is followed by {act.name}, not an "
                                 "elementwise activation (one whose class sets "
                                 "elementwise = True: Sigmoid, Tanh, ReLU, ...)")
            for i, j in _entries(dense.grads["W"].shape):
                grad = dense.grads["W"][i, j]
                upstream, delta = act.dy[sample, j], act.dx[sample, j]
                local = delta / upstream if upstream != 0 else float("nan")
                inp = dense.x[sample, i]
                whole = _number(grad, precision) if self.input.shape[0] == 1 else ""
                key = f"{dense.index}.W"
                label = _label(self.names, key, (i, j))
                rows.append([label if key in self.names else f"{dense.index}.{label}",
                             *(_number(v, precision) for v in (upstream, local, delta, inp,
                                                               delta * inp)), whole])
        if not rows:
            raise ValueError("chain_rule: the model has no Dense layer followed by an "
                             "activation")
        return ("the chain rule, weight by weight (factors from the layers' forward and "
                "backward passes)\n" + format_table(header, rows, numeric=lambda c: c >= 1))

    def _units_table(self, shown: list[int], precision: int, max_rows: int,
                     loss_name: str) -> str:
        suffix = (lambda s: f" [{s}]") if len(shown) > 1 else (lambda s: "")
        header = ["layer", "unit", *[f"value{suffix(s)}" for s in shown],
                  *[f"∂{loss_name}/∂unit{suffix(s)}" for s in shown]]
        rows: list[list[str]] = []
        blocks = [("input", "input", self.input, self.layers[0].dx)]
        blocks += [(step.name, str(step.index), step.y, step.dy) for step in self.layers]
        for title, key, values, grads in blocks:
            rows += _unit_rows(self.names, title, key, values[shown], grads[shown], precision,
                               max_rows)
        if self.target.shape == self.output.shape:
            rows += _unit_rows(self.names, "target", str(len(self.layers) - 1),
                               self.target[shown], None, precision, max_rows)
        else:  # labels
            rows.append(["target", "label", *[str(v) for v in self.target[shown]]])
        return ("units: the forward pass computes the values top to bottom, the backward pass "
                "the gradients\nbottom to top; a layer's rows are its outputs and the upstream "
                "gradient its backward got\n" + format_table(header, rows))

    def _params_table(self, precision: int, max_rows: int, loss_name: str) -> str:
        header = ["layer", "parameter", "value", f"∂{loss_name}/∂param"]
        with_update = self.new_params is not None
        if with_update:
            header += ["update", "new value"]
        rows: list[list[str]] = []
        for step in self.layers:
            first = len(rows)
            for pname in sorted(step.params):
                value, grad = step.params[pname], step.grads[pname]
                columns = [value, grad]
                if step.new_params is not None:  # (for every layer when with_update)
                    columns += [step.new_params[pname] - value, step.new_params[pname]]
                key = f"{step.index}.{pname}"
                for count, index in enumerate(_entries(value.shape)):
                    if count == max_rows:
                        rows.append(["", f"… {value.size - max_rows} more", *[""] * len(columns)])
                        break
                    rows.append([step.name if len(rows) == first else "",
                                 _label(self.names, key, index),
                                 *[_number(c[index], precision) for c in columns]])
        if not rows:
            return "parameters: none"
        title = "parameters" + (": the optimizer's update from these gradients" if with_update
                                else " (no optimizer given: no update)")
        return title + "\n" + format_table(header, rows)


def explain(model: Layer, params: Any, x: Any, y: Any, loss: Loss | str,
            optimizer: Optimizer | None = None, *, opt_state: Any = None,
            model_state: Any = None, train: bool = True, seed: int = 0,
            names: Names | None = None, jit: bool = True) -> StepRecord:
    """Run one training step of `model` through its own forward and hand-written backward
    passes, layer by layer, and return the record of it (print it for tables).

    x: (N, ...) inputs and y: targets (or integer labels), moved to the parameters' backend
    and dtype; loss: a Loss or its short name; optimizer: if given, the update it makes from
    these gradients (from `opt_state`, default a fresh `optimizer.init(params)`).
    train: the step's mode (Dropout and BatchNorm act as in training); seed: the random
    key of stochastic layers; names: the tutorial's names for the tables (module docstring);
    jit: on JAX, compile the step (once per model, loss and optimizer) rather than run it
    op by op. Nothing is changed: `params` stay as they are, the record holds host copies.
    """
    loss = get_loss(loss)
    leaves = tree_leaves(params)
    backend = backend_of(*leaves) if leaves else get_backend(None)
    dtype = backend.numpy_dtype(leaves[0].dtype) if leaves else np.dtype("float32")
    layers, layer_params = _layers(model, params)
    x = backend.asarray(x, dtype=dtype)
    if not backend.is_array(y):  # a list's floats are float64, not the library's default
        y = np.asarray(to_numpy(y))  # (PyTorch would make them float32, rounding 0.99)
    y = backend.asarray(y)
    if backend.numpy_dtype(y.dtype).kind == "f":
        y = backend.asarray(y, dtype=dtype)
    if model_state is None:
        model_state = init_state(model, tuple(x.shape[1:]), dtype=dtype, backend=backend)
    if optimizer is not None:
        opt_state = optimizer.init(params) if opt_state is None else \
            tree_to_backend(opt_state, backend)
    key = make_key(seed, backend) if getattr(model, "stochastic", False) else None
    step = _step_fn(model, loss, optimizer, train, backend, jit)
    with backend.numerics():
        (inputs, outputs, upstream, downstream, grads, value, dloss, updated,
         new_state) = step(params, x, y, key, model_state, opt_state)
    new_params = None if updated is None else _layers(model, updated)[1]
    steps = tuple(
        LayerStep(i, layer, to_numpy(inputs[i]), to_numpy(outputs[i]), to_numpy(upstream[i]),
                  to_numpy(downstream[i]), _named(layer_params[i]), _named(grads[i]),
                  None if new_params is None else _named(new_params[i]))
        for i, layer in enumerate(layers))
    return StepRecord(steps, loss, float(value), to_numpy(y), to_numpy(dloss), backend.name,
                      str(np.dtype(dtype)), dict(names or {}), to_numpy(new_state))


@functools.lru_cache(maxsize=32)
def _step_fn(model: Layer, loss: Loss, optimizer: Optimizer | None, train: bool,
             backend: Backend, jit: bool) -> Callable:
    """The explained step as one pure function of arrays, compiled where the backend
    compiles: `(params, x, y, key, model_state, opt_state) -> (inputs, outputs, upstream
    gradients, downstream gradients, parameter gradients, loss, ∂L/∂output, updated
    params, optimizer state)`, per layer lists."""
    def step(params: Any, x: Any, y: Any, key: Any, model_state: Any, opt_state: Any
             ) -> tuple:
        layers, layer_params = _layers(model, params)
        contexts = _contexts(model, layers, train, key, model_state)
        inputs, outputs, caches = [], [], []
        h = x
        for layer, p, ctx in zip(layers, layer_params, contexts):
            inputs.append(h)
            h, cache = layer.forward(p, h, ctx)
            outputs.append(h)
            caches.append(cache)
        value, loss_cache = loss.forward(h, y)
        dloss = loss.backward(loss_cache)

        n = len(layers)
        upstream: list[Any] = [None] * n
        downstream: list[Any] = [None] * n
        grads: list[Any] = [{}] * n
        dy = dloss
        for i in range(n - 1, -1, -1):
            upstream[i] = dy
            dy, grads[i] = layers[i].backward(layer_params[i], caches[i], dy)
            downstream[i] = dy

        updated, new_state = None, None
        if optimizer is not None:
            tree_grads = grads if isinstance(model, Sequential) else grads[0]
            updated, new_state = optimizer.update(params, tree_grads, opt_state)
        return inputs, outputs, upstream, downstream, grads, value, dloss, updated, new_state

    return backend.compile(step) if jit else step


def _layers(model: Layer, params: Any) -> tuple[list[Layer], list[Any]]:
    """The layers the record walks and their parameters: a Sequential's own, else one."""
    if not isinstance(model, Sequential):
        return [model], [params]
    if not isinstance(params, (list, tuple)) or len(params) != len(model.layers):
        got = len(params) if isinstance(params, (list, tuple)) else type(params).__name__
        raise ValueError(f"explain: a Sequential of {len(model.layers)} layers got parameters "
                         f"for {got}; make them with xb.init_params(model, seed, input_shape)")
    return list(model.layers), list(params)


def _contexts(model: Layer, layers: list[Layer], train: bool, key: Any, model_state: Any
              ) -> list[Context]:
    """Each layer's context, as the model's own forward pass would make it."""
    ctx = Context(train=train, key=key, state=model_state)
    if not isinstance(model, Sequential):
        return [ctx]
    if key is None and model_state is None:
        return [ctx] * len(layers)
    states = model_state if model_state is not None else [None] * len(layers)
    return [ctx.child(i, states[i]) for i in range(len(layers))]


def _named(tree: Any) -> dict[str, np.ndarray]:
    """A layer's parameters (or gradients) as host arrays by name: "W", "b", or for a layer
    that holds layers the nested path, "0.gamma", "1.W_qkv" (so "2.1.W_qkv" in the tables)."""
    return {path: leaf for path, leaf in tree_paths(to_numpy(tree))}


def _entries(shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Indices of an array's entries; a matrix's column by column (W[i, j] feeds unit j, so
    the weights into one unit come together: w1, w2 into h1, then w3, w4 into h2)."""
    if len(shape) == 2:
        return [(i, j) for j in range(shape[1]) for i in range(shape[0])]
    return list(np.ndindex(*shape))


def _unit_rows(names: Names, title: str, key: str, values: np.ndarray,
               grads: np.ndarray | None, precision: int, max_rows: int) -> list[list[str]]:
    """Rows of one layer boundary: values (S, ...) and gradients of the shown samples."""
    unit_shape = values.shape[1:]
    rows = []
    for count, index in enumerate(np.ndindex(*unit_shape)):
        if count == max_rows:
            rows.append(["", f"… {int(np.prod(unit_shape)) - max_rows} more"])
            break
        column = (slice(None), *index)  # (a name: mypy misreads the star inside [...] on 3.10)
        cells = [_number(v, precision) for v in values[column]]
        if grads is not None:
            cells += [_number(g, precision) for g in grads[column]]
        rows.append([title if count == 0 else "", _label(names, key, index), *cells])
    return rows


def _label(names: Names, key: str, index: tuple[int, ...]) -> str:
    given = names.get(key)
    if given is not None:
        labels = np.asarray(given, dtype=object)
        try:
            return str(labels[index])
        except IndexError:
            raise ValueError(f"names[{key!r}] has shape {labels.shape}, too small for entry "
                             f"{index}; give one name per entry") from None
    prefix = key.split(".", 1)[1] if "." in key else ""
    return f"{prefix}[{', '.join(map(str, index))}]"


def _number(v: Any, precision: int) -> str:
    return f"{float(v) + 0.0:.{precision}g}"  # + 0.0: no "-0"


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]],
                 numeric: Callable[[int], bool] | None = None) -> str:
    """A plain-text table: columns padded to their widest cell, two spaces apart; columns
    for which `numeric(column)` is true (default: every column after the first two) are
    right-aligned. Rows may be shorter than the header."""
    numeric = numeric or (lambda c: c >= 2)
    width = [max(len(str(r[c])) for r in [header, *rows] if c < len(r))
             for c in range(len(header))]

    def line(row: Sequence[str]) -> str:
        cells = [str(cell).rjust(width[c]) if numeric(c) else str(cell).ljust(width[c])
                 for c, cell in enumerate(row)]
        return "  " + "  ".join(cells).rstrip()

    return "\n".join([line(header), *(line(r) for r in rows)])
