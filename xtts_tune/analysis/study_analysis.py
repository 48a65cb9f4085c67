"""Everything the report shows about a study, computed from one read of its trials."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from xtts_tune.analysis.curve.thresholds import study_thresholds
from xtts_tune.analysis.ranking.recommend import (
    NoRecommendationError,
    Recommendation,
    best_recommendation,
    seed_noise,
)
from xtts_tune.analysis.ranking.verdicts import (
    STUDY_VERDICTS,
    UNKNOWN,
    TrialVerdict,
    verdicts_of,
)
from xtts_tune.analysis.records import FINISHED, check_direction
from xtts_tune.analysis.statistics import (
    ComputeSaved,
    Importances,
    OverfittingRates,
    compute_of,
    importances_of,
    rates_of,
)


@dataclass
class StudyAnalysis:
    """Everything :mod:`xtts_tune.report` shows, computed from one read of the study."""

    study_name: str
    verdicts: list[TrialVerdict]
    importances: Importances
    rates: OverfittingRates
    compute: ComputeSaved
    recommendation: Recommendation | None
    no_recommendation: str | None
    """The :class:`NoRecommendationError` message when there is no recommendation."""

    def verdict_counts(self) -> dict[str, int]:
        counts = Counter(v.verdict for v in self.verdicts if v.state in FINISHED)
        return {k: counts[k] for k in (*STUDY_VERDICTS, UNKNOWN) if counts[k]}

    def to_dict(self) -> dict[str, Any]:
        return {
            "study_name": self.study_name,
            "verdicts": [v.to_dict() for v in self.verdicts],
            "verdict_counts": self.verdict_counts(),
            "importances": self.importances.to_dict(),
            "rates": self.rates.to_dict(),
            "compute": self.compute.to_dict(),
            "recommendation": self.recommendation.to_dict() if self.recommendation else None,
            "no_recommendation": self.no_recommendation,
        }


def analyze(
    study: optuna.Study,
    *,
    noise: float | None = None,
    trials: Sequence[FrozenTrial] | None = None,
) -> StudyAnalysis:
    """All of the above from one read of the study; a missing recommendation is not an error.

    ``trials`` is a snapshot of ``study.get_trials()`` to analyse instead of reading the study
    again (so that a caller's other views of a running study agree with the analysis).

    >>> from xtts_tune.analysis.examples import example_study
    >>> analyze(example_study()).verdict_counts()
    {'healthy': 1, 'under-trained': 1, 'unstable': 1}
    """
    check_direction(study)
    trials = list(study.get_trials(deepcopy=False) if trials is None else trials)
    thresholds = study_thresholds(study)
    verdicts = verdicts_of(trials, thresholds)
    noise = seed_noise(noise)
    try:
        recommendation = best_recommendation(study, trials, verdicts, noise, thresholds)
        reason = None
    except NoRecommendationError as e:
        recommendation, reason = None, str(e)
    return StudyAnalysis(
        study_name=study.study_name,
        verdicts=verdicts,
        importances=importances_of(study, trials),
        rates=rates_of(trials, verdicts),
        compute=compute_of(trials),
        recommendation=recommendation,
        no_recommendation=reason,
    )
