"""The train/validation split: deterministic from a seed, saved once per study and reused by every trial.

>>> from xtts_tune.config import DataConfig
>>> split = make_split([f"clip{i}" for i in range(10)], DataConfig(val_count=2))
>>> len(split.train), len(split.val), split_fingerprint(split.train, split.val) == split_fingerprint(split.train, split.val)
(8, 2, True)
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path

from xtts_tune.config import DataConfig
from xtts_tune.data.clips import DataError
from xtts_tune.io import atomic_write_json


@dataclass(frozen=True)
class Split:
    train: list[str]
    val: list[str]
    seed: int

    def to_dict(self) -> dict:
        return {"seed": self.seed, "train": self.train, "val": self.val}


def make_split(clip_ids: list[str], cfg: DataConfig) -> Split:
    """Deterministic train/validation split from ``split_seed`` and ``val_count`` or ``val_fraction``."""
    ids = sorted(clip_ids)
    n_val = cfg.val_count if cfg.val_count > 0 else max(1, round(cfg.val_fraction * len(ids)))
    if n_val >= len(ids):
        raise DataError(f"validation split of {n_val} clips leaves none to train on ({len(ids)} clips in all)")
    random.Random(cfg.split_seed).shuffle(ids)
    return Split(train=sorted(ids[n_val:]), val=sorted(ids[:n_val]), seed=cfg.split_seed)


def saved_split(path: Path, *, must_exist: bool = False) -> Split | None:
    """The split saved at ``path``, or None when there is none. ``must_exist`` (``data.split_file`` is set):
    a missing file is refused (one line) instead of being replaced by a new split."""
    if not path.is_file():
        if must_exist:
            raise DataError(
                f"{path}: data.split_file not found; point it at the study's split.json (xtts-tune export writes "
                "its path) or remove data.split_file to make a new split"
            )
        return None
    try:
        saved = json.loads(path.read_text())
        return Split(train=list(saved["train"]), val=list(saved["val"]), seed=saved["seed"])
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: not a saved split ({type(exc).__name__}: {exc}); restore it or remove it") from None


def load_or_create_split(clip_ids: list[str], cfg: DataConfig, path: Path, *, must_exist: bool = False) -> Split:
    """Reuse the split saved at ``path`` (so every trial uses the same one), or create and save it."""
    split = saved_split(path, must_exist=must_exist)
    if split is not None:
        missing = sorted(set(split.train + split.val) - set(clip_ids))
        if missing:
            raise DataError(
                f"{path}: the saved split names clips that are not in the dataset any more "
                f"({', '.join(missing[:5])}{'…' if len(missing) > 5 else ''}); start a new study (a new "
                "study_name) for a new dataset"
            )
        return split
    split = make_split(clip_ids, cfg)
    atomic_write_json(split.to_dict(), path)  # several workers may create it at once
    return split


def split_fingerprint(train_ids: list[str], val_ids: list[str]) -> str:
    """A short hash of which clips are in which part (order does not matter)."""
    text = json.dumps({"train": sorted(train_ids), "val": sorted(val_ids)})
    return hashlib.sha256(text.encode()).hexdigest()[:16]
