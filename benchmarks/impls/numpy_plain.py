"""Plain NumPy, written by hand the way one writes a small network without a framework:
one class per model, forward and backward in one `step`, in-place Adam or SGD. The
yardstick for xbackprop's overhead on NumPy."""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmarks.workloads import MLP_SIZES, Runner, Workload

#: implementation -> setting (none)
IMPLS = {"numpy-plain": None}


def train_step(workload: Workload, setting: None) -> Runner:
    x, y = workload.data()
    model = MODELS[workload.name](workload.lr)
    last = [0.0]

    def run() -> None:
        last[0] = model.step(x, y)

    return Runner(run, lambda: None, lambda: float(last[0]))


def matmul(workload: Workload, setting: None) -> Runner:
    a, b = workload.data()
    return Runner(lambda: a @ b, lambda: None, lambda: 0.0)


class _PlainAdam:
    """Adam written the way one writes it by hand in NumPy: in place, float32."""

    def __init__(self, params: list[np.ndarray], lr: float = 1e-3, b1: float = 0.9,
                 b2: float = 0.999, eps: float = 1e-8) -> None:
        self.params, self.lr, self.b1, self.b2, self.eps = params, lr, b1, b2, eps
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.t = 0

    def step(self, grads: list[np.ndarray]) -> None:
        self.t += 1
        step = self.lr / (1 - self.b1 ** self.t)
        inv_bc2 = (1 - self.b2 ** self.t) ** -0.5
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            m *= self.b1
            m += (1 - self.b1) * g
            v *= self.b2
            v += (1 - self.b2) * g * g
            p -= step * m / (np.sqrt(v) * inv_bc2 + self.eps)


def _softmax_xent(logits: np.ndarray, labels: np.ndarray) -> tuple[Any, np.ndarray]:
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    s = e.sum(axis=1, keepdims=True)
    n = len(labels)
    loss = np.mean(np.log(s[:, 0]) - shifted[np.arange(n), labels])
    d = e / s
    d[np.arange(n), labels] -= 1
    return loss, d / n


class PlainMLP:
    def __init__(self, lr: float) -> None:
        rng = np.random.default_rng(0)
        self.W = [(rng.normal(size=(a, b)) * np.sqrt(2 / a)).astype(np.float32)
                  for a, b in zip(MLP_SIZES[:-1], MLP_SIZES[1:])]
        self.b = [np.zeros(b, np.float32) for b in MLP_SIZES[1:]]
        self.params = self.W + self.b
        self.opt = _PlainAdam(self.params, lr)

    def step(self, x: np.ndarray, y: np.ndarray) -> Any:
        hs = [x]
        for i, (W, b) in enumerate(zip(self.W, self.b)):
            z = hs[-1] @ W + b
            hs.append(np.maximum(z, 0) if i < len(self.W) - 1 else z)
        loss, d = _softmax_xent(hs[-1], y)
        gW, gb = [None] * 3, [None] * 3
        for i in range(len(self.W) - 1, -1, -1):
            gW[i], gb[i] = hs[i].T @ d, d.sum(axis=0)
            if i:
                d = (d @ self.W[i].T) * (hs[i] > 0)
        self.opt.step(gW + gb)
        return loss


