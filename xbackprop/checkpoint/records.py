"""A state as a checkpoint holds it: its arrays as named tensors ("params.0.W",
"opt_state.slots.mu.0.W", "key"), and everything else — which lists, tuples, dicts and
NamedTuples hold what, Python numbers, step counts — as a JSON record of the tree, so the
exact state comes back. Nothing is pickled: a NamedTuple is rebuilt only from a class
registered here by name (`register_namedtuple`), never imported by a name read from a file.
"""

from __future__ import annotations

import json
import numbers
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..backends import owner_of
from ..optim import OptState
from ..train import TrainState
from .codec import MAX_DEPTH, check_depth

__all__ = ["register_namedtuple", "registered_namedtuples", "forget_namedtuple",
           "encode_tree", "decode_tree", "to_json", "check_record"]

_NAMEDTUPLES: dict[str, Any] = {}  # name -> NamedTuple class (typing has no type for one)


def register_namedtuple(cls: type) -> type:
    """Let checkpoints store (and rebuild) instances of the NamedTuple `cls`, e.g. the state
    of your own optimizer. TrainState and OptState are registered already. Returns `cls`,
    so it works as a class decorator."""
    if not (isinstance(cls, type) and issubclass(cls, tuple) and hasattr(cls, "_fields")):
        raise TypeError(f"register_namedtuple takes a NamedTuple class, not {cls!r}")
    known = _NAMEDTUPLES.get(cls.__name__)
    if known is not None and known is not cls and known._fields != cls._fields:
        raise ValueError(f"another NamedTuple named {cls.__name__} is registered already "
                         f"(fields {known._fields}); give yours another name")
    _NAMEDTUPLES[cls.__name__] = cls
    return cls


def forget_namedtuple(cls: type) -> None:
    """Undo `register_namedtuple(cls)` (TrainState and OptState stay)."""
    if _NAMEDTUPLES.get(cls.__name__) is cls and cls not in (TrainState, OptState):
        del _NAMEDTUPLES[cls.__name__]


def registered_namedtuples() -> dict[str, type]:
    """The NamedTuple classes checkpoints store and rebuild, by name."""
    return dict(_NAMEDTUPLES)


register_namedtuple(TrainState)
register_namedtuple(OptState)


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def encode_tree(tree: Any, prefix: str, tensors: dict[str, np.ndarray]) -> Any:
    """The JSON record of `tree`'s containers, with its arrays moved into `tensors` (as
    NumPy arrays) by name.

    Integer scalars (Python ints, 0-d integer arrays) are step counts: stored as numbers and
    rebuilt in the form the loading backend's train step keeps them (`Backend.counter`).
    """
    if tree is None:
        return None
    if isinstance(tree, bool):
        return {"bool": tree}
    if isinstance(tree, int):
        return {"int": tree}
    if isinstance(tree, float):
        return {"float": tree}
    if isinstance(tree, dict):
        for key in tree:
            if not isinstance(key, str):
                raise TypeError(f"{prefix or 'the state'}: dict key {key!r} is not a string; "
                                "checkpoints store dicts with string keys")
        return {"dict": {k: encode_tree(tree[k], _join(prefix, k), tensors)
                         for k in sorted(tree)}}
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        name = type(tree).__name__
        if _NAMEDTUPLES.get(name) is not type(tree):
            raise TypeError(
                f"{prefix or 'the state'} is a {type(tree).__module__}.{name}, a NamedTuple "
                "that checkpoints do not know; register it first with "
                f"xbackprop.checkpoint.register_namedtuple({name}) (before saving and loading)")
        return {"namedtuple": name, "fields": {
            field: encode_tree(v, _join(prefix, field), tensors)
            for field, v in zip(tree._fields, tree)}}
    if isinstance(tree, (list, tuple)):
        kind = "list" if isinstance(tree, list) else "tuple"
        return {kind: [encode_tree(v, _join(prefix, str(i)), tensors)
                       for i, v in enumerate(tree)]}
    owner = owner_of(tree)
    if owner is not None:
        host = owner.to_numpy(tree)
    elif isinstance(tree, np.generic):
        host = np.asarray(tree)
    else:
        raise TypeError(f"{prefix}: a {type(tree).__name__} cannot be stored in a checkpoint "
                        "(arrays, numbers, None, and lists, tuples, dicts of them can)")
    if host.ndim == 0 and host.dtype.kind == "i":
        return {"int": int(host)}
    if prefix in tensors:
        raise ValueError(f"two arrays in the state are both named {prefix!r} (a dict key with "
                         "a dot in it?); rename one")
    tensors[prefix] = host
    return {"tensor": prefix}


