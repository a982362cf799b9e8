"""A GPT training step, nanoGPT's "baby" configuration, for xbackprop on NumPy, JAX and
PyTorch tensors beside PyTorch eager and JAX autodiff + optax: the same model, the same
batch, the same optimizer, timed one implementation after another in one process.

    python -m benchmarks.gpt [--impls ...] [--repeat 5] [--min-time 1] [--json PATH]
                             [--layers 4 --heads 4 --width 128 --context 64 --batch 12]

The model: token and position embeddings, `layers` pre-norm blocks (causal self-attention
with one fused q|k|v projection; an MLP 4x as wide with the tanh GELU), a final LayerNorm
and an untied linear head; no biases (nanoGPT's bias=False), dropout 0. The step:
softmax cross-entropy over every position, gradients clipped to a global norm of 1.0,
AdamW (lr 1e-3, β = (0.9, 0.99), weight decay 0.1 on the matrices only). The batch: the
first TokenWindows batch of Tiny Shakespeare's training split, (12, 64) ids. The start:
xbackprop's initial weights, copied into the peers, so every implementation computes the
same numbers (the table shows each one's loss after five steps: they agree).

Targets (the GPT issue's): xbackprop-numpy <= 1.3x torch, xbackprop-jax <= 1.0x
jax-autodiff, xbackprop-torch <= 1.3x torch. Memory: the peak resident memory a process
reaches over a few steps of each implementation, above what it held after its imports
(each in its own subprocess, so one library's pools do not count for another), and
NumPy's own peak within one step (tracemalloc).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.compare import machine
from benchmarks.workloads import Runner, Unavailable

IMPLS = ("xbackprop-numpy", "xbackprop-jax", "xbackprop-torch", "torch", "jax-autodiff")
#: (xbackprop implementation, peer, target ratio of step times)
TARGETS = [("xbackprop-numpy", "torch", 1.3), ("xbackprop-jax", "jax-autodiff", 1.0),
           ("xbackprop-torch", "torch", 1.3)]
LR, BETAS, WEIGHT_DECAY, CLIP = 1e-3, (0.9, 0.99), 0.1, 1.0


@dataclasses.dataclass(frozen=True)
class Config:
    layers: int = 4
    heads: int = 4
    width: int = 128
    context: int = 64
    batch: int = 12
    vocab: int = 65


def batch(config: Config) -> tuple[np.ndarray, np.ndarray]:
    """(x, y): (batch, context) int32 ids of Tiny Shakespeare and the ids one further on."""
    import xbackprop as xb

    data = xb.data.load_tiny_shakespeare()
    return xb.data.TokenWindows(data.train, config.context, config.batch, seed=0)(0)


def start(config: Config) -> dict[str, Any]:
    """The starting weights every implementation copies, by name (NumPy float32): those
    `xb.init_params` draws for xbackprop's GPT from seed 0 (N(0, 0.02²), LayerNorm scales 1),
    so the implementations run the same numbers and their losses agree step by step."""
    import xbackprop as xb
    from xbackprop import language

    model = language.gpt(config.vocab, config.context, config.layers, config.heads,
                         config.width)
    p = xb.init_params(model, 0, (config.context,), backend="numpy")
    n = config.layers
    return {"wte": p[0]["W"], "wpe": p[1]["P"], "ln": p[2 + 2 * n]["gamma"],
            "head": p[3 + 2 * n]["W"],
            "blocks": [{"ln1": p[2 + 2 * i][0]["gamma"], "qkv": p[2 + 2 * i][1]["W_qkv"],
                        "proj": p[2 + 2 * i][1]["W_out"], "ln2": p[3 + 2 * i][0]["gamma"],
                        "fc": p[3 + 2 * i][1]["W"], "fc2": p[3 + 2 * i][3]["W"]}
                       for i in range(n)]}


# -- xbackprop ---------------------------------------------------------------------------------

def xbackprop_step(config: Config, spec: str) -> Runner:
    import xbackprop as xb
    from xbackprop import language

    try:
        backend = xb.get_backend(spec)
    except xb.BackendUnavailableError as e:
        raise Unavailable(f"xbackprop on {spec}: {e}") from e
    model = language.gpt(config.vocab, config.context, config.layers, config.heads,
                         config.width)
    optimizer = xb.optim.clip_by_global_norm(
        xb.optim.adamw(LR, b1=BETAS[0], b2=BETAS[1], weight_decay=WEIGHT_DECAY,
                       decay_mask=language.decays), CLIP)
    params = xb.init_params(model, 0, (config.context,), backend=backend)
    step = xb.make_train_step(model, "cross_entropy", optimizer, backend=backend, donate=True)
    x, y = batch(config)
    data = (backend.asarray(x), backend.asarray(y))
    holder = {"state": xb.TrainState.create(params, optimizer), "loss": None}

    def run() -> None:
        holder["state"], holder["loss"] = step(holder["state"], data)

    return Runner(run, lambda: backend.synchronize(holder["loss"]),
                  lambda: float(holder["loss"]), backend.device)


# -- PyTorch eager -------------------------------------------------------------------------------

def _torch() -> Any:
    try:
        import torch
    except ImportError as e:
        raise Unavailable("PyTorch: not installed (pip install torch==2.13.0 for the CPU "
                          "build)") from e
    return torch


def torch_model(config: Config) -> Any:
    """nanoGPT's model as PyTorch users write it (F.scaled_dot_product_attention), starting
