"""char-rnn: Karpathy's min-char-rnn (2015) on Tiny Shakespeare, a character-level recurrent
network trained by backprop through time, watched as it learns to spell; then the same
recipe with LSTM and GRU cells, and the picture of why gates exist.

The network and recipe are min-char-rnn.py's: each character one-hot (65 of them) into a
tanh RNN of 100 units, a softmax over the next character at each of 25 steps, the loss the
sum of the 25 cross-entropies; weights drawn from N(0, 0.01²), biases 0; gradients clipped
to [-5, 5]; Adagrad with learning rate 0.1. The text is read in order, 25 characters at a
time, and the hidden state is carried from one chunk into the next (min-char-rnn's
`hprev`: a stateful layer) without the gradient crossing the boundary (truncated
backprop through time); at the end of the text it starts over from zeros. Every N steps:
the smoothed loss (0.999 · smooth + 0.001 · loss) and 200 characters sampled from the
current hidden state, so the learner watches words, then names and line breaks appear.

    xbackprop example char-rnn                  # min-char-rnn, then LSTM and GRU
    xbackprop example char-rnn --cell lstm      # watch the LSTM learn instead
    xbackprop example char-rnn --steps 20000 --backend jax

The pictures: the loss of the three cells on the same text; ‖∂L/∂h_t‖ for a loss at the
last of 100 steps, for the RNN and the LSTM at initialisation and trained (the RNN's
gradient dies within a few steps; the LSTM's cell carries it back: dc_{t-1} = dc_t ⊙ f);
and what a few hidden units do over a line of text.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

import xbackprop as xb
from xbackprop.explain import format_table

SUMMARY = "min-char-rnn on Shakespeare learns to spell; RNN vs LSTM vs GRU; vanishing gradients"
GALLERY = "vanishing_gradient.png"

CELLS = {"rnn": xb.RNN, "lstm": xb.LSTM, "gru": xb.GRU}
SEQ_LENGTH = 25       # min-char-rnn's seq_length: steps of backprop through time
LEARNING_RATE = 0.1
CLIP = 5.0
#: full size and --quick: steps per cell, hidden units, steps between samples, sample
#: length, the length of the sequences the gradient is followed through, how many of
#: them, and the line of text whose activations are drawn
FULL = {"steps": 5000, "hidden": 100, "every": 1000, "sample": 200, "through_time": 100,
        "sequences": 16, "line": 72, "stretch": 3000}
QUICK = {"steps": 80, "hidden": 32, "every": 40, "sample": 40, "through_time": 30,
         "sequences": 4, "line": 40, "stretch": 400}
#: what a unit may track, character by character: the units drawn are those whose
#: activation follows one of these most closely (Karpathy, "The Unreasonable Effectiveness
#: of Recurrent Neural Networks", 2015, found such cells by eye)
FEATURES = {
    "a space": lambda text: np.array([c == " " for c in text]),
    "a line break": lambda text: np.array([c == "\n" for c in text]),
    "a capital": lambda text: np.array([c.isupper() for c in text]),
    "a vowel": lambda text: np.array([c in "aeiouAEIOU" for c in text]),
    "punctuation": lambda text: np.array([c in ",.;:!?'-" for c in text]),
    "letters into the word": lambda text: _into_word(text),
}
#: the bottom of the vanishing-gradient picture: 30 orders of magnitude
FLOOR = 1e-30

OPTIONS = [
    (("--cell",), {"choices": sorted(CELLS), "default": "rnn",
                   "help": "the cell to watch learn (default rnn, min-char-rnn's); the "
                           "comparison trains all three"}),
    (("--steps",), {"type": int, "metavar": "N",
                    "help": f"training steps of {SEQ_LENGTH} characters per cell "
                            f"(default {FULL['steps']}; {QUICK['steps']} with --quick)"}),
    (("--every",), {"type": int, "metavar": "N",
                    "help": f"steps between samples (default {FULL['every']})"}),
]


def min_char_rnn_init(rng: np.random.Generator, shape: tuple[int, ...], fan_in: int,
                 fan_out: int) -> np.ndarray:
    """min-char-rnn's weights: N(0, 0.01²) (`np.random.randn(...) * 0.01`)."""
    return rng.normal(0.0, 0.01, size=shape)


