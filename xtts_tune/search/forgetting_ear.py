"""What a fine-tune forgot, by ear: on a base with a HiFi-GAN decoder, every kept trial and the base model (once
a study) speak the same sentences in three languages other than the target's (:data:`~xtts_tune.probes.texts.FORGETTING_TEXTS`),
in a voice that is not the target's, with the same seed; the probes hear them in their own language (Whisper
base) and measure the similarity to that voice. The loss on other voices (:mod:`xtts_tune.search.forgetting`)
says how much moved; this says what a listener would notice ("German CER 6 % → 31 %").

The voice is the first clip of ``data.forgetting_path`` when the study has one (other speakers the user
chose), else the shipped :data:`REFERENCE_WAV` (an espeak-ng voice no demo uses). Each trial stores its
figures beside the base's (:attr:`~xtts_tune.record.TrialRecord.forget_ear`), so a reader needs no other key;
the base's are kept on the study (:data:`~xtts_tune.record.FORGET_EAR_BASE_KEY`) and measured again when the
probes, the texts or the voice change. The judgment is :mod:`xtts_tune.analysis.ranking.forgetting_ear`'s.
As with the listening samples, a failure is logged and leaves the figure out: listening never loses a trial.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import optuna

from xtts_tune.record import TrialRecord, read_ear_base, write_ear_base, write_trial
from xtts_tune.search.samples import SamplePlan

logger = logging.getLogger(__name__)

REFERENCE_WAV = "forgetting_reference.wav"
"""The shipped voice (``xtts_tune/resources``): ``espeak-ng -v en-gb+f4 -s 160 -p 55``, 5.2 s, 22.05 kHz."""
REFERENCE_TEXT = "Good morning. I would like two tickets for the evening train to the coast, please."

KEPT = ("cer", "cer_sd", "similarity", "similarity_sd", "n_texts", "n_flagged")
"""The per-language figures stored (a probe summary's, short enough for a trial attribute)."""


@dataclass(frozen=True)
class EarPlan:
    """What every kept trial and the base speak to be heard for forgetting."""

    samples: SamplePlan
    """The study's listening plan: the folder, device, length cap and the probes' cache."""
    texts: dict[str, tuple[str, ...]]
    """Language -> sentences."""
    reference: tuple[str, str]
    """The voice (wav, its text), not the target's."""
    source: str
    """The voice in words: the shipped one or the forgetting set's first clip."""

    @property
    def key(self) -> str:
        """The texts, the voice and the probes' version, hashed: a changed plan hears the base again."""
        from xtts_tune.probes import PROBE_VERSION

        h = hashlib.sha1(repr((sorted(self.texts.items()), self.reference, PROBE_VERSION)).encode())
        return h.hexdigest()[:16]


def shipped_reference() -> tuple[str, str]:
    """The shipped voice: (path, text)."""
    return str(resources.files("xtts_tune").joinpath("resources", REFERENCE_WAV)), REFERENCE_TEXT


def ear_plan(samples: SamplePlan | None, per_language: int, forgetting_clip=None) -> EarPlan | None:
    """The plan: ``per_language`` sentences in each of three languages other than the study's that the base
    speaks (its config.json's ``languages``), in the voice of ``forgetting_clip`` (a
    :class:`~xtts_tune.data.ClipInfo` of the forgetting set) or the shipped one. None without a listening plan
    (no decoder, or ``search.samples: 0``), with ``per_language`` 0, or when the base speaks no other language."""
    from xtts_tune.model.speak import spoken_languages
    from xtts_tune.probes.texts import forgetting_languages, forgetting_texts

    if samples is None or per_language <= 0:
        return None
    langs = forgetting_languages(samples.language, spoken=spoken_languages(samples.folder))
    if not langs:
        logger.info("forgetting by ear: %s speaks no language but the target's", samples.folder)
        return None
    texts = {lang: forgetting_texts(lang, per_language) for lang in langs}
    if forgetting_clip is not None:
        reference = (str(forgetting_clip.audio_file), forgetting_clip.text)
        source = f"{Path(forgetting_clip.audio_file).name} of the forgetting set"
    else:
        reference, source = shipped_reference(), f"the shipped voice {REFERENCE_WAV}"
    return EarPlan(samples, texts, reference, source)


def hear(plan: EarPlan, tensors, out_dir: Path) -> dict[str, dict[str, Any]]:
    """Speak every language's sentences (the base's GPT with ``tensors`` put on it; None: the base) into
    ``out_dir/LANG`` and score them: ``{language: figures}``, a language left out when it could not be heard.
    The model loads once for all the languages."""
    from xtts_tune.model.speak import load_speaker, speak
    from xtts_tune.probes import score_samples

    sp = plan.samples
    out: dict[str, dict[str, Any]] = {}
    try:
        voice, latents = load_speaker(
            sp.folder, plan.reference[0], languages=list(plan.texts), device=sp.device, gpt_tensors=tensors
        )
    except Exception as exc:
        logger.warning("forgetting by ear: not heard in %s (%s)", out_dir, exc)
        return out
    for lang, texts in plan.texts.items():
        folder = Path(out_dir) / lang
        try:
            wavs = [
                speak(
                    voice, text, latents, folder / f"sample_{i:02d}.wav", language=lang, max_seconds=sp.max_seconds
                ).path
                for i, text in enumerate(texts)
            ]
            scores = score_samples(
                list(zip(map(str, wavs), texts, strict=True)),
                [plan.reference],
                language=lang,
                cache_dir=sp.cache_dir,
                max_seconds=sp.max_seconds,
            )
        except Exception as exc:
            logger.warning("forgetting by ear: %s not heard in %s (%s)", lang, folder, exc)
            continue
        summary = scores.summary()
        out[lang] = {k: summary.get(k) for k in KEPT}
    return out


class EarScorer:
    """Hears the base once (stored on the study, reused while the plan is the same) and each kept trial."""

    def __init__(self, study: optuna.Study, plan: EarPlan, study_dir: Path):
        self.plan = plan
        stored = read_ear_base(study)
        if stored is not None and stored.get("key") == plan.key:
            self.base = stored["languages"]
        else:
            self.base = hear(plan, None, Path(study_dir) / "forgetting-ear-base")
            write_ear_base(study, {"key": plan.key, "voice": plan.source, "languages": self.base})

    def score(self, trial: optuna.Trial, record: TrialRecord, checkpoint: str | Path, run_dir: Path) -> TrialRecord:
        """Hear a running trial's best checkpoint; write its figures (each beside the base's) on it."""
        from xtts_tune.model.checkpoint import load_trained_tensors

        try:
            tensors = load_trained_tensors(Path(checkpoint), base_fingerprint=self.plan.samples.base_fingerprint)
        except Exception as exc:
            logger.warning("trial %d: not heard for forgetting (%s)", trial.number, exc)
            return record
        heard = hear(self.plan, tensors, Path(run_dir) / "forgetting-ear")
        figures = {lang: {**f, "base": self.base[lang]} for lang, f in heard.items() if lang in self.base}
        if not figures:
            return record
        write_trial(trial, forget_ear=figures)
        return dataclasses.replace(record, forget_ear=figures)


def open_ear(study: optuna.Study, plan: EarPlan | None, study_dir: Path, progress=None) -> EarScorer | None:
    """The study's by-ear scorer, the base heard (None without a plan)."""
    if plan is None:
        return None
    if progress is not None:
        langs = ", ".join(plan.texts)
        progress(
            {
                "event": "message",
                "text": f"forgetting by ear: every kept trial speaks {sum(map(len, plan.texts.values()))} "
                f"sentences ({langs}) in {plan.source}; hearing the base model first (minutes on a CPU) ...",
            }
        )
    return EarScorer(study, plan, study_dir)
