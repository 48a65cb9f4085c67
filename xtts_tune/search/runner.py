"""The study: an Optuna search over the trial's knobs, pruned on validation loss, stored in a database.

``run_search(cfg, n_trials=N)`` runs N trials of one worker on the study named ``cfg.study_name`` in an
SQLAlchemy storage (default ``sqlite:///<project>/studies/<study_name>.db``). Running it again continues the
same study; several workers (processes, or machines sharing a PostgreSQL/MySQL URL) may run it at the same
time on one storage and cooperate: **each worker runs its own N trials**, so two workers with
``--trials 10`` add 20 trials to the study.

The ``search`` section of the study YAML (every key optional)::

    search:
      space:                                   # any TrainConfig key; the defaults are the four below
        freeze_depth: {low: 0, high: 4}        # int range (high defaults to the model's layer count)
        learning_rate: {low: 1.0e-5, high: 3.0e-3, log: true}
        weight_decay: {low: 0.0, high: 0.2}
        augment_prob: {low: 0.0, high: 0.5}
        max_epochs: 3                          # a scalar fixes the knob for every trial
        grad_accum_steps: {choices: [1, 2, 4]} # a categorical knob
      sampler: {seed: 0, n_startup_trials: 5}  # TPESampler(multivariate=True) arguments
      pruner: {type: median, n_startup_trials: 5, n_warmup_steps: 20}
                                               # median | percentile | successive_halving | hyperband | none,
                                               # with their Optuna arguments; ``patience: k`` wraps it in a
                                               # PatientPruner. Default: none (early stopping
                                               # takes the savings; make bench-search)
      enqueue: [{learning_rate: 1.0e-4, freeze_depth: 3}]   # configs to try first (after the guide's)
      enqueue_guide: true                      # trial 0 is the guide's recommended config, clamped
      keep_top_k: 3                            # best checkpoints kept for the top K trials only
      fidelity: {rungs: [0.25, 1.0], promote: 3}   # N trials on 25 % of the train clips, the best 3 on all
                                               # of them (search.fidelity); default: all trials on all
      heartbeat_interval: 30                   # seconds between a running trial's heartbeats
      grace_period: 90                         # a trial without a heartbeat for this long is FAILED ...
      max_retry: 2                             # ... and re-run up to this many times

Per trial the study stores params, intermediate values (validation loss at every evaluation step) and as
user attributes the curve, best step/epoch/loss, steps spent and planned, stop reason, trainable share,
wall time, checkpoint path, seed, the full train config and the diagnosis; the dashboard gets a Markdown
note and the curve JSON as an artifact. The objective is the trial's *best* validation loss. A pruned
trial's Optuna value is its last reported loss (Optuna's rule); its ``best_val_loss`` attribute is what the
study ranks by.

A study's files go to ``<output_dir>/<study_name>/`` (``trials/``, ``split.json``, ``cache/``,
``artifacts/``); :mod:`xtts_tune.search.opening` refuses, before anything is written, a run on other data, a
changed search space or fixed knob, and a folder, report or YAML that belongs to another study.

Crash safety: each running trial records its worker (host, pid) and heartbeats. A search that starts on the
same machine fails at once the RUNNING trials whose worker process is gone and runs their params first
(:mod:`xtts_tune.search.recovery`); a worker on another machine is recovered by the heartbeat after
``grace_period``. Ctrl-C, and a full disk inside a trial, mark the running trial FAILED (user attribute
``interrupted``) and queue its params to run again; Ctrl-C returns the summary. Checkpoints are written
atomically by the trial.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from xtts_tune.analysis.ranking.order import rank
from xtts_tune.analysis.ranking.sound import judge_sound
from xtts_tune.analysis.records import trial_value
from xtts_tune.config import StudyConfig, TrainConfig
from xtts_tune.errors import user_error_for
from xtts_tune.io import ProgressFn, finite
from xtts_tune.record import StudyRecord, TrialRecord, write_study, write_trial
from xtts_tune.search.ears import ensure_baselines, score_entries
from xtts_tune.search.fidelity import RungData, plan_line, run_rungs, rung_train, trial_fraction
from xtts_tune.search.forgetting import open_forgetting
from xtts_tune.search.forgetting_ear import ear_plan, open_ear
from xtts_tune.search.holdout import score_on_test
from xtts_tune.search.notes import save_note_and_artifact, save_study_note
from xtts_tune.search.opening import ARTIFACTS_DIR, TRIALS_DIR, open_study
from xtts_tune.search.outcome import requeue_interrupted, trial_record
from xtts_tune.search.preflight import eta_event
from xtts_tune.search.recovery import worker_identity
from xtts_tune.search.retention import apply_retention, kept_trials
from xtts_tune.search.samples import (
    NO_DECODER,
    sample_plan,
    speak_trial,
)
from xtts_tune.search.settings import SearchSettings, quiet_experimental
from xtts_tune.search.storage import (
    default_storage,
)
from xtts_tune.search.summary import SearchSummary, summarize
from xtts_tune.search.verdict_sync import note_at_end, sync_verdicts, verdict_at_end
from xtts_tune.training.memory import is_out_of_memory, most_expensive_line, record_out_of_memory

logger = logging.getLogger(__name__)


class _Search:
    forgetting = None  # a search.forgetting.ForgettingScorer when the study has a forgetting set
    ear = None  # a search.forgetting_ear.EarScorer when the base can speak

    def __init__(self, cfg: StudyConfig, settings: SearchSettings, thresholds, base, data, progress, n_trials, study):
        self.cfg, self.settings, self.thresholds, self.study = cfg, settings, thresholds, study
        self.base, self.data = base, data
        self.rungs = RungData(data)  # search.fidelity: the train split cut to each rung's share
        self.progress = progress
        self.n_trials = n_trials
        self.trials_dir = cfg.study_dir / TRIALS_DIR
        self.artifact_dir = cfg.study_dir / ARTIFACTS_DIR
        self.artifact_dir.mkdir(parents=True, exist_ok=True)
        self.worker = worker_identity()
        self.device = next(base.gpt.parameters()).device
        self.trials_run: list[int] = []
        self.trial_seconds: list[float] = []  # this worker's trials, for the ETA (search.preflight)
        self.index = 0
        self.samples = sample_plan(
            base,
            data,
            count=settings.samples,
            short=settings.short_samples,
            device=cfg.train.device,
            max_seconds=settings.sample_max_seconds,
            language=cfg.data.language,
            cache_dir=cfg.study_dir / "cache" / "probes",
        )
        write_study(study, listening_samples=None if self.samples or not settings.samples else NO_DECODER)
        if self.samples is not None:
            self.emit({"event": "baselines", "texts": len(self.samples.texts)})
            ensure_baselines(study, self.samples, cfg.study_dir)

    def emit(self, event: dict) -> None:
        if self.progress is not None:
            self.progress(event)

    def objective(self, trial: optuna.Trial) -> float:
        from xtts_tune.training.loop import run_trial

        write_trial(trial, worker={**self.worker, "trial": trial.number})  # first: recovery reads it
        self.index += 1
        self.trials_run.append(trial.number)
        params = self.settings.space.suggest(trial)
        fraction = trial_fraction(trial, self.settings.fidelity)  # None: no rungs, all the clips
        train = rung_train(self.settings.space.train_config(self.cfg.train, params, self.cfg.source), fraction)
        trial_cfg = dataclasses.replace(self.cfg, train=train)
        run_dir = self.trials_dir / f"trial-{trial.number:04d}"  # this study's own folder (search.home)
        run_dir.mkdir(parents=True, exist_ok=True)
        write_trial(trial, run_dir=str(run_dir))
        self.emit(
            {
                "event": "trial_start",
                "number": trial.number,
                "index": self.index,
                "n_trials": self.n_trials,
                "params": dict(params),
                "fidelity": fraction,
            }
        )
        curve: list[dict] = []

        def on_eval(record: dict) -> bool:
            curve.append(dict(record))
            trial.report(float(record["val_loss"]), int(record["step"]))
            return trial.should_prune()

        def on_progress(event: dict) -> None:
            self.emit({**event, "number": trial.number})

        try:
            result = run_trial(
                trial_cfg,
                base=self.base,
                data=self.rungs.at(fraction),
                run_dir=run_dir,
                callback=on_eval,
                progress=on_progress if self.progress is not None else None,
            )
        except BaseException as exc:
            if is_out_of_memory(exc):  # that trial ends with one line, its memory released; the study goes on
                line = record_out_of_memory(trial, train, self.data.longest_clip_s, self.device)
                self.emit({"event": "message", "number": trial.number, "text": line})
                # pruned with a violated constraint, not FAILED: Optuna's samplers see no FAILED trial, so only
                # this way does the sampler learn to avoid the region
                write_trial(trial, rejected=1.0)
                self.settings.set_constraint(trial, 1.0)
                raise optuna.TrialPruned(line) from None
            if isinstance(exc, KeyboardInterrupt) or user_error_for(exc) is not None:  # Ctrl-C, a full disk
                with contextlib.suppress(Exception):  # the storage may be on the full disk too
                    self._mark_interrupted(trial, run_dir, curve, train)
            raise
        pruned = result.stop_reason == "stopped_by_callback"
        record = dataclasses.replace(trial_record(result, train, self.thresholds), fidelity=fraction)
        state = "PRUNED" if pruned else "COMPLETE"
        me = self._snapshot(trial, record)
        me.state = TrialState[state]
        others = self.study.get_trials(deepcopy=False)
        if record.verdict is not None:  # the study-level verdict, as the summary and report show it
            record = dataclasses.replace(record, verdict=verdict_at_end(others, me, self.thresholds) or record.verdict)
        write_trial(trial, **record.to_attrs())
        kept = bool(result.checkpoint_path) and self._kept(trial, record)
        if kept and self.forgetting is not None:  # what it forgot: its loss on other voices (search.forgetting)
            record = self.forgetting.score(trial, record, result.checkpoint_path)
        if not pruned and kept and self.samples is not None:
            samples = speak_trial(
                trial,
                self.samples,
                result.checkpoint_path,
                run_dir,
                self.artifact_dir,
                progress=on_progress if self.progress is not None else None,
            )
            probes = score_entries(self.samples, samples, run_dir / "samples")
            if probes is not None:
                write_trial(trial, probes=probes)
            record = dataclasses.replace(record, samples=samples, probes=probes)
        if not pruned and kept and self.ear is not None:  # what it forgot by ear (search.forgetting_ear)
            record = self.ear.score(trial, record, result.checkpoint_path, run_dir)
        note = note_at_end(trial.number, state, record, params, others, me, self.thresholds)
        save_note_and_artifact(trial, note, result.curve_path, self.artifact_dir)
        rejected = self._rejected(record)
        if rejected != record.rejected:
            write_trial(trial, rejected=rejected)
        self.settings.set_constraint(trial, rejected)  # last: once set, Optuna keeps it
        if pruned:
            raise optuna.TrialPruned(f"pruned at step {result.steps} (validation loss {curve[-1]['val_loss']:.4f})")
        best = result.best_val_loss
        return float(best) if math.isfinite(best) else float("nan")

    @staticmethod
    def _mark_interrupted(trial: optuna.Trial, run_dir: Path, curve: list[dict], train: TrainConfig) -> None:
        write_trial(trial, interrupted=True, stop_reason="interrupted")
        with contextlib.suppress(OSError, ValueError, KeyError):  # the trial writes it at every evaluation
            curve = json.loads((run_dir / "curve.json").read_text())["curve"]
        write_trial(trial, curve=curve, train_config=dataclasses.asdict(train))

    @staticmethod
    def _snapshot(trial: optuna.Trial, record: TrialRecord) -> FrozenTrial:
        """The trial as it will be stored when it completes (it is still RUNNING in the storage)."""
        value = record.best_val_loss
        user_attrs, system_attrs = record.split_attrs()
        me = optuna.trial.create_trial(
            value=value if value is not None else float("nan"),
            params=trial.params,
            distributions=trial.distributions,
            user_attrs=user_attrs,
            system_attrs=system_attrs,
        )
        me.number = trial.number
        return me

    def _rejected(self, record: TrialRecord) -> float:
        """The sampler's constraint: the verdict's rejection (:func:`trial_record`), or its samples sound worse
        than the base model's (:mod:`xtts_tune.analysis.ranking.sound`)."""
        base = StudyRecord.from_study(self.study).probes_base if record.probes else None
        start = (record.curve or [{}])[0].get("val_loss")
        improved = record.best_val_loss is not None and isinstance(start, float) and record.best_val_loss < start
        sound = judge_sound(record.probes, base, improved=improved)
        return 1.0 if record.rejected or (sound is not None and sound.sounds_worse) else 0.0

    def _kept(self, trial: optuna.Trial, record: TrialRecord) -> bool:
        """Whether retention would keep this trial's checkpoint if it ended now."""
        if record.best_val_loss is None:
            return False
        others = [t for t in self.study.get_trials(deepcopy=False) if t.number != trial.number]
        snapshot = self._snapshot(trial, record)
        return trial.number in kept_trials(self.study, [*others, snapshot], self.settings.keep_top_k)

    def after_trial(self, study: optuna.Study, frozen: FrozenTrial) -> None:
        trials = study.get_trials(deepcopy=False)
        apply_retention(study, trials, self.trials_dir, self.settings.keep_top_k)
        winner = rank(study, trials=trials).winner
        finished = [t for t in trials if t.state.is_finished()]
        values = [(trial_value(t), t.number) for t in finished]
        lowest = min(((v, n) for v, n in values if v is not None), default=(None, None))
        save_study_note(study)
        eta = eta_event(
            self.trial_seconds,
            self.index,
            finished_at=frozen.datetime_complete,
            started_at=frozen.datetime_start,
            n_trials=self.n_trials,
        )
        record = TrialRecord.from_trial(frozen)
        value = record.best_val_loss if record.best_val_loss is not None else finite(frozen.value)
        self.emit(
            {
                "event": "trial_end",
                "number": frozen.number,
                "index": self.index,
                "n_trials": self.n_trials,
                "state": frozen.state.name,
                "value": value,
                "steps": record.steps,
                "planned_steps": record.planned_steps,
                "verdict": record.verdict,
                "best_so_far": winner.value if winner else None,
                "recommended": winner.number if winner else None,
                "lowest": lowest[0],
                "lowest_number": lowest[1],
            }
        )
        if eta is not None:
            self.emit(eta)


