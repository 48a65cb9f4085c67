"""A study's home: the files that belong to one study alone, and the check that no other study touches them.

A study writes its trials, saved split, feature cache, artifacts and confirmation runs under
``<output_dir>/<study_name>/`` (:attr:`~xtts_tune.config.StudyConfig.study_dir`), and its report and exported
YAML to ``studies/<study_name>-report.html`` and ``studies/<study_name>-best.yaml``. Every study has an id
(the ``uid`` user attribute, made at creation); the folder records it in ``study.json`` (written once, when
the study is created), the report and the YAML carry it too (:mod:`xtts_tune.stamps`).

A search, report or export whose study is not the one these files belong to (the same study_name in
another storage, or a study deleted from its storage while its files stayed) is refused with one line
before anything is written: nothing of another study is ever replaced or deleted. (The library's
``run_search`` checks the folder; the command line also checks the report and YAML it will write.) The fix is a study_name
of its own (its files then go elsewhere), or the storage of the study the files belong to.

>>> import tempfile
>>> from xtts_tune.config import StudyConfig
>>> cfg = StudyConfig(output_dir=tempfile.mkdtemp())
>>> claim_home(cfg, "sqlite:///a.db", "1f2e3d4c5b6a")
>>> check_home(cfg, "sqlite:///b.db", None)
Traceback (most recent call last):
...
xtts_tune.search.home.StudyHomeError: .../demo belongs to study 'demo' in sqlite:///a.db (id 1f2e3d4c), not to this new study 'demo' in sqlite:///b.db; nothing was changed. Give this study its own study_name in <defaults> (e.g. --set study_name=demo-2), or pass --storage 'sqlite:///a.db' to continue that study
"""

from __future__ import annotations

import datetime as _dt
import json
import uuid
from pathlib import Path

from xtts_tune.config import StudyConfig
from xtts_tune.errors import UserError
from xtts_tune.io import create_exclusive
from xtts_tune.record import stored_study_record
from xtts_tune.search.storage import open_storage, redact, sqlite_path, storage_lock
from xtts_tune.stamps import output_owner

CLAIM_NAME = "study.json"
"""The file in a study's folder that names the study it belongs to."""


class StudyHomeError(UserError):
    """The study's folder, report or exported YAML belongs to another study."""


def new_uid() -> str:
    return uuid.uuid4().hex[:12]


def read_claim(study_dir: Path) -> dict | None:
    """The claim in a study folder (``study_name``, ``storage``, ``uid``, ``created_at``), or None."""
    path = Path(study_dir) / CLAIM_NAME
    try:
        claim = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise StudyHomeError(f"{path}: unreadable ({exc}); it names the study that owns {study_dir}") from None
    return claim if isinstance(claim, dict) else None


def check_home(cfg: StudyConfig, url: str, uid: str | None) -> None:
    """Refuse to run study ``uid`` of ``url`` (None: it does not exist yet) when its folder belongs to another
    study. Reads only."""
    _refuse_foreign(cfg, url, uid, outputs=False)


def check_outputs(cfg: StudyConfig, url: str) -> None:
    """Refuse a search of ``cfg``'s study in ``url`` when its folder, or the report and exported YAML the
    command line writes when the search ends, belong to another study; checked before the search starts."""
    _refuse_foreign(cfg, url, stored_uid(url, cfg.study_name), outputs=True)


