"""Models and losses as JSON: the part of a checkpoint that rebuilds the model itself.

    config = to_config(model)        # {"class": "Sequential", "layers": [{"class": "Dense", ...}]}
    model = from_config(config)      # an equal Sequential([...])

A layer is a frozen dataclass of its settings, so its configuration is its class name, the
module that defines it, and its fields. Classes are found among the layers and losses that
this process has defined (`layers.base.layer_classes("")`, `losses.loss_classes("")`): every
built-in one, and a user's own class once the module that defines it is imported. Nothing is
ever imported by a name read from a file, so a configuration cannot run code.

Settings may be numbers, strings, booleans, None, tuples of those, and layers. A callable
setting (an initializer function such as `weight_init=initializers.uniform(0, 1)`) cannot be
stored: it is recorded by name only and rebuilt as the field's default. Initializers only
make the first parameters, so a trained model, or a run resumed from a checkpoint, loses
nothing; only `init_params` on the rebuilt model would draw differently.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .layers.base import Layer, layer_classes
from .losses import Loss, loss_classes
from .model import Sequential

__all__ = ["ConfigError", "to_config", "from_config"]


class ConfigError(ValueError):
    """A model or loss that cannot be written as a configuration, or one that cannot be
    rebuilt from its configuration."""


def to_config(obj: Layer | Loss) -> dict[str, Any]:
    """The JSON-able configuration of a layer (a `Sequential` included) or a loss."""
    cls = type(obj)
    config: dict[str, Any] = {"class": cls.__name__, "module": cls.__module__}
    if isinstance(obj, Sequential):
        config["layers"] = [to_config(layer) for layer in obj.layers]
        return config
    if not isinstance(obj, (Layer, Loss)):
        raise ConfigError(f"{cls.__name__} is not an xbackprop Layer or Loss")
    if dataclasses.is_dataclass(obj):
        config["settings"] = {f.name: _encode(getattr(obj, f.name), f"{cls.__name__}.{f.name}")
                              for f in dataclasses.fields(obj) if f.init}
    elif vars(obj):
        raise ConfigError(
            f"{cls.__name__} (module {cls.__module__}) keeps settings "
            f"({', '.join(sorted(vars(obj)))}) but is not a dataclass, so they cannot be "
            "saved: declare it as @dataclasses.dataclass(frozen=True) with its settings as "
            "fields.")
    else:
        config["settings"] = {}
    return config


def from_config(config: dict[str, Any]) -> Any:
    """The layer, `Sequential` or loss that `config` (from `to_config`) describes."""
    if not isinstance(config, dict) or not isinstance(config.get("class"), str):
        raise ConfigError(f"not a layer or loss configuration: {str(config)[:200]}")
    name, module = config["class"], str(config.get("module", "?"))
    if name == "Sequential" and "layers" in config:
        return Sequential([from_config(c) for c in config["layers"]])
    cls = _find_class(name, module)
    settings = config.get("settings", {})
    fields = {f.name: f for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else {}
    kwargs = {}
    for key, value in settings.items():
        decoded = _decode(value)
        if decoded is _DEFAULT:
            field = fields.get(key)
            if field is None or (field.default is dataclasses.MISSING and
                                 field.default_factory is dataclasses.MISSING):
                raise ConfigError(
                    f"{name}.{key} was a function ({value['callable']}), which a configuration "
                    f"cannot hold, and {name} has no default for it: build the model in code "
                    "and pass it as model=")
            continue
        kwargs[key] = decoded
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"cannot rebuild {name} (module {module}) from its stored settings "
                          f"{settings}: {e}. Was the file written by another version of that "
                          "class?") from e


def _find_class(name: str, module: str) -> type:
    """The Layer or Loss class `name` from `module` among the classes defined so far; another
    module's class of that name if it is the only one (a class moved, or a script's layer
    run as __main__); never an import."""
    registries: list[dict[str, type]] = [layer_classes(""), loss_classes("")]
    exact = [r[name] for r in (layer_classes(module), loss_classes(module))
             if name in r and r[name].__module__ == module]
    if exact:
        return exact[0]
    found = [r[name] for r in registries if name in r]
    if len(found) == 1:
        return found[0]
    raise ConfigError(
        f"the model uses the class {name} from module {module}, which is not defined in this "
        f"process: import {module} (or the file that defines {name}) before loading. xbackprop "
        "never imports modules named in a file.")


_DEFAULT = object()  # a stored callable: rebuilt as the field's default


def _encode(value: Any, where: str) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (tuple, list)):
        return [_encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, (Layer, Loss)):
        return {"layer": to_config(value)}
    if hasattr(value, "item") and getattr(value, "shape", None) == ():  # a NumPy scalar
        return value.item()
    if callable(value):
        return {"callable": f"{getattr(value, '__module__', '?')}."
                            f"{getattr(value, '__qualname__', type(value).__name__)}"}
    raise ConfigError(f"{where}: a {type(value).__name__} cannot be stored in a model "
                      "configuration (numbers, strings, booleans, None, tuples and layers can)")


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_decode(v) for v in value)  # frozen layers hold tuples (hashable)
    if isinstance(value, dict):
        if "layer" in value:
            return from_config(value["layer"])
        if "callable" in value:
            return _DEFAULT
        raise ConfigError(f"unknown setting in a model configuration: {str(value)[:200]}")
    return value