from `start(config)`."""
    torch = _torch()
    import torch.nn.functional as F

    torch.manual_seed(0)
    c, h = config.width, config.heads
    nn = torch.nn

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(c, bias=False), nn.LayerNorm(c, bias=False)
            self.qkv, self.proj = nn.Linear(c, 3 * c, bias=False), nn.Linear(c, c, bias=False)
            self.fc, self.fc2 = nn.Linear(c, 4 * c, bias=False), nn.Linear(4 * c, c, bias=False)

        def forward(self, x: Any) -> Any:
            b, t, _ = x.shape
            q, k, v = self.qkv(self.ln1(x)).split(c, dim=2)
            q, k, v = (a.view(b, t, h, c // h).transpose(1, 2) for a in (q, k, v))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + self.proj(y.transpose(1, 2).contiguous().view(b, t, c))
            return x + self.fc2(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))

    class GPT(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.wte, self.wpe = nn.Embedding(config.vocab, c), nn.Embedding(config.context, c)
            self.blocks = nn.Sequential(*[Block() for _ in range(config.layers)])
            self.ln, self.head = nn.LayerNorm(c, bias=False), nn.Linear(c, config.vocab,
                                                                          bias=False)

        def forward(self, ids: Any) -> Any:
            x = self.wte(ids) + self.wpe(torch.arange(ids.shape[1], device=ids.device))
            return self.head(self.ln(self.blocks(x)))

    model = GPT()
    w = start(config)
    with torch.no_grad():  # Linear keeps W transposed: (out, in)
        model.wte.weight.copy_(torch.from_numpy(w["wte"]))
        model.wpe.weight.copy_(torch.from_numpy(w["wpe"]))
        model.ln.weight.copy_(torch.from_numpy(w["ln"]))
        model.head.weight.copy_(torch.from_numpy(w["head"].T))
        for block, b in zip(model.blocks, w["blocks"]):
            for name in ("ln1", "ln2"):
                getattr(block, name).weight.copy_(torch.from_numpy(b[name]))
            for name in ("qkv", "proj", "fc", "fc2"):
                getattr(block, name).weight.copy_(torch.from_numpy(b[name].T))
    return model


def torch_step(config: Config, device: str = "cpu") -> Runner:
    torch = _torch()
    import torch.nn.functional as F

    # all cores, as PyTorch's default; OMP_NUM_THREADS=1 (as for NumPy's OpenBLAS) for one
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1)))
    model = torch_model(config).to(device)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": WEIGHT_DECAY},
                                   {"params": rest, "weight_decay": 0.0}], lr=LR, betas=BETAS)
    x, y = (torch.tensor(a.astype(np.int64), device=device) for a in batch(config))
    last = [torch.zeros(())]

    def run() -> None:
        optimizer.zero_grad(set_to_none=True)
        logits = model(x)
        loss = F.cross_entropy(logits.view(-1, config.vocab), y.view(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        optimizer.step()
        last[0] = loss.detach()

    return Runner(run, lambda: None, lambda: float(last[0]), device)


# -- JAX autodiff + optax -------------------------------------------------------------------------

def _jax() -> tuple[Any, Any, Any]:
    try:
        import jax
        import jax.numpy as jnp
        import optax
    except ImportError as e:
        raise Unavailable("JAX autodiff: needs jax and optax (pip install -e "
                          "'.[benchmarks]')") from e
    return jax, jnp, optax


def jax_model(config: Config) -> tuple[Any, Callable]:
    """nanoGPT's model as JAX users write it: a parameter tree (`start(config)`) and a
    forward function."""
    jax, jnp, _ = _jax()
    c, h, d = config.width, config.heads, config.width // config.heads
    params = jax.tree_util.tree_map(jnp.asarray, start(config))

    def norm(x: Any, g: Any) -> Any:
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) * jax.lax.rsqrt(var + 1e-5) * g

    def forward(p: Any, ids: Any) -> Any:
        b, t = ids.shape
        x = p["wte"][ids] + p["wpe"][:t]
        mask = jnp.tril(jnp.ones((t, t), dtype=bool))
        for blk in p["blocks"]:
            q, k, v = jnp.split(norm(x, blk["ln1"]) @ blk["qkv"], 3, axis=-1)
            q, k, v = (a.reshape(b, t, h, d).transpose(0, 2, 1, 3) for a in (q, k, v))
            s = jnp.where(mask, q @ k.transpose(0, 1, 3, 2) / math.sqrt(d), -jnp.inf)
            y = jax.nn.softmax(s, axis=-1) @ v
            x = x + y.transpose(0, 2, 1, 3).reshape(b, t, c) @ blk["proj"]
            x = x + jax.nn.gelu(norm(x, blk["ln2"]) @ blk["fc"], approximate=True) @ blk["fc2"]
        return norm(x, p["ln"]) @ p["head"]

    return params, forward


def jax_step(config: Config) -> Runner:
    jax, jnp, optax = _jax()
    params, forward = jax_model(config)

    def loss_fn(p: Any, ids: Any, targets: Any) -> Any:
        return optax.softmax_cross_entropy_with_integer_labels(forward(p, ids), targets).mean()

    decay = jax.tree_util.tree_map(lambda a: a.ndim >= 2, params)
    tx = optax.chain(optax.clip_by_global_norm(CLIP),
                     optax.adamw(LR, b1=BETAS[0], b2=BETAS[1], weight_decay=WEIGHT_DECAY,
                                 mask=decay))

    def _step(p: Any, s: Any, ids: Any, targets: Any) -> Any:
        with jax.default_matmul_precision("float32"):
            value, grads = jax.value_and_grad(loss_fn)(p, ids, targets)
        updates, s = tx.update(grads, s, p)
        return optax.apply_updates(p, updates), s, value

    step = jax.jit(_step)
    x, y = (jnp.asarray(a) for a in batch(config))
    holder = {"p": params, "s": tx.init(params), "loss": None}

    def run() -> None:
        holder["p"], holder["s"], holder["loss"] = step(holder["p"], holder["s"], x, y)

    return Runner(run, lambda: jax.block_until_ready(holder["loss"]),
                  lambda: float(holder["loss"]), str(jax.devices()[0]))


BUILDERS: dict[str, Callable[[Config], Runner]] = {
    "xbackprop-numpy": lambda c: xbackprop_step(c, "numpy"),
    "xbackprop-jax": lambda c: xbackprop_step(c, "jax"),
    "xbackprop-torch": lambda c: xbackprop_step(c, "torch:cpu"),
    "torch": torch_step,
    "jax-autodiff": jax_step,
}


# -- timing and memory ----------------------------------------------------------------------------

def _per_step(runner: Runner, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        runner.step()
    runner.sync()
    return (time.perf_counter() - start) / steps


def time_impls(config: Config, impls: list[str], repeat: int, min_time: float
               ) -> dict[str, dict[str, Any]]:
    """Each implementation built, checked to learn (its first steps are the warm-up, JIT
    compilation included), then timed in `repeat` rounds of at least `min_time` seconds;
    one after the other, with a pause for the previous library's threads to sleep."""
    results: dict[str, dict[str, Any]] = {}
    for impl in impls:
        try:
            runner = BUILDERS[impl](config)
        except Unavailable as e:
            results[impl] = {"skipped": str(e)}
            continue
        runner.step()
        runner.sync()
        first = runner.loss()
        for _ in range(4):
            runner.step()
        runner.sync()
        last = runner.loss()
        if not (math.isfinite(last) and last < first):
            raise AssertionError(f"{impl}: the loss did not fall ({first} -> {last})")
        time.sleep(0.5)
        one = _per_step(runner, 2)
        steps = max(1, math.ceil(min_time / max(one, 1e-6)))
        times = [_per_step(runner, steps) for _ in range(repeat)]
        results[impl] = {"device": runner.device, "ms": 1e3 * statistics.median(times),
                         "best_ms": 1e3 * min(times), "first_loss": first, "loss": last}
        del runner
    return results


