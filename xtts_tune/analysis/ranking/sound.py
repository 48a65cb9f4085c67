"""How a trial sounds, judged against the base model: *sounds worse* (never recommended), *loss–quality
divergence* (a warning), and the similarity tie-break among near-equal losses. No torch here: it reads the
probe figures the search stored (:attr:`xtts_tune.record.TrialRecord.probes`,
:attr:`xtts_tune.record.StudyRecord.probes_base`).

Every figure is N texts spoken with one seed, so each comparison allows for that noise: the spread across
texts (``similarity_sd``, ``cer_sd``) over √N, for both sides. A difference inside it is not a reason.

Rules (:class:`SoundThresholds` holds the numbers):

- **Sounds worse**: the trial's CER is above the base's by more than ``cer_margin`` *and* by more than the
  noise, or more of its samples babble (speech after the text, too long for the target's speaking rate, or
  cut at the length cap) than the base's, by at least ``babble_margin`` samples and a third of the texts.
- **Loss–quality divergence**: the validation loss improved on the base's, but the speaker similarity fell
  or the CER rose beyond the noise (and at least ``divergence_margin``).
- **Near-ties**: among trials within the seed noise of the lowest loss, a higher similarity wins when it
  beats every other such trial by more than the noise; otherwise the guide's rule (fewer trained parameters).

>>> base = {"similarity": 0.60, "similarity_sd": 0.05, "cer": 0.10, "cer_sd": 0.05, "n_texts": 5,
...         "flag_counts": {}}
>>> worse = judge_sound({"similarity": 0.70, "similarity_sd": 0.05, "cer": 0.45, "cer_sd": 0.05, "n_texts": 5,
...                      "flag_counts": {"speech_after_text": 3}}, base, improved=True)
>>> worse.sounds_worse
True
>>> print(worse.reasons[0])
its samples are clearly less intelligible than the base model's: CER 45% vs 10% (5 texts x one seed, noise ±6%)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from xtts_tune.io import as_int, finite

BABBLE_FLAGS = ("speech_after_text", "too_long", "hit_length_cap")
"""Probe flags that mean the model did not stop when the text ended (:mod:`xtts_tune.probes.babble`)."""


@dataclass(frozen=True)
class SoundThresholds:
    cer_margin: float = 0.10
    """Absolute CER above the base's that counts as clearly less intelligible (on top of the noise)."""
    babble_margin: int = 2
    """More babbling samples than the base's (and at least a third of the texts)."""
    divergence_margin: float = 0.02
    """Smallest similarity drop or CER rise that the divergence warning names (on top of the noise)."""
    noise_sigmas: float = 2.0
    """How many standard errors a difference must exceed to count."""


@dataclass(frozen=True)
class SoundJudgment:
    """A trial's probe figures against the base's, and what they mean."""

    similarity: float | None
    cer: float | None
    babble: int
    n_texts: int
    similarity_noise: float
    sounds_worse: bool = False
    diverges: bool = False
    reasons: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """``"similarity 0.83, CER 8%, 0 of 5 babble"``."""
        sim = "-" if self.similarity is None else f"{self.similarity:.2f}"
        cer = "-" if self.cer is None else f"{self.cer:.0%}"
        return f"similarity {sim}, CER {cer}, {self.babble} of {self.n_texts} babble"


def difference_noise(a: Mapping, b: Mapping | None, key: str, sigmas: float) -> float:
    """``sigmas`` standard errors of the difference of two N-text means (0 when a spread is missing)."""
    total = 0.0
    for side in (a, b or {}):
        sd, n = finite(side.get(f"{key}_sd")), as_int(side.get("n_texts"))
        if sd is not None and n:
            total += sd * sd / n
    return sigmas * math.sqrt(total)


def babble_count(probes: Mapping[str, Any]) -> int:
    counts = probes.get("flag_counts") if isinstance(probes.get("flag_counts"), Mapping) else {}
    return sum(as_int(counts.get(flag)) or 0 for flag in BABBLE_FLAGS)


