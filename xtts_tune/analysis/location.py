"""Where a study is stored, for the commands the report and the notes print: its storage URL when it is not
the project's default database (``sqlite:///<project>/studies/<study_name>.db``), so a printed command that
omits ``--storage`` never points at another (or no) study.

>>> import optuna
>>> non_default_storage(optuna.create_study(study_name="demo"))  # in memory: nothing a command can name
"""

from __future__ import annotations

from pathlib import Path

import optuna

from xtts_tune.record import StudyRecord

__all__ = ["non_default_storage"]


def non_default_storage(study: optuna.Study) -> str | None:
    """The study's storage URL (password hidden) when a command must pass it with ``--storage``; ``None`` when
    it is the project's default database or has no URL (an in-memory study)."""
    storage = study._storage  # Optuna has no public accessor for a study's storage
    url = getattr(getattr(storage, "_backend", storage), "url", None)
    if not isinstance(url, str):
        return None
    root = StudyRecord.from_study(study).project_root
    if root and _same_sqlite(url, Path(root) / "studies" / f"{study.study_name}.db"):
        return None
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not parseable: show it as given
        return url


def _same_sqlite(url: str, path: Path) -> bool:
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        return False
    try:
        return Path(url[len(prefix) :]).resolve() == path.resolve()
    except OSError:
        return False
