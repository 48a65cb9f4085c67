"""What a study was run on (dataset, split, base model), recorded at creation and checked on every resume, so
that trials on other data never mix into a study."""

from __future__ import annotations

import logging

from xtts_tune.config import StudyConfig
from xtts_tune.data.content import dataset_fingerprint
from xtts_tune.data.exclude import without_excluded
from xtts_tune.data.split import make_split, saved_split
from xtts_tune.errors import UserError
from xtts_tune.search.storage import redact
from xtts_tune.training.prepare import audio_hashes, ensure_dataset

logger = logging.getLogger(__name__)


class StudyMismatchError(UserError):
    """The stored study was run on another dataset, split or base model than the one given now."""


def expected_fingerprint(cfg: StudyConfig, base_fp: str) -> dict[str, str]:
    """The fingerprint this run would record, computed without writing anything (before prepare_data)."""
    clips = ensure_dataset(cfg)
    saved = saved_split(cfg.split_path, must_exist=bool(cfg.data.split_file))
    if saved is not None:
        split_fp = saved.fingerprint
    else:
        split = make_split(sorted({c.id for c in without_excluded(clips, cfg.data, cfg.root)}), cfg.data)
        split_fp = split.fingerprint
    # the hashes are cached only once the study is known to be this one (prepare_data saves them)
    return {"dataset": dataset_fingerprint(clips, audio_hashes(cfg)), "split": split_fp, "base_model": base_fp}


def check_fingerprint(study_name: str, url: str, stored: dict | None, current: dict, cfg: StudyConfig) -> None:
    """Raise :class:`StudyMismatchError` naming what changed when ``current`` differs from ``stored``."""
    if not stored:
        return
    changed = [k for k in ("dataset", "split", "base_model") if stored.get(k) != current.get(k)]
    if not changed:
        return
    what = {
        "dataset": f"dataset {cfg.data_path}",
        "split": f"train/validation split ({cfg.split_path})",
        "base_model": f"base model {cfg.base_model}",
    }
    details = "; ".join(f"{what[k]} changed (stored {stored.get(k)}, now {current.get(k)})" for k in changed)
    raise StudyMismatchError(
        f"study '{study_name}' in {redact(url)} was run on other data: {details}; nothing was changed. "
        f"To continue this study, restore the original {', '.join(k.replace('_', ' ') for k in changed)}; "
        f"to start a new study on this data, give it a study_name of its own in {cfg.source} "
        f"(e.g. --set study_name={study_name}-2)"
    )


def tool_version() -> str:
    """The installed xtts-tune version (recorded with each study)."""
    try:
        from importlib.metadata import version

        return version("xtts-tune")
    except Exception:
        return "unknown"
