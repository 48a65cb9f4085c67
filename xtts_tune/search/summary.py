"""The study's summary after a search: every trial's row, the best trial, compute and disk spent (data only;
:mod:`xtts_tune.terminal` renders it)."""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from xtts_tune.analysis.ranking.forgetting import forgetting_line
from xtts_tune.analysis.ranking.forgetting_ear import ear_line
from xtts_tune.analysis.ranking.order import rank, why_passed_over
from xtts_tune.analysis.records import FINISHED
from xtts_tune.analysis.rungs import rungs_line
from xtts_tune.config import EMBEDDED_BASE
from xtts_tune.record import ForgettingSet, StudyRecord, TestComparison, TrialRecord
from xtts_tune.search.retention import trial_checkpoint


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
    probes: dict[str, Any] | None = None
    """How its listening samples sound (the probes' summary), when it has samples."""
    samples: list[str] = field(default_factory=list)
    """The trial's listening samples (wav paths that still exist)."""


@dataclass
class SearchSummary:
    study_name: str
    storage: str
    rows: list[TrialRow]
    best_number: int | None
    """The recommended trial (the study's one ranking: :func:`xtts_tune.analysis.ranking.order.rank`)."""
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
    passed_over: str | None = None
    """Why Optuna's raw best (the lowest validation loss) is not the recommended trial, when they differ."""
    no_recommendation: str | None = None
    test_comparison: TestComparison | None = None
    probes_base: dict[str, Any] | None = None
    """The base model's samples as the probes hear them (a base with a decoder)."""
    probes_ceiling: dict[str, Any] | None = None
    """The recommended trial against the guide's recipe on the test clips (:mod:`xtts_tune.search.holdout`)."""
    noise: float | None = None
    """The near-tie band of the ranking (relative validation loss), when there is a recommendation."""
    near_ties: list[int] = field(default_factory=list)
    """Trials within ``noise`` of the lowest validation loss, other than the recommended one."""
    data_check: str | None = None
    """What the study's last ``check-data`` flagged and where its list is, or the command that checks the data
    (:func:`xtts_tune.doctor.run.data_check_line`)."""
    rungs: str | None = None
    """How many trials ran on each rung of ``search.fidelity`` (:func:`xtts_tune.analysis.rungs.rungs_line`)."""
    forgetting: str | None = None
    """What the kept trials forgot: their loss on other voices against the base's
    (:func:`xtts_tune.analysis.ranking.forgetting.forgetting_line`)."""
    forgetting_ear: str | None = None
    """What they forgot by ear: other languages in another voice against the base
    (:func:`xtts_tune.analysis.ranking.forgetting_ear.ear_line`)."""

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
    data_check: str | None = None,
) -> SearchSummary:
    """The study's table: every trial's state, params, best loss, steps and verdict; the recommended trial
    (the study's one ranking) and, when Optuna's raw best differs, why it was passed over."""
    trials = study.get_trials(deepcopy=False)
    ranking = rank(study, trials=trials)
    verdicts = {v.number: v for v in ranking.verdicts}
    ordered = [verdicts[n] for n in ranking.order()]  # the forgetting lines list trials in the ranking's order
    winner = ranking.winner
    best = None if winner is None else next(t for t in trials if t.number == winner.number)
    finished = [v for v in ranking.verdicts if v.state in FINISHED and v.value is not None]
    raw = min(finished, key=lambda v: (v.value, v.number), default=None)
    passed = why_passed_over(raw, winner) if winner is not None and raw is not None and raw is not winner else None
    rows = []
    total = planned = 0
    for t in trials:
        record = TrialRecord.from_trial(t)
        steps, plan = record.steps, record.planned_steps
        if steps is not None and plan is not None:
            total += steps
            planned += plan
        rows.append(
            TrialRow(
                number=t.number,
                state=t.state.name,
                params=dict(t.params),
                best_val_loss=record.best_val_loss,
                steps=steps,
                planned_steps=plan,
                verdict=verdicts[t.number].verdict if t.number in verdicts else None,
                checkpoint=trial_checkpoint(t) is not None,
                probes=record.probes,
                samples=[s.path for s in record.samples if Path(s.path).is_file()],
            )
        )
    return SearchSummary(
        study_name=study.study_name,
        storage=url,
        rows=rows,
        best_number=winner.number if winner else None,
        best_value=winner.value if winner else None,
        best_params=dict(best.params) if best else {},
        total_steps=total,
        planned_steps=planned,
        disk_bytes=_disk_usage(trials_dir),
        trials_dir=str(trials_dir),
        interrupted=interrupted,
        trials_run=list(trials_run or []),
        keep_top_k=keep_top_k,
        default_storage=default,
        config_path=config_path,
        passed_over=passed,
        no_recommendation=None if winner else "no complete trial with a usable verdict yet",
        test_comparison=TestComparison.from_study(study),
        probes_base=StudyRecord.from_study(study).probes_base,
        probes_ceiling=StudyRecord.from_study(study).probes_ceiling,
        noise=ranking.noise if winner else None,
        near_ties=[v.number for v in ranking.ties],
        data_check=data_check,
        rungs=rungs_line(trials),
        forgetting=forgetting_line(
            ordered,
            ForgettingSet.from_study(study),
            hint=(StudyRecord.from_study(study).config or {}).get("base_model", EMBEDDED_BASE) != EMBEDDED_BASE,
        ),
        forgetting_ear=ear_line(ordered),
    )
