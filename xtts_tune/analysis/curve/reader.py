"""Read and check a learning curve: a list of evaluation records, an object ``{"curve": [...]}`` or the path of
a JSON file holding either (what :func:`xtts_tune.analysis.curve.diagnosis.diagnose` accepts).

>>> steps, train, val = parse_curve([{"step": 0, "val_loss": 4.0}, {"step": 10, "train_loss": 3.9, "val_loss": 3.5}])
>>> steps.tolist(), val.tolist()
([0.0, 10.0], [4.0, 3.5])
"""

from __future__ import annotations

import json
import math
import numbers
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["check_share", "load_curve", "parse_curve"]


def load_curve(curve: Any) -> tuple[Any, float | None]:
    """The records and the stored trainable share of a curve, an object or a JSON file."""
    if isinstance(curve, (str, os.PathLike)):
        path = Path(curve)
        if not path.is_file():
            raise FileNotFoundError(f"curve file not found: {path}")
        try:
            curve = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ValueError(f"{path} is not valid JSON: {e}") from e
    if isinstance(curve, Mapping):
        if "curve" not in curve:
            raise ValueError('a curve object needs a "curve" key holding the list of evaluations')
        return curve["curve"], curve.get("trainable_share")
    return curve, None


def check_share(share: Any) -> float:
    """A trainable share in [0, 1], or ValueError."""
    if isinstance(share, bool) or not isinstance(share, numbers.Real) or not 0 <= share <= 1:
        raise ValueError(f"trainable_share must be a number in [0, 1], got {share!r}.")
    return float(share)


def parse_curve(records: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return steps, train losses and validation losses as arrays; missing losses are NaN."""
    if isinstance(records, (str, bytes)) or not isinstance(records, Sequence):
        kind = type(records).__name__
        raise ValueError(f"a curve must be a list of evaluation records, got {kind}")
    if len(records) < 2:
        raise ValueError(f"a curve needs at least 2 evaluations, got {len(records)}")

    steps: list[int] = []
    train: list[float] = []
    val: list[float] = []
    for i, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise ValueError(f"record {i} must be a dict, got {type(record).__name__}")
        for key in ("step", "train_loss", "val_loss"):
            if key not in record and not (key == "train_loss" and i == 0):
                raise ValueError(f"record {i} is missing the key {key!r}")

        step = record["step"]
        if isinstance(step, bool) or not isinstance(step, numbers.Real) or not float(step).is_integer():
            raise ValueError(f"record {i}: 'step' must be an integer, got {step!r}")
        if steps and step <= steps[-1]:
            raise ValueError(f"record {i}: steps must increase, got step {step!r} after {steps[-1]!r}")
        steps.append(int(step))
        train.append(_loss(record.get("train_loss"), "train_loss", i))
        val.append(_loss(record["val_loss"], "val_loss", i))
    return (
        np.asarray(steps, dtype=float),
        np.asarray(train, dtype=float),
        np.asarray(val, dtype=float),
    )


def _loss(value: Any, key: str, index: int) -> float:
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"record {index}: {key!r} must be a number, got {value!r}")
    return float(value)
