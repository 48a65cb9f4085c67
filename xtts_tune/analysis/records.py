"""Reading a study's trials as the search stores them: values, knobs, train configs (one reader each).

The search runner writes each trial's params, value and user attributes (``curve``, ``best_step``,
``train_config``, ...); every analysis module reads them through these helpers, so a missing or malformed
attribute is handled the same way everywhere.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from xtts_tune.config import TrainConfig
from xtts_tune.record import FULL_DATA, StudyRecord, TrialRecord

FINISHED = ("COMPLETE", "PRUNED")


FREEZE_DEPTH = "freeze_depth"


LEARNING_RATE = "learning_rate"


_TRAIN_FIELDS = frozenset(f.name for f in dataclasses.fields(TrainConfig))


def check_direction(study: optuna.Study) -> None:
    if len(study.directions) != 1 or study.direction != optuna.study.StudyDirection.MINIMIZE:
        raise ValueError(f"study {study.study_name!r} must minimise one objective (the validation loss)")


def study_trials(study: optuna.Study) -> list[FrozenTrial]:
    check_direction(study)
    return study.get_trials(deepcopy=False)


STOP_REASONS = {
    "completed": "ran its whole budget",
    "max_steps": "reached max_steps",
    "early_stopped": "stopped early (no improvement for train.patience evaluations)",
    "stopped_by_callback": "pruned (cut early: its curve trailed the other trials')",
    "interrupted": "interrupted (Ctrl-C)",
    "out_of_memory": "ran out of memory (pruned with a violated constraint, so the sampler avoids the region)",
    "worker process gone": "its worker process was gone (run again)",
}
"""The trial loop's stop reasons in plain words, for the report, the dashboard notes and the terminal."""


def stop_reason_words(reason: Any) -> str:
    """``"stopped_by_callback"`` → ``"pruned (cut early: ...)"``; unknown reasons as they are."""
    return STOP_REASONS.get(reason, "-" if reason is None else str(reason))


def is_complete(trial: FrozenTrial) -> bool:
    """COMPLETE, or pruned at its planned last step: a trial that ran its whole budget is complete, whatever
    the pruner said there (the search no longer prunes there; older studies did)."""
    if trial.state == TrialState.COMPLETE:
        return True
    rec = TrialRecord.from_trial(trial)
    return (
        trial.state == TrialState.PRUNED
        and rec.steps is not None
        and rec.planned_steps is not None
        and rec.steps >= rec.planned_steps
    )


def complete_trials(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    return [t for t in trials if is_complete(t) and trial_value(t) is not None]


def guide_trial(trials: Sequence[FrozenTrial]) -> FrozenTrial | None:
    """The full-data trial that ran the guide's recommended configuration (the search enqueues it as trial 0;
    with ``search.fidelity`` it runs on the cheap rung, and a promoted copy keeps its ``enqueued`` mark)."""
    records = ((t, TrialRecord.from_trial(t)) for t in sorted(trials, key=lambda t: t.number))
    return next((t for t, r in records if r.enqueued_by_guide and r.data_fraction == FULL_DATA), None)


def trial_value(trial: FrozenTrial) -> float | None:
    """The trial's best validation loss: Optuna's value, except for a pruned trial, whose Optuna value is its
    last reported loss (Optuna's rule) while ``best_val_loss`` is the lowest it reached."""
    best = TrialRecord.from_trial(trial).best_val_loss if trial.state == TrialState.PRUNED else None
    if best is not None:
        value = best
    else:
        values = trial.values
        if not values or values[0] is None:
            return None
        value = values[0]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def knob_value(trial: FrozenTrial, name: str) -> Any:
    """A trial's searched param ``name``, or else its fixed value from the trial's train config."""
    if name in trial.params:
        return trial.params[name]
    config = TrialRecord.from_trial(trial).train_config
    return config.get(name) if config is not None else None


def train_config(study: optuna.Study, trial: FrozenTrial) -> dict[str, Any]:
    """The trial's full train config (its stored one, else the study's, with its params applied)."""
    config = TrialRecord.from_trial(trial).train_config
    if config is None:
        config = StudyRecord.from_study(study).train_section
    merged = dict(config or {})
    merged.update({k: v for k, v in trial.params.items() if k in _TRAIN_FIELDS})
    return merged
