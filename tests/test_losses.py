"""Losses: values and gradients against the textbook formulas computed in NumPy float64, both
reductions, finite and right in the limit at logits of ±1e4, no silent broadcasting of
targets, and the same numbers under `jax.jit` and `jax.vmap` as eagerly."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import xbackprop as xb
from xbackprop.losses import get_loss

RNG = np.random.default_rng(11)
N, K = 6, 4
PRED = RNG.normal(size=(N, K))
TARGET = RNG.normal(size=(N, K))
PROB = RNG.uniform(0.05, 0.95, size=(N, K))
BINARY = (RNG.uniform(size=(N, K)) > 0.5) * 1.0
SOFT = RNG.uniform(size=(N, K))
LABELS = np.array([0, 3, 1, 2, 3, 0])
PROBS_TARGET = RNG.uniform(0.1, 1.0, size=(N, K))
PROBS_TARGET /= PROBS_TARGET.sum(axis=1, keepdims=True)


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def log_softmax(z):
    m = z.max(axis=1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=1, keepdims=True))


def one_hot(labels, k):
    return np.eye(k)[labels]


# name -> (loss factory(reduction), pred, target, per-item losses, dL/dpred per item, count)
# `count` is what "mean" divides by: every element for MSE/BCE, the batch for softmax CE.
CASES = {
    "mse": (lambda r: xb.MSE(r), PRED, TARGET,
            (PRED - TARGET) ** 2, 2 * (PRED - TARGET), PRED.size),
    "mse-scaled": (lambda r: xb.MSE(r, scale=0.5), PRED, TARGET,
                   0.5 * (PRED - TARGET) ** 2, PRED - TARGET, PRED.size),
    "bce": (lambda r: xb.BinaryCrossEntropy(r), PROB, SOFT,
            -(SOFT * np.log(PROB) + (1 - SOFT) * np.log(1 - PROB)),
            (PROB - SOFT) / (PROB * (1 - PROB)), PROB.size),
    "bce-logits": (lambda r: xb.BinaryCrossEntropyWithLogits(r), 3 * PRED, BINARY,
                   -(BINARY * np.log(sigmoid(3 * PRED))
                     + (1 - BINARY) * np.log(1 - sigmoid(3 * PRED))),
                   sigmoid(3 * PRED) - BINARY, PRED.size),
    "softmax-ce-labels": (lambda r: xb.SoftmaxCrossEntropy(r), PRED, LABELS,
                          -log_softmax(PRED)[np.arange(N), LABELS],
                          np.exp(log_softmax(PRED)) - one_hot(LABELS, K), N),
    "softmax-ce-probs": (lambda r: xb.SoftmaxCrossEntropy(r), PRED, PROBS_TARGET,
                         -(PROBS_TARGET * log_softmax(PRED)).sum(axis=1),
                         np.exp(log_softmax(PRED)) - PROBS_TARGET, N),
}


def _on(backend, pred, target, dtype):
    t_dtype = None if target.dtype.kind == "i" else dtype
    return backend.asarray(pred, dtype=dtype), backend.asarray(target, dtype=t_dtype)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("name", list(CASES))
def test_value_and_gradient_match_the_formula(backend, name, reduction):
    make, pred, target, per_item, grad, count = CASES[name]
    loss = make(reduction)
    p, t = _on(backend, pred, target, "float32")
    value, cache = loss.forward(p, t)
    dpred = loss.backward(cache)
    factor = 1.0 if reduction == "sum" else 1.0 / count
    assert np.shape(value) == () and backend.numpy_dtype(value.dtype) == np.float32  # a NumPy scalar on NumPy
    assert backend.name == "numpy" or backend.is_array(value)
    assert backend.is_array(dpred) and backend.numpy_dtype(dpred.dtype) == np.float32 and dpred.shape == pred.shape
    np.testing.assert_allclose(float(value), per_item.sum() * factor, rtol=2e-6)
    np.testing.assert_allclose(xb.to_numpy(dpred), grad * factor, rtol=2e-5, atol=1e-6)
    # dloss scales the gradient (the chain rule through the loss)
    np.testing.assert_allclose(xb.to_numpy(loss.backward(cache, 3.0)), 3 * grad * factor,
                               rtol=2e-5, atol=3e-6)
    np.testing.assert_allclose(float(loss(p, t)), float(value), rtol=0)


@pytest.mark.parametrize("name", list(CASES))
def test_float64_to_float64_precision(name):
    make, pred, target, per_item, grad, count = CASES[name]
    loss = make("mean")
    value, cache = loss.forward(pred, target)
    assert value.dtype == np.float64
    np.testing.assert_allclose(value, per_item.sum() / count, rtol=1e-12)
    np.testing.assert_allclose(loss.backward(cache), grad / count, rtol=1e-10, atol=1e-14)


def test_the_classic_half_sum_of_squares():
    """½ Σ (target - out)², the loss of the classic backprop derivations."""
    out, target = np.array([[0.75136507, 0.772928465]]), np.array([[0.01, 0.99]])
    value, cache = xb.MSE("sum", scale=0.5).forward(out, target)
    np.testing.assert_allclose(value, 0.298371109, atol=1e-9)
    np.testing.assert_allclose(xb.MSE("sum", scale=0.5).backward(cache), out - target)


def test_softmax_labels_and_one_hot_targets_agree(backend):
    p = backend.asarray(PRED, dtype="float32")
    by_label = xb.SoftmaxCrossEntropy().forward(p, backend.asarray(LABELS))
    by_prob = xb.SoftmaxCrossEntropy().forward(
        p, backend.asarray(one_hot(LABELS, K), dtype="float32"))
    assert float(by_label[0]) == pytest.approx(float(by_prob[0]), rel=1e-6)
    np.testing.assert_allclose(xb.to_numpy(xb.SoftmaxCrossEntropy().backward(by_label[1])),
                               xb.to_numpy(xb.SoftmaxCrossEntropy().backward(by_prob[1])),
                               atol=1e-7)


@pytest.mark.parametrize("loss, target", [
    (xb.MSE(), np.array([[0], [1], [1], [0]])),                      # integer targets
    (xb.BinaryCrossEntropy(), np.array([[0], [1], [1], [0]], dtype=np.int32)),
    (xb.BinaryCrossEntropyWithLogits(), np.array([[False], [True], [True], [False]])),
    (xb.MSE(), np.array([[0.0], [1.0], [1.0], [0.0]])),              # float64 targets
    (xb.SoftmaxCrossEntropy(), np.eye(2)[[0, 1, 1, 0]]),             # float64 probabilities
], ids=["mse-int", "bce-int", "bce-logits-bool", "mse-float64", "softmax-ce-float64"])
def test_targets_do_not_promote_float32_predictions(backend, loss, target):
    """A float32 model's loss and gradient stay float32 whatever the targets' dtype (as
    they do on JAX): otherwise float64 spreads from the loss into every gradient,
    parameter and optimizer slot."""
    pred = backend.asarray(np.full(target.shape, 0.25), dtype="float32")
    value, cache = loss.forward(pred, backend.asarray(target))
    grad = loss.backward(cache)
    assert backend.numpy_dtype(value.dtype) == np.float32, value.dtype
    assert backend.numpy_dtype(grad.dtype) == np.float32, grad.dtype


# -- extreme logits ---------------------------------------------------------------------

BIG = 1e4


def test_bce_with_logits_at_plus_minus_1e4(backend):
    z = backend.asarray([[BIG, -BIG, BIG, -BIG]], dtype="float32")
    t = backend.asarray([[1.0, 0.0, 0.0, 1.0]], dtype="float32")
    loss = xb.BinaryCrossEntropyWithLogits("sum")
    value, cache = loss.forward(z, t)
    grad = xb.to_numpy(loss.backward(cache))
    # right: loss 0 and gradient 0; wrong by 1e4: loss 1e4 and gradient ±1
    assert float(value) == pytest.approx(2 * BIG, rel=1e-6)
    np.testing.assert_allclose(grad, [[0.0, 0.0, 1.0, -1.0]], atol=1e-6)
    per_item = xb.BinaryCrossEntropyWithLogits("mean")(z, t)
    assert float(per_item) == pytest.approx(BIG / 2, rel=1e-6)


def test_softmax_cross_entropy_at_plus_minus_1e4(backend):
    z = backend.asarray([[BIG, -BIG, 0.0], [-BIG, BIG, 0.0]], dtype="float32")
    labels = backend.asarray(np.array([0, 0]))
    loss = xb.SoftmaxCrossEntropy("sum")
    value, cache = loss.forward(z, labels)
    grad = xb.to_numpy(loss.backward(cache))
    assert np.isfinite(float(value)) and np.isfinite(grad).all()
    assert float(value) == pytest.approx(2 * BIG, rel=1e-6)  # 0 for row 1, 2e4 for row 2
    np.testing.assert_allclose(grad, [[0.0, 0.0, 0.0], [-1.0, 1.0, 0.0]], atol=1e-6)


def test_bce_on_probabilities_of_exactly_zero_and_one(backend):
    """σ(±1e4) is exactly 0 or 1 in float32: the logs are floored at -100 (as PyTorch),
    so a confident mistake costs 100 per item and the gradient stays finite."""
    p = xb.Sigmoid()({}, backend.asarray([[BIG, -BIG, BIG, -BIG]], dtype="float32"))
    np.testing.assert_array_equal(xb.to_numpy(p), [[1.0, 0.0, 1.0, 0.0]])
    t = backend.asarray([[1.0, 0.0, 0.0, 1.0]], dtype="float32")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no 'divide by zero in log' either
        value, cache = xb.BinaryCrossEntropy("sum").forward(p, t)
        grad = xb.to_numpy(xb.BinaryCrossEntropy("sum").backward(cache))
    assert float(value) == pytest.approx(200.0, rel=1e-6)
    assert np.isfinite(grad).all()
    np.testing.assert_array_equal(grad[0, :2], [0.0, 0.0])
    assert grad[0, 2] > 1e6 and grad[0, 3] < -1e6  # pushes the mistakes back


def test_mse_at_1e4(backend):
    p = backend.asarray([[BIG, -BIG]], dtype="float32")
    t = backend.asarray([[0.0, 0.0]], dtype="float32")
    value, cache = xb.MSE().forward(p, t)
    assert float(value) == pytest.approx(BIG ** 2, rel=1e-6)
    np.testing.assert_allclose(xb.to_numpy(xb.MSE().backward(cache)), [[BIG, -BIG]], rtol=1e-6)


# -- shapes and settings ----------------------------------------------------------------

@pytest.mark.parametrize("loss", [xb.MSE(), xb.BinaryCrossEntropy(),
                                  xb.BinaryCrossEntropyWithLogits()], ids=repr)
@pytest.mark.parametrize("target_shape", [(N,), (N, 2), (1, 1), (N, 1, 1)])
def test_elementwise_losses_refuse_to_broadcast(loss, target_shape):
    pred = np.full((N, 1), 0.5)
    with pytest.raises(ValueError) as info:
        loss(pred, np.full(target_shape, 0.5))
    msg = str(info.value)
    assert f"{tuple(target_shape)}" in msg and f"{(N, 1)}" in msg and "broadcast" in msg


@pytest.mark.parametrize("target", [
    np.zeros((N, 1), dtype=np.int64),        # labels as a column
    np.zeros(N + 1, dtype=np.int64),         # one label too many
    np.full((N, K + 1), 1.0 / (K + 1)),      # one class too many
    np.zeros((N, K, 1)),
], ids=["column", "too-many-labels", "too-many-classes", "3d"])
def test_softmax_cross_entropy_wrong_target_shapes(target):
    with pytest.raises(ValueError, match=rf"\({N},\) or probabilities of shape \({N}, {K}\)"):
        xb.SoftmaxCrossEntropy()(PRED, target)


def test_softmax_cross_entropy_needs_2d_logits():
    with pytest.raises(ValueError, match=r"\(N, classes\)"):
        xb.SoftmaxCrossEntropy()(PRED[0], LABELS[:1])


def test_unknown_reduction():
    with pytest.raises(ValueError, match="reduction"):
        xb.MSE("none")
    with pytest.raises(ValueError, match="reduction"):
        xb.SoftmaxCrossEntropy(reduction="avg")


def test_get_loss_by_name():
    assert get_loss("mse") == xb.MSE()
    assert get_loss("cross_entropy") == xb.SoftmaxCrossEntropy()
    assert get_loss("bce_logits") == xb.BinaryCrossEntropyWithLogits()
    loss = xb.MSE("sum")
    assert get_loss(loss) is loss
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        get_loss("hinge")


# -- under jax transformations ------------------------------------------------------------

@pytest.mark.parametrize("name", ["mse", "bce", "bce-logits", "softmax-ce-labels",
                                  "softmax-ce-probs"])
def test_jit_and_vmap_give_the_eager_results(jax_backend, name):
    import jax

    make, pred, target, *_ = CASES[name]
    loss = make("mean")

    def value_and_grad(p, t):
        value, cache = loss.forward(p, t)
        return value, loss.backward(cache)

    p, t = _on(jax_backend, pred, target, "float32")
    value, grad = value_and_grad(p, t)
    jv, jg = jax.jit(value_and_grad)(p, t)
    np.testing.assert_allclose(float(jv), float(value), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(jg), np.asarray(grad), rtol=1e-6, atol=1e-7)
    # vmap over two stacked batches: each batch's own loss and gradient
    ps = jax_backend.asarray(np.stack([pred, pred[::-1]]), dtype="float32")
    ts = _on(jax_backend, pred, np.stack([target, target[::-1]]), "float32")[1]
    vv, vg = jax.vmap(value_and_grad)(ps, ts)
    assert vv.shape == (2,)
    for i in range(2):
        ev, eg = value_and_grad(ps[i], ts[i])
        np.testing.assert_allclose(float(vv[i]), float(ev), rtol=1e-6)
        np.testing.assert_allclose(np.asarray(vg[i]), np.asarray(eg), rtol=1e-6, atol=1e-7)


# -- masks: padded samples count for nothing --------------------------------------------------

MASK = np.array([1, 1, 0, 1, 0, 1])
REAL = MASK == 1


@pytest.mark.parametrize("name", ["mse-scaled", "bce", "bce-logits", "softmax-ce-labels",
                                  "softmax-ce-probs"])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_a_mask_gives_the_loss_and_gradient_of_the_real_samples(backend, name, reduction):
    """The masked loss on a padded batch equals the loss on the real samples alone, and the
    gradient is the real samples' gradient with zero rows for the padding."""
    make, pred, target = CASES[name][:3]
    loss = make(reduction)
    dt = "float32"
    masked, cache = loss.forward(*_on(backend, pred, target, dt), backend.asarray(MASK, dtype=dt))
    dpred = xb.to_numpy(loss.backward(cache, 2.0))
    real, real_cache = loss.forward(*_on(backend, pred[REAL], target[REAL], dt))
    np.testing.assert_allclose(float(masked), float(real), rtol=1e-5)
    np.testing.assert_allclose(dpred[REAL], xb.to_numpy(loss.backward(real_cache, 2.0)),
                               rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(dpred[~REAL], 0.0)


@pytest.mark.parametrize("name", ["mse", "bce-logits", "softmax-ce-labels"])
def test_masked_gradient_against_the_oracle(backend, name):
    """The masked loss's hand-written gradient against jax.vjp (or finite differences)."""
    make, pred, target = CASES[name][:3]
    loss = make("mean")

    def forward(pred, target, mask):
        return loss.forward(pred, target, mask)

    def backward(cache, dy):
        return {"pred": loss.backward(cache, dy)}

    def checked(pred):  # targets and mask are fixed: only pred is differentiated
        xp = xb.backend_of(pred).xp
        t = xp.asarray(target) if target.dtype.kind == "i" else xp.asarray(target,
                                                                            dtype=pred.dtype)
        return forward(pred, t, xp.asarray(MASK, dtype=pred.dtype))

    report = xb.check_function(checked, backward, {"pred": pred}, backend=backend,
                               oracle="both" if _have_jax() else "fd")
    assert report.ok, report


def _have_jax():
    try:
        import jax  # noqa: F401
    except ImportError:
        return False
    return True


def test_softmax_cross_entropy_on_sequences_is_the_mean_over_positions(backend):
    """Logits (B, T, V) with labels (B, T): the same loss and gradient as the (B·T, V) rows,
    so every position is one item of the mean."""
    rng = np.random.default_rng(7)
    logits, labels = rng.normal(size=(3, 4, 5)), rng.integers(0, 5, size=(3, 4))
    loss = xb.SoftmaxCrossEntropy()
    with backend.dtype_scope("float64"):
        value, cache = loss.forward(backend.asarray(logits, dtype="float64"),
                                    backend.asarray(labels))
        grad = xb.to_numpy(loss.backward(cache))
    flat_value, flat_cache = loss.forward(logits.reshape(12, 5), labels.reshape(12))
    np.testing.assert_allclose(float(xb.to_numpy(value)), float(flat_value), rtol=1e-12)
    np.testing.assert_allclose(grad, loss.backward(flat_cache).reshape(3, 4, 5), rtol=1e-12)
    stats = xb.metrics.batch_stats(logits, labels, "classification")
    assert int(stats["count"]) == 12  # accuracy over tokens
    assert int(stats["correct"]) == int((logits.argmax(-1) == labels).sum())


def test_sequence_labels_of_another_length_say_how_labels_are_made():
    loss = xb.SoftmaxCrossEntropy()
    with pytest.raises(ValueError, match=r"for logits \(2, 8, 5\) the target is integer labels "
                                         r"of shape \(2, 8\).*not \(2, 7\).*ids\[:, 1:T \+ 1\]"):
        loss(np.zeros((2, 8, 5)), np.zeros((2, 7), dtype=np.int64))
    with pytest.raises(ValueError, match=r"labels run from 0 to 9 \(label \(1, 2\) is 9\)"):
        labels = np.zeros((2, 3), dtype=np.int64)
        labels[1, 2] = 9
        loss(np.zeros((2, 3, 5)), labels)