def network(cell: str, vocab: int, hidden: int, stateful: bool = True) -> xb.Sequential:
    """One-hot characters (B, T, vocab) -> the cell's hidden states (B, T, hidden) -> next-
    character scores (B, T, vocab). Stateful: the last state of a chunk starts the next
    (one stream: batch 1, as min-char-rnn)."""
    carry = {"stateful": True, "batch_size": 1} if stateful else {}
    return xb.Sequential([
        CELLS[cell](hidden, weight_init=min_char_rnn_init, recurrent_init=min_char_rnn_init,
                    **carry),
        xb.Dense(vocab, weight_init=min_char_rnn_init)])


def one_hot(ids: np.ndarray, vocab: int) -> np.ndarray:
    """Ids (...) as one-hot rows (..., vocab), float32."""
    return np.eye(vocab, dtype=np.float32)[ids]


@dataclasses.dataclass
class CellRun:
    """One cell trained with the recipe."""

    cell: str
    model: xb.Sequential
    losses: np.ndarray            # (steps,) each chunk's loss: Σ of its 25 cross-entropies
    smooth: np.ndarray            # (steps,) the smoothed loss after each step
    samples: list[tuple[int, float, str]]  # (step, smoothed loss, sample) every N steps
    initial: Any                  # the parameters before training (NumPy)
    params: Any                   # after (NumPy)
    seconds: float

    @property
    def ms_per_step(self) -> float:
        return 1e3 * self.seconds / max(len(self.losses), 1)


@dataclasses.dataclass
class Result:
    cell: str                     # the cell watched
    runs: dict[str, CellRun]      # every cell, by name
    through_time: dict[str, dict[str, np.ndarray]]  # "RNN" -> {"at initialisation": (T,), ...}
    line: str                     # the text the activations are drawn over
    activations: np.ndarray       # (len(line), units) of the watched cell
    units: list[tuple[int, str, float]]  # (unit, what it tracks, correlation)
    vocab: int
    train_chars: int
    settings: dict[str, int]
    backend: str

    def __str__(self) -> str:
        watched = self.runs[self.cell]
        s = self.settings
        log = []
        for step, smooth, text in watched.samples:
            log.append(f"step {step:,}: smoothed loss {smooth:.2f}; sample:")
            log.extend("  | " + line for line in text.split("\n"))
        uniform = math.log(self.vocab)
        rows = [[name.upper(), f"{run.smooth[-1]:.2f}", f"{run.smooth[-1] / SEQ_LENGTH:.3f}",
                 f"{run.seconds:.1f}", f"{run.ms_per_step:.2f}"]
                for name, run in self.runs.items()]
        steps_back = [k for k in (1, 5, 10, 25, 50, 99) if k < s["through_time"]]
        tracking = [f"  unit {u:3d} follows {what} (correlation {r:+.2f})"
                    for u, what, r in self.units]
        grad_rows = []
        for model, stages in self.through_time.items():
            for stage, norms in stages.items():
                ratios = [norms[-1 - k] / max(norms[-1], 1e-300) for k in steps_back]
                grad_rows.append([f"{model}, {stage}"] + [f"{r:.1e}" for r in ratios])
        return "\n".join([
            (f"char-rnn: min-char-rnn's network and recipe on Tiny Shakespeare "
             f"({self.train_chars:,} training characters, {self.vocab} distinct), on "
             f"{self.backend}"),
            (f"one-hot characters -> {self.cell.upper()}({s['hidden']}) -> "
             f"Dense({self.vocab}); loss: the sum of {SEQ_LENGTH} cross-entropies per "
             f"chunk; Adagrad lr {LEARNING_RATE:g}, gradients clipped to [-{CLIP:g}, "
             f"{CLIP:g}], weights N(0, 0.01²); {s['steps']:,} steps of {SEQ_LENGTH} "
             "characters, the hidden state carried from chunk to chunk"),
            "",
            (f"learning to spell ({self.cell.upper()}): a sample every {s['every']:,} "
             "steps, from the hidden state at that point"),
            *log,
            "",
            f"the three cells, same text, same recipe, {s['steps']:,} steps each:",
            format_table(["cell", "smoothed loss", "per character", "seconds", "ms / step"],
                         rows, numeric=lambda c: c > 0),
            (f"(per character: the mean cross-entropy in nats; guessing uniformly among "
             f"{self.vocab} is ln {self.vocab} = {uniform:.2f})"),
            "",
            (f"vanishing gradients: ‖∂L/∂h_t‖ for a loss at the last of {s['through_time']} "
             f"steps, relative to ‖∂L/∂h_T‖, k steps back (mean over {s['sequences']} "
             "sequences of the validation text):"),
            format_table(["", *[f"k = {k}" for k in steps_back]], grad_rows,
                         numeric=lambda c: c > 0),
            "",
            (f"what some of the {self.cell.upper()}'s hidden units follow, over "
             f"{s['stretch']:,} characters of the validation text:"),
            *tracking,
        ])


