"""What is timed: the workloads, their data, and what each implementation must return.

A workload is one train step of a model (or one matrix product, the machine's GEMM limit)
on synthetic float32 data of fixed shapes and seed. Every implementation runs the same
workload — same shapes, loss, optimizer and learning rate — in its own way; each lives in
one module of `benchmarks/impls/` and returns a `Runner`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

MLP_SIZES = (784, 512, 512, 10)
MLP_BATCH = 256
CNN_BATCH = 64
GEMM_N = 1024
#: the LSTM step (the recurrent issue's sizes): batch, steps, features in, hidden, classes
LSTM_SIZES = {"batch": 32, "steps": 64, "features": 64, "hidden": 256, "classes": 10}


class Unavailable(Exception):
    """This implementation cannot run here; the message says why and what to install."""


@dataclasses.dataclass
class Runner:
    """A built implementation: `step()` runs one train step (or one matmul) on data already
    on the device, `sync()` waits for the device, `loss()` reads the last loss."""

    step: Callable[[], Any]
    sync: Callable[[], Any]
    loss: Callable[[], float]
    device: str = "cpu"


@dataclasses.dataclass(frozen=True)
class Workload:
    """`kind`: "train_step" or "matmul", the function of an implementation module that
    builds it. A train step minimises `loss` ("softmax_xent": integer labels, mean softmax
    cross-entropy; "mse": mean squared error) with `optimizer` ("adam" or "sgd") at `lr`."""

    name: str
    description: str
    kind: str
    data: Callable[[], tuple[np.ndarray, np.ndarray]]
    loss: str = ""
    optimizer: str = ""
    lr: float = 0.0


def _images(batch: int, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return (rng.random((batch,) + shape, dtype=np.float32),
            rng.integers(0, 10, batch).astype(np.int32))


def _xor() -> tuple[np.ndarray, np.ndarray]:
    return (np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32),
            np.array([[0], [1], [1], [0]], np.float32))


def _sequences() -> tuple[np.ndarray, np.ndarray]:
    n = LSTM_SIZES
    rng = np.random.default_rng(0)
    return (rng.normal(size=(n["batch"], n["steps"], n["features"])).astype(np.float32),
            rng.integers(0, n["classes"], n["batch"]).astype(np.int32))


def _matrices() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return (rng.random((GEMM_N, GEMM_N), dtype=np.float32),
            rng.random((GEMM_N, GEMM_N), dtype=np.float32))


WORKLOADS: dict[str, Workload] = {w.name: w for w in [
    Workload("mlp", "784-512-512-10 ReLU, batch 256, Adam", "train_step",
             lambda: _images(MLP_BATCH, (MLP_SIZES[0],)), "softmax_xent", "adam", 1e-3),
    Workload("cnn", "two conv3x3-ReLU-maxpool2 blocks and a dense layer on 1x28x28, batch 64, "
             "Adam", "train_step", lambda: _images(CNN_BATCH, (1, 28, 28)), "softmax_xent",
             "adam", 1e-3),
    Workload("xor", "2-4-1 sigmoid, batch 4, SGD: the framework's overhead", "train_step",
             _xor, "mse", "sgd", 0.5),
    Workload("lstm", "LSTM(256) over 64 steps of 64 features, batch 32, the last hidden state "
             "into dense(10), Adam: backprop through time", "train_step", _sequences,
             "softmax_xent", "adam", 1e-3),
    Workload("gemm", f"a {GEMM_N}x{GEMM_N} float32 matrix product", "matmul", _matrices),
]}

#: the peer each xbackprop implementation is compared with, per workload, and the target
#: ratio of their step times: issue 24's for the CPU (NumPy and PyTorch's CPU tensors
#: against PyTorch eager, JAX against JAX autodiff; "keep" rows hold what was already met),
#: the first speed issue's for the GPU (CuPy against PyTorch CUDA with TF32 off on both)
TARGETS: dict[str, list[tuple[str, str, float]]] = {
    "mlp": [("xbackprop-numpy", "torch", 1.1), ("xbackprop-jax", "jax-autodiff", 1.05),
            ("xbackprop-cupy", "torch-cuda", 1.0), ("xbackprop-torch", "torch", 1.1),
            ("xbackprop-torch-cuda", "torch-cuda", 1.2)],
    "cnn": [("xbackprop-numpy", "torch", 1.3), ("xbackprop-jax", "jax-autodiff", 1.05),
            ("xbackprop-cupy", "torch-cuda", 1.5), ("xbackprop-torch", "torch", 1.5),
            ("xbackprop-torch-cuda", "torch-cuda", 2.0)],
    "lstm": [("xbackprop-numpy", "torch", 1.5), ("xbackprop-jax", "jax-autodiff", 1.0),
             ("xbackprop-numpy", "numpy-plain", 1.2), ("xbackprop-torch", "torch", 2.0)],
    "xor": [("xbackprop-numpy", "numpy-plain", 1.5), ("xbackprop-jax", "jax-autodiff", 1.2),
            ("xbackprop-cupy", "torch-cuda", 1.5), ("xbackprop-torch", "torch", 1.5),
            ("xbackprop-torch-cuda", "torch-cuda", 1.5)],
}


def mlp_flops(batch: int = MLP_BATCH, sizes: tuple[int, ...] = MLP_SIZES) -> float:
    """Matrix-product FLOPs of one train step: forward, weight gradients, and input
    gradients of every layer but the first (nobody needs dL/dx of the data)."""
    layers = list(zip(sizes[:-1], sizes[1:]))
    forward = sum(2 * batch * a * b for a, b in layers)
    return 3 * forward - 2 * batch * sizes[0] * sizes[1]