def judge_sound(
    probes: Mapping[str, Any] | None,
    base: Mapping[str, Any] | None,
    *,
    improved: bool,
    thresholds: SoundThresholds = SoundThresholds(),
) -> SoundJudgment | None:
    """The judgment of one trial's probe summary against the base's (None without probe figures).
    ``improved``: its validation loss is below the base model's."""
    if not isinstance(probes, Mapping):
        return None
    t = thresholds
    sim, cer, n = finite(probes.get("similarity")), finite(probes.get("cer")), as_int(probes.get("n_texts")) or 0
    babble = babble_count(probes)
    sim_noise = difference_noise(probes, base, "similarity", t.noise_sigmas)
    judgment = SoundJudgment(sim, cer, babble, n, sim_noise)
    if not isinstance(base, Mapping):
        return judgment
    reasons: list[str] = []
    worse = diverges = False
    base_sim, base_cer = finite(base.get("similarity")), finite(base.get("cer"))
    cer_noise = difference_noise(probes, base, "cer", t.noise_sigmas)
    noise_text = f"{n} texts x one seed"
    if cer is not None and base_cer is not None and cer - base_cer > max(t.cer_margin, cer_noise):
        worse = True
        reasons.append(
            f"its samples are clearly less intelligible than the base model's: CER {cer:.0%} vs "
            f"{base_cer:.0%} ({noise_text}, noise ±{cer_noise:.0%})"
        )
    base_babble = babble_count(base)
    if babble - base_babble >= max(t.babble_margin, math.ceil(n / 3)):
        worse = True
        reasons.append(
            f"it babbles: {babble} of {n} samples ran past the end of their text (speech after the "
            f"last word, too long, or cut at the length cap) against the base model's {base_babble}"
        )
    if improved and not worse:
        if sim is not None and base_sim is not None and base_sim - sim > max(t.divergence_margin, sim_noise):
            diverges = True
            reasons.append(
                f"loss-quality divergence: its validation loss improved on the base model's, but its "
                f"speaker similarity fell, {sim:.2f} vs {base_sim:.2f} ({noise_text})"
            )
        if cer is not None and base_cer is not None and cer - base_cer > max(t.divergence_margin, cer_noise):
            diverges = True
            reasons.append(
                f"loss-quality divergence: its validation loss improved on the base model's, but its "
                f"CER rose, {cer:.0%} vs {base_cer:.0%} ({noise_text})"
            )
    return SoundJudgment(sim, cer, babble, n, sim_noise, worse, diverges, reasons)


def similarity_tiebreak(pool: list, sounds: Mapping[int, SoundJudgment]) -> tuple[Any, str] | None:
    """Among near-tied verdicts, the one whose similarity beats every other's by more than the noise, with
    the sentence that says so; None when no such trial stands out (or some have no figures)."""
    judged = [(v, sounds.get(v.number)) for v in pool]
    if len(judged) < 2 or any(s is None or s.similarity is None for _, s in judged):
        return None
    (top, best), *others = sorted(judged, key=lambda p: (-p[1].similarity, p[0].number))
    for _, other in others:
        noise = math.hypot(best.similarity_noise, other.similarity_noise) / math.sqrt(2)
        if best.similarity - other.similarity <= noise:
            return None
    rivals = ", ".join(f"trial {v.number} {s.similarity:.2f}" for v, s in others)
    return top, (
        f"Among trials within the seed noise of the lowest loss it sounds most like the target: speaker "
        f"similarity {best.similarity:.2f} against {rivals} ({best.n_texts} texts x one seed, beyond "
        "the noise)."
    )


def sound_sentence(
    judgment: SoundJudgment | None, base: Mapping[str, Any] | None, ceiling: Mapping[str, Any] | None
) -> str | None:
    """The recommendation's sentence on how the trial sounds, beside the base model and the target's own clips
    (None without probe figures)."""
    if judgment is None or judgment.similarity is None:
        return None

    def fig(side: Mapping[str, Any] | None, key: str, pattern: str) -> str:
        value = finite((side or {}).get(key))
        return "-" if value is None else format(value, pattern)

    text = (
        f"By ear: speaker similarity {judgment.similarity:.2f} (base model {fig(base, 'similarity', '.2f')}, "
        f"the target's own held-out clips {fig(ceiling, 'similarity', '.2f')})"
    )
    if judgment.cer is not None:
        text += (
            f", CER {judgment.cer:.0%} (base model {fig(base, 'cer', '.0%')}, the ASR's error on the "
            f"target's own clips {fig(ceiling, 'cer', '.0%')})"
        )
    text += (
        f", {judgment.babble} of {judgment.n_texts} samples past the end of their text; {judgment.n_texts} "
        f"texts x one seed, similarity noise ±{judgment.similarity_noise:.2f}."
    )
    return text


def describe_probes(probes: Mapping[str, Any]) -> str:
    """A probe summary in words: ``similarity 0.83 ±0.04, CER 8%, WER 12%, 1 of 5 flagged (too_long 1)``."""
    sim, sd, cer, wer = (finite(probes.get(k)) for k in ("similarity", "similarity_sd", "cer", "wer"))
    flags = probes.get("flag_counts") if isinstance(probes.get("flag_counts"), Mapping) else {}
    text = "similarity " + ("-" if sim is None else f"{sim:.2f}") + ("" if sd is None else f" ±{sd:.2f}")
    text += ", CER n/a" if cer is None else f", CER {cer:.0%}"
    text += "" if wer is None else f", WER {wer:.0%}"
    text += f", {probes.get('n_flagged', 0)} of {probes.get('n_texts', '?')} flagged"
    if flags:
        text += " (" + ", ".join(f"{k} {v}" for k, v in sorted(flags.items())) + ")"
    return text
