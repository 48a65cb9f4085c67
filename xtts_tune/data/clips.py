"""Load a speech dataset through coqui-tts's formatters, validate every clip once, and split it.

Validation runs before any training and reports *all* problems together (file and line), because coqui's
XTTSDataset silently retries a failing clip with another one, which hides broken data and skews training.
Problems of one kind are grouped ("150 clips: audio file missing: a (metadata.csv:1), ... and 140 more", the
full list in a file the line names). Mistakes that concern the
whole file (not UTF-8, duplicate ids, no ``wavs/`` folder, a language the tokenizer lacks) are one line.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from xtts_tune.config import DataConfig
from xtts_tune.data.audio import AudioReadError, read_audio
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
    kind: str = ""
    """What went wrong, without the clip's details (problems of one kind are grouped by it)."""

    def __str__(self) -> str:
        return f"{self.where} ({self.clip}): {self.message}"


class DataValidationError(DataError):
    """Every problem found in the dataset: one line per kind, naming its clips (up to :data:`NAMED_CLIPS`, then
    "and N more"; the full list is then written to ``problems_file``, whose path the message gives)."""

    def __init__(self, dataset: Path, problems: list[Problem]):
        self.problems = problems
        groups: dict[str, list[Problem]] = {}
        for p in problems:
            groups.setdefault(p.kind or p.message, []).append(p)
        self.problems_file = (
            _write_problems(dataset, problems) if any(len(g) > NAMED_CLIPS for g in groups.values()) else None
        )
        listed = f" (all {len(problems)}: {self.problems_file})" if self.problems_file else ""
        lines = []
        for kind, group in groups.items():
            if len(group) == 1:
                lines.append(f"  - {group[0]}")
                continue
            named = ", ".join(f"{p.clip} ({p.where})" for p in group[:NAMED_CLIPS])
            more = f" and {len(group) - NAMED_CLIPS} more" if len(group) > NAMED_CLIPS else ""
            lines.append(f"  - {len(group)} clips: {kind}: {named}{more}")
        super().__init__(
            f"{dataset}: {len(problems)} problem(s) in the dataset{listed}; fix or remove these clips and run again:\n"
            + "\n".join(lines)
        )


NAMED_CLIPS = 10
"""A grouped dataset problem names this many clips, then "and N more" (the full list goes to a file)."""


def _write_problems(dataset: Path, problems: list[Problem]) -> Path:
    """Every problem, one per line, in a file of the temporary folder (the dataset and the study are left as
    they are): ``<tmp>/xtts-tune-problems-<dataset hash>.txt``."""
    import hashlib
    import tempfile

    from xtts_tune.io import atomic_write_text

    digest = hashlib.sha1(str(Path(dataset).resolve()).encode()).hexdigest()[:10]
    path = Path(tempfile.gettempdir()) / f"xtts-tune-problems-{digest}.txt"
    atomic_write_text(path, "".join(f"{p}\n" for p in problems))
    return path


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
    _check_ids(meta_path, lines)
    if cfg.formatter == "ljspeech" and lines and not (folder / "wavs").is_dir():
        raise DataError(
            f"{folder / 'wavs'}: audio folder not found; the ljspeech formatter reads wavs/<id>.wav for each "
            f"line of {meta}"
        )
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
    rows = list(enumerate(read_utf8(meta_path).splitlines(keepends=True), start=1))
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
            raise DataError(f"{meta_path}:{line_no}: expected 3 columns 'id|text|normalized_text', got {len(cols)}")
        out.append((line_no, cols[0], folder / "wavs" / f"{cols[0]}.wav", cols[2].strip()))
    return out


