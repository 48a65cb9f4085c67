"""Diagnosis thresholds: what counts as overfitting, underfitting or unstable, read from one place.

:func:`thresholds_from_section` is the only reader of a ``diagnosis:`` section. The study YAML's section is
read with it when a search starts (mistakes are :class:`~xtts_tune.errors.ConfigError`), and so is the copy
stored in a study (:func:`study_thresholds`), so the report, the export and the search always judge with the
same numbers.

>>> thresholds_from_section({"spike_factor": 2}, "study.yaml").spike_factor
2.0
>>> thresholds_from_section({"spike": 2}, "study.yaml")
Traceback (most recent call last):
...
xtts_tune.errors.ConfigError: study.yaml: unknown key 'diagnosis.spike'; did you mean 'diagnosis.spike_factor'? (valid: max_trainable_share, noise_factor, noise_floor_rel, overfit_min_evals, overfit_rise_abs, overfit_rise_rel, spike_factor, still_improving_rel, train_falling_rel, under_trained_score, underfit_improvement_rel)
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from xtts_tune.config import ConfigError, coerce, unknown_key
from xtts_tune.record import StudyRecord

__all__ = ["DiagnosisThresholds", "study_thresholds", "thresholds_from_section"]


@dataclass(frozen=True)
class DiagnosisThresholds:
    """Thresholds of :func:`diagnose`; see the module docstring for their meaning."""

    overfit_rise_rel: float = 0.003
    overfit_rise_abs: float = 0.01
    overfit_min_evals: float = 2
    noise_factor: float = 1.0
    noise_floor_rel: float = 0.001
    train_falling_rel: float = 0.0
    underfit_improvement_rel: float = 0.01
    spike_factor: float = 1.5
    max_trainable_share: float = 0.10
    still_improving_rel: float = 0.002
    under_trained_score: float = 0.15

    def validate(self) -> None:
        """Raise :class:`ValueError` naming the first invalid field."""
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
                raise ValueError(f"{field.name} must be a finite number, got {value!r}.")
            if value < 0:
                raise ValueError(f"{field.name} must be non-negative, got {value!r}.")
        if self.spike_factor <= 1:
            raise ValueError(f"spike_factor must be greater than 1, got {self.spike_factor!r}.")
        if self.overfit_min_evals < 1 or not float(self.overfit_min_evals).is_integer():
            raise ValueError(f"overfit_min_evals must be a whole number >= 1, got {self.overfit_min_evals!r}.")
        if self.max_trainable_share > 1:
            raise ValueError(f"max_trainable_share must be in [0, 1], got {self.max_trainable_share!r}.")


def thresholds_from_section(raw: Any, where: str) -> DiagnosisThresholds:
    """A ``diagnosis:`` mapping (``None``: the defaults) as :class:`DiagnosisThresholds`, validated.

    Raises :class:`~xtts_tune.errors.ConfigError` naming ``where`` and the key for an unknown key, a value
    of the wrong type or an invalid value.
    """
    raw = raw or {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: 'diagnosis' must be a mapping, got {type(raw).__name__}")
    names = [f.name for f in dataclasses.fields(DiagnosisThresholds)]
    kwargs = {}
    for key, value in raw.items():
        if key not in names:
            raise unknown_key(str(key), names, where, "diagnosis")
        kwargs[key] = coerce(value, float, f"diagnosis.{key}", where)
    thresholds = DiagnosisThresholds(**kwargs)
    try:
        thresholds.validate()
    except ValueError as exc:
        raise ConfigError(f"{where}: diagnosis.{exc}") from None
    return thresholds


def study_thresholds(study) -> DiagnosisThresholds:
    """The thresholds of a study's stored config (the defaults when it stored none)."""
    section = (StudyRecord.from_study(study).config or {}).get("diagnosis")
    return thresholds_from_section(section, f"study '{study.study_name}' (its stored config)")