def run(*, backend: str | None = None, seed: int = 0, quick: bool = False,
        progress: bool = False, cell: str = "rnn", steps: int | None = None,
        every: int | None = None) -> Result:
    """Train the watched `cell`, then the other two, with min-char-rnn's recipe; follow a
    late loss's gradient back through time; record a line of text's activations."""
    if cell not in CELLS:
        raise ValueError(f"cell is one of {', '.join(sorted(CELLS))}, not {cell!r}")
    settings = dict(QUICK if quick else FULL)
    for name, value in (("steps", steps), ("every", every)):
        if value is not None:
            if value < 1:
                raise ValueError(f"--{name} must be at least 1, not {value}")
            settings[name] = value
    data = xb.data.load_tiny_shakespeare()
    target = xb.get_backend(backend)
    order = [cell] + [c for c in CELLS if c != cell]
    runs = {}
    for name in order:
        say = _reporter(progress, name, watched=name == cell)
        runs[name] = train(name, data, settings, target, seed, say)
    rng = np.random.default_rng(seed + 2)
    through_time = {}
    for name in ("rnn", "lstm"):
        windows, labels = _windows(data.val, data.tokenizer.vocab_size, settings, rng)
        through_time[name.upper()] = {
            stage: gradient_through_time(runs[name].model, params, windows, labels, target)
            for stage, params in (("at initialisation", runs[name].initial),
                                  ("trained", runs[name].params))}
    text = data.tokenizer.decode(data.val)
    start = _a_line_start(text)
    stretch = text[start:start + settings["stretch"]]
    activations = hidden_states(runs[cell].model, runs[cell].params,
                                one_hot(data.tokenizer.encode(stretch), data.tokenizer.vocab_size),
                                target)
    units = tracking_units(stretch, activations)
    return Result(cell, {name: runs[name] for name in CELLS}, through_time,
                  stretch[:settings["line"]],
                  activations[:settings["line"], [u for u, _, _ in units]], units,
                  data.tokenizer.vocab_size, len(data.train), settings, target.name)


def train(cell: str, data: Any, settings: dict[str, int], backend: xb.Backend, seed: int,
          say: Any = None) -> CellRun:
    """min-char-rnn's loop: chunks of 25 characters in order, the state carried between
    them and reset at the end of the text; a sample every `settings["every"]` steps."""
    vocab = data.tokenizer.vocab_size
    model = network(cell, vocab, settings["hidden"])
    optimizer = xb.optim.clip_by_value(
        xb.optim.adagrad(LEARNING_RATE, initial_accumulator=0.0, eps=1e-8), CLIP)
    shape = (SEQ_LENGTH, vocab)
    params = xb.init_params(model, seed, shape, backend=backend)
    initial = xb.to_numpy(params)
    fresh = xb.init_state(model, shape, backend=backend)
    state = xb.TrainState.create(params, optimizer, fresh, seed)
    step = xb.make_train_step(model, xb.SoftmaxCrossEntropy("sum"), optimizer, backend=backend)
    sampler = Sampler(model, backend)
    rng = np.random.default_rng(seed + 1)
    text = data.train
    smooth = -math.log(1.0 / vocab) * SEQ_LENGTH     # min-char-rnn's starting value
    losses: list[Any] = []
    smooths: list[float] = []
    samples = []
    p = 0
    start = time.perf_counter()
    for n in range(settings["steps"]):
        if p + SEQ_LENGTH + 1 > len(text):             # the end of the text: start over
            p = 0
            state = state._replace(model_state=fresh)
        ids = text[p:p + SEQ_LENGTH + 1]
        if n % settings["every"] == 0:
            smooth = _smooth(smooth, losses, smooths)
            sample = sampler(state.params, state.model_state, int(ids[0]), settings["sample"],
                             rng)
            samples.append((n, smooth, data.tokenizer.decode(sample)))
            if say:
                say(n, smooth, samples[-1][2])
        state, loss = step(state, (one_hot(ids[:-1], vocab)[None], ids[1:][None]))
        losses.append(loss)
        p += SEQ_LENGTH
    _smooth(smooth, losses, smooths)
    seconds = time.perf_counter() - start
    return CellRun(cell, model, np.array(xb.to_numpy(losses), dtype=np.float64).ravel(),
                   np.array(smooths), samples, initial, xb.to_numpy(state.params), seconds)


