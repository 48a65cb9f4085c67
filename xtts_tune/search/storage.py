"""The study's storage: any SQLAlchemy URL opened as Optuna's RDBStorage (SQLite with WAL, a busy timeout and
a lock file; PostgreSQL with an advisory lock), heartbeats for crash recovery, and loading a study by name.

A trial's state changes under the database's lock file on SQLite (:class:`ClaimingRDBStorage`): SQLite has
no row locks and pysqlite reads outside a transaction, so without it two workers popping one queued trial at
the same instant both read WAITING, both write RUNNING and both run it (and two workers failing one stale
trial both queue its retry). PostgreSQL and MySQL lock the row (``SELECT ... FOR UPDATE``) themselves.

>>> import tempfile
>>> url = f"sqlite:///{tempfile.mkdtemp()}/s.db"
>>> storage = open_storage(url)
>>> load_study("nope", url)
Traceback (most recent call last):
...
xtts_tune.search.storage.StudyNotFoundError: no study named 'nope' in sqlite:///.../s.db; it holds no studies
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna

from xtts_tune.config import StudyConfig
from xtts_tune.errors import UserError
from xtts_tune.io import file_lock
from xtts_tune.search.settings import quiet_experimental

logger = logging.getLogger(__name__)


class StorageError(UserError):
    """The study storage URL cannot be opened (bad URL, missing driver, unreachable server)."""


class StudyNotFoundError(StorageError):
    """No study of that name in the storage."""


def default_storage(cfg: StudyConfig) -> str:
    """``sqlite:///<project>/studies/<study_name>.db`` (an absolute path)."""
    path = (Path(cfg.root) / "studies" / f"{cfg.study_name}.db").resolve()
    return f"sqlite:///{path}"


