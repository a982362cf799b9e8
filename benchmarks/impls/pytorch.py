"""PyTorch eager, as its users write a train step: `nn.Sequential`, autograd, `torch.optim`
(on the GPU with full float32 products: TF32 off, as xbackprop computes)."""

from __future__ import annotations

import os
from typing import Any

from benchmarks.workloads import LSTM_SIZES, MLP_SIZES, Runner, Unavailable, Workload
from xbackprop.backends.torch_backend import INSTALL  # the one way to install (no torch here)

#: implementation -> device
IMPLS = {"torch": "cpu", "torch-cuda": "cuda"}


def mlp(nn: Any) -> Any:
    hidden = [layer for a, b in zip(MLP_SIZES[:-2], MLP_SIZES[1:-1])
              for layer in (nn.Linear(a, b), nn.ReLU())]
    return nn.Sequential(*hidden, nn.Linear(*MLP_SIZES[-2:]))


def cnn(nn: Any) -> Any:
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(32 * 7 * 7, 10))


def xor(nn: Any) -> Any:
    return nn.Sequential(nn.Linear(2, 4), nn.Sigmoid(), nn.Linear(4, 1), nn.Sigmoid())


def lstm(nn: Any) -> Any:
    """`nn.LSTM` (ATen's fused loop; its own two biases b_ih and b_hh, where xbackprop keeps
    their sum), the last step's output into a Linear layer."""
    n = LSTM_SIZES

    class Last(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(n["features"], n["hidden"], batch_first=True)
            self.out = nn.Linear(n["hidden"], n["classes"])

        def forward(self, x: Any) -> Any:
            hs, _ = self.lstm(x)
            return self.out(hs[:, -1])
    return Last()


MODELS = {"mlp": mlp, "cnn": cnn, "xor": xor, "lstm": lstm}


def _torch(device: str) -> tuple[Any, Any, Any]:
    """(torch, the device, its synchronize)."""
    try:
        import torch
    except ImportError as e:
        raise Unavailable(f"PyTorch: not installed. {INSTALL}") from e
    if device == "cuda":
        if not torch.cuda.is_available():
            raise Unavailable("PyTorch CUDA: no CUDA device")
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        return torch, torch.device("cuda"), torch.cuda.synchronize
    if "OMP_NUM_THREADS" not in os.environ:  # else PyTorch has taken that many already
        torch.set_num_threads(os.cpu_count() or 1)
    return torch, torch.device("cpu"), lambda: None


def train_step(workload: Workload, device: str) -> Runner:
    torch, where, sync = _torch(device)
    torch.manual_seed(0)
    net = MODELS[workload.name](torch.nn).to(where)
    x, y = (torch.tensor(a, device=where) for a in workload.data())
    if workload.loss == "softmax_xent":
        criterion, y = torch.nn.CrossEntropyLoss(), y.long()
    else:
        criterion = torch.nn.MSELoss()
    optimizer = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}[workload.optimizer](
        net.parameters(), lr=workload.lr)
    last = [torch.zeros(())]

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        value = criterion(net(x), y)
        value.backward()
        optimizer.step()
        last[0] = value.detach()

    return Runner(step, sync, lambda: float(last[0]), str(where))


def matmul(workload: Workload, device: str) -> Runner:
    torch, where, sync = _torch(device)
    a, b = (torch.tensor(m, device=where) for m in workload.data())
    return Runner(lambda: torch.mm(a, b), sync, lambda: 0.0, str(where))
