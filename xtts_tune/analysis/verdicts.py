"""Every trial's verdict: its stored diagnosis, or a diagnosis of its stored curve, or ``unknown``."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from xtts_tune.analysis.diagnosis import diagnose
from xtts_tune.analysis.records import study_trials, trial_value
from xtts_tune.analysis.thresholds import DiagnosisThresholds, study_thresholds
from xtts_tune.io import as_int, finite, json_safe

logger = logging.getLogger(__name__)


VERDICTS = ("healthy", "overfitting", "underfitting", "unstable")
"""The verdicts of :func:`xtts_tune.analysis.diagnosis.diagnose`."""


UNKNOWN = "unknown"
"""The verdict of a trial without a diagnosable curve (failed early, or still running)."""


REJECTED = frozenset({"overfitting", "unstable"})
"""Verdicts that are never recommended."""


@dataclass
class TrialVerdict:
    """One trial's verdict, from its stored diagnosis or by diagnosing its stored curve.

    ``source`` is ``"stored"`` (the study's diagnosis), ``"recomputed"`` (diagnosed here from
    the ``curve`` attribute) or ``"none"`` (no curve: the verdict is :data:`UNKNOWN`).
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

    def to_dict(self) -> dict[str, Any]:
        return json_safe(dataclasses.asdict(self))


def trial_verdicts(study: optuna.Study) -> list[TrialVerdict]:
    """Every trial's verdict and reasons, in trial-number order (all states)."""
    return verdicts_of(study_trials(study), study_thresholds(study))


def verdicts_of(trials: Sequence[FrozenTrial], thresholds: DiagnosisThresholds) -> list[TrialVerdict]:
    return [_verdict_of(t, thresholds) for t in sorted(trials, key=lambda t: t.number)]


def _verdict_of(trial: FrozenTrial, thresholds: DiagnosisThresholds) -> TrialVerdict:
    attrs = trial.user_attrs
    verdict = TrialVerdict(
        number=trial.number,
        state=trial.state.name,
        value=trial_value(trial),
        params=dict(trial.params),
        verdict=UNKNOWN,
        reasons=[],
        best_step=as_int(attrs.get("best_step")),
        best_epoch=finite(attrs.get("best_epoch")),
        trainable_share=finite(attrs.get("trainable_share")),
    )
    stored = attrs.get("diagnosis")
    if isinstance(stored, Mapping) and stored.get("verdict") in VERDICTS:
        _apply_diagnosis(verdict, stored, "stored")
    elif isinstance(attrs.get("curve"), list):
        _rediagnose(verdict, attrs["curve"], thresholds)
    else:
        verdict.reasons = [_no_curve_reason(trial.state)]
    if verdict.best_epoch is None and verdict.best_step is not None:
        verdict.best_epoch = _epoch_at(attrs.get("curve"), verdict.best_step)
    return verdict


def _apply_diagnosis(verdict: TrialVerdict, diagnosis: Mapping[str, Any], source: str) -> None:
    verdict.verdict = str(diagnosis["verdict"])
    verdict.reasons = [str(r) for r in diagnosis.get("reasons") or []]
    verdict.overfit_onset_step = as_int(diagnosis.get("overfit_onset_step"))
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
