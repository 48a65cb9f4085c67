"""Load a speech dataset through coqui-tts's formatters, validate every clip once, and split it.

Validation runs before any training and reports *all* problems together (file and line), because coqui's
XTTSDataset silently retries a failing clip with another one, which hides broken data and skews training.
"""

from __future__ import annotations

import csv
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from xtts_tune.config import DataConfig
from xtts_tune.errors import UserError

logger = logging.getLogger(__name__)


class DataError(UserError):
    """A dataset problem that stops a run before any training; the message lists every problem."""


@dataclass(frozen=True)
class Clip:
    id: str
    audio_file: str
    text: str
    language: str
    metadata: str
    line: int  # 1-based line of the clip in the metadata file

    @property
    def where(self) -> str:
        return f"{self.metadata}:{self.line}"


@dataclass(frozen=True)
class Problem:
    where: str
    clip: str
    message: str

    def __str__(self) -> str:
        return f"{self.where} ({self.clip}): {self.message}"


class DataValidationError(DataError):
    def __init__(self, dataset: Path, problems: list[Problem]):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(
            f"{dataset}: {len(problems)} problem(s) in the dataset; fix or remove these clips and run again:\n{lines}"
        )


def _metadata_path(cfg: DataConfig, root: Path) -> tuple[Path, str]:
    folder = Path(cfg.path) if Path(cfg.path).is_absolute() else root / cfg.path
    name = cfg.metadata or "metadata.csv"
    return folder, name


def load_clips(cfg: DataConfig, root: Path) -> list[Clip]:
    """Read the dataset's metadata with coqui's own formatter (``ljspeech`` or ``coqui``)."""
    from TTS.config.shared_configs import BaseDatasetConfig
    from TTS.tts.configs.xtts_config import XttsConfig
    from TTS.tts.datasets import load_tts_samples

    folder, meta = _metadata_path(cfg, root)
    meta_path = folder / meta
    if not meta_path.is_file():
        raise DataError(f"{meta_path}: metadata file not found (expected {meta} in the dataset folder {folder})")
    lines = _scan_metadata(meta_path, cfg.formatter)
    dataset = BaseDatasetConfig(formatter=cfg.formatter, path=str(folder), meta_file_train=meta, language=cfg.language)
    try:
        samples, _ = load_tts_samples(XttsConfig(datasets=[dataset]), eval_split=False)
    except (AssertionError, IndexError, KeyError, csv.Error, UnicodeDecodeError) as exc:
        raise DataError(f"{meta_path}: cannot be read by coqui's '{cfg.formatter}' formatter ({exc})") from None
    by_file = {str(Path(s["audio_file"])): s for s in samples}
    clips = []
    for line_no, clip_id, audio_file, text in lines:
        sample = by_file.get(str(audio_file))
        clips.append(
            Clip(
                id=clip_id,
                audio_file=str(audio_file),
                # the formatter decides which column is the text (ljspeech: the normalised one)
                text=str(sample["text"]).strip() if sample else text,
                language=cfg.language,
                metadata=str(meta_path),
                line=line_no,
            )
        )
    if not clips:
        raise DataError(f"{meta_path}: no clips listed")
    return clips


def _scan_metadata(meta_path: Path, formatter: str) -> list[tuple[int, str, Path, str]]:
    """(line, clip id, audio path, text) per metadata line, to point problems at their line.

    coqui's formatters drop missing files silently (``coqui``) or lose line numbers, so we read the lines
    ourselves for reporting only; the records used for training come from the formatter.
    """
    folder = meta_path.parent
    out = []
    with meta_path.open(encoding="utf-8") as f:
        rows = list(enumerate(f, start=1))
    if formatter == "coqui":
        header = rows[0][1].rstrip("\n").split("|") if rows else []
        if "audio_file" not in header or "text" not in header:
            raise DataError(f"{meta_path}:1: the coqui formatter needs a header line with audio_file|text")
        a, t = header.index("audio_file"), header.index("text")
        for line_no, line in rows[1:]:
            cols = line.rstrip("\n").split("|")
            if not line.strip():
                continue
            if len(cols) < len(header):
                raise DataError(f"{meta_path}:{line_no}: expected {len(header)} columns separated by |")
            out.append((line_no, Path(cols[a]).stem, folder / cols[a], cols[t].strip()))
        return out
    for line_no, line in rows:
        if not line.strip():
            continue
        cols = line.rstrip("\n").split("|")
        if len(cols) < 3:
            raise DataError(
                f"{meta_path}:{line_no}: expected 3 columns 'id|text|normalized_text', got {len(cols)}"
            )
        out.append((line_no, cols[0], folder / "wavs" / f"{cols[0]}.wav", cols[2].strip()))
    return out


