"""What the dataset doctor measures in one clip, cached by the clip's audio content.

Per clip, from the audio alone (so a fixed transcript never re-measures it):

* ``seconds``; ``clipped``: the share of samples within 0.1 % of the clip's own peak (a clipped clip has flat
  tops, a natural one a handful of samples at its peak; relative to the peak, so clipping that was scaled
  down afterwards is still seen);
* from WebRTC voice activity (:func:`xtts_tune.probes.audio.voiced_frames`): ``lead`` and ``trail`` (silence
  before the first and after the last voiced frame), ``inner`` (the longest unvoiced run between them) and
  ``voiced`` seconds;
* ``embedding``: the Resemblyzer speaker embedding (:func:`xtts_tune.probes.similarity.embed`);
* ``heard`` (``heard:<language>`` outside English): the ASR's transcript in the clip's language
  (:func:`xtts_tune.probes.asr.transcribe`), when asked for.

An entry is a JSON file of :mod:`xtts_tune.probes.cache` keyed by the audio's SHA-256 and
:data:`DOCTOR_VERSION`, so a second run reads files instead of running models. What is missing from an
entry (the transcript, when an earlier run had no ASR) is measured and added.

>>> import numpy as np, tempfile, soundfile as sf
>>> path = tempfile.mkdtemp() + "/tone.wav"
>>> t = np.arange(16000) / 16000
>>> sf.write(path, np.r_[np.zeros(8000), np.clip(2 * np.sin(2 * np.pi * 220 * t), -1, 1)], 16000)
>>> m = audio_measures(path)
>>> m["seconds"], m["clipped"] > 0.3  # half the tone's samples sit at the clipped peak
(1.5, True)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from xtts_tune.probes import cache
from xtts_tune.probes.audio import FRAME_S, VAD_RATE, resample, speech_span, voiced_frames

DOCTOR_VERSION = 1
"""Bumped whenever a cached measurement would change (part of every doctor cache key)."""

PEAK_TOLERANCE = 0.001
"""A sample within this fraction of the clip's peak counts as at the peak (the clipped share)."""

QUIET_PEAK = 1e-3
"""A clip whose peak is under this has no meaningful clipped share (digital silence sits at its "peak")."""


def audio_measures(path: str | os.PathLike) -> dict[str, float]:
    """The clip's length, clipped share and silences (seconds), from its audio (soundfile; any rate)."""
    import soundfile as sf

    data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    audio = data.mean(axis=1)
    seconds = len(audio) / rate if rate else 0.0
    magnitude = np.abs(data).max(axis=1) if data.size else np.zeros(0, dtype=np.float32)
    peak = float(magnitude.max()) if magnitude.size else 0.0
    clipped = float((magnitude >= peak * (1 - PEAK_TOLERANCE)).mean()) if peak >= QUIET_PEAK else 0.0
    voiced = voiced_frames(resample(audio, rate, VAD_RATE)) if audio.size else np.zeros(0, dtype=bool)
    span = speech_span(voiced)
    if span is None:
        lead, trail, inner = seconds, 0.0, 0.0
    else:
        lead, trail = span[0], max(0.0, seconds - span[1])
        inner = _longest_gap(voiced) * FRAME_S
    return {
        "seconds": round(seconds, 4),
        "clipped": round(clipped, 6),
        "lead": round(lead, 3),
        "trail": round(trail, 3),
        "inner": round(inner, 3),
        "voiced": round(float(voiced.sum()) * FRAME_S, 3),
    }


def _longest_gap(voiced: np.ndarray) -> int:
    """The longest run of unvoiced frames between the first and the last voiced one (frames)."""
    idx = np.flatnonzero(voiced)
    if idx.size < 2:
        return 0
    return int(max(0, (np.diff(idx) - 1).max()))


def measure_clip(
    path: str | os.PathLike,
    content_hash: str,
    *,
    cache_dir: str | os.PathLike | None,
    asr: bool,
    language: str = "en",
) -> tuple[dict[str, Any], bool]:
    """The clip's measurements (``audio_measures`` plus ``embedding`` and, with ``asr``, what the ASR heard in
    ``language``: :func:`heard_key`) and whether they all came from the cache."""
    key = cache.cache_key("doctor", content_hash, str(DOCTOR_VERSION))
    entry = cache.load(cache_dir, key) or {}
    hit = bool(entry)
    if "audio" not in entry:
        entry["audio"], hit = audio_measures(path), False
    if "embedding" not in entry:
        from xtts_tune.probes.similarity import embed

        entry["embedding"], hit = [round(float(x), 5) for x in embed(path)], False
    heard = heard_key(language)
    if asr and heard not in entry:
        from xtts_tune.probes.asr import transcribe

        entry[heard], hit = transcribe(path, language).text, False
    if not hit:
        cache.store(cache_dir, key, entry)
    return entry, hit


def heard_key(language: str) -> str:
    """The cache entry's key for the ASR transcript in ``language``: ``heard`` for English (the key of the
    English-only doctor, so its caches stay valid), ``heard:<whisper code>`` for the others.

    >>> heard_key("en"), heard_key("de"), heard_key("zh-cn")
    ('heard', 'heard:de', 'heard:zh')
    """
    from xtts_tune.probes.asr import ENGLISH, whisper_language

    code = whisper_language(language)
    return "heard" if code == ENGLISH else f"heard:{code}"


def doctor_cache_dir(study_cache_dir: str | os.PathLike) -> Path:
    """Where a study keeps the doctor's entries: ``<cache_dir>/doctor``."""
    return Path(study_cache_dir) / "doctor"
