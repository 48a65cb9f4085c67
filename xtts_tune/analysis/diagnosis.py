"""Diagnose a trial's learning curve: healthy, overfitting, underfitting or unstable.

A learning curve is a list of evaluation records (dicts), one per evaluation, each with
``step`` (optimizer step), ``train_loss`` (mean train loss since the previous evaluation;
may be missing, ``None`` or NaN in the first record only) and ``val_loss``. Extra keys are
ignored. A curve may also be read from a JSON file holding either such a list or an object
``{"curve": [...], "trainable_share": 0.05}``.

The verdict is the first rule that matches, in this order:

1. ``unstable``: a NaN or inf loss, or a loss spike.
2. ``overfitting``: validation loss rose beyond the tolerance after its best point while
   train loss kept falling.
3. ``underfitting``: validation loss barely improved overall.
4. ``healthy``: none of the above.

Thresholds (:class:`DiagnosisThresholds`):

- ``overfit_rise_rel`` (0.02): overfitting needs validation loss to rise more than this fraction above its minimum after the best point.
- ``overfit_rise_abs`` (0.01): ... and more than this absolute amount (both must hold).
- ``train_falling_rel`` (0.0): ... while train loss after the best point fell by more than this fraction (rising validation loss alone is enough when no train loss is available).
- ``underfit_improvement_rel`` (0.01): a total relative validation improvement (first value to best value) below this means underfitting.
- ``spike_factor`` (1.5): a train or validation loss above this multiple of the previous finite value of the same series means unstable.
- ``max_trainable_share`` (0.10): training a larger share of the parameters adds a warning (the verdict is unchanged).
- ``still_improving_rel`` (0.005): a curve whose last evaluation is its best and improved on the one before by
  more than this fraction is flagged ``still_improving``: more steps may help (the verdict is unchanged).
- ``under_trained_rel`` (0.25): used across a study (:mod:`xtts_tune.analysis.verdicts`): a healthy trial that
  improved less than this share of the best trial's improvement is ``under-trained``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xtts_tune.analysis.thresholds import DiagnosisThresholds
from xtts_tune.io import json_safe

__all__ = ["Diagnosis", "diagnose"]



@dataclass
class Diagnosis:
    """The result of :func:`diagnose`.

    ``metrics`` holds ``val_rise_abs``, ``val_rise_rel``, ``max_val_rise_abs``,
    ``max_val_rise_rel``, ``gap_at_best``, ``gap_at_end``, ``val_improvement_rel``,
    ``val_slope_after_best`` (per 1000 steps), ``train_drop_after_best_rel`` and
    ``n_points``. A metric is ``None`` when its inputs are not available.
    """

    verdict: str
    best_step: int
    best_index: int
    best_val_loss: float
    reasons: list[str]
    warnings: list[str]
    metrics: dict[str, float | None]
    overfit_onset_step: int | None
    still_improving: bool = False
    """The last evaluation is the best and improved on the one before by more than ``still_improving_rel``."""

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict; NaN and inf become ``None``."""
        return json_safe(dataclasses.asdict(self))


def diagnose(
    curve: Sequence[Mapping[str, Any]] | Mapping[str, Any] | str | os.PathLike[str],
    *,
    thresholds: DiagnosisThresholds | None = None,
    trainable_share: float | None = None,
) -> Diagnosis:
    """Diagnose a learning curve.

    Args:
        curve:
            A list of evaluation records, an object ``{"curve": [...], ...}``, or the path of
            a JSON file holding either.
        thresholds:
            Decision thresholds; the defaults when ``None``.
        trainable_share:
            Fraction of the model's parameters being trained. When ``None``, the
            ``trainable_share`` of a curve object or file is used, if any.

    Returns:
        The :class:`Diagnosis`.

    Raises:
        FileNotFoundError: ``curve`` is a path that does not exist.
        ValueError: The curve or a threshold is invalid.

    The guide's overfitting picture: validation loss turns up while train loss keeps falling.

    >>> curve = [{"step": 10 * i, "train_loss": t, "val_loss": v}
    ...          for i, (t, v) in enumerate([(None, 4.0), (3.6, 3.4), (3.1, 3.5), (2.6, 3.8)])]
    >>> d = diagnose(curve)
    >>> d.verdict, d.best_step, d.overfit_onset_step
    ('overfitting', 10, 20)
    """
    if thresholds is None:
        thresholds = DiagnosisThresholds()
    thresholds.validate()

    records, stored_share = _load(curve)
    if trainable_share is None:
        trainable_share = stored_share
    if trainable_share is not None:
        trainable_share = _check_share(trainable_share)
    steps, train, val = _parse(records)
    n = len(steps)

    finite_val = np.isfinite(val)
    if finite_val.any():
        best = int(np.argmin(np.where(finite_val, val, np.inf)))
    else:
        best = 0
    best_val = float(val[best])
    after = val[best + 1 :]
    after = after[~np.isnan(after)]

    max_rise_abs = float(after.max() - best_val) if after.size else 0.0
    if math.isfinite(train[best]):
        train_drop = _ratio(train[best] - train[-1], train[best])
    else:
        train_drop = None

    tail = slice(best, None)
    tail_finite = finite_val[tail]
    if tail_finite.sum() >= 2:
        slope = float(np.polyfit(steps[tail][tail_finite], val[tail][tail_finite], 1)[0]) * 1000
    else:
        slope = None

    metrics: dict[str, float | None] = {
        "val_rise_abs": float(val[-1] - best_val),
        "val_rise_rel": _ratio(val[-1] - best_val, best_val),
        "max_val_rise_abs": max_rise_abs,
        "max_val_rise_rel": _ratio(max_rise_abs, best_val),
        "gap_at_best": _gap(val[best], train[best]),
        "gap_at_end": _gap(val[-1], train[-1]),
        "val_improvement_rel": _ratio(val[0] - best_val, val[0]),
        "val_slope_after_best": slope,
        "train_drop_after_best_rel": train_drop,
        "n_points": n,
    }

    onset = None
    for i in range(best + 1, n):
        rise = val[i] - best_val
        rise_rel = _ratio(rise, best_val)
        if (
            rise > thresholds.overfit_rise_abs
            and rise_rel is not None
            and rise_rel > thresholds.overfit_rise_rel
        ):
            onset = int(steps[i])
            break

    reasons = _instability_reasons(steps, train, val, thresholds.spike_factor)
    if reasons:
        verdict = "unstable"
    else:
        verdict, reason = _judge(metrics, thresholds, steps, val, best, onset)
        reasons.append(reason)

    still_improving = False
    if best == n - 1 and n >= 2 and math.isfinite(val[-2]) and verdict != "unstable":
        last_gain = _ratio(val[-2] - val[-1], val[-2])
        still_improving = last_gain is not None and last_gain > thresholds.still_improving_rel
        if still_improving:
            reasons.append(
                f"still improving at its last evaluation ({last_gain:.1%} lower than at step {int(steps[-2])}): "
                "more steps may help"
            )

    warnings = []
    if trainable_share is not None and trainable_share > thresholds.max_trainable_share:
        warnings.append(
            f"trains {trainable_share:.1%} of parameters; "
            f"the guide recommends under {thresholds.max_trainable_share:.0%}"
        )
    reasons.extend(warnings)

    return Diagnosis(
        verdict=verdict,
        best_step=int(steps[best]),
        best_index=best,
        best_val_loss=best_val,
        reasons=reasons,
        warnings=warnings,
        metrics=metrics,
        overfit_onset_step=onset,
        still_improving=still_improving,
    )


