"""Conv2D's forward against an independent convolution (jax.lax.conv_general_dilated in
float64), its output shapes for every padding mode, and its errors. The backward is proven
in test_gradcheck.py."""

from __future__ import annotations

import numpy as np
import pytest

import xbackprop as xb


def _lax_conv(x, w, b, stride, padding, dilation):
    import jax

    pads = xb.layers.window.resolve_padding(padding, x.shape[2:], w.shape[2:], stride, dilation)
    with jax.enable_x64(True):
        y = jax.lax.conv_general_dilated(x, w, window_strides=stride, padding=pads,
                                         rhs_dilation=dilation,
                                         dimension_numbers=("NCHW", "OIHW", "NCHW"))
        return np.asarray(y) + (0 if b is None else b[None, :, None, None])


CONFIGS = [
    dict(kernel_size=3, padding=1),
    dict(kernel_size=(2, 3), stride=2, padding="valid"),
    dict(kernel_size=3, stride=2, padding="same"),
    dict(kernel_size=(3, 2), stride=(1, 2), padding=((1, 0), (2, 1)), dilation=(2, 1)),
    dict(kernel_size=5, padding="same", use_bias=False),
    dict(kernel_size=1),
    dict(kernel_size=(1, 4), stride=(3, 1), padding=(0, 2)),
]


@pytest.mark.parametrize("config", CONFIGS, ids=[str(c) for c in CONFIGS])
def test_forward_matches_lax_convolution(backend, jax_backend, config):
    layer = xb.Conv2D(4, **config)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3, 2, 9, 7))  # non-square input
    params = xb.tree.tree_map(lambda a: a + rng.normal(size=a.shape), layer.init(rng, (2, 9, 7)))
    y = xb.to_numpy(layer(xb.tree_to_backend(params, backend, "float32"),
                          backend.asarray(x, dtype="float32")))
    expected = _lax_conv(x, params["W"], params.get("b"), xb.layers.window.pair(
        layer.stride, "stride"), layer.padding, xb.layers.window.pair(layer.dilation, "dilation"))
    assert y.shape == expected.shape == (3, 4, *layer.output_shape((2, 9, 7))[1:])
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("size,stride,expected", [(8, 1, 8), (8, 2, 4), (7, 2, 4), (5, 3, 2)])
def test_same_padding_output_is_ceil_of_input_over_stride(size, stride, expected):
    layer = xb.Conv2D(1, 3, stride=stride, padding="same")
    assert layer.output_shape((1, size, size)) == (1, expected, expected)


def test_conv_keeps_only_the_patch_matrix_between_forward_and_backward():
    """Memory: the cache holds the patch matrix and shapes, not the input or the padding."""
    layer = xb.Conv2D(8, 3, padding=1)
    x = np.ones((4, 3, 10, 10), np.float32)
    params = xb.init_params(layer, 0, (3, 10, 10))
    _, cache = layer.forward(params, x)
    arrays = [a for a in cache if hasattr(a, "shape")]
    assert len(arrays) == 1
    assert arrays[0].shape[0] == 3 * 3 * 3  # (C·KH·KW, N·OH·row width)
    assert arrays[0].size <= 27 * 4 * 10 * 12  # at most the junk columns of two pad pixels


@pytest.mark.parametrize("bad", [dict(filters=0, kernel_size=3), dict(filters=2, kernel_size=0),
                                 dict(filters=2, kernel_size=3, stride=0),
                                 dict(filters=2, kernel_size=3, padding="full"),
                                 dict(filters=2, kernel_size=3, padding=-1)])
def test_bad_settings_fail_at_construction(bad):
    with pytest.raises(ValueError):
        xb.Conv2D(**bad)


def test_wrong_input_channels_and_too_small_inputs_are_clear_errors():
    layer = xb.Conv2D(2, 3)
    params = xb.init_params(layer, 0, (3, 8, 8))
    with pytest.raises(ValueError, match=r"expects inputs \(N, 3, H, W\)"):
        layer.forward(params, np.zeros((1, 2, 8, 8), np.float32))
    with pytest.raises(ValueError, match="smaller than the window"):
        layer.output_shape((3, 2, 8))
    with pytest.raises(ValueError, match="NCHW"):
        layer.output_shape((8, 8))


def test_digits_cnn_reaches_097_test_accuracy_on_numpy_and_jax(jax_backend):
    """`xbackprop train digits-cnn` with its defaults: >= 0.97 on the held-out digits."""
    from xbackprop.recipes import get_recipe

    recipe = get_recipe("digits-cnn")
    data = recipe.data(0)
    scores = {}
    for name in ["numpy", "jax"]:
        model = recipe.build()
        result = xb.fit(model, data.x_train, data.y_train, loss=recipe.loss(),
                        optimizer=xb.optim.get_optimizer(recipe.optimizer, recipe.lr),
                        epochs=recipe.epochs, batch_size=recipe.batch_size, seed=0,
                        backend=name, progress=False)
        scores[name] = xb.evaluate(model, result.params, data.x_test, data.y_test,
                                   recipe.loss())["accuracy"]
    assert min(scores.values()) >= 0.97, scores
    assert abs(scores["numpy"] - scores["jax"]) < 0.02, scores
