"""Speaker similarity: Resemblyzer's speaker encoder (GE2E, 256-d, weights shipped in its wheel) embeds a clip;
the similarity of a sample is the cosine between its embedding and the MEAN embedding of the target's training
clips. The target's held-out clips against the same mean are the ceiling (a real recording of the speaker);
the base model's samples through the same function are the baseline.

What it measures: how close the voice timbre is to the target, as one speaker-verification model hears it.
What it does not: naturalness, prosody, pronunciation, or whether the words are right. Its scale is its own
(clips of different speakers often sit at 0.6-0.8, the same speaker at 0.85-0.95); compare figures with each
other, not with another encoder's.

>>> import numpy as np
>>> round(cosine(np.array([1.0, 0.0]), np.array([1.0, 1.0])), 4)
0.7071
>>> mean_embedding([np.array([1.0, 0.0]), np.array([0.0, 1.0])]).round(4).tolist()
[0.7071, 0.7071]
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import warnings
from collections.abc import Sequence

import numpy as np

from xtts_tune.probes.audio import load_audio

ENCODER_RATE = 16000
EMBEDDING_SIZE = 256
SILENCE_PEAK = 1e-4


@functools.lru_cache(maxsize=1)
def encoder():
    """The Resemblyzer voice encoder on the CPU, loaded once per process from the weights in its wheel."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")  # its imports use deprecated scipy and pkg_resources namespaces
        from resemblyzer import VoiceEncoder

        return VoiceEncoder("cpu", verbose=False)


def embed(path: str | os.PathLike) -> np.ndarray:
    """The L2-normalised speaker embedding (256 floats) of one audio file.

    Resemblyzer's own preprocessing runs first (volume normalised, long silences cut by its VAD). A silent
    file (peak under ``SILENCE_PEAK``) gets the zero vector, whose similarity to anything is 0.
    """
    raw = load_audio(path, ENCODER_RATE)
    if float(np.max(np.abs(raw))) < SILENCE_PEAK:  # silence has no speaker: a zero vector, similarity 0
        return np.zeros(EMBEDDING_SIZE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from resemblyzer import preprocess_wav

        audio = preprocess_wav(raw)
    if audio.size < ENCODER_RATE // 10:  # nothing voiced: embed the raw clip rather than nothing
        audio = raw
    return np.asarray(encoder().embed_utterance(audio), dtype=np.float64)


def mean_embedding(embeddings: Sequence[np.ndarray]) -> np.ndarray:
    """The L2-normalised mean of several embeddings (the target speaker's profile)."""
    mean = np.mean(np.stack([np.asarray(e, dtype=np.float64) for e in embeddings]), axis=0)
    return mean / (np.linalg.norm(mean) or 1.0)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two vectors."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(a @ b / ((np.linalg.norm(a) * np.linalg.norm(b)) or 1.0))
