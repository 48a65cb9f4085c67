"""Listening samples: a kept trial's best checkpoint speaks a few validation texts in the validation speaker's
voice, so a person can judge a fine-tune by ear (validation loss is only a proxy).

Only a base folder with a HiFi-GAN decoder can make audio (a released XTTS v2 folder has one; the embedded
tiny base has none, and the report says so). The trial's trained tensors are applied to the base folder's
model loaded through coqui's own ``Xtts.load_checkpoint`` (:mod:`xtts_tune.model.speak`), so no full copy of
the model is written per trial. The wavs go beside the trial's checkpoint (``samples/sample_NN.wav``), to
the dashboard as audio artifacts, and into the report as embedded players.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import optuna

from xtts_tune.record import SampleEntry, write_trial
from xtts_tune.search.notes import upload_file

logger = logging.getLogger(__name__)

NO_DECODER = (
    "the base model has no HiFi-GAN decoder, so it cannot make audio (the embedded tiny base has none); "
    "a released XTTS v2 folder as base_model gets listening samples for the kept trials"
)


@dataclass(frozen=True)
class SamplePlan:
    """What every kept trial speaks: the same texts, in the same voice, with the same seed; and what the
    probes (:mod:`xtts_tune.search.ears`) score them against."""

    folder: Path
    base_fingerprint: str
    texts: tuple[str, ...]
    speaker_wav: str
    device: str
    max_seconds: float | None = None
    language: str = "en"
    reference: tuple[tuple[str, str], ...] = ()
    """The target's training clips (wav, text): the probes' reference voice and speaking rate."""
    heldout: tuple[tuple[str, str], ...] = ()
    """Validation clips of the target (wav, text): the similarity ceiling and the ASR's error floor."""
    cache_dir: Path | None = None


HELDOUT_CLIPS = 10
"""Validation clips scored for the ceiling (the target's own voice against the reference)."""


def sample_plan(
    base,
    data,
    *,
    count: int,
    short: int = 2,
    device: str,
    max_seconds: float | None = None,
    language: str = "en",
    cache_dir: Path | None = None,
) -> SamplePlan | None:
    """The plan for a study: the first ``count`` validation clips' texts, then ``short`` 1-3-word texts
    (:func:`xtts_tune.probes.sample_texts`: short texts are where fine-tunes babble), the first validation
    clip's audio as the voice. None when ``count`` is 0 or the base folder has no decoder."""
    from xtts_tune.model.base import has_decoder
    from xtts_tune.probes import sample_texts

    if count <= 0 or not has_decoder(base.folder):
        return None
    val = sorted(data.split.val)
    shorts = tuple(t for t in sample_texts() if len(t.split()) <= 3)[: max(0, short)]
    return SamplePlan(
        folder=base.folder,
        base_fingerprint=base.fingerprint,
        texts=tuple(data.clips[c].text for c in val[:count]) + shorts,
        speaker_wav=data.clips[val[0]].audio_file,
        device=device,
        max_seconds=max_seconds,
        language=language,
        reference=tuple((data.clips[c].audio_file, data.clips[c].text) for c in sorted(data.split.train)),
        heldout=tuple((data.clips[c].audio_file, data.clips[c].text) for c in val[:HELDOUT_CLIPS]),
        cache_dir=cache_dir,
    )


def speak_trial(
    trial: optuna.Trial, plan: SamplePlan, checkpoint: Path, run_dir: Path, artifact_dir: Path, progress=None
) -> list[SampleEntry]:
    """Make the trial's samples, upload them as audio artifacts and record them on the trial; ``progress`` gets
    a ``message`` event before (making them takes minutes on a CPU) and one naming the files after.

    A failure is logged and leaves the trial without samples: listening is an extra that never loses a trial.
    """
    from xtts_tune.model.checkpoint import load_trained_tensors
    from xtts_tune.model.speak import speak_samples

    say = progress or (lambda event: None)
    started = time.perf_counter()
    say(
        {
            "event": "message",
            "text": f"making {len(plan.texts)} listening sample(s) with the best checkpoint "
            f"into {run_dir / 'samples'} (minutes on a CPU) ...",
        }
    )
    try:
        tensors = load_trained_tensors(checkpoint, base_fingerprint=plan.base_fingerprint)
        paths = speak_samples(
            plan.folder,
            list(plan.texts),
            plan.speaker_wav,
            run_dir / "samples",
            device=plan.device,
            max_seconds=plan.max_seconds,
            gpt_tensors=tensors,
        )
    except Exception as exc:
        logger.warning("trial %d: no listening samples (%s)", trial.number, exc)
        return []
    entries = [
        SampleEntry(text, str(path), upload_file(trial, path, artifact_dir, "audio/wav"))
        for text, path in zip(plan.texts, paths, strict=True)
    ]
    write_trial(trial, samples=entries)
    say(
        {
            "event": "message",
            "text": f"listening samples made in {time.perf_counter() - started:.0f} s: "
            + ", ".join(str(p) for p in paths),
        }
    )
    return entries