class PlainCNN:
    """The straightforward im2col CNN: sliding_window_view patches, einsum products,
    col2im by adding each kernel tap back, max-pool by reshaping into 2x2 blocks."""

    def __init__(self, lr: float) -> None:
        rng = np.random.default_rng(0)
        self.W1 = (rng.normal(size=(16, 1, 3, 3)) * np.sqrt(2 / 9)).astype(np.float32)
        self.W2 = (rng.normal(size=(32, 16, 3, 3)) * np.sqrt(2 / 144)).astype(np.float32)
        self.b1, self.b2 = np.zeros(16, np.float32), np.zeros(32, np.float32)
        self.W3 = (rng.normal(size=(1568, 10)) * np.sqrt(2 / 1568)).astype(np.float32)
        self.b3 = np.zeros(10, np.float32)
        self.params = [self.W1, self.b1, self.W2, self.b2, self.W3, self.b3]
        self.opt = _PlainAdam(self.params, lr)

    @staticmethod
    def _conv(x, W, b):
        xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
        cols = np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(2, 3))
        y = np.einsum("nchwij,fcij->nfhw", cols, W, optimize=True) + b[None, :, None, None]
        return y, cols

    @staticmethod
    def _conv_back(d, cols, W, x_shape, need_dx):
        dW = np.einsum("nfhw,nchwij->fcij", d, cols, optimize=True)
        db = d.sum(axis=(0, 2, 3))
        if not need_dx:
            return None, dW, db
        n, c, h, w = x_shape
        dxp = np.zeros((n, c, h + 2, w + 2), np.float32)
        for i in range(3):
            for j in range(3):
                dxp[:, :, i:i + h, j:j + w] += np.einsum("nfhw,fc->nchw", d, W[:, :, i, j],
                                                         optimize=True)
        return dxp[:, :, 1:-1, 1:-1], dW, db

    @staticmethod
    def _pool(x):
        n, c, h, w = x.shape
        blocks = x.reshape(n, c, h // 2, 2, w // 2, 2)
        y = blocks.max(axis=(3, 5))
        mask = blocks == y[:, :, :, None, :, None]
        return y, mask

    @staticmethod
    def _pool_back(d, mask):
        n, c, h, _, w, _ = mask.shape
        return (mask * d[:, :, :, None, :, None]).reshape(n, c, 2 * h, 2 * w)

    def step(self, x: np.ndarray, y: np.ndarray) -> Any:
        z1, cols1 = self._conv(x, self.W1, self.b1)
        a1 = np.maximum(z1, 0)
        p1, m1 = self._pool(a1)
        z2, cols2 = self._conv(p1, self.W2, self.b2)
        a2 = np.maximum(z2, 0)
        p2, m2 = self._pool(a2)
        flat = p2.reshape(len(x), -1)
        loss, d = _softmax_xent(flat @ self.W3 + self.b3, y)
        gW3, gb3 = flat.T @ d, d.sum(axis=0)
        d = (d @ self.W3.T).reshape(p2.shape)
        d = self._pool_back(d, m2) * (z2 > 0)
        d, gW2, gb2 = self._conv_back(d, cols2, self.W2, p1.shape, True)
        d = self._pool_back(d, m1) * (z1 > 0)
        _, gW1, gb1 = self._conv_back(d, cols1, self.W1, x.shape, False)
        self.opt.step([gW1, gb1, gW2, gb2, gW3, gb3])
        return loss


class PlainXOR:
    def __init__(self, lr: float) -> None:
        self.lr = lr
        rng = np.random.default_rng(0)
        self.W1 = rng.uniform(-1, 1, (2, 4)).astype(np.float32)
        self.W2 = rng.uniform(-1, 1, (4, 1)).astype(np.float32)
        self.b1, self.b2 = np.zeros(4, np.float32), np.zeros(1, np.float32)
        self.params = [self.W1, self.b1, self.W2, self.b2]

    def step(self, x: np.ndarray, y: np.ndarray) -> Any:
        h = 1 / (1 + np.exp(-(x @ self.W1 + self.b1)))
        o = 1 / (1 + np.exp(-(h @ self.W2 + self.b2)))
        diff = o - y
        do = (2 / diff.size) * diff * o * (1 - o)
        dh = (do @ self.W2.T) * h * (1 - h)
        self.W2 -= self.lr * (h.T @ do)
        self.b2 -= self.lr * do.sum(axis=0)
        self.W1 -= self.lr * (x.T @ dh)
        self.b1 -= self.lr * dh.sum(axis=0)
        return np.mean(diff * diff)


MODELS = {"mlp": PlainMLP, "cnn": PlainCNN, "xor": PlainXOR}
