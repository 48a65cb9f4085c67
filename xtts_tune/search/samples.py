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
from typing import Any

import optuna

from xtts_tune.search.settings import quiet_experimental

logger = logging.getLogger(__name__)

SAMPLES_ATTR = "samples"
"""Trial user attribute: ``[{"text": ..., "path": ..., "artifact_id": ...}, ...]``."""
STATUS_ATTR = "listening_samples"
"""Study user attribute: why there are no samples (``None`` when the base can make them)."""

NO_DECODER = (
    "the base model has no HiFi-GAN decoder, so it cannot make audio (the embedded tiny base has none); "
    "a released XTTS v2 folder as base_model gets listening samples for the kept trials"
)


@dataclass(frozen=True)
class SamplePlan:
    """What every kept trial speaks: the same texts, in the same voice, with the same seed."""

    folder: Path
    base_fingerprint: str
    texts: tuple[str, ...]
    speaker_wav: str
    device: str
    max_seconds: float | None = None


def sample_plan(base, data, *, count: int, device: str, max_seconds: float | None = None) -> SamplePlan | None:
    """The plan for a study: the first ``count`` validation clips' texts, the first one's audio as the voice.
    None when ``count`` is 0 or the base folder has no decoder."""
    from xtts_tune.model.base import has_decoder

    if count <= 0 or not has_decoder(base.folder):
        return None
    val = sorted(data.split.val)[:count]
    return SamplePlan(
        folder=base.folder, base_fingerprint=base.fingerprint, texts=tuple(data.clips[c].text for c in val),
        speaker_wav=data.clips[val[0]].audio_file, device=device, max_seconds=max_seconds,
    )


def speak_trial(trial: optuna.Trial, plan: SamplePlan, checkpoint: Path, run_dir: Path, artifact_dir: Path,
                progress=None) -> list:
    """Make the trial's samples, upload them as audio artifacts and record them on the trial; ``progress`` gets
    a ``message`` event before (making them takes minutes on a CPU) and one naming the files after.

    A failure is logged and leaves the trial without samples: listening is an extra that never loses a trial.
    """
    from xtts_tune.model.checkpoint import load_trained_tensors
    from xtts_tune.model.speak import speak_samples

    say = progress or (lambda event: None)
    started = time.perf_counter()
    say({"event": "message", "text": f"making {len(plan.texts)} listening sample(s) with the best checkpoint "
                                     f"into {run_dir / 'samples'} (minutes on a CPU) ..."})
    try:
        tensors = load_trained_tensors(checkpoint, base_fingerprint=plan.base_fingerprint)
        paths = speak_samples(
            plan.folder, list(plan.texts), plan.speaker_wav, run_dir / "samples", device=plan.device,
            max_seconds=plan.max_seconds, gpt_tensors=tensors,
        )
    except Exception as exc:
        logger.warning("trial %d: no listening samples (%s)", trial.number, exc)
        return []
    entries: list[dict[str, Any]] = []
    for text, path in zip(plan.texts, paths, strict=True):
        entry = {"text": text, "path": str(path), "artifact_id": _upload(trial, path, artifact_dir)}
        entries.append(entry)
    trial.set_user_attr(SAMPLES_ATTR, entries)
    say({"event": "message", "text": f"listening samples made in {time.perf_counter() - started:.0f} s: "
                                     + ", ".join(str(p) for p in paths)})
    return entries


def _upload(trial: optuna.Trial, path: Path, artifact_dir: Path) -> str | None:
    try:
        from optuna.artifacts import FileSystemArtifactStore, upload_artifact

        with quiet_experimental():
            return upload_artifact(
                artifact_store=FileSystemArtifactStore(str(artifact_dir)), file_path=str(path),
                study_or_trial=trial, mimetype="audio/wav",
            )
    except Exception as exc:
        logger.warning("trial %d: could not upload %s to the dashboard (%s)", trial.number, path.name, exc)
        return None