def read_wav(path: str | Path, sample_rate: int) -> torch.Tensor:
    """Mono float waveform at ``sample_rate``, shape (samples,), through coqui's own loader."""
    from TTS.tts.models.xtts import load_audio

    return load_audio(str(path), sample_rate).squeeze(0)


def validate_clips(
    clips: list[Clip],
    tokenizer,
    *,
    sample_rate: int,
    max_wav_length: int,
    max_text_tokens: int,
    min_seconds: float,
    silence_rms: float,
    dataset: Path,
    progress=None,
) -> dict[str, int]:
    """Check every clip once; raise :class:`DataValidationError` listing all problems. Return wav lengths."""
    problems: list[Problem] = []
    lengths: dict[str, int] = {}
    unk = tokenizer.tokenizer.token_to_id("[UNK]")
    for i, clip in enumerate(clips):
        found = _check_text(clip, tokenizer, unk, max_text_tokens)
        found += _check_audio(clip, sample_rate, max_wav_length, min_seconds, silence_rms, lengths)
        problems += [Problem(clip.where, clip.id, m) for m in found]
        if progress:
            progress(i + 1, len(clips))
    if problems:
        raise DataValidationError(dataset, problems)
    return lengths


def _check_text(clip: Clip, tokenizer, unk: int, max_text_tokens: int) -> list[str]:
    if not clip.text.strip():
        return ["empty transcript"]
    try:
        ids = tokenizer.encode(clip.text, clip.language)
    except (NotImplementedError, KeyError) as exc:
        return [f"cannot tokenize the transcript for language '{clip.language}' ({exc})"]
    if unk is not None and unk in ids:
        bad = sorted({ch for ch in clip.text.lower() if unk in tokenizer.encode(ch, clip.language)} - {" "})
        return [f"characters the tokenizer cannot encode: {' '.join(repr(c) for c in bad) or '(after cleaning)'}"]
    if len(ids) > max_text_tokens:
        return [f"transcript too long: {len(ids)} tokens > {max_text_tokens}"]
    return []


def _check_audio(
    clip: Clip, sample_rate: int, max_len: int, min_seconds: float, silence_rms: float, lengths: dict[str, int]
) -> list[str]:
    path = Path(clip.audio_file)
    if not path.is_file():
        return [f"missing audio file {path}"]
    try:
        wav = read_wav(path, sample_rate)
    except Exception as exc:  # torchcodec/ffmpeg raise many types for a corrupt file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return [f"unreadable or corrupt audio {path} ({first[:120]})"]
    if wav.numel() == 0:
        return [f"empty audio {path}"]
    seconds = wav.shape[-1] / sample_rate
    if wav.shape[-1] > max_len:
        return [f"clip too long: {seconds:.1f} s > the model's maximum {max_len / sample_rate:.1f} s"]
    if seconds < min_seconds:
        return [f"clip too short: {seconds:.2f} s < {min_seconds} s"]
    if float(wav.pow(2).mean().sqrt()) < silence_rms:
        return ["silent clip (RMS below data.silence_rms)"]
    lengths[clip.id] = int(wav.shape[-1])
    return []


def dataset_fingerprint(clips: list[Clip]) -> str:
    """Hash of every clip's id, text and audio file size: changes when the data changes."""
    h = hashlib.sha256()
    for c in sorted(clips, key=lambda c: c.id):
        size = Path(c.audio_file).stat().st_size if Path(c.audio_file).exists() else -1
        h.update(f"{c.id}|{c.text}|{c.language}|{size}\n".encode())
    return h.hexdigest()[:16]