def _rss_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return math.nan


def memory_of(impl: str, config: Config) -> dict[str, float]:
    """In this process (run it in a fresh one): resident memory after the imports, the peak
    over building and three steps above it, and for NumPy the peak traced allocation of
    one step above what lives between steps."""
    import xbackprop  # noqa: F401  (the imports' memory is the baseline)
    if impl in ("torch", "xbackprop-torch"):
        import torch  # noqa: F401
    if impl in ("jax-autodiff", "xbackprop-jax"):
        import jax  # noqa: F401
    base = _rss_mb("VmRSS")
    runner = BUILDERS[impl](config)
    for _ in range(3):
        runner.step()
    runner.sync()
    out = {"peak_mb": _rss_mb("VmHWM") - base}
    if impl == "xbackprop-numpy":
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            runner.step()
            out["step_traced_mb"] = (tracemalloc.get_traced_memory()[1] - before) / 1e6
        finally:
            tracemalloc.stop()
    return out


def memory(impls: list[str], config: Config) -> dict[str, dict[str, float]]:
    """`memory_of` for each implementation, each in a fresh Python process."""
    out = {}
    for impl in impls:
        code = (f"import json; from benchmarks.gpt import Config, memory_of; "
                f"print(json.dumps(memory_of({impl!r}, Config(**{dataclasses.asdict(config)!r}))))")
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              cwd=Path(__file__).resolve().parents[1])
        if done.returncode == 0:
            out[impl] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def render(report: dict[str, Any]) -> str:
    config = report["config"]
    lines = ["Machine: " + ", ".join(f"{k} {v}" for k, v in report["machine"].items()),
             f"GPT: {config['layers']} layers, {config['heads']} heads, width "
             f"{config['width']}, context {config['context']}, batch {config['batch']}; "
             f"load before: {report['load']}", "",
             "| implementation | device | ms / step (median) | best | loss after 5 steps |",
             "|---|---|---:|---:|---:|"]
    for impl, r in report["results"].items():
        if "ms" in r:
            lines.append(f"| {impl} | {r['device']} | {r['ms']:.1f} | {r['best_ms']:.1f} | "
                         f"{r['loss']:.4f} |")
    lines += ["", "| xbackprop | peer | ratio | target | met |", "|---|---|---:|---:|:---:|"]
    for ours, peer, target in TARGETS:
        a = report["results"].get(ours, {}).get("ms")
        b = report["results"].get(peer, {}).get("ms")
        if a and b:
            lines.append(f"| {ours} | {peer} | {a / b:.2f}x | <= {target:.1f}x | "
                         f"{'yes' if a / b <= target else 'no'} |")
    if report.get("memory"):
        lines += ["", "| implementation | peak resident memory above the imports (MB) |",
                  "|---|---:|"]
        for impl, m in report["memory"].items():
            extra = f" (one step's own allocations: {m['step_traced_mb']:.1f} MB)" \
                if "step_traced_mb" in m else ""
            lines.append(f"| {impl} | {m['peak_mb']:.1f}{extra} |")
    skipped = [f"- {i}: {r['skipped']}" for i, r in report["results"].items() if "skipped" in r]
    return "\n".join(lines + (["", "Skipped:", *skipped] if skipped else []))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpt", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--impls", nargs="+", choices=IMPLS, default=list(IMPLS))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--min-time", type=float, default=1.0)
    parser.add_argument("--no-memory", action="store_true", help="skip the memory figures")
    parser.add_argument("--json", metavar="PATH", type=Path)
    for field in dataclasses.fields(Config):
        parser.add_argument(f"--{field.name}", type=int, default=field.default)
    args = parser.parse_args(argv)
    config = Config(**{f.name: getattr(args, f.name) for f in dataclasses.fields(Config)})
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    results = time_impls(config, args.impls, args.repeat, args.min_time)
    mem = {} if args.no_memory else memory(
        [i for i in ("xbackprop-numpy", "torch") if i in args.impls], config)
    report = {"machine": machine(), "config": dataclasses.asdict(config), "load": load,
              "results": results, "memory": mem}
    print(render(report))
    if args.json is not None:
        from xbackprop.atomic import atomic_write

        with atomic_write(args.json) as f:
            f.write(json.dumps(report, indent=2).encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