def read_utf8(path: Path) -> str:
    """The file's text; a file that is not UTF-8 is one line naming its line, the byte and how to convert it."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
            source = "UTF-16"
        else:
            try:
                data.decode("cp1252")
                source = "latin-1/cp1252"
            except UnicodeDecodeError:
                source = None
        how = (
            f"it looks like {source}: convert it with iconv -f {source.split('/')[-1].lower()} -t utf-8 {path.name} "
            f"> {path.stem}.utf8{path.suffix} and use that file"
            if source
            else "convert it to UTF-8"
        )
        raise DataError(
            f"{path}:{line}: not UTF-8 (byte 0x{data[exc.start]:02x} at byte {column} of the line); {how}"
        ) from None


def _check_ids(meta_path: Path, lines: list[tuple[int, str, Path, str]]) -> None:
    """Refuse a metadata file that lists one clip id twice, naming every duplicate and its lines."""
    seen: dict[str, list[int]] = {}
    for line_no, clip_id, _, _ in lines:
        seen.setdefault(clip_id, []).append(line_no)
    dupes = [(cid, nums) for cid, nums in seen.items() if len(nums) > 1]
    if dupes:
        named = ", ".join(f"{cid} (lines {', '.join(map(str, nums))})" for cid, nums in dupes[:10])
        more = f" and {len(dupes) - 10} more" if len(dupes) > 10 else ""
        raise DataError(f"{meta_path}: clip ids are not unique: {named}{more}; give each clip its own id")


def read_wav(path: str | Path, sample_rate: int) -> torch.Tensor:
    """Mono float waveform at ``sample_rate``, shape (samples,) (:func:`xtts_tune.data.audio.read_audio`:
    soundfile, FFmpeg only for other formats)."""
    return read_audio(path, sample_rate)[0].squeeze(0)


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
    rates: dict[int, int] | None = None,
) -> dict[str, int]:
    """Check every clip once; raise :class:`DataValidationError` listing all problems. Return wav lengths;
    ``rates`` (when given) counts the clips of each original sample rate."""
    problems: list[Problem] = []
    lengths: dict[str, int] = {}
    unk = tokenizer.tokenizer.token_to_id("[UNK]")
    for language in sorted({c.language for c in clips}):
        try:
            tokenizer.encode("a", language)
        except (NotImplementedError, KeyError) as exc:
            raise DataError(
                f"data.language '{language}' cannot be used with this base model's tokenizer ({exc}); "
                "set data.language to a language the base supports (its config.json 'languages')"
            ) from None
    for i, clip in enumerate(clips):
        found = _check_text(clip, tokenizer, unk, max_text_tokens)
        found += _check_audio(clip, sample_rate, max_wav_length, min_seconds, silence_rms, lengths, rates)
        problems += [Problem(clip.where, clip.id, message, kind) for kind, message in found]
        if progress:
            progress(i + 1, len(clips))
    if problems:
        raise DataValidationError(dataset, problems)
    return lengths


def _check_text(clip: Clip, tokenizer, unk: int, max_text_tokens: int) -> list[tuple[str, str]]:
    """(kind, message) of each problem with the clip's transcript."""
    if not clip.text.strip():
        return [("empty transcript", "empty transcript")]
    try:
        ids = tokenizer.encode(clip.text, clip.language)
    except (NotImplementedError, KeyError) as exc:
        kind = "transcript cannot be tokenized"
        return [(kind, f"cannot tokenize the transcript for language '{clip.language}' ({exc})")]
    if unk is not None and unk in ids:
        bad = sorted({ch for ch in clip.text.lower() if unk in tokenizer.encode(ch, clip.language)} - {" "})
        shown = " ".join(repr(c) for c in bad) or "(after cleaning)"
        return [("characters the tokenizer cannot encode", f"characters the tokenizer cannot encode: {shown}")]
    if len(ids) > max_text_tokens:
        return [("transcript too long", f"transcript too long: {len(ids)} tokens > {max_text_tokens}")]
    return []


def _check_audio(
    clip: Clip,
    sample_rate: int,
    max_len: int,
    min_seconds: float,
    silence_rms: float,
    lengths: dict[str, int],
    rates: dict[int, int] | None = None,
) -> list[tuple[str, str]]:
    """(kind, message) of each problem with the clip's audio; records the length of a good clip."""
    path = Path(clip.audio_file)
    if not path.is_file():
        return [("audio file missing", f"missing audio file {path}")]
    try:
        wav, rate = read_audio(path, sample_rate)
    except AudioReadError as exc:
        return [("unreadable or corrupt audio", f"unreadable or corrupt audio {path} ({exc.reason})")]
    wav = wav.squeeze(0)
    if rates is not None:
        rates[rate] = rates.get(rate, 0) + 1
    if wav.numel() == 0:
        return [("empty audio", f"empty audio {path}")]
    seconds = wav.shape[-1] / sample_rate
    if wav.shape[-1] > max_len:
        limit = max_len / sample_rate
        return [
            (f"clip longer than {limit:.1f} s", f"clip too long: {seconds:.1f} s > the model's maximum {limit:.1f} s")
        ]
    if seconds < min_seconds:
        return [(f"clip shorter than {min_seconds} s", f"clip too short: {seconds:.2f} s < {min_seconds} s")]
    if float(wav.pow(2).mean().sqrt()) < silence_rms:
        return [("silent clip (RMS below data.silence_rms)", "silent clip (RMS below data.silence_rms)")]
    lengths[clip.id] = int(wav.shape[-1])
    return []
