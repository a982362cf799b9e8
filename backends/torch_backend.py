"""The PyTorch backend: `torch.Tensor`s on the CPU, an NVIDIA GPU (CUDA) or an Apple GPU (MPS),
through array-api-compat's Array API namespace for torch.

The hand-written layers run on plain tensors, op by op, with autograd never involved:
tensors are made without `requires_grad`, so PyTorch records nothing. That brings
hand-written backprop to GPUs CuPy does not serve (Apple silicon) and lets xbackprop run
beside PyTorch code on the same tensors.

Devices: `get_backend("torch")` runs on CUDA's current GPU where there is one, else on the
CPU, as JAX takes its default device; `"torch:cpu"`, `"torch:cuda:1"` (or `"torch:1"`) and
`"torch:mps"` choose one. Apple's MPS is chosen by name only: it has no float64, which the
gradient checks need, so the default stays where every dtype works. Inside the backend's
`scope()` (which `use_backend` and the steps it makes enter) that device is PyTorch's
default device, so arrays the layers create (`xp.zeros`, `xp.arange`) are made there.

PyTorch implements little uint32 arithmetic (no `+`, `>>` or `<` on CPU), so the random-bits
hash runs on int64 lanes masked to 32 bits: the same bits as every other backend.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import _bits
from ._base import (
    HOST_TYPES,
    Array,
    Backend,
    BackendUnavailableError,
    DtypeError,
    Pair,
    check_float_dtype,
    to_host,
)
from ._malloc import keep_freed_buffers

INSTALL = ("Install the CPU build with: pip install torch --index-url "
           "https://download.pytorch.org/whl/cpu, then pip install 'xbackprop[torch]' "
           "(see pytorch.org for a CUDA build)")


class TorchBackend(Backend):
    name = "torch"
    modules = ("torch",)
    strided_views = True

    def __init__(self, device: str | None = None) -> None:
        """device: None (CUDA's current GPU, else the CPU), "cpu", "cuda", "cuda:1", "1"
        (CUDA GPU 1) or "mps"."""
        try:
            import array_api_compat.torch as xp  # (torch's namespace: array_api_compat)
            import torch  # deferred: torch is heavy and optional; imported when chosen
        except ImportError as e:
            raise BackendUnavailableError(
                f"backend 'torch' needs PyTorch and array-api-compat ({e}). {INSTALL}.") from e
        self._torch = torch
        self.xp = xp
        self._device = _find_device(torch, device)
        self.device = str(self._device)
        #: CPU tensors live in host memory and compute eagerly
        self.host_arrays = self._device.type == "cpu"

    def is_array(self, x: Any) -> bool:
        return isinstance(x, self._torch.Tensor)

    def asarray(self, x: Any, dtype: Any = None) -> Array:
        if self.is_array(x) and x.requires_grad:
            x = x.detach()  # the values only: autograd stays out of hand-written backprop
        elif not (self.is_array(x) or isinstance(x, HOST_TYPES)):
            x = to_host(x)  # another backend's array
        if isinstance(x, np.ndarray) and not x.flags.writeable:
            x = np.array(x)  # torch warns on read-only buffers: it could write to them
        a = super().asarray(x, dtype)
        return a if a.device == self._device else a.to(self._device)

    def to_numpy(self, x: Array) -> np.ndarray:
        return x.detach().cpu().numpy()

    def xp_dtype(self, dtype: Any) -> Any:
        return getattr(self._torch, np.dtype(dtype).name)

    def device_scope(self) -> contextlib.AbstractContextManager[Any]:
        """PyTorch's default device for factory functions (`torch.zeros`, `torch.arange`)
        inside the block. On the CPU, where that is already the default, nothing: the
        device mode costs a Python call on every torch operation."""
        if self._device.type == "cpu" and self._torch.get_default_device().type == "cpu":
            return contextlib.nullcontext()
        return self._torch.device(self._device)

    def pad(self, x: Array, widths: Sequence[Pair], value: float = 0.0) -> Array:
        # torch.nn.functional.pad takes (before, after) pairs from the last axis backwards
        flat = [w for pair in reversed(tuple(widths)) for w in pair]
        return self._torch.nn.functional.pad(x, flat, value=value)

    def strided_view(self, x: Array, shape: Sequence[int], strides: Sequence[int]
                     ) -> Array:
        return x.contiguous().as_strided(tuple(shape), tuple(strides))

    def sigmoid(self, x: Array) -> Array:
        return self._torch.sigmoid(x)  # one fused, overflow-free kernel

    def index_add(self, target: Array, indices: Array, values: Array) -> Array:
        return target.index_add_(0, indices, values)

    def take_rows(self, x: Array, indices: Array) -> Array:
        return self._torch.index_select(x, 0, indices)  # a third of array-api-compat's take

    def erf(self, x: Array) -> Array:
        return self._torch.special.erf(x)

    def first_argmax(self, x: Array, x_max: Array) -> Array:
        """By scores, as NumPy's: `torch.argmax` along axis 0 walks the short axis once per
        column (40 ms for a small CNN's (4, 200k) pooling windows on one core, against 1 ms
        here). Rows that hit the column maximum score K, K-1, ..., 1; the highest wins.

        A column whose maximum is NaN (`amax` propagates it, and NaN == NaN is false) gets
        its first NaN, as `argmax` gives: on the CPU those columns are found and redone
        after the fact (one pass over the maxima); on a GPU, where asking whether there are
        any would wait for the device, NaN rows count as hits in the one pass."""
        torch = self._torch
        rows = x.shape[0]
        dtype = torch.uint8 if rows < 256 else torch.int32
        scores = torch.arange(rows, 0, -1, dtype=dtype, device=x.device)[:, None]
        hit = x == x_max
        if not self.host_arrays:
            hit.logical_or_(torch.isnan(x))
        arg = rows - (hit * scores).amax(0)
        if self.host_arrays:
            missed = torch.isnan(x_max).nonzero()[:, 0]  # empty unless a maximum is NaN
            if missed.numel():
                arg[missed] = torch.isnan(x[:, missed]).to(dtype).argmax(0).to(dtype)
        return arg

    def scatter_rows(self, index: Array, values: Array, rows: int) -> Array:
        # one scatter kernel instead of a one-hot mask's three passes
        out = self._torch.zeros((rows, index.shape[0]), dtype=values.dtype,
                                device=values.device)
        return out.scatter_(0, index[None, :].to(self._torch.int64), values[None, :])

    def relu_grad(self, y: Array, dy: Array) -> Array:
        return self._torch.ops.aten.threshold_backward(dy, y, 0)  # dy where y > 0: one pass

    def fused_update(self, name: str) -> Callable | None:
        return _FUSED.get(name)

    def prepare_training(self) -> None:
        if self._device.type == "cpu":
            keep_freed_buffers()  # CPU tensors come from malloc (see backends/_malloc.py)

    def random_bits(self, key: Array, shape: tuple[int, ...]) -> Array:
        with self.device_scope():
            wide = _bits.bits(self.xp, key.to(self._torch.int64), shape, lane=self._torch.int64)
        return wide.to(self._torch.uint32)

    def fold_in(self, key: Array, data: Any) -> Array:
        with self.device_scope():
            wide = _bits.fold_in(self.xp, key.to(self._torch.int64), data,
                                 lane=self._torch.int64)
        return wide.to(self._torch.uint32)

    def synchronize(self, tree: Any = None) -> Any:
        if self._device.type == "cuda":
            self._torch.cuda.synchronize(self._device)
        elif self._device.type == "mps":
            self._torch.mps.synchronize()
        return tree

    def check_dtype(self, dtype: Any) -> np.dtype:
        dt = check_float_dtype(dtype)
        if dt == np.float64 and self._device.type == "mps":
            raise DtypeError(
                "float64 on the torch backend's MPS device: Apple GPUs have no float64, and "
                "PyTorch refuses it there. Use float32, or 'torch:cpu' for float64.")
        return dt

    def dtype_scope(self, dtype: Any) -> contextlib.AbstractContextManager[None]:
        self.check_dtype(dtype)
        return contextlib.nullcontext()


def _adam(g: Any, b1: float, c1: float, b2: float, c2: float, step: float,
          inv_sqrt_bc2: float, eps: float, decay: float, p: Any, m: Any, v: Any) -> None:
    """Adam's update of `p` and its moments `m`, `v` in place: the operations of the rule in
    xbackprop/optim/rules.py in the same order, each rounded as there (so the same bits;
    c1 = 1 - b1, c2 = 1 - b2, decay = lr · λ for AdamW), chained in place on tensors, which
    saves three of the rule's eight temporaries and its calls through array-api-compat."""
    m.mul_(b1).add_(g * c1)                         # m <- b1 m + (1 - b1) g
    v.mul_(b2).add_((g * g).mul_(c2))               # v <- b2 v + (1 - b2) g²
    delta = (m * step).div_(v.sqrt().mul_(inv_sqrt_bc2).add_(eps))
    if decay:
        delta.add_(p * decay)                       # AdamW: decay outside the moments
    p.sub_(delta)


_FUSED: dict[str, Callable] = {"adam": _adam}


def _find_device(torch: Any, device: str | None) -> Any:
    """The torch.device for a choice: None (CUDA's current GPU, else the CPU), "cpu",
    "cuda", "cuda:1", "1" or "mps"; a clear error where it does not exist."""
    if device is None:
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")
    spec = f"cuda:{device}" if device.isdigit() else device
    try:
        chosen = torch.device(spec)
    except RuntimeError as e:
        raise BackendUnavailableError(
            f"backend 'torch': {device!r} is not a device ({e}); choose 'torch:cpu', "
            "'torch:cuda:0' or 'torch:mps'.") from e
    if chosen.type == "cpu":
        return chosen
    if chosen.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise BackendUnavailableError(
                f"backend 'torch': no CUDA device here for {device!r} (PyTorch "
                f"{torch.__version__}, CUDA build: {torch.version.cuda or 'no'}). Choose "
                "'torch:cpu', or install PyTorch's CUDA build on a machine with an NVIDIA GPU.")
        index = torch.cuda.current_device() if chosen.index is None else chosen.index
        if index >= count:
            raise BackendUnavailableError(
                f"backend 'torch': no GPU {device!r} here; choose 'torch:cuda:0' to "
                f"'torch:cuda:{count - 1}'.")
        return torch.device("cuda", index)
    if chosen.type == "mps":
        if not torch.backends.mps.is_available():
            raise BackendUnavailableError(
                "backend 'torch': no Apple GPU (MPS) here; choose 'torch:cpu' or 'torch:cuda'.")
        return chosen
    raise BackendUnavailableError(
        f"backend 'torch' runs on 'cpu', 'cuda' and 'mps', not {device!r}.")
