"""Every trial's verdict: its stored diagnosis, or a diagnosis of its stored curve, or ``unknown``."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from xtts_tune.analysis.curve.diagnosis import diagnose
from xtts_tune.analysis.curve.thresholds import DiagnosisThresholds, study_thresholds
from xtts_tune.analysis.ranking.forgetting import Forgetting, judge_forgetting
from xtts_tune.analysis.ranking.forgetting_ear import EarForgetting, judge_ear
from xtts_tune.analysis.ranking.sound import SoundJudgment, judge_sound
from xtts_tune.analysis.records import (
    FINISHED,
    is_complete,
    study_trials,
    trial_value,
)
from xtts_tune.io import as_int, finite, json_safe
from xtts_tune.record import FULL_DATA, StudyRecord, TrialRecord

logger = logging.getLogger(__name__)


VERDICTS = ("healthy", "overfitting", "underfitting", "unstable")
"""The verdicts of :func:`xtts_tune.analysis.curve.diagnosis.diagnose` (one curve on its own)."""

UNDER_TRAINED = "under-trained"
"""A healthy trial whose shortfall against the study's best improvement, times how fast it was still falling
at its end, reaches ``under_trained_score``: its budget ended long before it levelled off (:func:`verdicts_of`)."""

INCONCLUSIVE = "inconclusive"
"""Too few evaluations to judge a curve (fewer than :data:`MIN_EVALUATIONS`); never counted as healthy."""

STUDY_VERDICTS = ("healthy", UNDER_TRAINED, "overfitting", "underfitting", "unstable", INCONCLUSIVE)
"""Every verdict a trial of a study can get, in the order the report counts them."""

UNKNOWN = "unknown"
"""The verdict of a trial without a diagnosable curve (failed early, or still running)."""

REJECTED = frozenset({"unstable", INCONCLUSIVE})
"""Verdicts that are never recommended. Overfitting is not one of them: the checkpoint a trial keeps is its best
step, before the rise, and on unseen clips letting overfitting trials compete never made the pick worse
(docs/verdicts.md); the recommendation warns and says where to stop instead."""

MIN_EVALUATIONS = 3
"""A curve needs the base's evaluation and two more to show a trend; with fewer, healthy or underfitting
is a guess (a trial pruned after its second evaluation), so the verdict is inconclusive."""


@dataclass
class TrialVerdict:
    """One trial's verdict, from its stored diagnosis or by diagnosing its stored curve, then judged against
    the rest of the study (inconclusive, under-trained).

    ``source`` is ``"stored"`` (the study's diagnosis), ``"recomputed"`` (diagnosed here from
    the ``curve`` attribute) or ``"none"`` (no curve: the verdict is :data:`UNKNOWN`). ``complete`` is
    :func:`~xtts_tune.analysis.records.is_complete` (a trial that ran its whole budget).
    """

    number: int
    state: str
    value: float | None
    params: dict[str, Any]
    verdict: str
    reasons: list[str]
    best_step: int | None = None
    best_epoch: float | None = None
    overfit_onset_step: int | None = None
    trainable_share: float | None = None
    source: str = "none"
    complete: bool = False
    n_evaluations: int | None = None
    improvement: float | None = None
    """Relative validation improvement, first evaluation to best."""
    still_improving: bool = False
    rising_at_end: bool = False
    """Only its last evaluation rose above its minimum (a flag with advice, not a verdict)."""
    end_pace: float | None = None
    """How fast its last three evaluations fell, as a share of its average fall per evaluation."""
    learned_share: float | None = None
    """Its improvement as a share of the study's best improvement (set across the study)."""
    sound: SoundJudgment | None = None
    """How its listening samples sound against the base model's (:mod:`xtts_tune.analysis.ranking.sound`)."""
    fidelity: float = FULL_DATA
    """The share of the train split it trained on (:attr:`xtts_tune.record.TrialRecord.data_fraction`)."""
    forgetting: Forgetting | None = None
    """Its loss on other voices against the base model's (:mod:`xtts_tune.analysis.ranking.forgetting`)."""
    forget_ear: EarForgetting | None = None
    """Other languages in another voice, heard against the base (:mod:`xtts_tune.analysis.ranking.forgetting_ear`)."""

    def to_dict(self) -> dict[str, Any]:
        return json_safe(dataclasses.asdict(self))


