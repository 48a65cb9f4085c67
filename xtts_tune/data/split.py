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
    """Deterministic train/validation split from ``split_seed`` and ``val_count`` or ``val_fraction``;
    with ``train_count`` > 0 at most that many of the remaining clips train (the others are left out)."""
    ids = sorted(clip_ids)
    n_val = cfg.val_count if cfg.val_count > 0 else max(1, round(cfg.val_fraction * len(ids)))
    if n_val >= len(ids):
        raise DataError(f"validation split of {n_val} clips leaves none to train on ({len(ids)} clips in all)")
    random.Random(cfg.split_seed).shuffle(ids)
    train = ids[n_val : n_val + cfg.train_count] if cfg.train_count else ids[n_val:]
    return Split(train=sorted(train), val=sorted(ids[:n_val]), seed=cfg.split_seed)


def load_or_create_split(clip_ids: list[str], cfg: DataConfig, path: Path) -> Split:
    """Reuse the split saved at ``path`` (so every trial uses the same one), or create and save it."""
    if path.is_file():
        saved = json.loads(path.read_text())
        split = Split(train=saved["train"], val=saved["val"], seed=saved["seed"])
        missing = sorted(set(split.train + split.val) - set(clip_ids))
        if missing:
            raise DataError(
                f"{path}: the saved split names clips that are not in the dataset any more "
                f"({', '.join(missing[:5])}{'…' if len(missing) > 5 else ''}); use a new output_dir for a new dataset"
            )
        return split
    split = make_split(clip_ids, cfg)
    atomic_write_json(split.to_dict(), path)  # several workers may create it at once
    return split


def split_fingerprint(train_ids: list[str], val_ids: list[str]) -> str:
    """A short hash of which clips are in which part (order does not matter)."""
    text = json.dumps({"train": sorted(train_ids), "val": sorted(val_ids)})
    return hashlib.sha256(text.encode()).hexdigest()[:16]
