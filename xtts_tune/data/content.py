"""What a dataset *is*: a fingerprint of every clip's id, text, language and audio content.

Re-processed audio of the same size (a new normalisation, another resampler) is a different dataset, so
the fingerprint hashes the audio bytes (SHA-256), not only their size. Hashing 1-3 hours of audio takes a
second or two; the digests are cached by absolute path, size and modification time (in memory and in a
JSON file), so the second run only stats the files.

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> (folder / "a.wav").write_bytes(b"RIFF....")
8
>>> hashes = AudioHashes(folder / "cache" / "audio-sha256.json")
>>> hashes.digest(folder / "a.wav")[:12], hashes.save()
('7c120c39db3e', True)
>>> AudioHashes(folder / "cache" / "audio-sha256.json").cached(folder / "a.wav") is not None
True
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from pathlib import Path

from xtts_tune.io import atomic_write_json

logger = logging.getLogger(__name__)

_MEMO: dict[str, tuple[int, int, str]] = {}
"""Digests computed by this process: absolute path → (size, mtime_ns, sha256)."""


class AudioHashes:
    """SHA-256 of audio files, cached by (absolute path, size, mtime) in ``cache_file`` (None: memory only)."""

    def __init__(self, cache_file: Path | None):
        self.cache_file = Path(cache_file) if cache_file else None
        self._disk: dict[str, list] = {}
        self._dirty = False
        if self.cache_file and self.cache_file.is_file():
            try:
                self._disk = dict(json.loads(self.cache_file.read_text()))
            except (OSError, ValueError, TypeError) as exc:  # a cache is disposable
                logger.warning("ignoring unreadable audio hash cache %s (%s)", self.cache_file, exc)

    def cached(self, path: Path) -> str | None:
        """The digest of ``path`` if it is cached for the file's current size and mtime, else None."""
        key = str(Path(path).resolve())
        st = Path(path).stat()
        for entry in (_MEMO.get(key), self._disk.get(key)):
            if entry and int(entry[0]) == st.st_size and int(entry[1]) == st.st_mtime_ns:
                return str(entry[2])
        return None

    def digest(self, path: Path) -> str:
        """The SHA-256 of the file's bytes (cached; recomputed when its size or mtime changed)."""
        key = str(Path(path).resolve())
        found = self.cached(path)
        st = Path(path).stat()
        if found is None:
            h = hashlib.sha256()
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
            found = h.hexdigest()
        entry = (st.st_size, st.st_mtime_ns, found)
        _MEMO[key] = entry
        if self._disk.get(key) != list(entry):
            self._disk[key] = list(entry)
            self._dirty = True
        return found

    def save(self) -> bool:
        """Write the cache file when something new was hashed; return whether it was written."""
        if not (self.cache_file and self._dirty):
            return False
        atomic_write_json(self.cache_file, self._disk, indent=0)
        self._dirty = False
        return True


def dataset_fingerprint(clips: Iterable, hashes: AudioHashes | None = None) -> str:
    """Hash of every clip's id, text, language and audio content: changes when the data changes."""
    hashes = hashes or AudioHashes(None)
    h = hashlib.sha256()
    for c in sorted(clips, key=lambda c: c.id):
        path = Path(c.audio_file)
        content = hashes.digest(path) if path.is_file() else "missing"
        h.update(f"{c.id}|{c.text}|{c.language}|{content}\n".encode())
    return h.hexdigest()[:16]
