"""The probes' entry points: a target speaker's reference profile, and the scores of a set of samples.

* :func:`reference_profile` (the target's training clips) -> the mean speaker embedding and speaking rate;
* :func:`score_samples` (wavs with their texts, against a profile) -> :class:`ProbeScores`: speaker
  similarity, CER/WER of an offline transcript, babble flags, per sample and summarised;
* :func:`ceiling` -> the same scores for the target's held-out real clips: the best similarity the encoder
  gives this speaker and the ASR's own error floor. The base model's figure is :func:`score_samples` on the
  base model's samples.

Every model measurement is cached per wav (:mod:`xtts_tune.probes.cache`), so scoring again is a file read.

>>> import tempfile, pathlib, shutil
>>> corpus = pathlib.Path("corpora/real-voice-kathleen")
>>> rows = [line.split("|") for line in (corpus / "metadata.csv").read_text().splitlines()[:6]]
>>> clips = [(corpus / "wavs" / f"{cid}.flac", text) for cid, text, _ in rows]
>>> cache = tempfile.mkdtemp()
>>> profile = reference_profile(clips[:4], cache_dir=cache)
>>> profile.n_clips, len(profile.embedding)
(4, 256)
>>> scores = ceiling(clips[4:], profile, language="en", cache_dir=cache)
>>> scores.n_texts, scores.similarity > 0.8, scores.cer < 0.2, scores.n_flagged
(2, True, True, 0)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from xtts_tune.io import ProgressFn
from xtts_tune.probes import cache
from xtts_tune.probes.asr import model_folder, model_name, unsupported_reason, weights_packages
from xtts_tune.probes.audio import (
    VAD_RATE,
    AudioError,
    content_hash,
    duration_seconds,
    load_audio,
    speech_span,
    voiced_frames,
)
from xtts_tune.probes.babble import decide_flags, tail_after_text
from xtts_tune.probes.records import ProbeScores, ReferenceProfile, SampleScore
from xtts_tune.probes.text import error_counts, letters, normalize
from xtts_tune.probes.thresholds import default_max_seconds

Clip = tuple[str | os.PathLike, str]
"""A wav (or flac) path and the text it says."""


def _embed_entry(path: Path, digest: str, cache_dir) -> tuple[dict, bool]:
    """The text-free measurement of one wav: embedding, length, speech span (cached)."""
    key = cache.cache_key("embed", digest)
    entry = cache.load(cache_dir, key)
    if entry is not None:
        return entry, True
    from xtts_tune.probes.similarity import embed

    span = speech_span(voiced_frames(load_audio(path, VAD_RATE)))
    entry = {
        "embedding": [round(float(x), 7) for x in embed(path)],
        "seconds": round(duration_seconds(path), 4),
        "speech_seconds": None if span is None else round(span[1] - span[0], 4),
    }
    cache.store(cache_dir, key, entry)
    return entry, False


def _asr_entry(path: Path, digest: str, text: str, language: str, cache_dir) -> tuple[dict, bool]:
    """The text-dependent measurement of one wav: transcript and what follows the text's last word (cached)."""
    key = cache.cache_key("asr", digest, text, language)
    entry = cache.load(cache_dir, key)
    if entry is not None:
        return entry, True
    from xtts_tune.probes.asr import transcribe

    heard = transcribe(path, language)
    tail, extra, last_end = tail_after_text(text, heard.words, voiced_frames(load_audio(path, VAD_RATE)))
    entry = {
        "transcript": heard.text,
        "tail_speech_s": tail,
        "extra_words": extra,
        "last_word_end": last_end,
        "words": [[w.text, w.start, w.end] for w in heard.words],
    }
    cache.store(cache_dir, key, entry)
    return entry, False


def _checked(items: Sequence[Clip], what: str) -> list[tuple[Path, str]]:
    out = []
    for path, text in items:
        path = Path(path)
        if not path.is_file():
            raise AudioError(f"{path}: {what} not found; check the path")
        out.append((path, str(text)))
    return out


def _report(progress: ProgressFn | None, stage: str, done: int, total: int, path: Path, cached: bool) -> None:
    if progress is not None:
        progress({"event": "probe", "stage": stage, "done": done, "total": total, "path": str(path), "cached": cached})


def reference_profile(
    clips: Sequence[Clip], *, cache_dir: str | os.PathLike | None = None, progress: ProgressFn | None = None
) -> ReferenceProfile:
    """The target speaker's profile from its training clips: the L2-normalised mean Resemblyzer embedding,
    and the 5th, 50th and 95th percentile of seconds of speech span per letter over the clips."""
    from xtts_tune.probes.similarity import mean_embedding

    items = _checked(clips, "reference clip")
    if not items:
        raise AudioError("reference_profile: no reference clips given; pass the target's training clips")
    embeddings, rates = [], []
    for i, (path, text) in enumerate(items, 1):
        entry, hit = _embed_entry(path, content_hash(path), cache_dir)
        embeddings.append(np.asarray(entry["embedding"]))
        if entry["speech_seconds"] is not None and letters(text) > 0:
            rates.append(entry["speech_seconds"] / letters(text))
        _report(progress, "reference", i, len(items), path, hit)
    if not rates:
        raise AudioError(f"{items[0][0].parent}: no speech found in the reference clips; give clips with speech")
    low, median, high = (round(float(x), 6) for x in np.percentile(rates, [5, 50, 95]))
    return ReferenceProfile(
        embedding=tuple(float(x) for x in mean_embedding(embeddings)),
        n_clips=len(items),
        rate_low=low,
        rate_median=median,
        rate_high=high,
    )