def redact(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not even parseable: show it as given
        return url


def sqlite_path(url: str) -> Path | None:
    """The database file of a file-backed SQLite URL, else None."""
    if not url.startswith("sqlite"):
        return None
    try:
        from sqlalchemy.engine import make_url

        database = make_url(url).database
    except Exception:
        return None
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


@contextlib.contextmanager
def storage_lock(url: str) -> Iterator[None]:
    """An exclusive file lock next to an SQLite database, or a PostgreSQL advisory lock on a PostgreSQL one
    (serialises table and study creation between workers, local or on other machines)."""
    path = sqlite_path(url)
    if path is None:
        with _postgresql_lock(url):
            yield
        return
    with file_lock(path.with_name(path.name + "-lock")):
        yield


class ClaimingRDBStorage(optuna.storages.RDBStorage):
    """Optuna's RDBStorage whose trial state changes (a queued trial claimed by a worker, a stale trial
    failed) hold the SQLite database's lock file, so exactly one worker wins each change."""

    def set_trial_state_values(self, trial_id: int, state, values=None) -> bool:
        if sqlite_path(self.url) is None:
            return super().set_trial_state_values(trial_id, state, values)
        with storage_lock(self.url):
            return super().set_trial_state_values(trial_id, state, values)


_PG_LOCK_KEY = 0x7874_7473_7475_6E65  # "xtts-tune": one advisory lock per database


@contextlib.contextmanager
def _postgresql_lock(url: str) -> Iterator[None]:
    """Hold a session-level ``pg_advisory_lock`` for a PostgreSQL URL (nothing for other databases).
    Without it, workers opening a fresh database at once race in Optuna's CREATE TABLE and fail."""
    import sqlalchemy
    from sqlalchemy.engine import make_url

    try:
        backend = make_url(url).get_backend_name()
    except Exception:  # not a URL: open_storage reports it
        backend = None
    if backend != "postgresql":
        yield
        return
    from sqlalchemy.pool import NullPool

    engine = sqlalchemy.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as con:  # closing the connection releases the lock whatever happens
            con.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": _PG_LOCK_KEY})
            yield
    finally:
        engine.dispose()


def open_storage(
    url: str,
    *,
    heartbeat_interval: int | None = None,
    grace_period: int | None = None,
    max_retry: int | None = 2,
) -> optuna.storages.RDBStorage:
    """Open an SQLAlchemy storage URL as Optuna RDBStorage; SQLite gets WAL and a 60 s busy timeout.

    With ``heartbeat_interval`` set, running trials record heartbeats and a trial whose worker died is
    marked FAILED after ``grace_period`` seconds and queued again (up to ``max_retry`` times).
    Raises :class:`StorageError` naming the URL when it cannot be opened.
    """
    shown = redact(url)
    engine_kwargs: dict[str, Any] = {}
    db = sqlite_path(url)
    if db is not None:
        check_writable(db)
    try:
        if db is not None:
            engine_kwargs["connect_args"] = {"timeout": 60}
            db.parent.mkdir(parents=True, exist_ok=True)
        kwargs: dict[str, Any] = {}
        if heartbeat_interval:
            kwargs = {
                "heartbeat_interval": heartbeat_interval,
                "grace_period": grace_period,
                "heartbeat_stale_trial_callback": retry_callback(max_retry),
            }
        with storage_lock(url):
            if db is not None:
                con = sqlite3.connect(str(db), timeout=60)
                try:
                    con.execute("PRAGMA journal_mode=WAL")
                finally:
                    con.close()
            with quiet_experimental():
                storage = ClaimingRDBStorage(url, engine_kwargs=engine_kwargs, **kwargs)
    except StorageError:
        raise
    except Exception as exc:  # sqlalchemy ArgumentError/OperationalError, ImportError for a driver, OSError...
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise StorageError(f"cannot open the study storage {shown}: {type(exc).__name__}: {first[:200]}") from None
    return storage


def check_writable(db: Path) -> None:
    """Refuse an SQLite database (or its folder) that cannot be written, before SQLite silently opens it
    read-only and the first write fails deep inside Optuna."""
    import os

    folder = next((p for p in (db.parent, *db.parent.parents) if p.exists()), None)
    fix = "make it writable (chmod u+w, or a writable mount), or copy it somewhere writable and pass --storage sqlite:///COPY"
    if db.exists() and not os.access(db, os.W_OK):
        raise StorageError(f"{db}: database is read-only; {fix}")
    if db.exists() and not os.access(db.parent, os.W_OK):
        raise StorageError(f"{db}: database is read-only (its folder is: SQLite writes its journal there); {fix}")
    if not db.exists() and folder is not None and not os.access(folder, os.W_OK):
        raise StorageError(f"{db}: cannot be created, {folder} is read-only; pass --storage with a writable path")


def retry_callback(max_retry: int | None):
    """Optuna's callback that queues a failed trial's params again (up to ``max_retry`` times)."""
    with quiet_experimental():
        cls = (
            getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)
            or optuna.storages.RetryFailedTrialCallback
        )
        return cls(max_retry=max_retry)


def load_study(study_name: str, storage: str | optuna.storages.BaseStorage) -> optuna.Study:
    """Load an existing study for the report or export (no heartbeats; nothing is written).

    Raises :class:`StudyNotFoundError` (one line naming the storage and the studies it holds) when there is
    no such study; see the module's example.
    """
    url, storage = _existing(storage)
    try:
        return optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        names = study_names(storage)
        there = f"; studies there: {', '.join(names)}" if names else "; it holds no studies"
        raise StudyNotFoundError(f"no study named '{study_name}' in {redact(url)}{there}") from None


def study_names(storage: str | optuna.storages.BaseStorage) -> list[str]:
    """The names of the studies in a storage (one that does not exist yet raises :class:`StudyNotFoundError`)."""
    _, storage = _existing(storage)
    return [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]


def _existing(storage: str | optuna.storages.BaseStorage) -> tuple[str, optuna.storages.BaseStorage]:
    """(shown URL, opened storage) of a storage that must exist already (an SQLite file is never created)."""
    if not isinstance(storage, str):
        return str(getattr(storage, "url", storage)), storage
    db = sqlite_path(storage)
    if db is not None and not db.is_file():
        raise StudyNotFoundError(f"no study database at {db} (from {redact(storage)}); run the search first")
    return storage, open_storage(storage)
