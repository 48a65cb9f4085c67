"""The study's summary after a search: every trial's row, the best trial, compute and disk spent (data only;
:mod:`xtts_tune.terminal` renders it)."""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from xtts_tune.io import finite
from xtts_tune.search.retention import rank_value, trial_checkpoint


@dataclass
class TrialRow:
    number: int
    state: str
    params: dict[str, Any]
    best_val_loss: float | None
    steps: int | None
    planned_steps: int | None
    verdict: str | None
    checkpoint: bool = False


@dataclass
class SearchSummary:
    study_name: str
    storage: str
    rows: list[TrialRow]
    best_number: int | None
    best_value: float | None
    best_params: dict[str, Any]
    total_steps: int
    planned_steps: int
    disk_bytes: int
    trials_dir: str
    interrupted: bool = False
    trials_run: list[int] = field(default_factory=list)
    keep_top_k: int = 3
    default_storage: bool = True
    config_path: str | None = None
    """The study YAML (absolute), when the search was started from one: the printed next steps name it."""

    @property
    def compute_saved(self) -> float:
        """Share of the planned optimizer steps not spent (pruning and early stopping)."""
        return 1.0 - self.total_steps / self.planned_steps if self.planned_steps else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["compute_saved"] = self.compute_saved
        return d


def _disk_usage(folder: Path) -> int:
    total = 0
    if folder.is_dir():
        for p in folder.rglob("*"):
            with contextlib.suppress(OSError):
                if p.is_file():
                    total += p.stat().st_size
    return total


def summarize(
    study: optuna.Study,
    url: str,
    trials_dir: Path,
    *,
    keep_top_k: int = 3,
    interrupted: bool = False,
    trials_run: list[int] | None = None,
    default: bool = True,
    config_path: str | None = None,
) -> SearchSummary:
    """The study's table: every trial's state, params, best loss, steps and verdict; the best trial."""
    trials = study.get_trials(deepcopy=False)
    rows = []
    total = planned = 0
    best: tuple[float, FrozenTrial] | None = None
    for t in trials:
        steps, plan = t.user_attrs.get("steps"), t.user_attrs.get("planned_steps")
        if isinstance(steps, int) and isinstance(plan, int):
            total += steps
            planned += plan
        v = rank_value(t)
        if v is not None and (best is None or v < best[0]):
            best = (v, t)
        rows.append(
            TrialRow(
                number=t.number,
                state=t.state.name,
                params=dict(t.params),
                best_val_loss=finite(t.user_attrs.get("best_val_loss")),
                steps=steps,
                planned_steps=plan,
                verdict=t.user_attrs.get("verdict"),
                checkpoint=trial_checkpoint(t) is not None,
            )
        )
    return SearchSummary(
        study_name=study.study_name,
        storage=url,
        rows=rows,
        best_number=best[1].number if best else None,
        best_value=best[0] if best else None,
        best_params=dict(best[1].params) if best else {},
        total_steps=total,
        planned_steps=planned,
        disk_bytes=_disk_usage(trials_dir),
        trials_dir=str(trials_dir),
        interrupted=interrupted,
        trials_run=list(trials_run or []),
        keep_top_k=keep_top_k,
        default_storage=default,
        config_path=config_path,
    )
