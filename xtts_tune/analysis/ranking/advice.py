"""The search-space advice when most finished trials overfit, underfit or are unstable: which bound of the
learning-rate range or the freeze depth to move, read off the same trials as the report's overfitting map so
that the two never disagree (no judgment is made here; the verdicts come from :mod:`~.verdicts`).

>>> trend_advice([], [])
[]
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from optuna.distributions import FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial

from xtts_tune.analysis.ranking.verdicts import UNKNOWN, TrialVerdict
from xtts_tune.analysis.records import FINISHED, FREEZE_DEPTH, LEARNING_RATE, knob_value

MAJORITY = 0.5
"""Share of finished trials above which an overfitting/underfitting trend gets advice."""


def trend_advice(verdicts: Sequence[TrialVerdict], trials: Sequence[FrozenTrial]) -> list[str]:
    """Advice when more than :data:`MAJORITY` of the finished trials with a verdict (under-trained and
    inconclusive ones included) overfit, underfit or are unstable. The overfitting advice is read off the same
    trials as the report's overfitting map (learning rate × freeze depth), so it never contradicts it: the lowest
    learning rate that overfit becomes the suggested upper bound, and freezing more is suggested only from the
    freeze depth at and above which no trial overfit."""
    judged = [v for v in verdicts if v.state in FINISHED and v.verdict != UNKNOWN]
    if not judged:
        return []
    counts = Counter(v.verdict for v in judged)
    n = len(judged)
    lr = space(trials, LEARNING_RATE)
    advice = []
    if counts["overfitting"] / n > MAJORITY:
        advice.append(overfitting_advice(judged, trials, counts["overfitting"], lr))
    if counts["underfitting"] / n > MAJORITY:
        depth = space(trials, FREEZE_DEPTH)
        advice.append(
            f"{counts['underfitting']} of {n} finished trials ({counts['underfitting'] / n:.0%}) "
            f"underfit: raise the learning-rate range{lr_hint(lr, 10.0)} or unfreeze more layers "
            f"(lower freeze_depth high bound{depth_hint(depth, raise_low=False)}); "
            "also check the dataset's quality."
        )
    if counts["unstable"] / n > MAJORITY:
        advice.append(
            f"{counts['unstable']} of {n} finished trials ({counts['unstable'] / n:.0%}) are "
            f"unstable: lower the learning-rate range's upper bound{lr_hint(lr, None)} or add warm-up steps."
        )
    return advice


def overfitting_advice(
    judged: Sequence[TrialVerdict],
    trials: Sequence[FrozenTrial],
    overfit: int,
    lr: tuple[float, float] | None,
) -> str:
    n = len(judged)
    by_number = {t.number: t for t in trials}
    points = [
        (knob(by_number.get(v.number), LEARNING_RATE), knob(by_number.get(v.number), FREEZE_DEPTH), v) for v in judged
    ]
    text = f"{overfit} of {n} finished trials ({overfit / n:.0%}) overfit"
    overfit_lrs = [x for x, _, v in points if x is not None and v.verdict == "overfitting"]
    parts = []
    if overfit_lrs:
        lowest = min(overfit_lrs)
        now = f" (now {lr[1]:.0e})" if lr else ""
        parts.append(
            f"they overfit at learning rates from {lowest:.1e} up: lower the learning-rate range's upper "
            f"bound to about {lowest:.0e}{now}"
        )
    depths = sorted({d for _, d, _ in points if d is not None})
    safe = [d for d in depths if all(v.verdict != "overfitting" for _, x, v in points if x is not None and x >= d)]
    if safe and safe[0] > depths[0]:
        above = sum(1 for _, x, _ in points if x is not None and x >= safe[0])
        parts.append(
            f"or freeze more layers: none of the {above} trials with freeze_depth ≥ {safe[0]:.0f} overfit "
            f"(raise the freeze_depth low bound to {safe[0]:.0f})"
        )
    return text + (": " + " ".join(parts) if parts else "") + "."


def knob(trial: FrozenTrial | None, name: str) -> float | None:
    value = knob_value(trial, name) if trial is not None else None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def space(trials: Sequence[FrozenTrial], name: str) -> tuple[float, float] | None:
    for t in sorted(trials, key=lambda t: t.number, reverse=True):
        dist = t.distributions.get(name)
        if isinstance(dist, (FloatDistribution, IntDistribution)):
            return dist.low, dist.high
    return None


def lr_hint(space: tuple[float, float] | None, factor: float | None) -> str:
    if space is None:
        return ""
    low, high = space
    if factor is None:
        return f" (now {high:.0e})"
    return f" (now {low:.0e}–{high:.0e}; try {low * factor:.0e}–{high * factor:.0e})"


def depth_hint(space: tuple[float, float] | None, *, raise_low: bool) -> str:
    if space is None:
        return ""
    low, high = int(space[0]), int(space[1])
    middle = (low + high + 1) // 2
    if raise_low:
        return f" from {low} to about {middle}" if middle > low else f" (now {low})"
    return f" from {high} to about {middle}" if middle < high else f" (now {high})"
