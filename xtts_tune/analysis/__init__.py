"""Study-level analysis (never imports torch or coqui): every trial's verdict, what drives the loss and the overfitting, the
compute that pruning saved, and the recommended configuration.

Everything here reads an :class:`optuna.Study` as the study runner stores it: trial params, value (best
validation loss), intermediate values, and each trial's and the study's record (:mod:`xtts_tune.record`:
the curve, best step and epoch, steps spent and planned, trainable share, train config and diagnosis; the
study's stored config supplies the diagnosis thresholds). Any of them may be missing (failed or running
trials).

Rules of the recommendation (:func:`recommend`):

- Candidates are COMPLETE trials with a finite value; the lowest value wins, except that a trial
  whose verdict is ``unstable`` or ``inconclusive`` is never picked, even when it is the lowest. An
  ``overfitting`` trial competes (its kept checkpoint is its best step, before the rise; measured on unseen
  clips in docs/verdicts.md) and its recommendation says to train the final model with early stopping.
- Candidates within ``noise`` (relative, default :data:`DEFAULT_SEED_NOISE`, 1 %) of the winner
  cannot be told apart from one seed: the next steps then suggest ``xtts-tune confirm``.
- When the study's ``confirmations`` user attribute (written by ``xtts-tune confirm``, see
  :mod:`xtts_tune.search.confirm`) holds runs of candidates with other seeds, the confirmed candidates are
  ranked by their *mean* best validation loss over the original run and the confirmation runs. An
  unconfirmed candidate competes (by its one value) only if its value is below every confirmed
  candidate's original value (e.g. a trial added after ``confirm`` ran); otherwise a confirmed
  candidate already beat it on one seed. A confirmed candidate with a confirmation run that gave no
  finite validation loss is not recommended (it is unstable under another seed).
- When more than half (:data:`~.advice.MAJORITY`) of the diagnosed finished trials overfit, the next
  steps say to lower the learning-rate range or freeze more layers; when more than half
  underfit, to raise it or unfreeze more layers (the guide's troubleshooting).

Modules: :mod:`~.thresholds` (the one reader of the ``diagnosis`` section), :mod:`~.diagnosis` (one curve's
verdict), :mod:`~.records` (reading stored trials), :mod:`~.verdicts` (every trial's verdict),
:mod:`~.statistics` (importances, overfitting rates, compute saved), :mod:`~.confirmations`,
:mod:`~.recommend` (the rules), :mod:`~.explain` (the sentences), :mod:`~.study_analysis` (all of it at once).
"""

from xtts_tune.analysis.diagnosis import Diagnosis, diagnose
from xtts_tune.analysis.recommend import (
    DEFAULT_SEED_NOISE,
    NoRecommendationError,
    Recommendation,
    recommend,
)
from xtts_tune.analysis.study_analysis import StudyAnalysis, analyze
from xtts_tune.analysis.thresholds import DiagnosisThresholds
from xtts_tune.analysis.verdicts import TrialVerdict, trial_verdicts

__all__ = [
    "DEFAULT_SEED_NOISE",
    "Diagnosis",
    "DiagnosisThresholds",
    "NoRecommendationError",
    "Recommendation",
    "StudyAnalysis",
    "TrialVerdict",
    "analyze",
    "diagnose",
    "recommend",
    "trial_verdicts",
]

from xtts_tune.lazy import lazy_exports

_API = {
    "Diagnosis": "xtts_tune.analysis.diagnosis",
    "diagnose": "xtts_tune.analysis.diagnosis",
    "TrialVerdict": "xtts_tune.analysis.verdicts",
    "trial_verdicts": "xtts_tune.analysis.verdicts",
    "curve_verdict": "xtts_tune.analysis.verdicts",
    "Ranking": "xtts_tune.analysis.ranking",
    "rank": "xtts_tune.analysis.ranking",
    "Recommendation": "xtts_tune.analysis.recommend",
    "NoRecommendationError": "xtts_tune.analysis.recommend",
    "recommend": "xtts_tune.analysis.recommend",
    "StudyAnalysis": "xtts_tune.analysis.study_analysis",
    "analyze": "xtts_tune.analysis.study_analysis",
    "DiagnosisThresholds": "xtts_tune.analysis.thresholds",
    "thresholds_from_section": "xtts_tune.analysis.thresholds",
    "study_thresholds": "xtts_tune.analysis.thresholds",
    "describe_test_comparison": "xtts_tune.analysis.holdout",
    "trial_value": "xtts_tune.analysis.records",
    "is_complete": "xtts_tune.analysis.records",
    "guide_trial": "xtts_tune.analysis.records",
    "train_config": "xtts_tune.analysis.records",
    "example_study": "xtts_tune.analysis.examples",
}

__all__ = sorted(_API)
__getattr__, __dir__ = lazy_exports(__name__, _API)