def run_search(
    cfg: StudyConfig,
    *,
    n_trials: int,
    storage: str | None = None,
    progress: ProgressFn | None = None,
    base=None,
) -> SearchSummary:
    """Run ``n_trials`` trials of this worker on the study ``cfg.study_name``; return the study's summary.

    Loads the base model and prepares the data once and shares them between trials. ``storage`` is any
    SQLAlchemy URL (default :func:`default_storage`). Running it again continues the study; a study
    recorded on another dataset, split or base model raises :class:`StudyMismatchError` before anything is
    written. Each concurrent worker runs its own ``n_trials``. Ctrl-C returns the summary with
    ``interrupted=True``. ``base`` (a :class:`~xtts_tune.model.LoadedBase`) may be passed to reuse a loaded
    model; it is left with the weights it had.

    ``progress`` receives ``{"event": "trial_start", "number", "index", "n_trials", "params"}``, the trial's
    own events (``start``, ``step``, ``eval``) with ``"number"`` added, and ``{"event": "trial_end",
    "number", "state", "value", "steps", "planned_steps", "verdict", "best_so_far"}``.

    >>> import tempfile
    >>> from xtts_tune.config import load_config
    >>> tmp = tempfile.mkdtemp()
    >>> cfg = load_config("studies/demo.yaml", [f"output_dir={tmp}", "max_steps=2", "eval_every=1"])
    >>> summary = run_search(cfg, n_trials=1, storage=f"sqlite:///{tmp}/demo.db")
    >>> [(row.number, row.state, row.steps) for row in summary.rows]
    [(0, 'COMPLETE', 2)]
    """
    opened = open_study(cfg, n_trials=n_trials, storage=storage, progress=progress, base=base)
    study, url, settings, thresholds = opened.study, opened.url, opened.settings, opened.thresholds
    base, data = opened.base, opened.data
    search = _Search(cfg, settings, thresholds, base, data, progress, n_trials, study)
    if settings.forgetting:  # a wrong forgetting_path stops here; by ear: a base with a decoder
        search.forgetting = scorer = open_forgetting(study, cfg, base, search.emit)
        fset = scorer.fset if scorer is not None and cfg.data.forgetting_path else None
        clip = fset.data.clips[fset.ids[0]] if fset is not None else None
        plan = ear_plan(search.samples, settings.forgetting_samples, clip)
        search.ear = open_ear(study, plan, cfg.study_dir, search.emit)
    search.emit({"event": "message", "text": data.audio_summary})
    from xtts_tune.doctor.run import data_check_line

    data_check = data_check_line(cfg)
    search.emit({"event": "message", "text": data_check})
    estimate = most_expensive_line(
        settings.space.params, cfg.train, cfg.model, data.longest_clip_s, base.num_layers, search.device
    )
    if estimate:
        search.emit({"event": "message", "text": estimate})
    if settings.fidelity is not None:  # n_trials on the first rung, then the best move up (search.fidelity)
        search.n_trials = sum(settings.fidelity.planned(n_trials))
        search.emit({"event": "message", "text": plan_line(settings.fidelity, n_trials, len(data.split.train))})
    interrupted = False

    def optimize(n: int) -> None:
        study.optimize(search.objective, n_trials=n, catch=(), callbacks=[search.after_trial])

    try:
        with quiet_experimental():
            optimize(n_trials)
            if settings.fidelity is not None and n_trials:
                run_rungs(study, settings.fidelity, optimize, search.emit)
    except KeyboardInterrupt:
        interrupted = True
        logger.info("interrupted; finishing cleanly")
        if search.trials_run:
            requeue_interrupted(study, search.trials_run[-1])
    except Exception as exc:
        if user_error_for(exc) is not None and search.trials_run:  # a full disk: the trial runs again later
            with contextlib.suppress(Exception):
                requeue_interrupted(study, search.trials_run[-1])
        raise
    finally:
        with contextlib.suppress(Exception):
            apply_retention(study, study.get_trials(deepcopy=False), search.trials_dir, settings.keep_top_k)
    if not interrupted:
        score_on_test(study, cfg, base, data, plan=search.samples)
        save_study_note(study)
        sync_verdicts(study)
    return summarize(
        study,
        url,
        search.trials_dir,
        keep_top_k=settings.keep_top_k,
        interrupted=interrupted,
        trials_run=search.trials_run,
        default=storage is None or storage == default_storage(cfg),
        config_path=str(Path(cfg.source).resolve()) if Path(cfg.source).is_file() else None,
        data_check=data_check,
    )
