"""A per-sample cache of what the models measured, so scoring the same wav again costs a file read.

An entry's key is the SHA-256 of the probe version, the measurement's kind (``embed``: the speaker embedding
and speech span, which do not depend on the text; ``asr``: the transcript and what follows the last word,
which do), the wav's content hash, and for ``asr`` the text and language. A rewritten wav, another text or a
new probe version is a miss, never a stale hit. Entries are JSON files ``<dir>/<key[:2]>/<key>.json`` written
atomically (:mod:`xtts_tune.io`); an unreadable entry counts as a miss and is rewritten.

>>> import tempfile
>>> folder = tempfile.mkdtemp()
>>> key = cache_key("asr", "0" * 64, "Hello.", "en")
>>> load(folder, key) is None
True
>>> store(folder, key, {"transcript": "hello"})
>>> load(folder, key)
{'transcript': 'hello'}
>>> load(None, key) is None  # no cache folder: always a miss
True
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from xtts_tune.io import atomic_write_json
from xtts_tune.probes.thresholds import PROBE_VERSION


def cache_key(kind: str, content_hash: str, *parts: str) -> str:
    """The key of one measurement of one wav."""
    return hashlib.sha256(json.dumps([PROBE_VERSION, kind, content_hash, *parts]).encode()).hexdigest()


def _path(cache_dir: str | os.PathLike, key: str) -> Path:
    return Path(cache_dir) / key[:2] / f"{key}.json"


def load(cache_dir: str | os.PathLike | None, key: str) -> dict[str, Any] | None:
    """The stored entry, or None (no folder, no entry, or an unreadable one)."""
    if cache_dir is None:
        return None
    try:
        entry = json.loads(_path(cache_dir, key).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return entry if isinstance(entry, dict) else None


def store(cache_dir: str | os.PathLike | None, key: str, entry: dict[str, Any]) -> None:
    """Write an entry (nothing without a folder)."""
    if cache_dir is not None:
        atomic_write_json(_path(cache_dir, key), entry, indent=None)
