"""Plain NumPy, written by hand the way one writes a small network without a framework:
one class per model, forward and backward in one `step`, in-place Adam or SGD. The
yardstick for xbackprop's overhead on NumPy."""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmarks.workloads import LSTM_SIZES, MLP_SIZES, Runner, Workload

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


class PlainLSTM:
    """An LSTM with its backprop through time by hand, min-char-rnn style: a Python loop over
    the steps each way, the input projection and the weight gradients as one product over
    every step, gates in one (B, 4H) array, float32 throughout."""

    def __init__(self, lr: float) -> None:
        n = LSTM_SIZES
        rng = np.random.default_rng(0)
        f, h, g = n["features"], n["hidden"], 4 * n["hidden"]
        self.hidden = h
        self.Wx = rng.uniform(-1, 1, (f, g)).astype(np.float32) * np.float32(np.sqrt(6 / (f + g)))
        self.Wh = (rng.normal(size=(h, g)) / np.sqrt(h)).astype(np.float32)
        self.b = np.zeros(g, np.float32)
        self.Wo = (rng.normal(size=(h, n["classes"])) / np.sqrt(h)).astype(np.float32)
        self.bo = np.zeros(n["classes"], np.float32)
        self.params = [self.Wx, self.Wh, self.b, self.Wo, self.bo]
        self.opt = _PlainAdam(self.params, lr)

    def step(self, x: np.ndarray, y: np.ndarray) -> Any:
        batch, steps, features = x.shape
        h = self.hidden
        xs = np.ascontiguousarray(x.transpose(1, 0, 2))                 # (T, B, F)
        ax = (xs.reshape(-1, features) @ self.Wx + self.b).reshape(steps, batch, 4 * h)
        hs = np.zeros((steps + 1, batch, h), np.float32)
        cs = np.zeros((steps + 1, batch, h), np.float32)
        gates = np.empty((steps, batch, 4 * h), np.float32)
        for t in range(steps):
            a = ax[t] + hs[t] @ self.Wh
            gt = gates[t]
            gt[:, :3 * h] = 1 / (1 + np.exp(-a[:, :3 * h]))           # i, f, (g), o
            gt[:, 3 * h:] = 1 / (1 + np.exp(-a[:, 3 * h:]))
            gt[:, 2 * h:3 * h] = np.tanh(a[:, 2 * h:3 * h])
            i, f, g, o = gt[:, :h], gt[:, h:2 * h], gt[:, 2 * h:3 * h], gt[:, 3 * h:]
            cs[t + 1] = f * cs[t] + i * g
            hs[t + 1] = o * np.tanh(cs[t + 1])
        loss, d = _softmax_xent(hs[-1] @ self.Wo + self.bo, y)
        gWo, gbo = hs[-1].T @ d, d.sum(axis=0)
        dh = d @ self.Wo.T
        dc = np.zeros_like(dh)
        deltas = np.empty_like(gates)
        for t in range(steps - 1, -1, -1):
            gt = gates[t]
            i, f, g, o = gt[:, :h], gt[:, h:2 * h], gt[:, 2 * h:3 * h], gt[:, 3 * h:]
            tc = np.tanh(cs[t + 1])
            dc = dc + dh * o * (1 - tc * tc)
            da = deltas[t]
            da[:, :h] = dc * g * i * (1 - i)
            da[:, h:2 * h] = dc * cs[t] * f * (1 - f)
            da[:, 2 * h:3 * h] = dc * i * (1 - g * g)
            da[:, 3 * h:] = dh * tc * o * (1 - o)
            dh = da @ self.Wh.T
            dc = dc * f
        flat = deltas.reshape(-1, 4 * h)
        gWx = xs.reshape(-1, features).T @ flat
        gWh = hs[:-1].reshape(-1, h).T @ flat
        self.opt.step([gWx, gWh, flat.sum(axis=0), gWo, gbo])
        return loss


MODELS = {"mlp": PlainMLP, "cnn": PlainCNN, "xor": PlainXOR, "lstm": PlainLSTM}
