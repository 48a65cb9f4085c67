"""The dataset doctor's checks: which clips will hurt a fine-tune, each with its reasons and the thresholds
they crossed.

The thresholds are relative to the dataset's own distribution, so that a noisy home recording is not all
flagged: an upper threshold is ``max(median + K * MAD, floor)`` (MAD scaled to a standard deviation), a lower
one ``min(median - K * MAD, ceiling)``; the floors keep a very uniform dataset (MAD near 0) from flagging its
ordinary spread. The limits of the GPT (audio and text tokens) and the shortest clip to condition on are
absolute. What is checked:

* **transcript against audio**: the CER of the English ASR's transcript (other languages: n/a), and the
  speaking rate (letters per voiced second, both sides), which catches a swapped or cut transcript cheaply;
* **speaker**: cosine similarity of the clip's embedding to the dataset's mean (another voice stands out);
* **audio**: clipping, leading, trailing and inner silence; the same audio or the same text twice; too long
  for the GPT's audio or text token limits; too short to condition on.

>>> upper_threshold([0.3, 0.2, 0.25, 0.3, 3.4], 1.0)  # the one long tail does not raise the bar
1.0
>>> str(Reason("trailing silence", 3.4, 1.0, "s"))
'trailing silence 3.4 s > 1 s'
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from xtts_tune.io import fmt

K = 4.0
"""How many (scaled) MADs from the median a figure must be to be an outlier."""
MAD_SCALE = 1.4826
"""MAD times this estimates the standard deviation of normal data."""

CLIPPED_FLOOR = 0.001
"""Share of samples at the clip's peak below which no clip counts as clipped (0.1 %)."""
SILENCE_FLOOR_S = 1.0
"""Leading, trailing or inner silence shorter than this is never flagged (seconds)."""
RATE_FLOOR = math.log(1.5)
"""A speaking rate within 1.5 times the median (either way) is never flagged."""
CER_FLOOR = 0.3
"""An ASR CER under this is never flagged (the small English model's own errors on names and numbers)."""
SIMILARITY_CEILING = 0.75
"""A speaker similarity to the dataset's mean above this is never flagged."""
MIN_SECONDS = 1.0
"""Shorter clips are too short to condition on (the GPT's conditioning takes a slice of a clip)."""


@dataclass(frozen=True)
class Reason:
    """One check a clip failed: its figure and the threshold it crossed (``below`` for a lower bound)."""

    check: str
    figure: float
    threshold: float
    unit: str = ""
    below: bool = False
    detail: str = ""
    severity: float = 1.0
    """How far past the threshold (1 at it); the ranking sums them."""

    def __str__(self) -> str:
        if self.detail:
            return f"{self.check}: {self.detail}"
        unit = f" {self.unit}" if self.unit and self.unit != "%" else self.unit
        return f"{self.check} {fmt(self.figure, 3)}{unit} {'<' if self.below else '>'} {fmt(self.threshold, 3)}{unit}"


@dataclass(frozen=True)
class ClipFinding:
    """A flagged clip: where it is and every reason, strongest first."""

    clip: str
    where: str
    audio_file: str
    text: str
    reasons: tuple[Reason, ...]

    @property
    def score(self) -> float:
        return sum(r.severity for r in self.reasons)

    def to_dict(self) -> dict:
        return {
            "clip": self.clip,
            "where": self.where,
            "audio_file": self.audio_file,
            "text": self.text,
            "score": round(self.score, 3),
            "reasons": [{**r.__dict__, "text": str(r)} for r in self.reasons],
        }


@dataclass(frozen=True)
class ClipLimits:
    """The absolute limits: the GPT's (``max_wav_length`` samples at ``sample_rate``, ``max_text_tokens``
    counted by ``count_tokens(text, language)``; None: not checked) and the shortest usable clip."""

    sample_rate: int = 22050
    max_wav_length: int | None = None
    max_text_tokens: int | None = None
    count_tokens: Callable[[str, str], int] | None = None
    min_seconds: float = MIN_SECONDS


@dataclass
class Thresholds:
    """The thresholds this dataset's distribution gave each relative check (for the reasons and the report)."""

    values: dict[str, float] = field(default_factory=dict)


def robust(values: Sequence[float]) -> tuple[float, float]:
    """(median, scaled MAD) of ``values`` ((0, 0) when empty)."""
    if not values:
        return 0.0, 0.0
    med = statistics.median(values)
    return med, MAD_SCALE * statistics.median(abs(v - med) for v in values)


def upper_threshold(values: Sequence[float], floor: float) -> float:
    """``max(median + K * MAD, floor)``."""
    med, mad = robust(values)
    return max(med + K * mad, floor)


def lower_threshold(values: Sequence[float], ceiling: float) -> float:
    """``min(median - K * MAD, ceiling)``."""
    med, mad = robust(values)
    return min(med - K * mad, ceiling)


