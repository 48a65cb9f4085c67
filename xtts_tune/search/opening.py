"""Opening a study for a search, told in order: check everything while nothing is written, then create or
load the study, then claim its folder.

:func:`open_study` is the story, top to bottom; the checks it calls sit below it, each in its own room:

1. the search settings and the diagnosis thresholds are read from the config (:mod:`~.settings`);
2. the storage URL is opened, or, for a new SQLite file, only checked to be writable (:mod:`~.storage`), so
   a bad URL or a read-only database fails before the model loads;
3. the base model is loaded and the settings resolved against its depth;
4. :func:`refuse_before_writing` compares what the storage holds under the study's name with this run,
   under the storage's lock, and writes nothing: the dataset, split and base model (:mod:`~.fingerprint`),
   the search space and fixed knobs (:mod:`~.definition`), and whether the study's folder, report and YAML
   are its own (:mod:`~.home`);
5. the cost block (:mod:`~.preflight`): clips, hours, split, RAM, VRAM and disk, refused when the files
   would not fit the free disk;
6. the data is prepared (the split saved, features cached: the first writes);
7. :func:`open_or_create_study` creates the study (its id, config, fingerprint and definition recorded, its
   folder claimed, the guide's config enqueued) or loads it, under the same lock (a file lock for SQLite, an
   advisory lock for PostgreSQL), so workers starting together never race;
8. trials of dead local workers are failed and queued again (:mod:`~.recovery`).
"""

from __future__ import annotations

import datetime as _dt
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from xtts_tune.analysis.curve.thresholds import DiagnosisThresholds, thresholds_from_section
from xtts_tune.config import ConfigError, StudyConfig
from xtts_tune.io import ProgressFn, json_safe
from xtts_tune.record import StudyRecord, enqueue_attrs, stored_study_record, write_study
from xtts_tune.search.definition import check_definition, study_definition
from xtts_tune.search.fingerprint import check_fingerprint, expected_fingerprint, tool_version
from xtts_tune.search.home import check_home, claim_home, new_uid, release_claim
from xtts_tune.search.preflight import check_cost, may_augment
from xtts_tune.search.recovery import recover_dead_local_trials
from xtts_tune.search.settings import SearchSettings
from xtts_tune.search.storage import check_writable, default_storage, open_storage, redact, sqlite_path, storage_lock

logger = logging.getLogger(__name__)

TRIALS_DIR = "trials"
ARTIFACTS_DIR = "artifacts"


@dataclass
class OpenedStudy:
    """What a search runs on once its study is open: the study and everything checked on the way."""

    study: optuna.Study
    url: str
    settings: SearchSettings
    thresholds: DiagnosisThresholds
    base: Any  # a LoadedBase (xtts_tune.model.base)
    data: Any  # a PreparedData (xtts_tune.training.prepare)


def open_study(
    cfg: StudyConfig,
    *,
    n_trials: int,
    storage: str | None = None,
    progress: ProgressFn | None = None,
    base=None,
) -> OpenedStudy:
    """Check everything, then create or load the study ``cfg.study_name``, then claim its folder.

    Every refusal (a bad URL, a read-only database, another dataset, split or base model, a changed search
    space, a folder that belongs to another study) is raised before anything is written; a refused run
    leaves no empty database behind. ``base`` (a loaded base model) may be passed to reuse it.

    >>> import tempfile
    >>> from xtts_tune.config import load_config
    >>> tmp = tempfile.mkdtemp()
    >>> cfg = load_config("studies/demo.yaml", [f"output_dir={tmp}"])
    >>> opened = open_study(cfg, n_trials=1, storage=f"sqlite:///{tmp}/demo.db")
    >>> opened.study.study_name, len(opened.study.trials)   # created, with the guide's recipe queued
    ('demo', 1)
    """
    from xtts_tune.model.base import load_study_base
    from xtts_tune.training.feature_prep import prepare_features
    from xtts_tune.training.prepare import prepare_data

    if n_trials < 0:
        raise ConfigError(f"the number of trials must be >= 0, got {n_trials}")
    cfg.validate()
    settings = SearchSettings.from_config(cfg)
    thresholds = thresholds_from_section(cfg.diagnosis, cfg.source)
    url = storage or default_storage(cfg)
    heartbeats = {
        "heartbeat_interval": settings.heartbeat_interval,
        "grace_period": settings.grace_period,
        "max_retry": settings.max_retry,
    }
    db = sqlite_path(url)
    if db is None or db.is_file():
        rdb = open_storage(url, **heartbeats)  # a bad URL or a read-only database fails before the model loads
    else:  # created once the data is known to be good: a refused run leaves no empty database behind
        check_writable(db)
        rdb = None

    base = load_study_base(cfg, base)
    settings.resolve(base.num_layers, cfg.source)
    warning = settings.pruner.warmup_warning(cfg.train.eval_every, cfg.train.eval_at_start)
    if warning:
        if progress is not None:
            progress({"event": "warning", "message": warning})
        else:
            logger.warning(warning)
    fingerprint = expected_fingerprint(cfg, base.fingerprint)
    definition = study_definition(cfg, settings.space)
    refuse_before_writing(cfg, url, rdb, fingerprint, definition)  # before the split, cache or DB is written
    check_cost(cfg, base, settings, progress)  # the cost block; refused here when the files would not fit

    data = prepare_data(cfg, base)
    # every clip's features before the first trial: progress and ETA, resumable, once for all workers
    prepare_features(data, cfg.train, augment=may_augment(cfg, settings), progress=progress)
    rdb = rdb or open_storage(url, **heartbeats)
    fingerprint["dataset"] = data.fingerprint
    fingerprint["split"] = data.split.fingerprint
    study = open_or_create_study(cfg, url, rdb, settings, fingerprint, definition, base.num_layers)
    recover_dead_local_trials(study, settings.max_retry)
    return OpenedStudy(study=study, url=url, settings=settings, thresholds=thresholds, base=base, data=data)


