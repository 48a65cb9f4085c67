"""Runs of a trial with other seeds (written by ``xtts-tune confirm``), read back for the recommendation."""

from __future__ import annotations

import logging
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from xtts_tune.analysis.records import train_config
from xtts_tune.analysis.verdicts import TrialVerdict
from xtts_tune.io import as_int, finite, json_safe

logger = logging.getLogger(__name__)


CONFIRMATIONS = "confirmations"
"""Study user attribute of ``xtts-tune confirm``: ``{"<trial number>": [{"seed", "best_val_loss",
"best_step", ...}, ...]}``, the trial's runs with other seeds."""


@dataclass
class Confirmation:
    """A candidate's best validation losses over its original run and its confirmation runs.

    ``runs`` are the stored confirmation entries (other seeds), sorted by seed, each with ``seed``,
    ``best_val_loss`` (``None`` when the run gave no finite loss) and ``best_step``.
    """

    number: int
    original: float
    original_seed: int | None
    runs: list[dict[str, Any]]

    @property
    def values(self) -> list[float]:
        """The original value, then each confirmation run's finite best validation loss."""
        return [self.original] + [r["best_val_loss"] for r in self.runs if r["best_val_loss"] is not None]

    @property
    def failed_seeds(self) -> list[int]:
        """Seeds whose confirmation run gave no finite validation loss."""
        return [r["seed"] for r in self.runs if r["best_val_loss"] is None]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        """Mean best validation loss over the runs (``inf`` when a run gave no finite loss)."""
        return math.inf if self.failed_seeds else statistics.fmean(self.values)

    @property
    def std(self) -> float:
        """Sample standard deviation over the runs (0 for a single run)."""
        values = self.values
        return statistics.stdev(values) if len(values) > 1 else 0.0

    def describe(self) -> str:
        """``"3.0412 ± 0.0105 over 4 seeds"``."""
        return f"{self.mean:.4f} ± {self.std:.4f} over {self.n} seeds"

    def to_dict(self) -> dict[str, Any]:
        return json_safe({
            "number": self.number,
            "original": self.original,
            "original_seed": self.original_seed,
            "runs": self.runs,
            "mean": self.mean,
            "std": self.std,
            "n": self.n,
        })


def study_confirmations(study: optuna.Study) -> dict[int, list[dict[str, Any]]]:
    """The study's ``confirmations`` attribute as ``{trial number: [run, ...]}``, runs sorted by seed.

    Each run is ``{"seed": int, "best_val_loss": float | None, "best_step": int | None}`` plus any
    other stored keys; a non-finite loss becomes ``None``. Malformed entries are skipped with a warning.
    """
    raw = study.user_attrs.get(CONFIRMATIONS)
    if not isinstance(raw, Mapping):
        return {}
    out: dict[int, list[dict[str, Any]]] = {}
    for key, entries in raw.items():
        number = as_int(int(key)) if isinstance(key, str) and key.strip().isdigit() else as_int(key)
        if number is None or not isinstance(entries, list):
            logger.warning("ignoring malformed confirmations of %r in study %r", key, study.study_name)
            continue
        runs: dict[int, dict[str, Any]] = {}
        for entry in entries:
            seed = as_int(entry.get("seed")) if isinstance(entry, Mapping) else None
            if seed is None:
                logger.warning("ignoring a confirmation of trial %d without a seed: %r", number, entry)
                continue
            runs[seed] = {
                **entry,
                "seed": seed,
                "best_val_loss": finite(entry.get("best_val_loss")),
                "best_step": as_int(entry.get("best_step")),
            }
        if runs:
            out[number] = [runs[s] for s in sorted(runs)]
    return out


def candidate_confirmations(
    study: optuna.Study, by_number: Mapping[int, FrozenTrial], eligible: Sequence[TrialVerdict]
) -> dict[int, Confirmation]:
    """The stored confirmation runs of the eligible candidates (none: rank by one run as before)."""
    stored = study_confirmations(study)
    out = {}
    for v in eligible:
        if v.number in stored:
            trial = by_number[v.number]
            seed = as_int(trial.user_attrs.get("seed"))
            if seed is None:
                seed = as_int(train_config(study, trial).get("seed"))
            runs = [r for r in stored[v.number] if r["seed"] != seed]  # the original run counts once
            if runs:
                out[v.number] = Confirmation(v.number, float(v.value), seed, runs)
    return out