def find_outliers(clips: Sequence, measures: dict[str, dict], limits: ClipLimits) -> tuple[list[ClipFinding], dict]:
    """The flagged clips, ranked (highest score first), and the thresholds used. ``measures`` maps a clip id to
    :func:`xtts_tune.doctor.measure.measure_clip`'s entry plus ``hash`` (and ``cer`` where an ASR heard it)."""
    from xtts_tune.probes.similarity import cosine, mean_embedding
    from xtts_tune.probes.text import letters, normalize

    reasons: dict[str, list[Reason]] = {c.id: [] for c in clips}
    audio = {c.id: measures[c.id]["audio"] for c in clips}
    rates = {
        c.id: letters(c.text) / audio[c.id]["voiced"] for c in clips if audio[c.id]["voiced"] > 0 and letters(c.text)
    }
    log_rates = {k: math.log(v) for k, v in rates.items() if v > 0}
    profile = mean_embedding([np.asarray(measures[c.id]["embedding"]) for c in clips])
    similarity = {c.id: cosine(measures[c.id]["embedding"], profile) for c in clips}
    cers = {c.id: measures[c.id]["cer"] for c in clips if measures[c.id].get("cer") is not None}

    upper = {
        "clipping": ([a["clipped"] * 100 for a in audio.values()], CLIPPED_FLOOR * 100, "%", "clipped"),
        "leading silence": ([a["lead"] for a in audio.values()], SILENCE_FLOOR_S, "s", "lead"),
        "trailing silence": ([a["trail"] for a in audio.values()], SILENCE_FLOOR_S, "s", "trail"),
        "inner silence": ([a["inner"] for a in audio.values()], SILENCE_FLOOR_S, "s", "inner"),
    }
    thresholds: dict[str, float] = {}
    for check, (values, floor, unit, key) in upper.items():
        bar = thresholds[check] = upper_threshold(values, floor)
        scale = 100 if key == "clipped" else 1
        for c in clips:
            figure = audio[c.id][key] * scale
            if figure > bar:
                reasons[c.id].append(Reason(check, figure, bar, unit, severity=figure / bar))
    if cers:
        bar = thresholds["ASR CER"] = upper_threshold(list(cers.values()), CER_FLOOR)
        for cid, value in cers.items():
            if value > bar:
                reasons[cid].append(_cer_reason(value, bar, measures[cid].get("heard", "")))
    bar = thresholds["speaker similarity"] = lower_threshold(list(similarity.values()), SIMILARITY_CEILING)
    for cid, value in similarity.items():
        if value < bar:
            reasons[cid].append(Reason("speaker similarity", value, bar, below=True, severity=(1 - value) / (1 - bar)))
    if log_rates:
        med, mad = robust(list(log_rates.values()))
        width = max(K * mad, RATE_FLOOR)
        low, high = math.exp(med - width), math.exp(med + width)
        thresholds["speaking rate low"], thresholds["speaking rate high"] = low, high
        for cid, value in rates.items():
            if abs(math.log(value) - med) > width:
                fast = value > high
                reasons[cid].append(
                    Reason(
                        "speaking rate",
                        value,
                        high if fast else low,
                        "letters/s",
                        below=not fast,
                        severity=abs(math.log(value) - med) / width,
                    )
                )
    for c in clips:
        a = audio[c.id]
        if a["voiced"] <= 0:
            reasons[c.id].append(Reason("no speech found", 0.0, 0.0, detail="no voiced frame", severity=3.0))
        if a["seconds"] < limits.min_seconds:
            reasons[c.id].append(Reason("too short", a["seconds"], limits.min_seconds, "s", below=True, severity=2.0))
        if limits.max_wav_length and a["seconds"] * limits.sample_rate > limits.max_wav_length:
            most = limits.max_wav_length / limits.sample_rate
            reasons[c.id].append(Reason("too long for the GPT", a["seconds"], most, "s", severity=2.0))
        if limits.max_text_tokens and limits.count_tokens is not None:
            tokens = limits.count_tokens(c.text, c.language)
            if tokens > limits.max_text_tokens:
                reasons[c.id].append(
                    Reason("text too long for the GPT", tokens, limits.max_text_tokens, "tokens", severity=2.0)
                )
    _duplicates(clips, {c.id: measures[c.id]["hash"] for c in clips}, "duplicate audio", reasons, 2.0)
    _duplicates(clips, {c.id: normalize(c.text) for c in clips}, "duplicate text", reasons, 1.0)
    findings = [
        ClipFinding(c.id, c.where, c.audio_file, c.text, tuple(sorted(reasons[c.id], key=lambda r: -r.severity)))
        for c in clips
        if reasons[c.id]
    ]
    findings.sort(key=lambda f: (-f.score, f.clip))
    return findings, thresholds


def _cer_reason(value: float, bar: float, heard: str) -> Reason:
    shown = heard if len(heard) <= 60 else heard[:57] + "..."
    return Reason(
        "ASR CER", value, bar, severity=2 * value / bar, detail=f"{fmt(value, 3)} > {fmt(bar, 3)} (heard {shown!r})"
    )


def _duplicates(clips: Sequence, keys: dict[str, str], check: str, reasons: dict, severity: float) -> None:
    """Flag every clip whose key an earlier clip (by id) already has, naming that clip."""
    first: dict[str, str] = {}
    for c in sorted(clips, key=lambda c: c.id):
        key = keys[c.id]
        if not key:
            continue
        if key in first:
            reasons[c.id].append(Reason(check, 0.0, 0.0, detail=f"same as {first[key]}", severity=severity))
        else:
            first[key] = c.id
