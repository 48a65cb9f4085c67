"""What the probes return, as frozen dataclasses that round-trip through plain JSON (``to_dict``/``from_dict``),
so a study can store them and the analysis and report layers can read them without torch or any model.

>>> s = SampleScore(path="a.wav", text="Hi there.", seconds=1.2, speech_seconds=0.9, chars=7,
...                 similarity=0.91, transcript="hi there", cer=0.0, wer=0.0, word_edits=0, words=2,
...                 char_edits=0, ref_chars=8, tail_speech_s=0.0, extra_words=0, max_seconds=2.35, flags=())
>>> scores = ProbeScores.from_samples([s], language="en", asr="whisper tiny.en")
>>> scores.similarity, scores.cer, scores.n_texts, scores.n_flagged
(0.91, 0.0, 1, 0)
>>> ProbeScores.from_dict(scores.to_dict()) == scores
True
>>> scores.summary()["similarity"]
0.91
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from xtts_tune.io import json_safe
from xtts_tune.probes.thresholds import PROBE_VERSION


@dataclass(frozen=True)
class ReferenceProfile:
    """The target speaker as the probes know it: the mean speaker embedding of its training clips and their
    speaking rate (seconds of speech span per letter; 5th..95th percentile and median over the clips)."""

    embedding: tuple[float, ...]
    n_clips: int
    rate_low: float
    rate_median: float
    rate_high: float
    probe_version: int = PROBE_VERSION

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["embedding"] = [round(float(x), 6) for x in self.embedding]
        return json_safe(d)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ReferenceProfile:
        d = {f.name: d[f.name] for f in fields(cls) if f.name in d}
        d["embedding"] = tuple(float(x) for x in d["embedding"])
        return cls(**d)


@dataclass(frozen=True)
class SampleScore:
    """One scored sample. ``similarity`` is the cosine to the profile's mean embedding; ``cer``/``wer`` are
    None when the language has no offline ASR (then ``transcript``, ``tail_speech_s`` and ``extra_words`` are
    None too); ``flags`` names what looks like babble (see :mod:`xtts_tune.probes.babble`)."""

    path: str
    text: str
    seconds: float
    speech_seconds: float | None
    chars: int
    similarity: float
    transcript: str | None
    cer: float | None
    wer: float | None
    word_edits: int | None
    words: int
    char_edits: int | None
    ref_chars: int
    tail_speech_s: float | None
    extra_words: int | None
    max_seconds: float | None
    flags: tuple[str, ...]

    @property
    def seconds_per_char(self) -> float | None:
        """Speech span per letter (None when nothing was voiced)."""
        return None if self.speech_seconds is None else self.speech_seconds / max(1, self.chars)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["flags"] = list(self.flags)
        return json_safe(d)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SampleScore:
        d = {f.name: d.get(f.name) for f in fields(cls)}
        d["flags"] = tuple(d["flags"] or ())
        return cls(**d)


def _mean(xs: list[float]) -> float | None:
    return round(sum(xs) / len(xs), 6) if xs else None


def _sd(xs: list[float]) -> float | None:
    if len(xs) < 2:
        return None
    m = sum(xs) / len(xs)
    return round(math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)), 6)


@dataclass(frozen=True)
class ProbeScores:
    """The probes' figures for one set of samples (one trial, the base, or the held-out ceiling).

    Summary: ``similarity`` (mean over samples) and ``similarity_sd`` (their spread, the noise of N texts x
    one seed); ``cer``/``wer`` pooled (edits summed over reference lengths summed) with ``cer_sd`` the per-text
    spread, None with ``asr_note`` saying why when the language has no offline ASR; ``n_texts``; ``n_flagged``
    samples with any babble flag and ``flag_counts`` per flag.
    """

    samples: tuple[SampleScore, ...]
    language: str
    asr: str
    asr_note: str | None
    similarity: float | None
    similarity_sd: float | None
    cer: float | None
    cer_sd: float | None
    wer: float | None
    n_texts: int
    n_flagged: int
    flag_counts: dict[str, int]
    probe_version: int = PROBE_VERSION

    @classmethod
    def from_samples(
        cls, samples: list[SampleScore], *, language: str, asr: str, asr_note: str | None = None
    ) -> ProbeScores:
        """The summary figures computed from per-sample scores."""
        samples = tuple(samples)
        sims = [s.similarity for s in samples]
        heard = [s for s in samples if s.cer is not None]
        counts: dict[str, int] = {}
        for s in samples:
            for f in s.flags:
                counts[f] = counts.get(f, 0) + 1

        def pooled(edits: str, total: str) -> float | None:
            if not heard:
                return None
            return round(sum(getattr(s, edits) for s in heard) / max(1, sum(getattr(s, total) for s in heard)), 6)

        return cls(
            samples=samples,
            language=language,
            asr=asr,
            asr_note=asr_note,
            similarity=_mean(sims),
            similarity_sd=_sd(sims),
            cer=pooled("char_edits", "ref_chars"),
            cer_sd=_sd([s.cer for s in heard]),
            wer=pooled("word_edits", "words"),
            n_texts=len(samples),
            n_flagged=sum(1 for s in samples if s.flags),
            flag_counts=dict(sorted(counts.items())),
        )

    def summary(self) -> dict[str, Any]:
        """The summary figures only (short enough for a trial user attribute)."""
        return json_safe(
            {
                "similarity": self.similarity,
                "similarity_sd": self.similarity_sd,
                "cer": self.cer,
                "cer_sd": self.cer_sd,
                "wer": self.wer,
                "n_texts": self.n_texts,
                "n_flagged": self.n_flagged,
                "flag_counts": self.flag_counts,
                "asr_note": self.asr_note,
                "probe_version": self.probe_version,
            }
        )

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "samples"}
        d["samples"] = [s.to_dict() for s in self.samples]
        return json_safe(d)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ProbeScores:
        kw = {f.name: d.get(f.name) for f in fields(cls) if f.name != "samples"}
        kw["flag_counts"] = dict(kw["flag_counts"] or {})
        kw["probe_version"] = kw["probe_version"] if kw["probe_version"] is not None else PROBE_VERSION
        return cls(samples=tuple(SampleScore.from_dict(s) for s in d.get("samples", ())), **kw)