def decode_tree(node: Any, arrays: dict[str, Any], counter: Callable[[int], Any]) -> Any:
    """The tree `encode_tree` recorded, with its tensors taken from `arrays` and its step
    counts made by `counter`. A ValueError (KeyError, ...) for a damaged record, a
    LookupError for a NamedTuple this process does not know."""
    if node is None:
        return None
    if not isinstance(node, dict) or len(node) not in (1, 2):
        raise ValueError(f"not a tree record: {str(node)[:100]}")
    if "tensor" in node:
        if node["tensor"] not in arrays:
            raise ValueError(f"the tree names a tensor {node['tensor']!r} that the file lacks")
        return arrays[node["tensor"]]
    if "int" in node:
        return counter(int(node["int"]))
    if "float" in node:
        return float(node["float"])
    if "bool" in node:
        return bool(node["bool"])
    if "dict" in node:
        return {k: decode_tree(v, arrays, counter) for k, v in node["dict"].items()}
    if "list" in node:
        return [decode_tree(v, arrays, counter) for v in node["list"]]
    if "tuple" in node:
        return tuple(decode_tree(v, arrays, counter) for v in node["tuple"])
    if "namedtuple" in node:
        name, fields = node["namedtuple"], node["fields"]
        cls = _NAMEDTUPLES.get(name)
        if cls is None:
            raise LookupError(f"it holds a NamedTuple {name!r} that this process does not know; "
                              "if it is your optimizer's state, call xbackprop.checkpoint."
                              f"register_namedtuple({name}) before loading")
        if tuple(fields) != cls._fields:
            raise ValueError(f"its {name} has fields {tuple(fields)}, but {name} here has "
                             f"{cls._fields}")
        return cls(*(decode_tree(v, arrays, counter) for v in fields.values()))
    raise ValueError(f"not a tree record: {str(node)[:100]}")


def check_record(key: str, value: Any) -> Any:
    """`value`, checked to be what a reader accepts as the header record `key` (a file that
    saves but cannot be read back is refused now, not when the run needs it): history —
    lists of numbers by name; metrics, metadata — JSON objects; input_shape — sizes >= 0
    (returned as a tuple). TypeError or ValueError naming the argument otherwise."""
    if value is None:
        return value
    if key == "input_shape":
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            raise TypeError(f"input_shape is one sample's shape, a tuple of sizes such as "
                            f"(64,) or (1, 28, 28), not {value!r}")
        shape = tuple(value)
        if not all(isinstance(n, numbers.Integral) and not isinstance(n, bool) and int(n) >= 0
                   for n in shape):
            raise ValueError(f"input_shape is one sample's shape, sizes >= 0 without the batch "
                             f"axis, such as (64,) or (1, 28, 28); not {value!r}")
        return tuple(int(n) for n in shape)
    if key in ("history", "metrics", "metadata") and not isinstance(value, Mapping):
        raise TypeError(f"{key} must be a dict (of names to values), not a "
                        f"{type(value).__name__}")
    if key == "history":
        for name, values in value.items():
            if not isinstance(name, str) or isinstance(values, (str, bytes)) or not all(
                    isinstance(v, numbers.Real) and not isinstance(v, bool)
                    for v in np.ravel(np.asarray(values, dtype=object))):
                raise TypeError(f"history must be lists of numbers by name (as fit's "
                                f"History); {name!r} holds {str(values)[:60]}")
    return value


def to_json(value: Any, what: str) -> str:
    """`value` as JSON; NumPy scalars and one-element arrays as numbers; a TypeError naming
    `what` for anything else that is not JSON-able, a ValueError for a value nested deeper
    than a reader accepts (codec.MAX_DEPTH)."""
    def default(x: Any) -> Any:
        if isinstance(x, np.generic):
            return x.item()
        owner = owner_of(x)
        if owner is not None and getattr(x, "size", 2) == 1:  # a 0-d or one-element array
            return owner.to_numpy(x).item()
        raise TypeError(f"a {type(x).__name__} is not JSON-able")

    try:
        text = json.dumps(value, default=default)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{what} must be JSON-able (numbers, strings, lists, dicts): {e}"
                        ) from e
    except RecursionError:  # nested past Python's stack
        text = "[" * (MAX_DEPTH + 1)
    check_depth(text, what, "deeper than a checkpoint can be read back; flatten it")
    return text