def _smooth(smooth: float, losses: list[Any], smooths: list[float]) -> float:
    """Bring the smoothed loss up to date with the steps since the last call (their losses
    read back now, not every step: a compiled step then runs ahead)."""
    for loss in losses[len(smooths):]:
        smooth = smooth * 0.999 + float(xb.to_numpy(loss)) * 0.001
        smooths.append(smooth)
    return smooth


class Sampler:
    """Characters drawn one at a time from the model (min-char-rnn's `sample`): feed a
    character, carry the state, draw the next from the softmax of the scores."""

    def __init__(self, model: xb.Sequential, backend: xb.Backend) -> None:
        def one_step(params: Any, state: Any, x: Any) -> Any:
            scores, caches = model.forward(params, x, xb.Context(state=state))
            return scores, model.next_state(state, caches)

        self.step = backend.compile(one_step)
        self.vocab = _layers(model)[1].units

    def __call__(self, params: Any, state: Any, first: int, length: int,
                 rng: np.random.Generator) -> np.ndarray:
        ids = [first]
        for _ in range(length):
            scores, state = self.step(params, state, one_hot(np.array([[ids[-1]]]),
                                                             self.vocab))
            z = np.asarray(xb.to_numpy(scores), dtype=np.float64)[0, -1]
            p = np.exp(z - z.max())
            ids.append(int(rng.choice(self.vocab, p=p / p.sum())))
        return np.array(ids[1:])


def _layers(model: xb.Sequential) -> tuple[xb.layers.Recurrent, xb.Dense]:
    """The lesson's network, [cell, Dense]: the recurrent cell and the layer that scores
    the characters."""
    cell, head = model.layers
    if not isinstance(cell, xb.layers.Recurrent) or not isinstance(head, xb.Dense):
        raise TypeError(f"char-rnn takes its own network, [RNN/LSTM/GRU, Dense], not {model}")
    return cell, head


def gradient_through_time(model: xb.Sequential, params: Any, windows: np.ndarray,
                          labels: np.ndarray, backend: xb.Backend) -> np.ndarray:
    """‖∂L/∂h_t‖ for t = 1 .. T, mean over the sequences, for L the cross-entropy of the
    character after each window (a loss at the last step only), from the model's own
    backward pass: the loss's gradient, the Dense layer's backward, the cell's backward
    through time (`state_gradients`). In float64: in float32 a vanishing gradient reaches
    0 (below 1e-45) within a few dozen steps, and the picture would end there."""
    cell, head = _layers(model)
    unrolled = dataclasses.replace(cell, stateful=False, batch_size=None)
    plain = xb.Sequential([unrolled, head])
    loss = xb.SoftmaxCrossEntropy("sum")
    with xb.use_backend(backend), backend.dtype_scope("float64"):
        params = xb.tree_to_backend(params, backend, dtype="float64")
        windows = windows.astype(np.float64)
        x = backend.asarray(windows)
        scores, caches = plain.forward(params, x)
        _, loss_cache = loss.forward(scores[:, -1, :], backend.asarray(labels))
        xp = xb.backend_of(scores).xp
        last = xp.expand_dims(loss.backward(loss_cache), axis=1)         # (S, 1, vocab)
        before = xp.zeros((scores.shape[0], scores.shape[1] - 1, scores.shape[2]),
                          dtype=scores.dtype)
        dh_out, _ = head.backward(params[1], caches[1], xp.concat([before, last], axis=1))
        dh = unrolled.state_gradients(params[0], caches[0], dh_out)  # (S, T, hidden)
    return np.linalg.norm(np.asarray(xb.to_numpy(dh), dtype=np.float64), axis=2).mean(axis=0)