def refuse_before_writing(cfg: StudyConfig, url: str, storage, fingerprint: dict, definition: dict) -> None:
    """Raise the one-line error of a run that must not touch the stored study or its files (``storage``
    None: the database does not exist yet, so only the study's files can refuse it)."""
    if storage is None:
        check_home(cfg, url, None)
        return
    with storage_lock(url):
        stored = stored_study_record(storage, cfg.study_name)
        if stored is not None:
            check_fingerprint(cfg.study_name, url, stored.fingerprint, fingerprint, cfg)
            check_definition(cfg.study_name, url, stored.definition, definition, cfg)
        check_home(cfg, url, None if stored is None else stored.uid)


def open_or_create_study(
    cfg: StudyConfig,
    url: str,
    storage,
    settings: SearchSettings,
    fingerprint: dict,
    definition: dict,
    num_layers: int,
) -> optuna.Study:
    """Create the study or load it, checking it again (another worker may have created it meanwhile)."""
    sampler, pruner = settings.make_sampler(), settings.make_pruner()
    name = cfg.study_name
    with storage_lock(url):
        if stored_study_record(storage, name) is None:
            uid = new_uid()
            check_home(cfg, url, None)
            claim_home(cfg, url, uid)  # before the study exists: a refused claim leaves nothing in the storage
            try:
                study = optuna.create_study(
                    study_name=name, storage=storage, sampler=sampler, pruner=pruner, direction="minimize"
                )
            except optuna.exceptions.DuplicatedStudyError:  # another machine created it first
                release_claim(cfg, uid)
                study = optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner)
            else:
                _record(study, cfg, url, settings, fingerprint, definition, num_layers, uid)
                return study
        study = optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner)
        record = StudyRecord.from_study(study)
        deadline = time.monotonic() + 30
        while record.fingerprint is None and time.monotonic() < deadline:  # its creator is still writing it
            time.sleep(0.5)
            record = StudyRecord.from_study(study)
        check_fingerprint(name, url, record.fingerprint, fingerprint, cfg)
        check_definition(name, url, record.definition, definition, cfg)
        uid = record.uid
        if uid is None:  # a study from before ids: give it one, and its folder
            uid = new_uid()
            write_study(study, uid=uid)
        check_home(cfg, url, uid)
        claim_home(cfg, url, uid)
        if record.fingerprint is None:
            logger.warning("study '%s' has no fingerprint; recording this run's", name)
            write_study(study, fingerprint=fingerprint)
        if record.definition is None:
            logger.warning("study '%s' has no definition; recording this run's", name)
            write_study(study, definition=definition)
        for params in settings.enqueue:  # configs added to the YAML since the study began
            study.enqueue_trial(params, user_attrs=enqueue_attrs("config"), skip_if_exists=True)
        logger.info("continuing study '%s' (%d trials so far)", name, len(study.trials))
        return study


def _record(study, cfg, url, settings, fingerprint, definition, num_layers, uid) -> None:
    """A new study's attributes, and its start (:meth:`SearchSettings.start_queue`) queued first."""
    write_study(
        study,
        **StudyRecord(
            uid=uid,
            fingerprint=fingerprint,
            definition=definition,
            config=json_safe(cfg.to_dict()),
            xtts_tune_version=tool_version(),
            artifact_dir=str((cfg.study_dir / ARTIFACTS_DIR).resolve()),
            output_dir=str(cfg.output_path.resolve()),
            study_dir=str(cfg.study_dir.resolve()),
            project_root=str(Path(cfg.root).resolve()),
            config_path=str(Path(cfg.source).resolve()) if Path(cfg.source).is_file() else None,
            created_at=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        ).to_attrs(),
    )
    for params, attrs in settings.start_queue(num_layers, cfg.train):  # the guide's recipe first
        study.enqueue_trial(params, user_attrs=attrs, skip_if_exists=True)
    logger.info("created study '%s' in %s", study.study_name, redact(url))