def _judge(
    metrics: dict[str, float | None],
    thresholds: DiagnosisThresholds,
    steps: np.ndarray,
    val: np.ndarray,
    best: int,
    onset: int | None,
) -> tuple[str, str]:
    best_val = val[best]
    best_step = int(steps[best])
    rise_rel = metrics["max_val_rise_rel"]
    rise_abs = metrics["max_val_rise_abs"]
    train_drop = metrics["train_drop_after_best_rel"]
    improvement = metrics["val_improvement_rel"]

    val_rose = (
        rise_rel is not None
        and rise_rel > thresholds.overfit_rise_rel
        and rise_abs > thresholds.overfit_rise_abs
    )
    if val_rose and (train_drop is None or train_drop > thresholds.train_falling_rel):
        peak = best_val + rise_abs
        if train_drop is None:
            train_part = " (no train loss to compare)"
        else:
            train_part = f" while train loss fell {train_drop:.1%}"
        return "overfitting", (
            f"validation loss rose {rise_rel:.1%} ({best_val:.3f} → {peak:.3f}) after its best "
            f"at step {best_step}{train_part}; it first exceeded the tolerance at step {onset}"
        )

    if improvement is None or improvement < thresholds.underfit_improvement_rel:
        shown = 0.0 if improvement is None else improvement
        return "underfitting", (
            f"validation loss improved only {shown:.1%} overall ({val[0]:.3f} → {best_val:.3f}); "
            "the model is barely learning"
        )

    if best == len(val) - 1:
        tail = ", the last evaluation"
    else:
        tail = f" and stayed within {rise_rel or 0.0:.1%} of it afterwards"
    return "healthy", (
        f"validation loss improved {improvement:.1%} to {best_val:.3f} at step {best_step}{tail}"
    )

def _instability_reasons(
    steps: np.ndarray, train: np.ndarray, val: np.ndarray, spike_factor: float
) -> list[str]:
    reasons = []
    # A missing train loss at the first record (evaluation before training) is expected.
    series = (("train loss", train, 1), ("validation loss", val, 0))
    for name, values, start in series:
        for i in range(start, len(values)):
            if not math.isfinite(values[i]):
                reasons.append(f"{name} is {values[i]} at step {int(steps[i])}")
                break
        previous = None
        for i in range(len(values)):
            value = values[i]
            if not math.isfinite(value):
                continue
            if previous is not None and previous > 0 and value > spike_factor * previous:
                reasons.append(
                    f"{name} spiked from {previous:.3f} to {value:.3f} "
                    f"(×{value / previous:.2f}) at step {int(steps[i])}"
                )
                break
            previous = value
    return reasons


def _load(curve: Any) -> tuple[Any, float | None]:
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


def _check_share(share: Any) -> float:
    if (
        isinstance(share, bool)
        or not isinstance(share, numbers.Real)
        or not 0 <= share <= 1
    ):
        raise ValueError(f"trainable_share must be a number in [0, 1], got {share!r}.")
    return float(share)


def _parse(records: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
        if (
            isinstance(step, bool)
            or not isinstance(step, numbers.Real)
            or not float(step).is_integer()
        ):
            raise ValueError(f"record {i}: 'step' must be an integer, got {step!r}")
        if steps and step <= steps[-1]:
            raise ValueError(
                f"record {i}: steps must increase, got step {step!r} after {steps[-1]!r}"
            )
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


def _ratio(numerator: float, denominator: float) -> float | None:
    if denominator == 0 or not math.isfinite(denominator):
        return None
    return float(numerator / denominator)


def _gap(val: float, train: float) -> float | None:
    if not math.isfinite(train):
        return None
    return float(val - train)
