"""The search's ears: the probes (:mod:`xtts_tune.probes`) score every kept trial's listening samples, the base
model's (the same texts, voice and seed) and the target's own held-out clips, and the unseen-clips comparison.

Each figure lands in the study record: a trial's :attr:`~xtts_tune.record.TrialRecord.probes`, the study's
:attr:`~xtts_tune.record.StudyRecord.probes_base` and ``probes_ceiling``, and the test comparison's ``sound``.
The per-sample figures go to ``probes.json`` beside the wavs. Scoring is cached per wav (the probes' own
cache, under the study's ``cache/probes``), so a search that continues never scores a sample twice, and a
failure is logged and leaves the figure out: listening never loses a trial.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xtts_tune.io import atomic_write_json
from xtts_tune.record import SampleEntry, StudyRecord, write_study
from xtts_tune.search.samples import SamplePlan

logger = logging.getLogger(__name__)

TEST_TEXTS = 6
"""Test-split texts the unseen-clips comparison speaks with the winner, the guide's trial and the base."""


def score_wavs(plan: SamplePlan, samples: Sequence[tuple[str, str]], out_dir: Path | None):
    """Score (wav, text) pairs against the plan's reference voice; write ``probes.json`` in ``out_dir``.
    Returns :class:`~xtts_tune.probes.ProbeScores`, or None (logged) when the probes fail."""
    from xtts_tune.probes import score_samples

    try:
        scores = score_samples(
            list(samples),
            list(plan.reference),
            language=plan.language,
            cache_dir=plan.cache_dir,
            max_seconds=plan.max_seconds,
        )
    except Exception as exc:
        logger.warning("the probes could not score %s (%s)", out_dir or "the samples", exc)
        return None
    if out_dir is not None:
        atomic_write_json(Path(out_dir) / "probes.json", scores.to_dict())
    return scores


def score_entries(plan: SamplePlan, entries: Sequence[SampleEntry], out_dir: Path) -> dict[str, Any] | None:
    """A trial's samples scored: the summary to store on the trial (None without samples or on failure)."""
    if not entries:
        return None
    scores = score_wavs(plan, [(e.path, e.text) for e in entries], out_dir)
    return None if scores is None else scores.summary()


def ensure_baselines(study, plan: SamplePlan, study_dir: Path) -> StudyRecord:
    """The base model's samples and the target's held-out clips scored once per study (kept in the record;
    a new probe version scores them again). Returns the study's record."""
    from xtts_tune.probes import PROBE_VERSION, ceiling

    record = StudyRecord.from_study(study)
    fresh = [
        r is not None and r.get("probe_version") == PROBE_VERSION for r in (record.probes_base, record.probes_ceiling)
    ]
    if all(fresh):
        return record
    if not fresh[0]:
        base_dir = study_dir / "base-samples"
        wavs = _speak(plan, None, base_dir, plan.texts)
        scores = score_wavs(plan, list(zip(map(str, wavs), plan.texts, strict=True)), base_dir) if wavs else None
        if scores is not None:
            write_study(study, probes_base=scores.summary())
    if not fresh[1] and plan.heldout:
        try:
            top = ceiling(list(plan.heldout), list(plan.reference), language=plan.language, cache_dir=plan.cache_dir)
            write_study(study, probes_ceiling=top.summary())
        except Exception as exc:
            logger.warning("the probes could not score the target's held-out clips (%s)", exc)
    return StudyRecord.from_study(study)


def _speak(plan: SamplePlan, tensors, out_dir: Path, texts: Sequence[str]) -> list[Path]:
    from xtts_tune.model.speak import speak_samples

    try:
        return speak_samples(
            plan.folder,
            list(texts),
            plan.speaker_wav,
            out_dir,
            language=plan.language,
            device=plan.device,
            max_seconds=plan.max_seconds,
            gpt_tensors=tensors,
        )
    except Exception as exc:
        logger.warning("no samples in %s (%s)", out_dir, exc)
        return []


def sound_on_test(plan: SamplePlan, texts: Sequence[str], models: dict[str, Any], out_dir: Path) -> dict | None:
    """The unseen-clips comparison by ear: the first :data:`TEST_TEXTS` test-split texts spoken by each model
    (``models``: role → trained tensors, None for the base) and scored. ``{"texts": N, role: {"similarity",
    "cer", "n_flagged"}}``, or None when nothing could be scored."""
    texts = list(texts)[:TEST_TEXTS]
    if not texts:
        return None
    if plan.reference:  # conditioned on one training clip: the voice the fine-tune learned, not a test clip's
        plan = dataclasses.replace(plan, speaker_wav=plan.reference[0][0])
    out: dict[str, Any] = {"texts": len(texts)}
    for role, tensors in models.items():
        folder = out_dir / role
        wavs = _speak(plan, tensors, folder, texts)
        scores = score_wavs(plan, list(zip(map(str, wavs), texts, strict=True)), folder) if wavs else None
        if scores is not None:
            out[role] = {"similarity": scores.similarity, "cer": scores.cer, "n_flagged": scores.n_flagged}
    return out if len(out) > 1 else None
