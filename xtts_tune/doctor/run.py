"""Running the dataset doctor: measure every clip (cached), rank the ones that will hurt, write their ids.

:func:`examine` takes clips (a notebook's, or a study's through :func:`check_dataset`) and returns a
:class:`DoctorReport`; :func:`check_clips` is its list of findings. Progress is reported as event dicts
(``{"event": "doctor", "done", "total", "cached", "eta_seconds"}``) that the terminal prints.
:func:`write_exclude` writes the flagged ids as a ``data.exclude`` file, each with its reasons as a comment.

>>> from pathlib import Path
>>> from xtts_tune.data.clips import Clip
>>> corpus = Path("corpora/real-voice-kathleen")
>>> lines = (corpus / "metadata_coqui.csv").read_text().splitlines()[1:13]
>>> clips = [Clip(l.split("|")[0][5:-5], str(corpus / l.split("|")[0]), l.split("|")[1], "en", "m", i) for i, l in enumerate(lines, 1)]
>>> clips.append(Clip("copy", clips[0].audio_file, "Another text.", "en", "m", 13))  # its audio says more
>>> [(f.clip, [r.check for r in f.reasons]) for f in check_clips(clips, asr=False)]
[('copy', ['speaking rate', 'duplicate audio'])]
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from xtts_tune.doctor.checks import ClipFinding, ClipLimits, Reason, find_outliers
from xtts_tune.doctor.measure import doctor_cache_dir, heard_key, measure_clip

logger = logging.getLogger(__name__)


@dataclass
class DoctorReport:
    """What the doctor found: the ranked findings, the thresholds this dataset gave, and how it ran."""

    findings: list[ClipFinding]
    clips: int
    thresholds: dict[str, float] = field(default_factory=dict)
    asr_note: str | None = None
    """None when the ASR heard every clip; else why the transcript check is n/a."""
    seconds: float = 0.0
    cached: int = 0
    """Clips whose measurements all came from the cache."""
    path: Path | None = None
    """Where the findings were written as JSON (:func:`check_dataset`), if anywhere."""

    @property
    def flagged_ids(self) -> list[str]:
        return [f.clip for f in self.findings]

    def to_dict(self) -> dict:
        return {
            "clips": self.clips,
            "flagged": len(self.findings),
            "thresholds": {k: round(v, 6) for k, v in self.thresholds.items()},
            "asr_note": self.asr_note,
            "seconds": round(self.seconds, 2),
            "cached": self.cached,
            "findings": [f.to_dict() for f in self.findings],
        }


def asr_availability(language: str) -> str | None:
    """None when the shipped ASR can transcribe ``language``, else the one-line n/a reason."""
    from xtts_tune.probes.asr import AsrUnavailable, model_folder, unsupported_reason

    reason = unsupported_reason(language)
    if reason:
        return reason
    try:
        model_folder(language)
    except AsrUnavailable as exc:
        return f"n/a: {exc}"
    return None


def examine(
    clips: Sequence,
    *,
    limits: ClipLimits | None = None,
    cache_dir: str | Path | None = None,
    hashes=None,
    asr: bool | None = None,
    progress=None,
) -> DoctorReport:
    """Measure every clip (reading ``cache_dir``'s entries; None: no cache) and rank the outliers.

    ``asr`` None: use the ASR (in each clip's language: Whisper tiny.en for English, the multilingual base for
    the others) when every clip's language has one and it is installed. ``hashes``: an
    :class:`xtts_tune.data.content.AudioHashes` to reuse (the study's), else the files are hashed here.
    """
    from xtts_tune.probes.audio import content_hash
    from xtts_tune.probes.text import cer

    start = time.monotonic()
    languages = sorted({c.language for c in clips})
    notes = [n for n in (asr_availability(lang) for lang in languages) if n] if asr is not False else []
    use_asr = asr is not False and not notes
    asr_note = None if use_asr else (notes[0] if notes else "n/a: the transcript check was turned off")
    measures: dict[str, dict] = {}
    broken: list[ClipFinding] = []
    cached = measured = 0
    for i, clip in enumerate(clips):
        path = Path(clip.audio_file)
        try:
            digest = hashes.digest(path) if hashes is not None else content_hash(path)
            entry, hit = measure_clip(path, digest, cache_dir=cache_dir, asr=use_asr, language=clip.language)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is a finding, not a crash
            reason = Reason("unreadable audio", 0.0, 0.0, detail=f"{type(exc).__name__}: {exc}"[:120], severity=5.0)
            broken.append(ClipFinding(clip.id, clip.where, clip.audio_file, clip.text, (reason,)))
            continue
        measures[clip.id] = {**entry, "hash": digest}
        if use_asr:
            measures[clip.id]["cer"] = cer(clip.text, entry.get(heard_key(clip.language), ""))
        cached += hit
        measured += not hit
        if progress is not None:
            elapsed = time.monotonic() - start
            left = len(clips) - i - 1
            eta = elapsed / measured * left if measured else 0.0
            progress({"event": "doctor", "done": i + 1, "total": len(clips), "cached": cached, "eta_seconds": eta})
    readable = [c for c in clips if c.id in measures]
    findings, thresholds = find_outliers(readable, measures, limits or ClipLimits()) if readable else ([], {})
    if hashes is not None:
        hashes.save()
    return DoctorReport(
        findings=broken + findings,
        clips=len(clips),
        thresholds=thresholds,
        asr_note=asr_note,
        seconds=time.monotonic() - start,
        cached=cached,
    )


def check_clips(clips: Sequence, **kwargs) -> list[ClipFinding]:
    """The flagged clips, ranked: :func:`examine`'s findings (same arguments)."""
    return examine(clips, **kwargs).findings


def study_limits(cfg) -> ClipLimits:
    """The GPT limits of the study's base model (its config and vocabulary only; the weights are not loaded)."""
    from xtts_tune.model.base import check_base_folder, resolve_base_path, trainer_config

    folder = resolve_base_path(cfg.base_model, Path(cfg.root))
    check_base_folder(folder)
    config = trainer_config(folder)
    args = config.model_args
    from TTS.tts.layers.xtts.tokenizer import VoiceBpeTokenizer

    tokenizer = VoiceBpeTokenizer(str(folder / "vocab.json"))

    def count(text: str, language: str) -> int:
        try:
            return len(tokenizer.encode(text, language))
        except (NotImplementedError, KeyError):  # a language the tokenizer lacks: validation names it
            return 0

    return ClipLimits(
        sample_rate=config.audio.sample_rate,
        max_wav_length=args.max_wav_length,
        max_text_tokens=args.max_text_length,
        count_tokens=count,
    )


def check_dataset(cfg, *, progress=None, use_cache: bool = True) -> DoctorReport:
    """:func:`examine` on a study's dataset (every clip, ``data.exclude``'d ones too), with its base model's
    limits, caching under ``<cache_dir>/doctor``."""
    from xtts_tune.io import atomic_write_json
    from xtts_tune.training.prepare import audio_hashes, ensure_dataset

    clips = ensure_dataset(cfg)
    report = examine(
        clips,
        limits=study_limits(cfg),
        cache_dir=doctor_cache_dir(cfg.cache_dir) if use_cache else None,
        hashes=audio_hashes(cfg) if use_cache else None,
        progress=progress,
    )
    if use_cache:
        report.path = atomic_write_json(report_path(cfg), report.to_dict())
    return report


def report_path(cfg) -> Path:
    """Where :func:`check_dataset` keeps a study's last findings: ``<cache_dir>/doctor/report.json``."""
    return doctor_cache_dir(cfg.cache_dir) / "report.json"


def data_check_line(cfg) -> str:
    """The line a search prints about its data: what the last ``check-data`` of this study flagged, or how to
    run one (a search does not run the doctor itself: the ASR over every clip takes minutes).

    >>> from xtts_tune.config import load_config
    >>> data_check_line(load_config("studies/demo.yaml")).startswith("data: ")
    True
    """
    import json

    path = report_path(cfg)
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):
        return (
            f"data: not checked yet; `xtts-tune check-data --config {cfg.source}` ranks the clips most likely "
            "to hurt (a wrong transcript, another voice, clipping, silences, duplicates)"
        )
    return (
        f"data: check-data flagged {stored.get('flagged', 0)} of {stored.get('clips', '?')} clips (the list: "
        f"{path}); listen to them, and set data.exclude for those to drop"
    )


def write_exclude(findings: Sequence[ClipFinding], path: str | Path, *, dataset: str = "") -> Path:
    """Write the flagged ids to ``path`` (atomically) as a ``data.exclude`` file, one a line with its
    reasons as a comment, for the user to review."""
    from xtts_tune.io import atomic_write_text

    head = (
        f"# {len(findings)} clips flagged by xtts-tune check-data{' on ' + dataset if dataset else ''}.\n"
        "# Listen to them, delete the lines of the clips to keep, then set data.exclude to this file.\n"
    )
    body = "".join(f"{f.clip}  # {'; '.join(str(r) for r in f.reasons)}\n" for f in findings)
    return atomic_write_text(path, head + body)
