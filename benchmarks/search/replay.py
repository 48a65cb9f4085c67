"""Replaying searches on a table of measured curves: the project's own sampler, pruners, early stopping and
ranking, with the training replaced by a lookup.

A replayed search is an in-memory Optuna study run the way :func:`xtts_tune.search.runner.run_search` runs
one: the search's start enqueued first (:meth:`SearchSettings.start_queue`: the guide's recipe as trial 0), the
study's sampler with a strategy's options (:meth:`SearchSettings.make_sampler`, another seed; with the ranking's
constraint when the options have it) or Optuna's ``RandomSampler``, a pruner built by
:class:`PrunerSettings` (the study's own when it is of that type), the suggestion from the study's search
space. Each trial replays the curve of the recorded configuration nearest its suggestion
(:meth:`SearchTable.nearest`): every evaluation is reported at its step and the pruner asked, as the
runner's callback does, and the study's :class:`EarlyStopping` rule ends it as the trial loop would. The
trial gets the runner's attributes (:func:`~xtts_tune.search.outcome.trial_record`), so :func:`rank` names each search's best as the
search would, and names the table's best from a study holding every recorded configuration run unpruned.

>>> from xtts_tune.config import TrainConfig
>>> from benchmarks.search.table import TableConfig
>>> curve = [{"step": s, "epoch": s, "train_loss": 5 - s, "val_loss": v} for s, v in enumerate([5, 4, 4.5, 4.6, 3])]
>>> entry = TableConfig({"learning_rate": 1e-5}, curve, 4, "completed", 1, 10)
>>> result = replay_curve(entry, TrainConfig(patience=2, min_delta=0.01))
>>> result.stop_reason, result.steps, result.best_val_loss
('early_stopped', 3, 4.0)
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from benchmarks.search.table import SearchTable, TableConfig
from xtts_tune.analysis.curve.thresholds import DiagnosisThresholds, thresholds_from_section
from xtts_tune.analysis.ranking.order import DEFAULT_SEED_NOISE, TrialVerdict, rank
from xtts_tune.config import StudyConfig, TrainConfig
from xtts_tune.model.freezing import ParamCounts
from xtts_tune.record import TrialRecord, enqueue_attrs, write_trial
from xtts_tune.search.outcome import trial_record
from xtts_tune.search.settings import PrunerSettings, SearchSettings, quiet_experimental
from xtts_tune.training.early_stopping import EarlyStopping
from xtts_tune.training.result import TrialResult


@dataclass(frozen=True)
class Strategy:
    """A search strategy: a sampler (``study``: the study's own sampler settings with ``options`` applied, built
    by :meth:`SearchSettings.make_sampler`; ``random``: Optuna's RandomSampler; ``guide``: the guide's recipe
    alone) and a pruner (a :data:`~xtts_tune.search.settings.PRUNERS` key). ``options`` are
    ``search.sampler`` keys; the start (:meth:`SearchSettings.start_queue`) follows them too."""

    label: str
    sampler: str
    pruner: str
    options: tuple[tuple[str, Any], ...] = ()


_OPTUNA_EI = (("n_ei_candidates", 24),)  # TPESampler's own default, the product's before issue 21
_OLD = (("type", "tpe"), ("constraints", False), ("spread_start", False), *_OPTUNA_EI)  # the default before issue 21
_TPE = (("type", "tpe"), ("constraints", True), ("spread_start", False))
_GP = (("type", "gp"), ("constraints", True), ("spread_start", False))
_SPREAD = (("spread_start", True),)
_RANDOM = (("constraints", False), ("spread_start", False))  # Optuna's RandomSampler after the guide's recipe

STRATEGIES: dict[str, Strategy] = {
    "tpe+sh": Strategy("TPE + successive halving", "study", "successive_halving", _OLD),
    "tpe+median": Strategy("TPE + median", "study", "median", _OLD),
    "tpe+hyperband": Strategy("TPE + Hyperband", "study", "hyperband", _OLD),
    "tpe": Strategy("TPE, no pruning", "study", "none", _OLD),
    "tpe-c": Strategy("TPE + the ranking's constraint, 8 EI candidates", "study", "none", _TPE),
    "tpe-c-ei24": Strategy("TPE + constraint, 24 EI candidates (Optuna's)", "study", "none", _TPE + _OPTUNA_EI),
    "tpe-c-indep": Strategy("TPE (independent) + constraint", "study", "none", _TPE + (("multivariate", False),)),
    "tpe-c-prior3": Strategy("TPE + constraint, prior weight 3", "study", "none", _TPE + (("prior_weight", 3.0),)),
    "tpe-c-10": Strategy(
        "TPE + constraint, 10 random startup trials", "study", "none", _TPE + (("n_startup_trials", 10),)
    ),
    "tpe-c-ei4": Strategy("TPE + constraint, 4 EI candidates", "study", "none", _TPE + (("n_ei_candidates", 4),)),
    "tpe-c-spread": Strategy("TPE + constraint + spread start", "study", "none", _TPE + _SPREAD),
    "gp": Strategy("GP", "study", "none", (("type", "gp"), ("constraints", False), ("spread_start", False))),
    "gp-c": Strategy("GP + constraint", "study", "none", _GP),
    "gp-c-spread": Strategy("GP + constraint + spread start", "study", "none", _GP + _SPREAD),
    "random+sh": Strategy("random + successive halving", "random", "successive_halving", _RANDOM),
    "random-spread": Strategy("random + spread start", "random", "none", (("constraints", False), *_SPREAD)),
    "random": Strategy("random, no pruning", "random", "none", _RANDOM),
    "guide": Strategy("the guide's recipe alone", "guide", "none", _RANDOM),
}
"""Every strategy the bench compares, by key (pruners: none unless named). TPE's ``group: true`` is not one:
every trial suggests the same four knobs, so it is one group and samples what multivariate TPE samples (the
same steps in every seed on the demo and voice2 tables)."""

SLOW = frozenset(key for key, spec in STRATEGIES.items() if dict(spec.options).get("type") == "gp")
"""Strategies left out unless named (``--strategies``): the GP sampler fits its model at every trial, about 12 s
per replayed search on a 2-core CPU (with ``greenlet``; over a minute without), against well under a second for
TPE."""

BASELINE = "random"
"""The strategy whose steps the others are measured against (the issue's target)."""

WITHIN = DEFAULT_SEED_NOISE
"""A search has found the table's best once its best is within this share of it: the ranking's seed noise
(1 %), below which two trials cannot be told apart."""


@dataclass
class Replay:
    """A table, the study it was recorded for and that study's settings, ready to replay searches on."""

    table: SearchTable
    cfg: StudyConfig
    settings: SearchSettings
    thresholds: DiagnosisThresholds

    @classmethod
    def of(cls, table: SearchTable, cfg: StudyConfig) -> Replay:
        settings = SearchSettings.from_config(cfg)
        settings.resolve(table.num_layers, cfg.source)
        return cls(table, cfg, settings, thresholds_from_section(cfg.diagnosis, cfg.source))

    @property
    def planned_steps(self) -> int:
        return max(c.planned_steps for c in self.table.configs)

    def pruner(self, kind: str) -> PrunerSettings:
        """The study's own pruner when it is of type ``kind``; otherwise ``kind`` never pruning before the
        study's warm-up (its pruner's ``n_warmup_steps``, else two evaluations), with Optuna's Hyperband
        reduction factor 3 (successive halving and Hyperband; Hyperband's largest budget is the planned steps)."""
        own = self.settings.pruner
        if kind == own.type:
            return own
        warmup = own.kwargs.get("n_warmup_steps", 2 * self.cfg.train.eval_every)
        kwargs = {
            "median": {"n_startup_trials": 5, "n_warmup_steps": warmup},
            "successive_halving": {"min_resource": max(1, warmup), "reduction_factor": 3},
            "hyperband": {"min_resource": max(1, warmup), "max_resource": self.planned_steps, "reduction_factor": 3},
        }.get(kind, {})
        return PrunerSettings(kind, kwargs)

    def settings_for(self, strategy: str, seed: int | None = None) -> SearchSettings:
        """The study's settings with ``strategy``'s sampler options (and ``seed``) applied."""
        options = {**self.settings.sampler, **dict(STRATEGIES[strategy].options)}
        return dataclasses.replace(self.settings, sampler=options if seed is None else {**options, "seed": seed})

    def sampler(self, strategy: str, seed: int) -> optuna.samplers.BaseSampler:
        if STRATEGIES[strategy].sampler == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        return self.settings_for(strategy, seed).make_sampler()

    def objective(self, trial: optuna.Trial, settings: SearchSettings | None = None) -> float:
        """One replayed trial, shaped as the runner's objective: suggest, report each evaluation and ask the
        pruner, store the runner's attributes and give the sampler its constraint as ``settings`` say (default:
        the study's), raise ``TrialPruned`` when pruned, return the best loss."""
        settings = settings or self.settings
        space = settings.space
        entry = self.table.nearest(space.suggest(trial), space)
        train = space.train_config(self.cfg.train, entry.params, self.cfg.source)

        def on_eval(record: dict) -> bool:
            trial.report(float(record["val_loss"]), int(record["step"]))
            return trial.should_prune()

        result = replay_curve(entry, train, on_eval, curve_path=Path(self.table.study))
        record = trial_record(result, train, self.thresholds)
        write_trial(trial, **record.to_attrs())
        write_trial(trial, table_params=entry.params)
        settings.set_constraint(trial, record.rejected)
        if result.stop_reason == "stopped_by_callback":
            raise optuna.TrialPruned(f"pruned at step {result.steps}")
        best = result.best_val_loss
        return float(best) if math.isfinite(best) else float("nan")

    def study(
        self,
        sampler: optuna.samplers.BaseSampler,
        pruner: PrunerSettings,
        *,
        guide: bool = True,
        name: str | None = None,
        settings: SearchSettings | None = None,
    ) -> optuna.Study:
        """An in-memory study with ``settings``' start queued first (:meth:`SearchSettings.start_queue`: the
        guide's recipe, the spread start, the YAML's configs), as the search queues it; none when not ``guide``.

        Its ``name`` (default: the study's) matters: Hyperband assigns trials to brackets by a hash of the study
        name and the trial number, so Optuna's random name for an in-memory study would make a replay vary.
        """
        with _quiet_optuna():
            study = optuna.create_study(
                study_name=name or self.cfg.study_name, direction="minimize", sampler=sampler, pruner=pruner.build()
            )
        if guide:
            for params, attrs in (settings or self.settings).start_queue(self.table.num_layers, self.cfg.train):
                study.enqueue_trial(params, user_attrs=attrs, skip_if_exists=True)
        return study

    def winner(self, study: optuna.Study) -> TrialVerdict | None:
        return rank(study, trials=study.get_trials(deepcopy=False), thresholds=self.thresholds).winner

    def table_best(self) -> TrialVerdict:
        """The table's best: :func:`rank`'s winner of a study holding every recorded configuration, each run
        as an unpruned search trial (the study's early stopping applies: the best any search can reach).

        >>> from xtts_tune.config import load_config
        >>> from benchmarks.search.table import load_table
        >>> replay = Replay.of(load_table("benchmarks/search-table-demo.json"), load_config("studies/demo.yaml"))
        >>> best = replay.table_best()
        >>> best.value > 0, best.verdict in ("healthy", "under-trained", "underfitting")
        (True, True)
        """
        study = self.study(optuna.samplers.RandomSampler(seed=0), PrunerSettings("none"), guide=False)
        for entry in self.table.configs:
            study.enqueue_trial(entry.params, user_attrs=enqueue_attrs("guide") if entry.guide else None)
        with _quiet_optuna():
            study.optimize(self.objective, n_trials=len(self.table.configs))
        winner = self.winner(study)
        if winner is None:
            raise ValueError(
                "no recorded configuration is a candidate (every one overfits, is unstable or inconclusive)"
            )
        return winner


@dataclass
class ReplayRun:
    """One replayed search: each trial's optimizer steps and, after each trial, the value of :func:`rank`'s
    winner (None while there is none)."""

    strategy: str
    seed: int
    steps: list[int]
    winners: list[float | None]
    study: optuna.Study

    def steps_to(self, target: float) -> int | None:
        """Optimizer steps spent until the search's best was first at or below ``target`` (None: never)."""
        spent = 0
        for steps, value in zip(self.steps, self.winners):
            spent += steps
            if value is not None and value <= target:
                return spent
        return None

    def best_at(self, n: int) -> float | None:
        """The search's best after ``n`` trials (or after all of them, when it ran fewer)."""
        return self.winners[min(n, len(self.winners)) - 1] if self.winners else None

    @property
    def total_steps(self) -> int:
        return sum(self.steps)


def replay_search(
    replay: Replay, strategy: str, seed: int, n_trials: int, *, target: float | None = None, at_least: int = 0
) -> ReplayRun:
    """Replay one search of ``strategy`` (a :data:`STRATEGIES` key) with ``seed``: ``n_trials`` trials (the
    guide's recipe alone: one), or fewer once its best is at or below ``target`` after ``at_least`` trials."""
    spec = STRATEGIES[strategy]
    settings = replay.settings_for(strategy, seed)
    study = replay.study(
        replay.sampler(strategy, seed),
        replay.pruner(spec.pruner),
        name=f"{replay.cfg.study_name}-seed-{seed}",
        settings=settings,
    )
    run = ReplayRun(strategy, seed, [], [], study)

    def after_trial(study: optuna.Study, frozen: optuna.trial.FrozenTrial) -> None:
        run.steps.append(TrialRecord.from_trial(frozen).steps or 0)
        winner = replay.winner(study)
        run.winners.append(winner.value if winner else None)
        if (
            target is not None
            and len(run.winners) >= at_least
            and run.winners[-1] is not None
            and run.winners[-1] <= target
        ):
            study.stop()

    with _quiet_optuna():
        study.optimize(
            lambda trial: replay.objective(trial, settings),
            n_trials=1 if spec.sampler == "guide" else n_trials,
            callbacks=[after_trial],
        )
    return run


def replay_curve(
    entry: TableConfig, train: TrainConfig, callback=None, *, curve_path: Path = Path("table")
) -> TrialResult:
    """The trial that ``entry``'s recorded curve gives under ``train``'s early stopping, ``callback`` (each
    evaluation record; True stops it, as a pruner does) and the trial loop's stop rules.

    The rules are :class:`~xtts_tune.training.loop` ``TrialRun.run``'s, which cannot be called without training:
    the evaluation at step 0 stops a trial only when the callback asks; a callback's stop is ignored at the
    planned last step (a trial that ran its whole budget is complete); the callback wins over early stopping.
    """
    stopper = EarlyStopping(train.patience, train.min_delta)
    curve: list[dict] = []
    reason = entry.stop_reason
    for i, record in enumerate(entry.curve):
        curve.append(dict(record))
        stop = stopper.update(float(record["val_loss"]), i)
        asked = bool(callback(record)) if callback else False
        if asked and record["step"] < entry.planned_steps:
            reason = "stopped_by_callback"
            break
        if stop and not (i == 0 and train.eval_at_start):
            reason = "early_stopped"
            break
    best = curve[stopper.best_index if stopper.best_index is not None else 0] if curve else {"step": 0, "epoch": 0.0}
    seconds = float(curve[-1].get("elapsed_s") or 0.0) if curve else 0.0
    return TrialResult(
        curve=curve,
        best_val_loss=stopper.best,
        best_step=int(best["step"]),
        best_epoch=float(best["epoch"]),
        steps=int(curve[-1]["step"]) if curve else 0,
        planned_steps=entry.planned_steps,
        stop_reason=reason,
        checkpoint_path=None,
        curve_path=curve_path,
        params=ParamCounts(entry.total_params, entry.trainable_params),
        wall_seconds=seconds,
        compute_seconds=seconds,
        skipped_batches=0,
    )


@contextlib.contextmanager
def _quiet_optuna():
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with quiet_experimental():
            yield
    finally:
        optuna.logging.set_verbosity(level)
