"""Diagnose a trial's learning curve: healthy, overfitting, underfitting or unstable.

A learning curve is a list of evaluation records (dicts), one per evaluation, each with
``step`` (optimizer step), ``train_loss`` (mean train loss since the previous evaluation;
may be missing, ``None`` or NaN in the first record only) and ``val_loss``. Extra keys are
ignored. A curve may also be read from a JSON file holding either such a list or an object
``{"curve": [...], "trainable_share": 0.05}``.

Every rule weighs the curve against its own **noise** (:func:`~xtts_tune.analysis.curve.stats.curve_noise`:
the median height of its reversals, at least ``noise_floor_rel`` of its minimum). An evaluation has
**risen** when its validation loss is more than ``noise_factor`` × noise above the minimum.

The verdict is the first rule that matches, in this order:

1. ``unstable``: a NaN or inf loss, or a loss spike.
2. ``overfitting``: a *sustained* rise after the minimum against a *falling train trend*: the last
   ``overfit_min_evals`` (2) or more evaluations have all risen, the mean of the last two is more than
   ``overfit_rise_abs`` and ``overfit_rise_rel`` of the minimum above it, and the least-squares line through
   train loss across the turn (from as many evaluations before the minimum as there are after it, to the end)
   fell more than ``train_falling_rel``: the trend over a window, not the last interval (rising validation
   loss alone is enough when no train loss is available).
3. ``underfitting``: validation loss barely improved overall.
4. ``healthy``: none of the above.

Two flags leave the verdict unchanged:

- ``rising_at_end``: only the last evaluation has risen (1 evaluation), by more than ``overfit_rise_abs`` and
  ``overfit_rise_rel``: one point cannot tell a turn from a
  bump the curve would recover from. The reason says so and what to do (early stopping keeps the best step;
  evaluate more often or raise ``train.patience`` to see).
- ``still_improving``: the last evaluation is the best and the last three evaluations fell more than
  ``still_improving_rel`` and more than the noise: more steps may help.

Thresholds (:class:`DiagnosisThresholds`, the study YAML's ``diagnosis:`` section):

- ``overfit_rise_rel`` (0.003) and ``overfit_rise_abs`` (0.01): the end of a sustained rise (mean of the last
  two evaluations) must be more than both above the minimum.
- ``overfit_min_evals`` (2): evaluations in a row at the end that must have risen for a sustained rise.
- ``noise_factor`` (1.0): an evaluation has risen when it is more than this many noise units above the minimum.
- ``noise_floor_rel`` (0.001): the noise is at least this fraction of the minimum (a smooth curve has no
  reversals to measure it by).
- ``train_falling_rel`` (0.0): the fitted train trend after the minimum must fall by more than this fraction.
- ``underfit_improvement_rel`` (0.01): a total relative validation improvement (first value to best value) below this means underfitting.
- ``spike_factor`` (1.5): a train or validation loss above this multiple of the previous finite value of the same series means unstable.
- ``max_trainable_share`` (0.10): training a larger share of the parameters adds a warning (the verdict is unchanged).
- ``still_improving_rel`` (0.002): see ``still_improving`` above.
- ``under_trained_score`` (0.15): used across a study (:mod:`xtts_tune.analysis.ranking.verdicts`), on a smooth
  scale: a healthy trial whose *shortfall* (1 − its improvement as a share of the best trial's) times its
  ``end_pace`` (capped at 1: how fast it was still falling at its end) is at least this is ``under-trained``.
  A trial that fell short by half and still fell at its average pace scores 0.5; one that fell short by
  half but had levelled off scores near 0 (more steps would not help: the configuration is worse).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from xtts_tune.analysis.curve.reader import check_share, load_curve, parse_curve
from xtts_tune.analysis.curve.stats import curve_noise, fitted_change, trailing_run
from xtts_tune.analysis.curve.thresholds import DiagnosisThresholds
from xtts_tune.io import json_safe

__all__ = ["Diagnosis", "diagnose"]


@dataclass
class Diagnosis:
    """The result of :func:`diagnose`.

    ``metrics`` holds ``val_rise_abs``, ``val_rise_rel``, ``max_val_rise_abs``,
    ``max_val_rise_rel``, ``gap_at_best``, ``gap_at_end``, ``val_improvement_rel``,
    ``val_slope_after_best`` (per 1000 steps), ``train_drop_after_best_rel`` (last minus best),
    ``train_trend_after_best_rel`` (the fitted train trend across the turn, negative when falling),
    ``noise`` (the curve's own, in loss units), ``risen_evals`` (evaluations at the end above the minimum by
    more than the noise), ``end_drop_rel`` (relative fall of the last three evaluations), ``end_pace`` (their
    fall per evaluation as a share of the curve's average fall per evaluation up to its best) and ``n_points``.
    A metric is ``None`` when its inputs are not available.
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
    """The last evaluation is the best and the last three fell by more than ``still_improving_rel`` and the noise."""
    rising_at_end: bool = False
    """Only the last evaluation rose above the minimum (by more than the noise): a flag, not a verdict."""
    falling_at_end: bool = False
    """The last three evaluations fell by more than the noise (the curve had not levelled off)."""

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

    The guide's overfitting picture: validation loss turns up and stays up while train loss keeps falling.

    >>> curve = [{"step": 10 * i, "train_loss": t, "val_loss": v}
    ...          for i, (t, v) in enumerate([(None, 4.0), (3.6, 3.4), (3.1, 3.5), (2.6, 3.8)])]
    >>> d = diagnose(curve)
    >>> d.verdict, d.best_step, d.overfit_onset_step
    ('overfitting', 10, 20)

    One bump at the last evaluation is a flag, not a verdict:

    >>> d = diagnose(curve[:3])
    >>> d.verdict, d.rising_at_end
    ('healthy', True)
    """
    if thresholds is None:
        thresholds = DiagnosisThresholds()
    thresholds.validate()

    records, stored_share = load_curve(curve)
    if trainable_share is None:
        trainable_share = stored_share
    if trainable_share is not None:
        trainable_share = check_share(trainable_share)
    steps, train, val = parse_curve(records)
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

    floor = thresholds.noise_floor_rel * abs(best_val) if math.isfinite(best_val) else 0.0
    noise = max(curve_noise(val), floor)
    risen = trailing_run(val[best + 1 :], best_val + thresholds.noise_factor * noise)
    end_drop = _end_drop(val)

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
        "train_trend_after_best_rel": _train_trend(steps, train, best),
        "noise": noise,
        "risen_evals": risen,
        "end_drop_rel": end_drop,
        "end_pace": _end_pace(val, best),
        "n_points": n,
    }

    onset = int(steps[n - risen]) if risen else None

    reasons = _instability_reasons(steps, train, val, thresholds.spike_factor)
    if reasons:
        verdict = "unstable"
    else:
        verdict, reason = _judge(metrics, thresholds, steps, val, best)
        reasons.append(reason)
    if verdict != "overfitting":
        onset = None

    last_rise = float(val[-1] - best_val)
    rising_at_end = (
        verdict != "unstable"
        and risen == 1
        and last_rise > thresholds.overfit_rise_abs
        and last_rise > thresholds.overfit_rise_rel * abs(best_val)
    )
    if rising_at_end:
        reasons.append(
            f"rising at the end (1 evaluation): validation loss rose {_ratio(val[-1] - best_val, best_val):.1%} "
            f"above its minimum at its last evaluation only (step {int(steps[-1])}; the curve's noise is "
            f"{noise:.3f}): one evaluation cannot tell a turn from a bump it recovers from. The best checkpoint "
            f"(step {int(steps[best])}) is kept; to see the trend, evaluate more often or raise train.patience"
        )

    falling = (
        verdict != "unstable"
        and end_drop is not None
        and n >= 3
        and best >= n - 3
        and val[-3] - val[-1] > thresholds.noise_factor * noise
    )
    still_improving = bool(falling and best == n - 1 and end_drop > thresholds.still_improving_rel)
    if still_improving:
        reasons.append(
            f"still improving at its last evaluation ({end_drop:.1%} lower than at step {int(steps[-3])}, "
            f"two evaluations earlier): more steps may help"
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
        rising_at_end=rising_at_end,
        falling_at_end=bool(falling),
    )


def _train_trend(steps: np.ndarray, train: np.ndarray, best: int) -> float | None:
    """The fitted train-loss change across the turn: from as many evaluations before the minimum as there are
    after it, to the end (train loss is a mean over few batches; one interval says little)."""
    n = len(steps)
    if best >= n - 1:
        return None
    start = max(0, 2 * best - (n - 1))
    return fitted_change(steps[start:], train[start:])


def _end_pace(val: np.ndarray, best: int) -> float | None:
    """How fast the last three evaluations fell, as a share of the curve's average fall per evaluation up to
    its best (1: still falling at its average pace; near 0: levelled off)."""
    drop = _end_drop(val)
    if drop is None or best < 2 or not math.isfinite(val[0]) or val[0] <= val[best]:
        return None
    average = (val[0] - val[best]) / best
    return float((val[-3] - val[-1]) / 2 / average)


def _end_drop(val: np.ndarray) -> float | None:
    if len(val) < 3 or not (math.isfinite(val[-3]) and math.isfinite(val[-1])):
        return None
    return _ratio(val[-3] - val[-1], val[-3])


def _judge(
    metrics: dict[str, float | None],
    thresholds: DiagnosisThresholds,
    steps: np.ndarray,
    val: np.ndarray,
    best: int,
) -> tuple[str, str]:
    best_val = float(val[best])
    best_step = int(steps[best])
    risen = int(metrics["risen_evals"] or 0)
    trend = metrics["train_trend_after_best_rel"]
    improvement = metrics["val_improvement_rel"]
    noise = metrics["noise"] or 0.0

    end_level = float(np.mean(val[len(val) - min(risen, 2) :])) if risen else best_val
    end_rise = end_level - best_val
    sustained = (
        risen >= thresholds.overfit_min_evals
        and end_rise > thresholds.overfit_rise_abs
        and end_rise > thresholds.overfit_rise_rel * abs(best_val)
    )
    train_falling = trend is None or -trend > thresholds.train_falling_rel
    if sustained and train_falling:
        if trend is None:
            train_part = " (no train loss to compare)"
        else:
            train_part = f" while the train-loss trend over the same window fell {-trend:.1%}"
        onset = int(steps[len(val) - risen])
        return "overfitting", (
            f"validation loss rose after its best at step {best_step} ({best_val:.3f}) and stayed up: its last "
            f"{risen} evaluations, from step {onset}, were all above the minimum by more than the curve's noise "
            f"({noise:.3f}), the last at {val[-1]:.3f} ({(val[-1] - best_val) / best_val:+.1%}){train_part}"
        )

    if improvement is None or improvement < thresholds.underfit_improvement_rel:
        shown = 0.0 if improvement is None else improvement
        return "underfitting", (
            f"validation loss improved only {shown:.1%} overall ({val[0]:.3f} → {best_val:.3f}); "
            "the model is barely learning"
        )

    if best == len(val) - 1:
        tail = ", the last evaluation"
    elif sustained:
        tail = (
            f"; it then rose {end_rise / best_val:.1%} for {risen} evaluations, but train loss rose too "
            f"(trend {trend:+.1%}): not overfitting"
        )
    else:
        rise = metrics["max_val_rise_rel"] or 0.0
        tail = f" and stayed within {rise:.1%} of it afterwards (the curve's noise is {noise:.3f})"
    return "healthy", (f"validation loss improved {improvement:.1%} to {best_val:.3f} at step {best_step}{tail}")


def _instability_reasons(steps: np.ndarray, train: np.ndarray, val: np.ndarray, spike_factor: float) -> list[str]:
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


def _ratio(numerator: float, denominator: float) -> float | None:
    if denominator == 0 or not math.isfinite(denominator):
        return None
    return float(numerator / denominator)


def _gap(val: float, train: float) -> float | None:
    if not math.isfinite(train):
        return None
    return float(val - train)
