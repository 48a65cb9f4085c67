"""What the study measured across trials: parameter importances, overfitting rates, compute saved."""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from xtts_tune.analysis.curve.thresholds import study_thresholds
from xtts_tune.analysis.ranking.verdicts import (
    INCONCLUSIVE,
    STUDY_VERDICTS,
    TrialVerdict,
    verdicts_of,
)
from xtts_tune.analysis.records import (
    FINISHED,
    FREEZE_DEPTH,
    LEARNING_RATE,
    knob_value,
    study_trials,
    trial_value,
)
from xtts_tune.io import as_int, finite
from xtts_tune.record import TrialRecord

CONCLUSIVE = tuple(v for v in STUDY_VERDICTS if v != INCONCLUSIVE)

logger = logging.getLogger(__name__)


@dataclass
class BandRate:
    """How many diagnosed finished trials fell in a band, and how many of them overfit."""

    trials: int = 0
    overfitting: int = 0

    @property
    def rate(self) -> float:
        return self.overfitting / self.trials if self.trials else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"trials": self.trials, "overfitting": self.overfitting, "rate": self.rate}


@dataclass
class OverfittingRates:
    """Overfitting rate by freeze-depth value and by learning-rate decade (``"1e-5–1e-4"``)."""

    by_freeze_depth: dict[int, BandRate] = field(default_factory=dict)
    by_learning_rate: dict[str, BandRate] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "by_freeze_depth": {str(k): v.to_dict() for k, v in self.by_freeze_depth.items()},
            "by_learning_rate": {k: v.to_dict() for k, v in self.by_learning_rate.items()},
        }


@dataclass
class ComputeSaved:
    """Optimizer steps spent by finished trials against the steps full runs would have spent."""

    trials: int
    steps: int
    planned_steps: int

    @property
    def saved_steps(self) -> int:
        return max(0, self.planned_steps - self.steps)

    @property
    def saved_fraction(self) -> float:
        return self.saved_steps / self.planned_steps if self.planned_steps else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "trials": self.trials,
            "steps": self.steps,
            "planned_steps": self.planned_steps,
            "saved_steps": self.saved_steps,
            "saved_fraction": self.saved_fraction,
        }


MIN_TRIALS_FOR_IMPORTANCES = 10
"""Below this many complete trials, importances rank noise: the report says so instead of showing them."""

IMPORTANCE_METHOD = "PED-ANOVA (Optuna's PedAnovaImportanceEvaluator, as optuna-dashboard computes them)"


@dataclass
class Importances:
    """Parameter importances (summing to 1), the complete trials they rest on, and how they were computed;
    ``values`` is empty with ``note`` saying why when there are too few trials or nothing varied."""

    values: dict[str, float]
    trials: int
    method: str = IMPORTANCE_METHOD
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"values": dict(self.values), "trials": self.trials, "method": self.method, "note": self.note}


def parameter_importances(study: optuna.Study) -> dict[str, float]:
    """The importances of the parameters that varied, summing to 1 (``{}`` below
    :data:`MIN_TRIALS_FOR_IMPORTANCES` complete trials or when no parameter varied)."""
    return importances_of(study, study_trials(study)).values


def overfitting_rates(study: optuna.Study) -> OverfittingRates:
    """Overfitting rate of the diagnosed finished trials by freeze depth and learning-rate decade."""
    trials = study_trials(study)
    return rates_of(trials, verdicts_of(trials, study_thresholds(study)))


def compute_saved(study: optuna.Study) -> ComputeSaved:
    """Steps spent by the finished trials against the steps full runs would have taken."""
    return compute_of(study_trials(study))


def learning_rate_band(learning_rate: float) -> str:
    """The decade a learning rate falls in, e.g. ``3e-5`` → ``"1e-5–1e-4"``."""
    low = math.floor(round(math.log10(learning_rate), 9))
    return f"1e{low}–1e{low + 1}"


def importances_of(study: optuna.Study, trials: Sequence[FrozenTrial]) -> Importances:
    """PED-ANOVA importances over the COMPLETE trials, the same method optuna-dashboard uses, so the report
    and the dashboard agree; refused below :data:`MIN_TRIALS_FOR_IMPORTANCES` complete trials."""
    complete = [t for t in trials if t.state == TrialState.COMPLETE and trial_value(t) is not None]
    n = len(complete)
    if n < MIN_TRIALS_FOR_IMPORTANCES:
        return Importances(
            {},
            n,
            note=f"too few trials to rank the knobs: {n} complete, "
            f"importances need at least {MIN_TRIALS_FOR_IMPORTANCES}",
        )
    common = set.intersection(*(set(t.params) for t in complete))
    varying = sorted(p for p in common if len({repr(t.params[p]) for t in complete}) > 1)
    if not varying:
        return Importances({}, n, note="no searched knob varied between the complete trials")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PED-ANOVA's note that it ranks for low target values
            # imported here: optuna.importance loads scikit-learn (about 2.5 s), which only this needs
            from optuna.importance import PedAnovaImportanceEvaluator, get_param_importances

            importances = get_param_importances(study, evaluator=PedAnovaImportanceEvaluator(), params=varying)
    except (RuntimeError, ValueError) as e:
        logger.warning("parameter importances are not available: %s", e)
        return Importances({}, n, note=f"not available: {e}")
    return Importances({k: float(v) for k, v in importances.items()}, n)


def rates_of(trials: Sequence[FrozenTrial], verdicts: Sequence[TrialVerdict]) -> OverfittingRates:
    by_number = {t.number: t for t in trials}
    depth_rates: dict[int, BandRate] = {}
    lr_rates: dict[tuple[int, str], BandRate] = {}
    for v in verdicts:
        if v.state not in FINISHED or v.verdict not in CONCLUSIVE:
            continue
        trial = by_number[v.number]
        overfit = v.verdict == "overfitting"
        depth = as_int(knob_value(trial, FREEZE_DEPTH))
        if depth is not None:
            _count(depth_rates.setdefault(depth, BandRate()), overfit)
        lr = finite(knob_value(trial, LEARNING_RATE))
        if lr is not None and lr > 0:
            key = (math.floor(round(math.log10(lr), 9)), learning_rate_band(lr))
            _count(lr_rates.setdefault(key, BandRate()), overfit)
    return OverfittingRates(
        by_freeze_depth=dict(sorted(depth_rates.items())),
        by_learning_rate={label: rate for (_, label), rate in sorted(lr_rates.items())},
    )


def _count(rate: BandRate, overfit: bool) -> None:
    rate.trials += 1
    rate.overfitting += int(overfit)


def compute_of(trials: Sequence[FrozenTrial]) -> ComputeSaved:
    n = steps = planned = 0
    for t in trials:
        record = TrialRecord.from_trial(t)
        spent, full = record.steps, record.planned_steps
        if t.state.name not in FINISHED or spent is None or full is None:
            continue
        n, steps, planned = n + 1, steps + spent, planned + max(full, spent)
    return ComputeSaved(trials=n, steps=steps, planned_steps=planned)


def spearman(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Spearman's rank correlation of two paired lists (None under 3 pairs): how well one ranking (e.g.
    validation loss, or a cheap fidelity's) orders the other (test loss, or full data's).

    >>> spearman([1.0, 2.0, 3.0, 4.0], [10.0, 30.0, 20.0, 40.0])
    0.8
    """
    if len(a) < 3:
        return None
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(round(np.corrcoef(ra, rb)[0, 1], 4))
