"""Audio for the probes: read with soundfile (no ffmpeg, no torchcodec), mix to mono, resample with soxr to the
rate a model needs, hash the file's bytes, and find where there is speech (WebRTC voice activity detection).

Voice activity is decided per 30 ms frame at 16 kHz by ``webrtcvad`` (aggressiveness :data:`VAD_MODE`) on the
peak-normalised signal, after dropping voiced runs shorter than :data:`MIN_RUN_FRAMES` frames (clicks). The
speech span of a clip is its first voiced frame to its last; that is what seconds-per-character measures, so
leading and trailing silence of a sample never counts as slow speech.

>>> import numpy as np, tempfile, soundfile as sf
>>> path = tempfile.mkdtemp() + "/tone.wav"
>>> t = np.arange(22050) / 22050
>>> sf.write(path, np.r_[np.zeros(11025), 0.5 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))], 22050)
>>> audio = load_audio(path, 16000)
>>> audio.dtype, len(audio)
(dtype('float32'), 24000)
>>> len(content_hash(path))
64
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import numpy as np

from xtts_tune.errors import UserError

VAD_RATE = 16000
FRAME_S = 0.03
VAD_MODE = 2
MIN_RUN_FRAMES = 3


class AudioError(UserError):
    """A wav the probes cannot read (missing, not audio, empty)."""


def content_hash(path: str | os.PathLike) -> str:
    """SHA-256 of the file's bytes (the cache key's audio part: a rewritten sample is a new sample)."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError as exc:
        raise AudioError(f"{path}: cannot read the audio file ({exc.strerror}); check the path") from None
    return h.hexdigest()


def load_audio(path: str | os.PathLike, sample_rate: int) -> np.ndarray:
    """The file's audio as mono float32 at ``sample_rate`` (channels averaged, resampled with soxr)."""
    import soundfile as sf

    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (OSError, RuntimeError, sf.LibsndfileError) as exc:
        reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise AudioError(f"{path}: not a readable audio file ({reason}); give a wav or flac") from None
    audio = data.mean(axis=1)
    if audio.size == 0:
        raise AudioError(f"{path}: the audio file is empty; give a clip with speech in it")
    return resample(audio, rate, sample_rate)


def resample(audio: np.ndarray, rate: int, target: int) -> np.ndarray:
    """``audio`` from ``rate`` to ``target`` Hz (float32)."""
    audio = np.asarray(audio, dtype=np.float32)
    if rate == target:
        return audio
    import soxr

    return soxr.resample(audio, rate, target).astype(np.float32)


def _vad():
    with warnings.catch_warnings():  # webrtcvad 2.0.10 imports setuptools' deprecated pkg_resources
        warnings.simplefilter("ignore")
        import webrtcvad
    return webrtcvad.Vad(VAD_MODE)


def voiced_frames(audio16k: np.ndarray) -> np.ndarray:
    """One bool per 30 ms frame of 16 kHz audio: speech (runs under ``MIN_RUN_FRAMES`` frames dropped).

    >>> bool(voiced_frames(np.zeros(16000, dtype=np.float32)).any())
    False
    """
    frame = int(VAD_RATE * FRAME_S)
    n = len(audio16k) // frame
    if n == 0:
        return np.zeros(0, dtype=bool)
    peak = float(np.max(np.abs(audio16k))) or 1.0
    pcm = (np.clip(audio16k[: n * frame] / peak * 0.9, -1, 1) * 32767).astype("<i2").tobytes()
    vad = _vad()
    flags = np.array([vad.is_speech(pcm[i * frame * 2 : (i + 1) * frame * 2], VAD_RATE) for i in range(n)])
    out = flags.copy()
    i = 0
    while i < n:  # drop short voiced runs
        if flags[i]:
            j = i
            while j < n and flags[j]:
                j += 1
            if j - i < MIN_RUN_FRAMES:
                out[i:j] = False
            i = j
        else:
            i += 1
    return out


def speech_span(voiced: np.ndarray) -> tuple[float, float] | None:
    """(start, end) seconds of the first and last voiced frame; None when nothing is voiced.

    >>> speech_span(np.array([False, True, True, False]))
    (0.03, 0.09)
    """
    idx = np.flatnonzero(voiced)
    if idx.size == 0:
        return None
    return round(float(idx[0]) * FRAME_S, 6), round(float(idx[-1] + 1) * FRAME_S, 6)


def voiced_seconds_after(voiced: np.ndarray, t: float) -> float:
    """Seconds of voiced frames starting at or after ``t`` seconds.

    >>> voiced_seconds_after(np.array([True, False, True, True]), 0.05)
    0.06
    """
    first = int(np.ceil(round(t / FRAME_S, 6)))
    return round(float(voiced[max(0, first) :].sum()) * FRAME_S, 6)


def duration_seconds(path: str | os.PathLike) -> float:
    """The file's length in seconds (from its header)."""
    import soundfile as sf

    try:
        return float(sf.info(str(Path(path))).duration)
    except (OSError, RuntimeError, sf.LibsndfileError):
        raise AudioError(f"{path}: not a readable audio file; give a wav or flac") from None
