"""What a fine-tune forgot, by ear, judged: each kept trial and the base model speak the same sentences in other
languages, in a voice that is not the target's, with the same seed (:mod:`xtts_tune.search.forgetting_ear`
measures it and stores, on the trial, its figures beside the base's: :attr:`~xtts_tune.record.TrialRecord.forget_ear`).
No torch here.

A language counts as *forgotten by ear* by the rule the probes already apply to the target's own language
(:mod:`xtts_tune.analysis.ranking.sound`, :class:`~xtts_tune.analysis.ranking.sound.SoundThresholds`, one set
of numbers): the CER rose above the base's by more than ``cer_margin`` and by more than the noise of N texts
spoken once each, or the similarity to the reference voice fell by more than ``divergence_margin`` and the
noise. By ear is named in the recommendation's reasons; the near-tie rule stays the loss on other voices
(:mod:`xtts_tune.analysis.ranking.forgetting`), which measures on many more clips than a few sentences.

>>> base = {"cer": 0.06, "cer_sd": 0.03, "similarity": 0.71, "similarity_sd": 0.02, "n_texts": 2}
>>> ear = judge_ear({"de": {"cer": 0.31, "cer_sd": 0.05, "similarity": 0.70, "similarity_sd": 0.02, "n_texts": 2,
...                         "base": base}})
>>> ear.forgot, ear.describe()
(('de',), 'German CER 6 % → 31 %, similarity 0.71 → 0.70')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from xtts_tune.analysis.ranking.sound import SoundThresholds, difference_noise
from xtts_tune.io import finite

LANGUAGE_NAMES = {"de": "German", "es": "Spanish", "fr": "French", "en": "English", "it": "Italian", "pt": "Portuguese"}
"""How a language code reads in a sentence (the code itself for any other)."""


def language_name(code: str) -> str:
    return LANGUAGE_NAMES.get(code, code)


@dataclass(frozen=True)
class EarLanguage:
    """One language's figures: the trial's and the base's CER and similarity, and whether it forgot."""

    language: str
    cer: float | None
    base_cer: float | None
    similarity: float | None
    base_similarity: float | None
    forgot: bool

    def describe(self) -> str:
        """``"German CER 6 % → 31 %, similarity 0.71 → 0.70"``."""
        parts = []
        if self.cer is not None and self.base_cer is not None:
            parts.append(f"CER {100 * self.base_cer:.0f} % → {100 * self.cer:.0f} %")
        if self.similarity is not None and self.base_similarity is not None:
            parts.append(f"similarity {self.base_similarity:.2f} → {self.similarity:.2f}")
        return f"{language_name(self.language)} " + (", ".join(parts) or "not heard")


@dataclass(frozen=True)
class EarForgetting:
    """A trial's forgetting by ear, language by language."""

    languages: tuple[EarLanguage, ...]

    @property
    def forgot(self) -> tuple[str, ...]:
        """The languages it forgot beyond the noise."""
        return tuple(x.language for x in self.languages if x.forgot)

    def describe(self, only_forgotten: bool = False) -> str:
        shown = [x for x in self.languages if x.forgot or not only_forgotten]
        return "; ".join(x.describe() for x in shown)


def judge_ear(stored: Mapping[str, Any] | None, thresholds: SoundThresholds | None = None) -> EarForgetting | None:
    """A trial's :attr:`~xtts_tune.record.TrialRecord.forget_ear` judged (None when it was not heard):
    ``{language: {"cer", "cer_sd", "similarity", "similarity_sd", "n_texts", "base": {same keys}}}``."""
    if not isinstance(stored, Mapping) or not stored:
        return None
    t = thresholds or SoundThresholds()
    out = []
    for lang in stored:
        figures = stored[lang]
        if not isinstance(figures, Mapping) or not isinstance(figures.get("base"), Mapping):
            continue
        base = figures["base"]
        cer, base_cer = finite(figures.get("cer")), finite(base.get("cer"))
        sim, base_sim = finite(figures.get("similarity")), finite(base.get("similarity"))
        worse_cer = (
            cer is not None
            and base_cer is not None
            and cer - base_cer > t.cer_margin
            and cer - base_cer > difference_noise(figures, base, "cer", t.noise_sigmas)
        )
        lost_voice = (
            sim is not None
            and base_sim is not None
            and base_sim - sim > t.divergence_margin
            and base_sim - sim > difference_noise(figures, base, "similarity", t.noise_sigmas)
        )
        out.append(EarLanguage(str(lang), cer, base_cer, sim, base_sim, worse_cer or lost_voice))
    return EarForgetting(tuple(out)) if out else None


def ear_reasons(best: Any, candidates: Sequence[Any]) -> list[str]:
    """The recommendation's sentences: what the winner forgot by ear, and every other candidate that forgot
    a language by ear, by name (``.forget_ear``: an :class:`EarForgetting` or None; empty when none was heard)."""
    ear = getattr(best, "forget_ear", None)
    if ear is None:
        return []
    if ear.forgot:
        out = [
            f"By ear, in other languages and another voice, it forgot: {ear.describe(only_forgotten=True)} "
            "against the base model (the same sentences, voice and seed)."
        ]
    else:
        out = [f"By ear, in other languages and another voice, it kept what the base could: {ear.describe()}."]
    others = [v for v in candidates if v is not best and getattr(v, "forget_ear", None) and v.forget_ear.forgot]
    if others:
        listed = "; ".join(f"trial {v.number}: {v.forget_ear.describe(only_forgotten=True)}" for v in others)
        out.append(f"Other candidates that forgot by ear: {listed}.")
    return out


def ear_line(verdicts: Sequence[Any]) -> str | None:
    """One line for the summary and the dashboard note: every heard trial, its forgotten languages marked."""
    heard = [v for v in verdicts if getattr(v, "forget_ear", None) is not None]
    if not heard:
        return None
    parts = []
    for v in heard:
        ear = v.forget_ear
        mark = f" (forgot {', '.join(language_name(x) for x in ear.forgot)})" if ear.forgot else ""
        parts.append(f"trial {v.number}: {ear.describe()}{mark}")
    return "forgetting by ear (other languages, another voice; base → trial): " + " | ".join(parts)
