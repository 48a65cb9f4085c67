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

The layout is its three concepts, with what they all read at the top:

- :mod:`~.curve`: one curve's numbers and verdict: :mod:`~.curve.thresholds` (the one reader of the
  ``diagnosis`` section), :mod:`~.curve.reader` (read and check a curve), :mod:`~.curve.stats` (its noise,
  a series' trend), :mod:`~.curve.diagnosis` (the verdict).
- :mod:`~.ranking`: every trial's verdict (:mod:`~.ranking.verdicts`), how it sounds against the base
  (:mod:`~.ranking.sound`), the one ranking (:mod:`~.ranking.order`), the recommendation's rules
  (:mod:`~.ranking.recommend`), its sentences (:mod:`~.ranking.explain`) and the search-space advice
  (:mod:`~.ranking.advice`).
- :mod:`~.evidence`: what unseen clips and other seeds say: the winner against the guide's recipe on the
  test split (:mod:`~.evidence.holdout`), confirmation runs (:mod:`~.evidence.confirmations`), what the
  overfitting flag does to the pick (:mod:`~.evidence.flag_effect`).
- shared: :mod:`~.records` (reading stored trials), :mod:`~.statistics` (importances, overfitting rates,
  compute saved), :mod:`~.study_analysis` (all of it at once, for the report), :mod:`~.location` (a study's
  storage for printed commands), :mod:`~.examples` (an in-memory study), :mod:`~.data_curve` (would more
  data help: the power law fitted to the data curve).
"""

from xtts_tune.lazy import lazy_exports

_API = {
    "Diagnosis": "xtts_tune.analysis.curve.diagnosis",
    "diagnose": "xtts_tune.analysis.curve.diagnosis",
    "TrialVerdict": "xtts_tune.analysis.ranking.verdicts",
    "trial_verdicts": "xtts_tune.analysis.ranking.verdicts",
    "curve_verdict": "xtts_tune.analysis.ranking.verdicts",
    "Ranking": "xtts_tune.analysis.ranking.order",
    "rank": "xtts_tune.analysis.ranking.order",
    "Recommendation": "xtts_tune.analysis.ranking.recommend",
    "DEFAULT_SEED_NOISE": "xtts_tune.analysis.ranking.recommend",
    "NoRecommendationError": "xtts_tune.analysis.ranking.recommend",
    "recommend": "xtts_tune.analysis.ranking.recommend",
    "StudyAnalysis": "xtts_tune.analysis.study_analysis",
    "analyze": "xtts_tune.analysis.study_analysis",
    "DiagnosisThresholds": "xtts_tune.analysis.curve.thresholds",
    "thresholds_from_section": "xtts_tune.analysis.curve.thresholds",
    "study_thresholds": "xtts_tune.analysis.curve.thresholds",
    "describe_test_comparison": "xtts_tune.analysis.evidence.holdout",
    "trial_value": "xtts_tune.analysis.records",
    "is_complete": "xtts_tune.analysis.records",
    "guide_trial": "xtts_tune.analysis.records",
    "train_config": "xtts_tune.analysis.records",
    "example_study": "xtts_tune.analysis.examples",
    "PowerLawFit": "xtts_tune.analysis.data_curve",
    "fit_power_law": "xtts_tune.analysis.data_curve",
}

__all__ = sorted(_API)
__getattr__, __dir__ = lazy_exports(__name__, _API)
