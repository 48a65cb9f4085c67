"""The train/validation split: deterministic from a seed, saved once per study and reused by every trial.

>>> from xtts_tune.config import DataConfig
>>> split = make_split([f"clip{i:02d}" for i in range(20)], DataConfig(val_count=3))
>>> len(split.train), len(split.val), len(split.test), set(split.test).isdisjoint(split.train + split.val)
(15, 3, 2, True)
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from xtts_tune.config import DataConfig
from xtts_tune.data.clips import DataError
from xtts_tune.io import atomic_write_json

MIN_TEST_CLIPS = 2
"""A test part has at least this many clips (when ``data.test_fraction`` or ``data.test_count`` asks for one)."""
MIN_CLIPS_FOR_TEST = 10
"""Below this many clips a dataset is too small to hold clips back from selection as well as validate."""


@dataclass(frozen=True)
class Split:
    """Clip ids of the three parts. ``val`` drives early stopping, pruning and ranking (so a winner's
    validation loss is optimistic); ``test`` is never seen by any of them: the winner and the guide's recipe
    are scored on it after the search (:mod:`xtts_tune.search.holdout`)."""

    train: list[str]
    val: list[str]
    seed: int
    test: list[str] = field(default_factory=list)

    @property
    def fingerprint(self) -> str:
        """:func:`split_fingerprint` of all three parts: what a study records and every check compares."""
        return split_fingerprint(self.train, self.val, self.test)

    def to_dict(self) -> dict:
        return {"seed": self.seed, "train": self.train, "val": self.val, "test": self.test}


def make_split(clip_ids: list[str], cfg: DataConfig) -> Split:
    """Deterministic train/validation/test split from ``split_seed``.

    Size rule: test = ``test_count``, else ``test_fraction`` of the clips (at least :data:`MIN_TEST_CLIPS`;
    0 for no test part); validation = ``val_count``, else ``val_fraction`` (at least 1, at most ``val_max``); the rest trains, at most ``train_count``
    of them when it is > 0 (the others are left out).
    A dataset under :data:`MIN_CLIPS_FOR_TEST` clips with a test part asked for is refused with one line.
    """
    ids = sorted(clip_ids)
    n = len(ids)
    n_test = (
        cfg.test_count
        if cfg.test_count > 0
        else (max(MIN_TEST_CLIPS, round(cfg.test_fraction * n)) if cfg.test_fraction > 0 else 0)
    )
    n_val = cfg.val_count if cfg.val_count > 0 else max(1, round(cfg.val_fraction * n))
    if cfg.val_count <= 0 and cfg.val_max > 0:
        n_val = min(n_val, cfg.val_max)  # past the cap more validation clips cost evaluations, not rank
    if n_test and (n < MIN_CLIPS_FOR_TEST or n_test + n_val >= n):
        raise DataError(
            f"{n} clips are too few for a test split of {n_test} clips besides {n_val} validation clips "
            f"(a test split needs at least {MIN_CLIPS_FOR_TEST} clips); add clips, or set data.test_fraction: 0 "
            "to search without scoring the winner on clips selection never saw"
        )
    if n_val >= n:
        raise DataError(f"validation split of {n_val} clips leaves none to train on ({n} clips in all)")
    random.Random(cfg.split_seed).shuffle(ids)
    # validation first and the test part from the end, so a test part leaves the validation clips (and,
    # with train_count, the training clips) of the same seed as they were without one
    val, test = ids[:n_val], ids[n - n_test :]
    rest = ids[n_val : n - n_test]
    train = rest[: cfg.train_count] if cfg.train_count else rest
    return Split(train=sorted(train), val=sorted(val), seed=cfg.split_seed, test=sorted(test))


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
        return Split(
            train=list(saved["train"]), val=list(saved["val"]), seed=saved["seed"], test=list(saved.get("test", []))
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: not a saved split ({type(exc).__name__}: {exc}); restore it or remove it") from None


def load_or_create_split(clip_ids: list[str], cfg: DataConfig, path: Path, *, must_exist: bool = False) -> Split:
    """Reuse the split saved at ``path`` (so every trial uses the same one), or create and save it."""
    split = saved_split(path, must_exist=must_exist)
    if split is not None:
        missing = sorted(set(split.train + split.val + split.test) - set(clip_ids))
        if missing:
            raise DataError(
                f"{path}: the saved split names clips that are not in the dataset any more "
                f"({', '.join(missing[:5])}{'…' if len(missing) > 5 else ''}); start a new study (a new "
                "study_name) for a new dataset"
            )
        return split
    split = make_split(clip_ids, cfg)
    atomic_write_json(path, split.to_dict())  # several workers may create it at once
    return split


def split_fingerprint(train_ids: list[str], val_ids: list[str], test_ids: list[str] = ()) -> str:
    """A short hash of which clips are in which part (order does not matter; a split without a test part
    hashes as it did before test parts existed)."""
    parts = {"train": sorted(train_ids), "val": sorted(val_ids)}
    if test_ids:
        parts["test"] = sorted(test_ids)
    text = json.dumps(parts)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def nested_train_subset(split: Split, fraction: float, *, seed: int | None = None) -> Split:
    """``split`` with only ``fraction`` of its training clips (validation and test unchanged): the one
    definition of a data fraction, used by the data curve (``xtts-tune data-curve``) and the fidelity
    benchmark. The subsets are nested: one fixed shuffle of the train ids (from ``seed``, default the split's
    own), whose first ``round(fraction * n)`` clips (at least 1) are kept, so 25 % holds every clip of 12.5 %.

    >>> from xtts_tune.config import DataConfig
    >>> split = make_split([f"clip{i:02d}" for i in range(40)], DataConfig(val_count=4, test_count=4))
    >>> small, half = nested_train_subset(split, 0.125), nested_train_subset(split, 0.5)
    >>> len(small.train), len(half.train), set(small.train) <= set(half.train), half.val == split.val
    (4, 16, True, True)
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"a data fraction is in (0, 1], not {fraction}")
    order = sorted(split.train)
    random.Random(split.seed if seed is None else seed).shuffle(order)
    keep = set(order[: max(1, round(fraction * len(order)))])
    return Split(train=[c for c in split.train if c in keep], val=split.val, seed=split.seed, test=split.test)