def trial_verdicts(study: optuna.Study) -> list[TrialVerdict]:
    """Every trial's verdict and reasons, in trial-number order (all states)."""
    return verdicts_of(
        study_trials(study), study_thresholds(study), base_probes=StudyRecord.from_study(study).probes_base
    )


def verdicts_of(
    trials: Sequence[FrozenTrial], thresholds: DiagnosisThresholds, *, base_probes: Mapping[str, Any] | None = None
) -> list[TrialVerdict]:
    """Each trial's verdict, then the study-level ones: too few evaluations is inconclusive, and a healthy
    trial that learned far less than the best is under-trained. With the base model's probe figures
    (``base_probes``), each trial's sound is judged against them (:func:`~xtts_tune.analysis.ranking.sound.judge_sound`)."""
    ordered = sorted(trials, key=lambda t: t.number)
    verdicts = [_verdict_of(t, thresholds) for t in ordered]
    for t, v in zip(ordered, verdicts, strict=True):
        record = TrialRecord.from_trial(t)
        start = (record.curve or [{}])[0].get("val_loss")
        improved = v.value is not None and isinstance(start, (int, float)) and v.value < start
        v.sound = judge_sound(record.probes, base_probes, improved=improved)
        v.forgetting = judge_forgetting(record)
        v.forget_ear = judge_ear(record.forget_ear)
    for v in verdicts:
        _require_evidence(v)
    measured = [v for v in verdicts if v.improvement is not None and v.verdict in VERDICTS and v.state in FINISHED]
    for fraction in sorted({v.fidelity for v in measured}):  # a rung of search.fidelity against its own rung
        learned = [v for v in measured if v.fidelity == fraction]
        best = max(learned, key=lambda v: (v.improvement, -v.number))
        for v in learned:
            if best.improvement <= 0:
                break
            v.learned_share = v.improvement / best.improvement
            if v.verdict == "healthy" and v is not best and under_trained_score(v) >= thresholds.under_trained_score:
                v.verdict = UNDER_TRAINED
                v.reasons.insert(0, _under_trained_reason(v, best, thresholds.under_trained_score))
    return verdicts


def under_trained_score(v: TrialVerdict) -> float:
    """(1 − learned share) × end pace (capped to [0, 1]; a stored diagnosis from before the pace was measured
    counts as pace 1 when still improving, else 0): 0 for the best trial or one that levelled off, up to 1
    for one that barely learned and was still falling at its average pace.

    >>> under_trained_score(TrialVerdict(0, "COMPLETE", 3.4, {}, "healthy", [], learned_share=0.5, end_pace=0.8))
    0.4
    """
    if v.learned_share is None:
        return 0.0
    pace = v.end_pace if v.end_pace is not None else float(v.still_improving)
    return max(0.0, 1.0 - v.learned_share) * min(1.0, max(0.0, pace))


def curve_verdict(
    curve: Sequence[Mapping[str, Any]],
    *,
    thresholds: DiagnosisThresholds | None = None,
    trainable_share: float | None = None,
) -> TrialVerdict:
    """One trial's own verdict from its curve, before any study compares it (what ``xtts-tune trial`` prints
    and the dashboard's short ``verdict`` attribute shows): :func:`diagnose`, inconclusive below
    :data:`MIN_EVALUATIONS`.

    >>> curve = [{"step": 0, "val_loss": 4.0}, {"step": 10, "train_loss": 3.9, "val_loss": 3.5}]
    >>> v = curve_verdict(curve)
    >>> v.verdict, v.reasons[0]
    ('inconclusive', 'it has 2 evaluation(s): too few to judge its curve (a verdict needs 3; evaluate more often with train.eval_every)')
    """
    verdict = TrialVerdict(
        number=-1,
        state="COMPLETE",
        value=None,
        params={},
        verdict=UNKNOWN,
        reasons=[],
        trainable_share=trainable_share,
        complete=True,
        n_evaluations=len(curve),
    )
    _rediagnose(verdict, list(curve), thresholds or DiagnosisThresholds())
    _require_evidence(verdict)
    return verdict


def _require_evidence(v: TrialVerdict) -> None:
    """Healthy or underfitting on fewer than :data:`MIN_EVALUATIONS` evaluations is a guess: inconclusive."""
    if v.verdict in ("healthy", "underfitting") and (v.n_evaluations or 0) < MIN_EVALUATIONS:
        how = "it was pruned after" if v.state == "PRUNED" and not v.complete else "it has"
        v.reasons.insert(
            0,
            f"{how} {v.n_evaluations} evaluation(s): too few to judge its curve "
            f"(a verdict needs {MIN_EVALUATIONS}; evaluate more often with train.eval_every)",
        )
        v.verdict = INCONCLUSIVE


