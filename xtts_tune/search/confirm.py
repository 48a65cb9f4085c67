"""Confirm the top candidates of a study with other seeds, so the recommendation can use the mean.

One seed cannot tell apart trials whose validation losses are within the seed noise of each other. Where the
search measured forgetting, each run is scored on the same forgetting set too (its checkpoint is kept for that,
then deleted), so a candidate's forgetting is the mean over its seeds, with their measured spread.
:func:`confirm_top_trials` (``xtts-tune confirm --study NAME --top 3 --seeds 3``) takes the ``top``
COMPLETE trials with the lowest validation loss whose verdict is neither unstable nor inconclusive (the
candidates of :func:`xtts_tune.analysis.ranking.recommend`) and trains each one again with ``seeds`` other seeds
(the trial's seed + 1, + 2, ...): the trial's full train config (its ``train_config`` attribute with its
params applied), the study's base model, dataset and saved train/validation split. The base model is
loaded and the data prepared once; the study's fingerprint (dataset, split, base model) is checked first,
so a moved or changed dataset is refused before anything trains.

Each run is written to ``<output_dir>/<study_name>/confirm/trial-XXXX-seed-S`` (its ``curve.json``; no checkpoint:
the final model is trained from the export) and stored, as soon as it ends, in the study's user
attribute ``confirmations``::

    {"<trial number>": [{"seed": 1, "best_val_loss": 3.02, "best_step": 40, "verdict": "healthy",
                         "run_dir": "..."}, ...]}

merged with what is there: a (trial, seed) run already stored is not run again, so re-running with more
seeds or a larger ``top`` only trains what is missing, and an interrupted confirm continues where it
stopped. :func:`xtts_tune.analysis.ranking.recommend` then ranks the confirmed candidates by their mean best
validation loss over the original run and these runs.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from xtts_tune.analysis.curve.diagnosis import diagnose
from xtts_tune.analysis.curve.thresholds import study_thresholds
from xtts_tune.analysis.evidence.confirmations import Confirmation
from xtts_tune.analysis.ranking.recommend import (
    NoRecommendationError,
    Recommendation,
    recommend,
)
from xtts_tune.analysis.ranking.verdicts import REJECTED, trial_verdicts
from xtts_tune.analysis.records import train_config
from xtts_tune.config import StudyConfig, config_from_dict, project_root
from xtts_tune.errors import UserError
from xtts_tune.io import ProgressFn, finite
from xtts_tune.record import StudyRecord, TrialRecord, read_confirmations, write_confirmation_run
from xtts_tune.search.fingerprint import check_fingerprint, expected_fingerprint
from xtts_tune.search.holdout import score_on_test
from xtts_tune.search.home import check_home
from xtts_tune.search.notes import save_study_note
from xtts_tune.search.storage import load_study, storage_lock

logger = logging.getLogger(__name__)

__all__ = [
    "CONFIRM_DIR",
    "ConfirmError",
    "ConfirmResult",
    "SeedRun",
    "TrialConfirmation",
    "confirm_top_trials",
    "confirmation_candidates",
    "confirmation_config",
]

CONFIRM_DIR = "confirm"
"""Folder in the study's folder (``<output_dir>/<study_name>``) that holds the confirmation runs."""


class ConfirmError(UserError):
    """The study cannot be confirmed (bad arguments, nothing to confirm, no stored config)."""


# --- results ------------------------------------------------------------------------------------------


@dataclass
class SeedRun:
    """One confirmation run: a candidate trained again with another seed."""

    seed: int
    best_val_loss: float | None
    best_step: int | None
    verdict: str | None = None
    run_dir: str | None = None
    new: bool = False
    """Run by this call (False: stored by an earlier ``confirm``)."""
    forget_loss_change: float | None = None
    """Its loss on the study's forgetting set against the base's, when the search measured forgetting."""
    forget_loss_se: float | None = None

    def to_attr(self) -> dict[str, Any]:
        """The entry stored in the study's ``confirmations`` attribute."""
        out = {
            "seed": self.seed,
            "best_val_loss": self.best_val_loss,
            "best_step": self.best_step,
            "verdict": self.verdict,
            "run_dir": self.run_dir,
        }
        if self.forget_loss_change is not None:
            out.update(forget_loss_change=self.forget_loss_change, forget_loss_se=self.forget_loss_se)
        return out


@dataclass
class TrialConfirmation:
    """A candidate's original run and every confirmation run stored for it."""

    number: int
    params: dict[str, Any]
    original_seed: int
    original_value: float
    runs: list[SeedRun] = field(default_factory=list)

    @property
    def stats(self) -> Confirmation:
        return Confirmation(
            self.number,
            self.original_value,
            self.original_seed,
            [{"seed": r.seed, "best_val_loss": r.best_val_loss, "best_step": r.best_step} for r in self.runs],
        )

    @property
    def mean(self) -> float:
        """Mean best validation loss over the original and confirmation runs (inf if a run failed)."""
        return self.stats.mean

    @property
    def std(self) -> float:
        """Sample standard deviation of those runs."""
        return self.stats.std

    @property
    def n(self) -> int:
        """Runs with a finite loss behind the mean, the original included."""
        return self.stats.n