def hidden_states(model: xb.Sequential, params: Any, x: np.ndarray, backend: xb.Backend
                  ) -> np.ndarray:
    """The cell's hidden state after each character of one sequence `x: (T, vocab)`,
    starting from zeros: (T, hidden)."""
    cell = dataclasses.replace(_layers(model)[0], stateful=False, batch_size=None)
    with xb.use_backend(backend):
        h = cell(xb.tree_to_backend(params[0], backend), backend.asarray(x[None]))
    return np.asarray(xb.to_numpy(h), dtype=np.float64)[0]


def _windows(ids: np.ndarray, vocab: int, settings: dict[str, int], rng: np.random.Generator
             ) -> tuple[np.ndarray, np.ndarray]:
    """`sequences` random windows of `through_time` characters (one-hot) and the character
    after each."""
    length = settings["through_time"]
    starts = rng.integers(0, len(ids) - length - 1, size=settings["sequences"])
    windows = np.stack([ids[s:s + length] for s in starts])
    return one_hot(windows, vocab), ids[starts + length]


def tracking_units(text: str, activations: np.ndarray) -> list[tuple[int, str, float]]:
    """For each feature of `FEATURES` that varies in `text`, the unit (a column of
    `activations: (len(text), hidden)`) whose activation correlates with it most strongly,
    each unit once: [(unit, feature, correlation)], strongest first."""
    h = activations - activations.mean(axis=0)
    h_norm = np.sqrt((h * h).sum(axis=0))
    found: list[tuple[int, str, float]] = []
    for what, feature in FEATURES.items():
        f = feature(text).astype(np.float64)
        f -= f.mean()
        if not f.any():
            continue
        r = (f @ h) / np.maximum(np.sqrt(f @ f) * h_norm, 1e-12)
        for unit in np.argsort(-np.abs(r)):
            if all(unit != u for u, _, _ in found):
                found.append((int(unit), what, float(r[unit])))
                break
    return sorted(found, key=lambda item: -abs(item[2]))


def _into_word(text: str) -> np.ndarray:
    """How many letters of the current word have been read, at each character (0 outside
    words)."""
    out, run = np.zeros(len(text)), 0
    for i, c in enumerate(text):
        run = run + 1 if c.isalpha() else 0
        out[i] = run
    return out


def _a_line_start(text: str) -> int:
    """Where a line of speech begins (after a speaker's name), a third into `text`, so the
    picture starts with words, spaces and line breaks."""
    start = text.find(":\n", len(text) // 3)
    return 0 if start < 0 else start + 2


def _reporter(progress: bool, cell: str, watched: bool) -> Any:
    """What is shown while a cell trains, on stderr: min-char-rnn's log (the loss and a
    sample) for the watched cell, a line per sample for the others; nothing without
    `progress`."""
    if not progress:
        return None

    def say(step: int, smooth: float, sample: str) -> None:
        if watched:
            print(f"----\n{sample}\n----\n{cell} iter {step}, loss {smooth:.2f}",
                  file=sys.stderr, flush=True)
        else:
            print(f"(comparison) {cell} iter {step}, loss {smooth:.2f}", file=sys.stderr,
                  flush=True)
    return say


def draw(result: Result, out: Path) -> list[Path]:
    steps = np.arange(1, len(result.runs[result.cell].smooth) + 1)
    curves = {name.upper(): run.smooth / SEQ_LENGTH for name, run in result.runs.items()}
    curves[f"guessing uniformly: ln {result.vocab}"] = np.full(len(steps),
                                                               math.log(result.vocab))
    relative = {model: {stage: norms / norms[-1] for stage, norms in stages.items()}
                for model, stages in result.through_time.items()}
    return [
        xb.plot.plot_curves(curves, out / "loss_curves.png", x=steps,
                            ylabel="smoothed loss per character (nats)",
                            title="RNN, LSTM and GRU on Tiny Shakespeare, min-char-rnn's "
                                  "recipe"),
        xb.plot.plot_through_time(
            relative, out / "vanishing_gradient.png", floor=FLOOR,
            ylabel="‖∂L/∂h_t‖ / ‖∂L/∂h_T‖ (log scale)",
            title=f"vanishing gradients: a loss at the last of "
                  f"{result.settings['through_time']} characters, followed back in time"),
        xb.plot.plot_text_activations(
            result.line, result.activations, out / "hidden_units.png",
            rows=[f"unit {u} ~ {what} (r = {r:+.2f})" for u, what, r in result.units],
            title=f"{result.cell.upper()}: hidden units that follow something in the text "
                  "(red: +1, blue: -1)"),
    ]
