"""What the overfitting flag does to the pick, measured on clips selection never saw.

:func:`xtts_tune.search.holdout.score_kept_on_test` scores every kept trial on the test split; this module
compares two rules on those rows:

- **exclude**: the lowest validation loss among trials that are not overfitting, unstable or inconclusive
  (the rule before the measurement);
- **keep**: the lowest validation loss among trials that are not unstable or inconclusive (an overfitting
  trial competes: early stopping already kept its best checkpoint, before the rise).

It also gives how well validation loss ranks test loss (Spearman) and where the overfitting-flagged trials
land on the test split.

>>> rows = [{"number": 0, "verdict": "overfitting", "val_loss": 3.30, "test_loss": 3.41},
...         {"number": 1, "verdict": "healthy", "val_loss": 3.35, "test_loss": 3.44},
...         {"number": 2, "verdict": "under-trained", "val_loss": 3.60, "test_loss": 3.70}]
>>> effect = flag_effect(rows)
>>> effect.exclude_pick, effect.keep_pick, round(effect.change, 4), effect.spearman
(1, 0, -0.0087, 1.0)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from xtts_tune.analysis.statistics import spearman

__all__ = ["FlagEffect", "flag_effect"]

NEVER = frozenset({"unstable", "inconclusive", "unknown"})


@dataclass
class FlagEffect:
    """The two rules' picks and their test losses (see the module docstring)."""

    n_scored: int
    exclude_pick: int | None
    exclude_test_loss: float | None
    keep_pick: int | None
    keep_test_loss: float | None
    spearman: float | None
    """Rank correlation of validation and test loss over the scored trials."""
    overfitting_test_ranks: list[tuple[int, int]] = field(default_factory=list)
    """(trial, its rank on the test split, 1 = lowest test loss) for each overfitting-flagged trial."""

    @property
    def change(self) -> float | None:
        """Relative change of the pick's test loss when overfitting trials compete (negative: keep is better)."""
        if self.exclude_test_loss is None or self.keep_test_loss is None:
            return None
        return (self.keep_test_loss - self.exclude_test_loss) / self.exclude_test_loss

    def describe(self) -> str:
        """One sentence with the figures."""
        if self.exclude_pick is None or self.keep_pick is None:
            return f"{self.n_scored} trials scored on the test split: not enough to compare the two rules"
        ranks = ", ".join(f"trial {n} #{r}" for n, r in self.overfitting_test_ranks) or "none"
        same = "the same trial" if self.exclude_pick == self.keep_pick else f"trial {self.keep_pick}"
        return (
            f"{self.n_scored} trials scored on the test split: excluding overfitting picks trial "
            f"{self.exclude_pick} (test {self.exclude_test_loss:.4f}); letting it compete picks {same} "
            f"(test {self.keep_test_loss:.4f}, {self.change:+.2%}); Spearman(validation, test) "
            f"{self.spearman:.2f}; overfitting-flagged trials' test ranks: {ranks}"
        )


def flag_effect(rows: Sequence[Mapping[str, Any]]) -> FlagEffect:
    """Compare the two rules on rows with ``number``, ``verdict``, ``val_loss`` and ``test_loss``."""
    scored = [r for r in rows if r.get("test_loss") is not None and r.get("val_loss") is not None]
    by_test = sorted(scored, key=lambda r: (r["test_loss"], r["number"]))
    test_rank = {r["number"]: i + 1 for i, r in enumerate(by_test)}

    def pick(allowed) -> Mapping[str, Any] | None:
        pool = [r for r in scored if allowed(r["verdict"])]
        return min(pool, key=lambda r: (r["val_loss"], r["number"])) if pool else None

    excluded = pick(lambda v: v not in NEVER and v != "overfitting")
    kept = pick(lambda v: v not in NEVER)
    return FlagEffect(
        n_scored=len(scored),
        exclude_pick=excluded["number"] if excluded else None,
        exclude_test_loss=excluded["test_loss"] if excluded else None,
        keep_pick=kept["number"] if kept else None,
        keep_test_loss=kept["test_loss"] if kept else None,
        spearman=spearman([r["val_loss"] for r in scored], [r["test_loss"] for r in scored]),
        overfitting_test_ranks=[(r["number"], test_rank[r["number"]]) for r in scored if r["verdict"] == "overfitting"],
    )