@dataclass
class ConfirmResult:
    """What :func:`confirm_top_trials` ran and the recommendation that follows."""

    study_name: str
    storage: str
    confirm_dir: Path
    trials: list[TrialConfirmation]
    recommendation: Recommendation | None
    no_recommendation: str | None
    runs_done: int
    runs_skipped: int
    wall_seconds: float


# --- public API ---------------------------------------------------------------------------------------


def confirmation_candidates(study: optuna.Study, top: int) -> list[int]:
    """The numbers of the ``top`` COMPLETE trials with the lowest value whose verdict is neither
    overfitting nor unstable (the recommendation's candidates), best first."""
    eligible = sorted(
        (
            v
            for v in trial_verdicts(study)
            if v.state == "COMPLETE" and v.value is not None and v.verdict not in REJECTED
        ),
        key=lambda v: (v.value, v.number),
    )
    return [v.number for v in eligible[:top]]


def confirmation_config(
    study: optuna.Study, trial: optuna.trial.FrozenTrial, *, config_path: str | Path | None = None
) -> StudyConfig:
    """The study's stored config with the trial's full train config, located by the study's
    ``project_root`` and ``output_dir`` attributes (so the saved split and feature cache are found)."""
    record = StudyRecord.from_study(study)
    stored = record.config
    if stored is None:
        raise ConfirmError(f"study '{study.study_name}' has no stored config (was it created by xtts-tune search?)")
    raw = copy.deepcopy(dict(stored))
    raw["train"] = train_config(study, trial)
    if record.output_dir:
        raw["output_dir"] = record.output_dir
    root = record.project_root
    if not root:
        root = project_root(config_path) if config_path else Path.cwd()
    source = str(config_path) if config_path else f"study '{study.study_name}' (stored config)"
    cfg = config_from_dict(raw, source=source, root=root)
    cfg.validate()
    return cfg