def asr_name(language: str = "en") -> str:
    """The ASR model for ``language`` as the scores name it (its weights' packages and versions).

    >>> asr_name("en").split(" (")[0], asr_name("de").split(" (")[0]
    ('faster-whisper tiny.en int8', 'faster-whisper base int8')
    """
    from importlib.metadata import PackageNotFoundError, version

    try:
        weights = ", ".join(f"{p} {version(p)}" for p in weights_packages(language))
    except PackageNotFoundError:
        weights = "weights package missing"
    return f"faster-whisper {model_name(language)} int8 (weights: {weights})"


def score_samples(
    samples: Sequence[Clip],
    reference: ReferenceProfile | Sequence[Clip],
    *,
    language: str = "en",
    cache_dir: str | os.PathLike | None = None,
    max_seconds: float | Sequence[float | None] | None = None,
    progress: ProgressFn | None = None,
) -> ProbeScores:
    """Score synthesized ``samples`` (wav, text) against the target's ``reference`` (a profile, or the
    training clips to build one from).

    ``max_seconds`` is each sample's generation cap for the ``hit_length_cap`` flag: None means the cap
    :func:`xtts_tune.model.speak.speak` applies when given none (:func:`default_max_seconds` of the text),
    a number applies to every sample, a sequence gives one per sample (None entries: uncapped).
    ``progress`` gets ``{"event": "probe", "stage": "sample", "done", "total", "path", "cached"}`` per sample.
    """
    items = _checked(samples, "sample")
    profile = (
        reference if isinstance(reference, ReferenceProfile) else reference_profile(reference, cache_dir=cache_dir)
    )
    if max_seconds is None:
        caps = [default_max_seconds(text) for _, text in items]
    elif isinstance(max_seconds, (int, float)):
        caps = [float(max_seconds)] * len(items)
    else:
        caps = list(max_seconds)
        if len(caps) != len(items):
            raise ValueError(f"max_seconds has {len(caps)} entries for {len(items)} samples")
    note = unsupported_reason(language)
    if note is None:
        model_folder(language)  # a missing model package is one error line before any work
    mean = np.asarray(profile.embedding)
    scored = []
    for i, ((path, text), cap) in enumerate(zip(items, caps), 1):
        digest = content_hash(path)
        emb, hit = _embed_entry(path, digest, cache_dir)
        heard = None
        if note is None:
            heard, asr_hit = _asr_entry(path, digest, text, language, cache_dir)
            hit = hit and asr_hit
        scored.append(_sample_score(path, text, emb, heard, cap, mean, profile))
        _report(progress, "sample", i, len(items), path, hit)
    return ProbeScores.from_samples(
        scored, language=language, asr=asr_name(language) if note is None else "n/a", asr_note=note
    )


def _sample_score(
    path: Path, text: str, emb: dict, heard: dict | None, cap: float | None, mean: np.ndarray, profile: ReferenceProfile
) -> SampleScore:
    from xtts_tune.probes.similarity import cosine

    counts = error_counts(text, heard["transcript"]) if heard is not None else None
    chars = letters(text)
    tail = heard["tail_speech_s"] if heard is not None else None
    flags = decide_flags(
        speech_seconds=emb["speech_seconds"],
        chars=chars,
        seconds=emb["seconds"],
        tail_speech_s=tail,
        max_seconds=cap,
        rate_low=profile.rate_low,
        rate_high=profile.rate_high,
    )
    return SampleScore(
        path=str(path),
        text=text,
        seconds=emb["seconds"],
        speech_seconds=emb["speech_seconds"],
        chars=chars,
        similarity=round(cosine(np.asarray(emb["embedding"]), mean), 6),
        transcript=heard["transcript"] if heard is not None else None,
        cer=None if counts is None else round(counts["char_edits"] / max(1, counts["chars"]), 6),
        wer=None if counts is None else round(counts["word_edits"] / max(1, counts["words"]), 6),
        word_edits=None if counts is None else counts["word_edits"],
        words=counts["words"] if counts is not None else len(normalize(text).split()),
        char_edits=None if counts is None else counts["char_edits"],
        ref_chars=counts["chars"] if counts is not None else chars,
        tail_speech_s=tail,
        extra_words=heard["extra_words"] if heard is not None else None,
        max_seconds=cap,
        flags=flags,
    )


def speaker_similarity(
    wavs: Sequence[str | os.PathLike], reference: ReferenceProfile, *, cache_dir: str | os.PathLike | None = None
) -> list[float]:
    """Only the similarity of each wav to the profile's mean embedding (no transcript: seconds, not minutes,
    for many clips)."""
    from xtts_tune.probes.similarity import cosine

    mean = np.asarray(reference.embedding)
    out = []
    for path, _ in _checked([(w, "") for w in wavs], "wav"):
        entry, _hit = _embed_entry(path, content_hash(path), cache_dir)
        out.append(round(cosine(np.asarray(entry["embedding"]), mean), 6))
    return out


def ceiling(
    heldout: Sequence[Clip],
    reference: ReferenceProfile | Sequence[Clip],
    *,
    language: str = "en",
    cache_dir: str | os.PathLike | None = None,
    progress: ProgressFn | None = None,
) -> ProbeScores:
    """The target's own held-out clips scored like samples (no length cap): the similarity a real recording
    of the speaker gets against the same mean, and the ASR's error floor on this speaker."""
    heldout = list(heldout)
    return score_samples(
        heldout, reference, language=language, cache_dir=cache_dir, max_seconds=[None] * len(heldout), progress=progress
    )
