"""Reading a study's trials as the search stores them: values, knobs, train configs (one reader each).

The search runner writes each trial's params, value and user attributes (``curve``, ``best_step``,
``train_config``, ...); every analysis module reads them through these helpers, so a missing or malformed
attribute is handled the same way everywhere.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from xtts_tune.config import TrainConfig

FINISHED = ("COMPLETE", "PRUNED")


FREEZE_DEPTH = "freeze_depth"


LEARNING_RATE = "learning_rate"


_TRAIN_FIELDS = frozenset(f.name for f in dataclasses.fields(TrainConfig))


def check_direction(study: optuna.Study) -> None:
    if len(study.directions) != 1 or study.direction != optuna.study.StudyDirection.MINIMIZE:
        raise ValueError(
            f"study {study.study_name!r} must minimise one objective (the validation loss)"
        )


def study_trials(study: optuna.Study) -> list[FrozenTrial]:
    check_direction(study)
    return study.get_trials(deepcopy=False)


def complete_trials(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    return [t for t in trials if t.state == TrialState.COMPLETE and trial_value(t) is not None]


def trial_value(trial: FrozenTrial) -> float | None:
    values = trial.values
    if not values or values[0] is None:
        return None
    value = float(values[0])
    return value if math.isfinite(value) else None


def knob_value(trial: FrozenTrial, name: str) -> Any:
    """A trial's searched param ``name``, or else its fixed value from the trial's train config."""
    if name in trial.params:
        return trial.params[name]
    config = trial.user_attrs.get("train_config")
    return config.get(name) if isinstance(config, Mapping) else None


def train_config(study: optuna.Study, trial: FrozenTrial) -> dict[str, Any]:
    config = trial.user_attrs.get("train_config")
    if not isinstance(config, Mapping):
        study_config = study.user_attrs.get("config")
        config = study_config.get("train") if isinstance(study_config, Mapping) else None
    merged = dict(config) if isinstance(config, Mapping) else {}
    merged.update({k: v for k, v in trial.params.items() if k in _TRAIN_FIELDS})
    return merged
