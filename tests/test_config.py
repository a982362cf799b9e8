"""Model configurations: every built-in layer and loss, a user's own layer, and containers
rebuild to equal objects through JSON; what cannot be stored or found is a clear error."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

import xbackprop as xb
from xbackprop.config import ConfigError, from_config, to_config
from xbackprop.layers.base import layer_classes
from xbackprop.losses import loss_classes


def through_json(obj):
    return from_config(json.loads(json.dumps(to_config(obj))))


@pytest.mark.parametrize("name", sorted(layer_classes()))
def test_every_built_in_layer_rebuilds_equal(name):
    rng = np.random.default_rng(0)
    examples = [layer for layer, _ in layer_classes()[name].examples(rng)]
    assert examples, f"{name} lists no examples"
    for layer in examples:
        rebuilt = through_json(layer)
        assert rebuilt == layer and type(rebuilt) is type(layer)
        assert hash(rebuilt) == hash(layer)  # JSON lists come back as tuples


@pytest.mark.parametrize("name", sorted(loss_classes()))
def test_every_built_in_loss_rebuilds_equal(name):
    for loss in (loss_classes()[name](), loss_classes()[name]("sum")):
        assert through_json(loss) == loss


def test_sequential_rebuilds_layer_by_layer():
    model = xb.Sequential([xb.Conv2D(4, (3, 2), padding=((1, 0), (2, 1)), stride=(1, 2)),
                           xb.LeakyReLU(0.2), xb.MaxPool2D(2), xb.Flatten(), xb.Dense(3)])
    rebuilt = through_json(model)
    assert isinstance(rebuilt, xb.Sequential) and rebuilt.layers == model.layers
    assert rebuilt.layers[0].padding == ((1, 0), (2, 1))


@dataclasses.dataclass(frozen=True)
class Scale(xb.Layer):
    """y = factor · x: a user's own layer, defined outside xbackprop."""

    factor: float = 2.0
    inner: xb.Layer | None = None

    def forward(self, params, x, ctx=xb.EVAL):
        return x * self.factor, None

    def backward(self, params, cache, dy):
        return dy * self.factor, {}


def test_a_users_layer_rebuilds_once_its_module_is_imported():
    layer = Scale(0.5, inner=xb.Dense(3))
    config = to_config(layer)
    assert config["module"] == __name__ and config["settings"]["inner"]["layer"]["class"] == \
        "Dense"
    assert through_json(layer) == layer


def test_an_unknown_class_names_the_class_and_its_module():
    config = to_config(Scale())
    config["class"], config["module"] = "Swish", "my_layers"
    with pytest.raises(ConfigError, match="class Swish from module my_layers, which is not "
                       "defined in this process: import my_layers.*never imports"):
        from_config(config)


def test_a_function_setting_is_stored_by_name_and_rebuilt_as_the_default():
    layer = xb.Dense(4, weight_init=xb.initializers.uniform(0, 1))
    config = to_config(layer)
    assert config["settings"]["weight_init"] == {
        "callable": "xbackprop.initializers.uniform.<locals>.init"}
    assert through_json(layer) == xb.Dense(4)


def test_what_cannot_be_stored_is_a_clear_error():
    class Loose(xb.Layer):
        def __init__(self, size):
            self.size = size

    with pytest.raises(ConfigError, match=r"Loose .* keeps settings \(size\) but is not a "
                       "dataclass.*@dataclasses.dataclass\\(frozen=True\\)"):
        to_config(Loose(3))
    with pytest.raises(ConfigError, match=r"Scale.factor: a dict cannot be stored"):
        to_config(Scale({"a": 1}))
    with pytest.raises(ConfigError, match="not an xbackprop Layer or Loss"):
        to_config(object())


def test_settings_that_no_longer_fit_the_class_are_a_clear_error():
    config = to_config(xb.Dense(3))
    config["settings"]["units_out"] = 3
    with pytest.raises(ConfigError, match="cannot rebuild Dense .* another version"):
        from_config(config)
    with pytest.raises(ConfigError, match="not a layer or loss configuration"):
        from_config(["Dense"])
