"""Opening a study for a search: every refusal first, while nothing is written; then create or load it.

:func:`refuse_before_writing` compares what the storage holds under the study's name with this run, under
the storage's lock, and writes nothing: the dataset, split and base model
(:mod:`~xtts_tune.search.fingerprint`), the search space and fixed knobs
(:mod:`~xtts_tune.search.definition`), and whether the study's folder, report and YAML are its own
(:mod:`~xtts_tune.search.home`). :func:`open_or_create_study` then creates the study (its id, config,
fingerprint and definition recorded, its folder claimed, the guide's config enqueued) or loads it, under the
same lock (a file lock for SQLite, an advisory lock for PostgreSQL), so workers starting together never race.
"""

from __future__ import annotations

import datetime as _dt
import logging
import time
from pathlib import Path

import optuna

from xtts_tune.config import StudyConfig
from xtts_tune.io import json_safe
from xtts_tune.record import StudyRecord, enqueue_attrs, stored_study_record, write_study
from xtts_tune.search.definition import check_definition
from xtts_tune.search.fingerprint import check_fingerprint, tool_version
from xtts_tune.search.home import check_home, claim_home, new_uid, release_claim
from xtts_tune.search.settings import SearchSettings
from xtts_tune.search.storage import redact, storage_lock

logger = logging.getLogger(__name__)

TRIALS_DIR = "trials"
ARTIFACTS_DIR = "artifacts"


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
