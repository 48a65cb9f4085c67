"""Checking and converting one YAML (or ``--set``) value to a config field's type, with a one-line error.

>>> coerce("1e-5", float, "train.learning_rate", "studies/demo.yaml")
1e-05
>>> coerce("yes", bool, "train.prefix_cache", "studies/demo.yaml")
True
"""

from __future__ import annotations

import types
from typing import Any, Union, get_args, get_origin

import yaml

from xtts_tune.errors import ConfigError


def coerce(value: Any, typ: Any, key: str, where: str) -> Any:
    """Check/convert one YAML value to the field's type (ints accepted for floats, '1e-5' strings for numbers)."""
    origin = get_origin(typ)
    if origin in (Union, types.UnionType):  # the first type that takes the value (``list[str] | str``)
        for option in get_args(typ):
            try:
                return coerce(value, option, key, where)
            except ConfigError:
                continue
    elif typ is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
    elif typ is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
    elif typ is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif typ is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
    elif origin is list:
        if isinstance(value, str):
            value = yaml.safe_load(value)
        if isinstance(value, (list, tuple)):
            (item,) = get_args(typ)
            return [coerce(v, item, key, where) for v in value]
    elif origin is dict and isinstance(value, dict):
        return value
    raise ConfigError(f"{where}: '{key}' must be of type {getattr(typ, '__name__', typ)}, got {value!r}")