def _refuse_foreign(cfg: StudyConfig, url: str, uid: str | None, *, outputs: bool) -> None:
    foreign: list[str] = []
    claim = read_claim(cfg.study_dir)
    if claim is not None and uid is None and _database_exists(url):
        # Workers started together: another one may have created the study and claimed the folder since this
        # one read "no study". A claim and its study are made together under the storage lock, so read both
        # again under it; only a claim that still names another study is foreign.
        with storage_lock(url):
            uid = stored_uid(url, cfg.study_name)
            claim = read_claim(cfg.study_dir)
    if claim is not None and claim.get("uid") != uid:
        foreign.append(str(cfg.study_dir))
    elif claim is None and uid is None and any((cfg.study_dir / "trials").glob("trial-*")):
        foreign.append(str(cfg.study_dir))  # trials of a study from before claims
    owners = []
    for path in (cfg.report_path, cfg.export_path) if outputs else ():
        owner = output_owner(path)
        if owner is not None and owner != uid:
            foreign.append(str(path))
            owners.append(owner)
    if foreign:
        claim = claim if claim is not None and claim.get("uid") != uid else None
        raise _refusal(cfg, url, uid, foreign, claim, owners[0] if owners else None)


def _database_exists(url: str) -> bool:
    """False only for an SQLite file not created yet (a PostgreSQL server is asked, not a file)."""
    db = sqlite_path(url)
    return db is None or db.is_file()


def stored_uid(url: str, study_name: str) -> str | None:
    """The id of the study of that name in ``url`` (None: no such study, or no database yet)."""
    if not _database_exists(url):
        return None
    record = stored_study_record(open_storage(url), study_name)
    return None if record is None else record.uid


def check_output(path: Path, study_name: str, uid: str | None) -> None:
    """Refuse to write a default report or YAML path that holds another study's report or YAML."""
    owner = output_owner(path)
    if owner is not None and uid is not None and owner != uid:
        raise StudyHomeError(
            f"{path} is the {'report' if Path(path).suffix == '.html' else 'exported config'} of another study "
            f"named '{study_name}' (id {owner[:8]}), not of this one (id {uid[:8]}); nothing was written. "
            "Pass --out to write it elsewhere, or give one of the studies its own study_name"
        )


def claim_home(cfg: StudyConfig, url: str, uid: str) -> None:
    """Write the study folder's claim for study ``uid``; a claim is never replaced, so a folder another study
    claimed first is refused."""
    claim = {
        "study_name": cfg.study_name,
        "storage": redact(url),
        "uid": uid,
        "created_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    create_exclusive(cfg.study_dir / CLAIM_NAME, json.dumps(claim, indent=1))
    existing = read_claim(cfg.study_dir)
    if existing is None or existing.get("uid") != uid:
        raise _refusal(cfg, url, uid, [str(cfg.study_dir)], existing)


def release_claim(cfg: StudyConfig, uid: str) -> None:
    """Remove the folder's claim if it names study ``uid`` (one this process just made and did not create)."""
    claim = read_claim(cfg.study_dir)
    if claim is not None and claim.get("uid") == uid:
        (cfg.study_dir / CLAIM_NAME).unlink(missing_ok=True)


def _refusal(
    cfg: StudyConfig, url: str, uid: str | None, paths: list[str], claim: dict | None, owner_uid: str | None = None
) -> StudyHomeError:
    this = f"this {'new ' if uid is None else ''}study '{cfg.study_name}' in {redact(url)}"
    which = ", ".join(paths[:-1]) + (" and " if len(paths) > 1 else "") + paths[-1]
    verb = "belongs" if len(paths) == 1 else "belong"
    fix = f"Give this study its own study_name in {cfg.source} (e.g. --set study_name={cfg.study_name}-2)"
    if claim is None:
        owner = f"another study named '{cfg.study_name}'" + (f" (id {owner_uid[:8]})" if owner_uid else "")
        fix += f", or delete {which} if that study is gone"
    else:
        owner = f"study '{claim.get('study_name')}' in {claim.get('storage')} (id {str(claim.get('uid'))[:8]})"
        if claim.get("storage") == redact(url):  # the same storage no longer holds it
            owner += ", which that storage no longer holds"
            fix += f", or delete {which} to start over"
        else:
            fix += f", or pass --storage '{claim.get('storage')}' to continue that study"
    return StudyHomeError(f"{which} {verb} to {owner}, not to {this}; nothing was changed. {fix}")