def confirm_top_trials(
    study_name: str,
    storage: str | optuna.storages.BaseStorage,
    *,
    top: int = 3,
    seeds: int = 3,
    progress: ProgressFn | None = None,
    config_path: str | Path | None = None,
    base=None,
) -> ConfirmResult:
    """Re-run the study's top ``top`` candidates with ``seeds`` other seeds; store and rank by the mean.

    Args:
        study_name: The study.
        storage: Its SQLAlchemy URL (or an Optuna storage).
        top: How many candidates (best first; overfitting and unstable trials are never candidates).
        seeds: Other seeds per candidate: the trial's seed + 1 .. + ``seeds``.
        progress: Receives ``{"event": "confirm_start", "number", "seed", "index", "total"}``, the
            trial's own events (``start``, ``step``, ``eval``) with ``number`` and ``seed`` added, and
            ``{"event": "confirm_end", "number", "seed", "best_val_loss", "best_step", "verdict"}``.
        config_path: The study YAML, if known: named in error messages, and the project root when the
            study has no ``project_root`` attribute. The study's *stored* config is what runs.
        base: A loaded base model (:class:`~xtts_tune.model.LoadedBase`) to reuse; its weights are left
            as they were.

    Raises:
        ConfirmError: ``top`` or ``seeds`` below 1, no candidate, or no stored config.
        StudyMismatchError: The dataset, split or base model differs from the study's.

    >>> import tempfile
    >>> from xtts_tune import load_config, run_search
    >>> tmp = tempfile.mkdtemp()
    >>> cfg = load_config("studies/demo.yaml", [f"output_dir={tmp}", "max_steps=2", "eval_every=1"])
    >>> summary = run_search(cfg, n_trials=1, storage=f"sqlite:///{tmp}/demo.db")
    >>> result = confirm_top_trials("demo", summary.storage, top=1, seeds=1)
    >>> [(t.number, [run.seed for run in t.runs]) for t in result.trials]
    [(0, [1])]
    """
    from xtts_tune.model.base import load_study_base
    from xtts_tune.training.loop import run_trial
    from xtts_tune.training.prepare import prepare_data

    for name, value in (("top", top), ("seeds", seeds)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfirmError(f"confirm: {name} must be a whole number >= 1, got {value!r}")
    started = time.perf_counter()
    url = storage if isinstance(storage, str) else str(getattr(storage, "url", storage))
    study = load_study(study_name, storage)
    numbers = confirmation_candidates(study, top)
    if not numbers:
        try:
            recommend(study)
            why = "it has no candidate"
        except NoRecommendationError as exc:
            why = str(exc)
        raise ConfirmError(f"nothing to confirm in study '{study_name}': {why}")
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    configs = {n: confirmation_config(study, trials[n], config_path=config_path) for n in numbers}
    first = configs[numbers[0]]
    confirm_dir = first.study_dir / CONFIRM_DIR
    stored = read_confirmations(study)

    plan: list[tuple[int, int]] = []
    originals: dict[int, int] = {}
    for n in numbers:
        originals[n] = _original_seed(trials[n], configs[n])
        have = {r["seed"] for r in stored.get(n, [])}
        plan += [(n, originals[n] + k) for k in range(1, seeds + 1) if originals[n] + k not in have]
    skipped = len(numbers) * seeds - len(plan)
    logger.info("confirming trials %s: %d run(s) to train, %d already stored", numbers, len(plan), skipped)

    if plan:
        if base is None:
            base = load_study_base(first)
        stored = StudyRecord.from_study(study)
        current = expected_fingerprint(first, base.fingerprint)  # writes nothing: refuse before training
        check_fingerprint(study_name, url, stored.fingerprint, current, first)
        check_home(first, url, stored.uid)
        data = prepare_data(first, base)
        thresholds = study_thresholds(study)
        forgetting = _forgetting_scorer(study, first, base)  # None unless the search measured forgetting
        for index, (n, seed) in enumerate(plan, start=1):
            cfg = configs[n]
            keep = forgetting is not None  # its checkpoint, scored on the forgetting set and then deleted
            cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, seed=seed, save_checkpoint=keep))
            run_dir = confirm_dir / f"trial-{n:04d}-seed-{seed}"
            if run_dir.exists():  # left by an interrupted confirm: its run was never stored
                shutil.rmtree(run_dir)
            _emit(progress, {"event": "confirm_start", "number": n, "seed": seed, "index": index, "total": len(plan)})

            def on_progress(event: dict, n=n, seed=seed) -> None:
                _emit(progress, {**event, "number": n, "seed": seed})

            result = run_trial(
                cfg,
                base=base,
                data=data,
                run_dir=run_dir,
                progress=on_progress if progress is not None else None,
            )
            try:
                verdict = diagnose(result.curve, thresholds=thresholds, trainable_share=result.params.share).verdict
            except ValueError as exc:
                logger.info("trial %d seed %d: no diagnosis: %s", n, seed, exc)
                verdict = None
            loss = result.best_val_loss
            forgot = {}
            if forgetting is not None and result.checkpoint_path:
                forgot = forgetting.figures(result.checkpoint_path)
                Path(result.checkpoint_path).unlink(missing_ok=True)  # the final model is trained from the export
            run = SeedRun(
                seed=seed,
                best_val_loss=float(loss) if math.isfinite(loss) else None,
                best_step=int(result.best_step),
                verdict=verdict,
                run_dir=str(run_dir),
                new=True,
                forget_loss_change=forgot.get("forget_loss_change"),
                forget_loss_se=forgot.get("forget_loss_se"),
            )
            with storage_lock(url) if isinstance(storage, str) else contextlib.nullcontext():
                _store(study, n, run)
            _emit(progress, {"event": "confirm_end", "number": n, **run.to_attr()})

        score_on_test(study, first, base, data)  # the recommendation may have changed: rescore it
        save_study_note(study)
    stored = read_confirmations(study)
    new = {(n, s) for n, s in plan}
    confirmed = []
    for n in numbers:
        runs = [
            SeedRun(
                seed=r["seed"],
                best_val_loss=r["best_val_loss"],
                best_step=r["best_step"],
                verdict=r.get("verdict"),
                run_dir=r.get("run_dir"),
                new=(n, r["seed"]) in new,
                forget_loss_change=finite(r.get("forget_loss_change")),
                forget_loss_se=finite(r.get("forget_loss_se")),
            )
            for r in stored.get(n, [])
        ]
        value = float(trials[n].value)
        confirmed.append(TrialConfirmation(n, dict(trials[n].params), originals[n], value, runs))
    try:
        rec, why = recommend(study), None
    except NoRecommendationError as exc:
        rec, why = None, str(exc)
    return ConfirmResult(
        study_name=study_name,
        storage=url,
        confirm_dir=confirm_dir,
        trials=confirmed,
        recommendation=rec,
        no_recommendation=why,
        runs_done=len(plan),
        runs_skipped=skipped,
        wall_seconds=time.perf_counter() - started,
    )


# --- helpers ------------------------------------------------------------------------------------------


def _original_seed(trial: optuna.trial.FrozenTrial, cfg: StudyConfig) -> int:
    seed = TrialRecord.from_trial(trial).seed
    return int(cfg.train.seed) if seed is None else seed


def _forgetting_scorer(study: optuna.Study, cfg: StudyConfig, base):
    """The forgetting scorer of a study whose search measured forgetting (the same set), else None."""
    from xtts_tune.record import ForgettingSet
    from xtts_tune.search.forgetting import ForgettingScorer, prepare_forgetting

    if ForgettingSet.from_study(study) is None:
        return None
    fset = prepare_forgetting(cfg, base)
    return None if fset is None else ForgettingScorer(study, cfg, base, fset)


def _store(study: optuna.Study, number: int, run: SeedRun) -> None:
    """Merge one run into the study's stored confirmation runs."""
    write_confirmation_run(study, number, run.to_attr())


def _emit(progress: ProgressFn | None, event: dict) -> None:
    if progress is not None:
        progress(event)
