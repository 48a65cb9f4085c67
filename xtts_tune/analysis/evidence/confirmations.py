"""Runs of a trial with other seeds (written by ``xtts-tune confirm``), read back for the recommendation."""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from xtts_tune.analysis.ranking.forgetting import Forgetting, pooled_forgetting
from xtts_tune.analysis.ranking.verdicts import TrialVerdict
from xtts_tune.analysis.records import train_config
from xtts_tune.io import as_int, finite, json_safe
from xtts_tune.record import TrialRecord, read_confirmations


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

    def forgetting(self, original: Forgetting | None) -> Forgetting | None:
        """Its forgetting over the original run (``original``) and the runs scored on the forgetting set
        (:func:`~xtts_tune.analysis.ranking.forgetting.pooled_forgetting`); ``original`` when none was."""
        scored = [
            (finite(r.get("forget_loss_change")), r.get("forget_loss_se") or 0.0)
            for r in self.runs
            if finite(r.get("forget_loss_change")) is not None
        ]
        if original is None or not scored:
            return original
        return pooled_forgetting([(original.change, original.se), *scored])

    def describe(self) -> str:
        """``"3.0412 ± 0.0105 over 4 seeds"``."""
        return f"{self.mean:.4f} ± {self.std:.4f} over {self.n} seeds"

    def to_dict(self) -> dict[str, Any]:
        return json_safe(
            {
                "number": self.number,
                "original": self.original,
                "original_seed": self.original_seed,
                "runs": self.runs,
                "mean": self.mean,
                "std": self.std,
                "n": self.n,
            }
        )


def candidate_confirmations(
    study: optuna.Study, by_number: Mapping[int, FrozenTrial], eligible: Sequence[TrialVerdict]
) -> dict[int, Confirmation]:
    """The stored confirmation runs of the eligible candidates (none: rank by one run as before)."""
    stored = read_confirmations(study)
    out = {}
    for v in eligible:
        if v.number in stored:
            trial = by_number[v.number]
            seed = TrialRecord.from_trial(trial).seed
            if seed is None:
                seed = as_int(train_config(study, trial).get("seed"))
            runs = [r for r in stored[v.number] if r["seed"] != seed]  # the original run counts once
            if runs:
                out[v.number] = Confirmation(v.number, float(v.value), seed, runs)
    return out