def _under_trained_reason(v: TrialVerdict, best: TrialVerdict, limit: float) -> str:
    hint = "learning rate too low, too few steps, or too many layers frozen"
    lr, best_lr = v.params.get("learning_rate"), best.params.get("learning_rate")
    if isinstance(lr, float) and isinstance(best_lr, float) and 0 < lr < best_lr:
        hint = f"its learning rate {lr:.2g} is {best_lr / lr:.0f}x lower than trial {best.number}'s"
    pace = f" at {v.end_pace:.0%} of its average pace" if v.end_pace is not None else ""
    return (
        f"under-trained (score {under_trained_score(v):.2f} ≥ {limit:.2f}: shortfall × end pace): validation loss improved "
        f"{v.improvement:.1%}, {v.learned_share:.0%} of trial {best.number}'s {best.improvement:.1%}, and was "
        f"still falling at its end{pace}: its budget ended before it levelled off; {hint}"
    )


def _verdict_of(trial: FrozenTrial, thresholds: DiagnosisThresholds) -> TrialVerdict:
    rec = TrialRecord.from_trial(trial)
    curve = rec.curve
    verdict = TrialVerdict(
        number=trial.number,
        state=trial.state.name,
        value=trial_value(trial),
        params=dict(trial.params),
        verdict=UNKNOWN,
        reasons=[],
        best_step=rec.best_step,
        best_epoch=rec.best_epoch,
        trainable_share=rec.trainable_share,
        complete=is_complete(trial),
        n_evaluations=len(curve) if isinstance(curve, list) else None,
        fidelity=rec.data_fraction,
    )
    stored = rec.diagnosis
    if isinstance(stored, Mapping) and stored.get("verdict") in VERDICTS:
        _apply_diagnosis(verdict, stored, "stored")
    elif isinstance(curve, list):
        _rediagnose(verdict, curve, thresholds)
    else:
        verdict.reasons = [_no_curve_reason(trial.state)]
    if verdict.best_epoch is None and verdict.best_step is not None:
        verdict.best_epoch = _epoch_at(curve, verdict.best_step)
    return verdict


def _apply_diagnosis(verdict: TrialVerdict, diagnosis: Mapping[str, Any], source: str) -> None:
    verdict.verdict = str(diagnosis["verdict"])
    verdict.reasons = [str(r) for r in diagnosis.get("reasons") or []]
    verdict.overfit_onset_step = as_int(diagnosis.get("overfit_onset_step"))
    verdict.still_improving = bool(diagnosis.get("still_improving"))
    verdict.rising_at_end = bool(diagnosis.get("rising_at_end"))
    verdict.improvement = finite((diagnosis.get("metrics") or {}).get("val_improvement_rel"))
    verdict.end_pace = finite((diagnosis.get("metrics") or {}).get("end_pace"))
    if verdict.best_step is None:
        verdict.best_step = as_int(diagnosis.get("best_step"))
    verdict.source = source


def _rediagnose(verdict: TrialVerdict, curve: list, thresholds: DiagnosisThresholds) -> None:
    share = verdict.trainable_share
    if share is not None and not 0 <= share <= 1:
        share = None
    try:
        diagnosis = diagnose(curve, thresholds=thresholds, trainable_share=share)
    except ValueError as e:
        running = "still running; " if verdict.state == "RUNNING" else ""
        verdict.reasons = [f"{running}its curve could not be diagnosed yet: {e}"]
        return
    _apply_diagnosis(verdict, diagnosis.to_dict(), "recomputed")
    if verdict.state == "RUNNING":
        verdict.reasons.append("provisional: the trial is still running")


def _no_curve_reason(state: TrialState) -> str:
    if state == TrialState.RUNNING:
        return "still running; no learning curve recorded yet"
    if state == TrialState.FAIL:
        return "failed before a learning curve was recorded"
    return "no learning curve was recorded"


def _epoch_at(curve: Any, step: int) -> float | None:
    if not isinstance(curve, list):
        return None
    for record in curve:
        if isinstance(record, Mapping) and record.get("step") == step:
            return finite(record.get("epoch"))
    return None
