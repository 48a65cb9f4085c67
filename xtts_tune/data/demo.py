"""Deterministic demo speech datasets synthesised with espeak-ng.

``xtts-tune demo-data OUT`` writes two LJSpeech-format datasets:

* ``OUT/base``: 450 sentences in one voice (espeak-ng's default US English male), used to pre-train the
  tiny base model;
* ``OUT/target``: 150 clips of 2 to 5 seconds in a clearly different voice (a female variant, slower and
  higher), used for fine-tuning.

A second target voice, ``voice2`` (a male variant, lower than both), is generated from the same
sentences on request (``which=("voice2",)``, or ``data.demo_target`` on a folder named ``voice2``); the
search-strategy benchmark (``make bench-search``) records its table on it.

Both take their text from ``xtts_tune/resources/demo_sentences.txt`` (plain English we wrote, only letters,
spaces and ``. , ? ! ' -``): the base corpus uses the first 450 sentences and the target corpus the ones after
them, so the two never share a sentence.

Each dataset folder holds ``metadata.csv`` (``id|text|normalized_text``, no header) and ``wavs/<id>.wav``
(mono, 16-bit PCM, 22050 Hz). A folder is built in ``<name>.partial`` under a lock and renamed when done, so an
interrupted run never leaves a folder that looks complete, and workers at once build it once. espeak-ng is
deterministic.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
import wave
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from xtts_tune.errors import UserError
from xtts_tune.io import file_lock

logger = logging.getLogger(__name__)

ProgressFn = Callable[[int, int], None]

SAMPLE_RATE = 22050
"""Sample rate of every demo clip (espeak-ng's native rate)."""

BASE_COUNT = 450
"""Sentences in the base corpus: the first ``BASE_COUNT`` lines of the sentence file."""

BASE_VAL_FRACTION = 0.1
"""The embedded base's validation share of the base corpus (split seed 0): those clips were held out of its
pre-training, so they measure what a fine-tune forgot of the base voice (:mod:`xtts_tune.data.forgetting`)."""

TARGET_COUNT = 150
TARGET_MIN_SECONDS = 2.0
TARGET_MAX_SECONDS = 5.0

ESPEAK = "espeak-ng"
ESPEAK_MISSING = "espeak-ng is not installed; install it with: sudo apt-get install -y espeak-ng"

ALLOWED_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ .,?!'-")
"""Characters the demo sentences may use (the tiny model's tokenizer knows nothing else)."""

_WORKERS = 2
_TIMEOUT_S = 60


class DemoDataError(UserError):
    """The demo data cannot be generated (espeak-ng missing or failing, too few clips fit, ...)."""


@dataclass(frozen=True)
class VoiceSpec:
    """One espeak-ng voice: ``espeak-ng -v VOICE -s SPEED -p PITCH``."""

    name: str
    voice: str
    speed: int  # words per minute
    pitch: int  # 0..99

    def args(self) -> list[str]:
        return ["-v", self.voice, "-s", str(self.speed), "-p", str(self.pitch)]


BASE_VOICE = VoiceSpec(name="base", voice="en-us", speed=165, pitch=45)
TARGET_VOICE = VoiceSpec(name="target", voice="en-us+f3", speed=140, pitch=70)
VOICE2 = VoiceSpec(name="voice2", voice="en-us+m3", speed=155, pitch=20)

DEMO_TARGETS = {voice.name: voice for voice in (TARGET_VOICE, VOICE2)}
"""The demo's target voices by name (a target folder with one of these names gets that voice)."""


def load_demo_sentences() -> list[str]:
    """The shipped demo sentences, one per line, in file order (blank lines skipped)."""
    text = resources.files("xtts_tune").joinpath("resources", "demo_sentences.txt").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


def split_demo_sentences(sentences: list[str] | None = None) -> tuple[list[str], list[str]]:
    """(base sentences, target candidates): the first ``BASE_COUNT`` lines and all lines after them."""
    if sentences is None:
        sentences = load_demo_sentences()
    if len(sentences) <= BASE_COUNT:
        raise DemoDataError(f"need more than {BASE_COUNT} demo sentences, got {len(sentences)}")
    return sentences[:BASE_COUNT], sentences[BASE_COUNT:]


def _read_metadata_ids(folder: Path) -> list[str] | None:
    meta = folder / "metadata.csv"
    if not meta.is_file():
        return None
    ids = []
    try:
        lines = meta.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    for line in lines:
        if not line.strip():
            continue
        cols = line.split("|")
        if len(cols) != 3 or not cols[0]:
            return None
        ids.append(cols[0])
    return ids


def is_dataset_complete(folder: Path, count: int | None = None) -> bool:
    """True when ``folder`` has a readable ``metadata.csv`` (with ``count`` rows, if given) and every wav it names.

    A ``<name>.partial`` folder left by an interrupted run is never the dataset itself, so it never counts.
    """
    folder = Path(folder)
    if folder.name.endswith(".partial") or not folder.is_dir():
        return False
    ids = _read_metadata_ids(folder)
    if not ids or (count is not None and len(ids) != count):
        return False
    wavs = folder / "wavs"
    return all((wavs / f"{clip_id}.wav").is_file() and (wavs / f"{clip_id}.wav").stat().st_size > 44 for clip_id in ids)


def _looks_generated(folder: Path) -> bool:
    """Whether ``folder`` holds nothing but what this module writes (so it may be replaced)."""
    return all(p.name in ("metadata.csv", "wavs") for p in folder.iterdir())


def _partial_path(out_dir: Path) -> Path:
    out_dir = out_dir.absolute()
    return out_dir.with_name(out_dir.name + ".partial")


def _espeak_path() -> str:
    path = shutil.which(ESPEAK)
    if path is None:
        raise DemoDataError(ESPEAK_MISSING)
    return path


def _decode_frames(frames: bytes, sampwidth: int, nchannels: int) -> np.ndarray:
    """PCM bytes -> float64 array (frames, channels) in [-1, 1]."""
    if sampwidth == 1:
        data = (np.frombuffer(frames, dtype=np.uint8).astype(np.float64) - 128.0) / 128.0
    elif sampwidth == 2:
        data = np.frombuffer(frames, dtype="<i2").astype(np.float64) / 32768.0
    elif sampwidth == 3:
        raw = np.frombuffer(frames, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        ints = raw[:, 0] | (raw[:, 1] << 8) | (raw[:, 2] << 16)
        ints = np.where(ints >= 1 << 23, ints - (1 << 24), ints)
        data = ints.astype(np.float64) / float(1 << 23)
    elif sampwidth == 4:
        data = np.frombuffer(frames, dtype="<i4").astype(np.float64) / float(1 << 31)
    else:
        raise DemoDataError(f"unsupported wav sample width {sampwidth} bytes")
    return data.reshape(-1, nchannels)


def _to_standard_pcm(frames: bytes, nchannels: int, sampwidth: int, framerate: int) -> bytes:
    """Convert PCM of any common layout to mono 16-bit ``SAMPLE_RATE`` (mean of channels, linear resampling)."""
    mono = _decode_frames(frames, sampwidth, nchannels).mean(axis=1)
    if framerate != SAMPLE_RATE and len(mono) > 0:
        n_out = max(1, int(round(len(mono) * SAMPLE_RATE / framerate)))
        t_out = np.arange(n_out, dtype=np.float64) * (framerate / SAMPLE_RATE)
        mono = np.interp(t_out, np.arange(len(mono), dtype=np.float64), mono)
    pcm = np.clip(np.round(mono * 32767.0), -32768, 32767).astype("<i2")
    return pcm.tobytes()


def _normalize_wav(path: Path) -> float:
    """Rewrite ``path`` as mono 16-bit PCM at ``SAMPLE_RATE`` (converting if needed); return its duration in seconds."""
    with wave.open(str(path), "rb") as r:
        nchannels, sampwidth, framerate, nframes = r.getnchannels(), r.getsampwidth(), r.getframerate(), r.getnframes()
        if r.getcomptype() != "NONE":
            raise DemoDataError(f"{path}: compressed wav ({r.getcomptype()}) is not supported")
        frames = r.readframes(nframes)
    if (nchannels, sampwidth, framerate) != (1, 2, SAMPLE_RATE):
        logger.debug(
            "%s: converting %d ch / %d bit / %d Hz to mono 16 bit %d Hz",
            path,
            nchannels,
            8 * sampwidth,
            framerate,
            SAMPLE_RATE,
        )
        frames = _to_standard_pcm(frames, nchannels, sampwidth, framerate)
    if not frames:
        raise DemoDataError(f"{path}: espeak-ng wrote no audio")
    # Always rewrite through ``wave`` so every file has the same canonical 44-byte header.
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(frames)
    return len(frames) / 2 / SAMPLE_RATE


def _synthesize(espeak: str, voice: VoiceSpec, text: str, path: Path) -> float:
    """Speak ``text`` into ``path`` with espeak-ng; return the clip's duration in seconds."""
    cmd = [espeak, *voice.args(), "-w", str(path), "--", text]
    try:
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise DemoDataError(f"espeak-ng timed out after {_TIMEOUT_S} s on: {text!r}") from exc
    if proc.returncode != 0 or not path.is_file():
        err = proc.stderr.decode("utf-8", "replace").strip()
        raise DemoDataError(f"espeak-ng failed (exit {proc.returncode}) for voice {voice.voice!r} on {text!r}: {err}")
    return _normalize_wav(path)


def _check_sentence(text: str) -> None:
    if not text or "|" in text or "\n" in text or "\r" in text:
        raise ValueError(f"demo sentence must be non-empty and contain no '|' or line breaks: {text!r}")


def generate_dataset(
    out_dir: Path,
    sentences: list[str],
    voice: VoiceSpec,
    *,
    prefix: str,
    count: int,
    min_seconds: float | None = None,
    max_seconds: float | None = None,
    progress: ProgressFn | None = None,
) -> Path:
    """Synthesise ``count`` clips of ``sentences`` (taken in order) with ``voice`` into the LJSpeech folder ``out_dir``.

    A clip whose duration falls outside ``[min_seconds, max_seconds]`` is dropped and the next sentence is tried;
    :class:`DemoDataError` is raised when fewer than ``count`` sentences fit. Clip ids are ``<prefix>_0001`` and so on.
    A complete ``out_dir`` is returned untouched; it is built in ``<out_dir>.partial``; ``progress(done, count)``.
    """
    out_dir = Path(out_dir)
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    with file_lock(out_dir.with_name(out_dir.name + ".lock")):  # workers at once: one builds, the others find it
        return _generate(out_dir, sentences, voice, prefix, count, min_seconds, max_seconds, progress)


def _generate(out_dir, sentences, voice, prefix, count, min_seconds, max_seconds, progress) -> Path:
    if is_dataset_complete(out_dir, count):
        logger.info("%s: complete dataset of %d clips already present, skipping", out_dir, count)
        if progress is not None:
            progress(count, count)
        return out_dir
    if out_dir.exists() and not (out_dir.is_dir() and _looks_generated(out_dir)):
        raise DemoDataError(
            f"{out_dir} exists but is not a complete demo dataset; move it away or delete it to regenerate"
        )
    for text in sentences:
        _check_sentence(text)
    if len(sentences) < count:
        raise DemoDataError(f"need {count} sentences for {out_dir}, got only {len(sentences)}")

    espeak = _espeak_path()
    started = time.monotonic()
    partial = _partial_path(out_dir)
    if partial.exists():
        logger.info("%s: removing leftovers of an interrupted run", partial)
        shutil.rmtree(partial)
    wavs = partial / "wavs"
    wavs.mkdir(parents=True)

    try:
        accepted: list[tuple[str, str]] = []  # (clip id, text), in sentence order
        skipped = 0
        next_index = 0
        with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
            while len(accepted) < count and next_index < len(sentences):
                # Synthesise the next batch (as many sentences as clips still missing) in parallel, then accept in
                # sentence order: the outcome never depends on which thread finished first.
                batch = range(next_index, min(len(sentences), next_index + count - len(accepted)))
                next_index = batch.stop
                jobs = [(sentences[i], wavs / f"_candidate_{i:05d}.wav") for i in batch]
                durations = list(pool.map(lambda job: _synthesize(espeak, voice, *job), jobs))
                for (text, path), seconds in zip(jobs, durations):
                    if (min_seconds is not None and seconds < min_seconds) or (
                        max_seconds is not None and seconds > max_seconds
                    ):
                        skipped += 1
                        logger.debug(
                            "skipping %.2f s clip (outside %s..%s s): %r", seconds, min_seconds, max_seconds, text
                        )
                        path.unlink()
                        continue
                    clip_id = f"{prefix}_{len(accepted) + 1:04d}"
                    path.rename(wavs / f"{clip_id}.wav")
                    accepted.append((clip_id, text))
                    if progress is not None:
                        progress(len(accepted), count)

        if len(accepted) < count:
            raise DemoDataError(
                f"only {len(accepted)} of {len(sentences)} sentences gave clips between {min_seconds} and "
                f"{max_seconds} s with voice {voice.name!r}; {count} are needed"
            )

        with open(partial / "metadata.csv", "w", encoding="utf-8", newline="\n") as f:
            for clip_id, text in accepted:
                f.write(f"{clip_id}|{text}|{text}\n")
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise

    if out_dir.exists():  # an incomplete dataset of ours (checked above): replace it
        shutil.rmtree(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    os.replace(partial, out_dir)
    logger.info(
        "%s: %d clips with voice %r in %.1f s (%d skipped for length)",
        out_dir,
        count,
        voice.name,
        time.monotonic() - started,
        skipped,
    )
    return out_dir


def _generate_base(path: Path, progress: ProgressFn | None = None) -> Path:
    base, _ = split_demo_sentences()
    return generate_dataset(path, base, BASE_VOICE, prefix="base", count=BASE_COUNT, progress=progress)


def _generate_target(path: Path, progress: ProgressFn | None = None, voice: VoiceSpec = TARGET_VOICE) -> Path:
    _, target = split_demo_sentences()
    return generate_dataset(
        path,
        target,
        voice,
        prefix=voice.name,
        count=TARGET_COUNT,
        min_seconds=TARGET_MIN_SECONDS,
        max_seconds=TARGET_MAX_SECONDS,
        progress=progress,
    )


_KINDS = {
    "base": (_generate_base, BASE_COUNT),
    "target": (_generate_target, TARGET_COUNT),
    "voice2": (lambda path, progress: _generate_target(path, progress, VOICE2), TARGET_COUNT),
}


def generate_demo_data(
    out: Path, *, which: tuple[str, ...] = ("base", "target"), progress: ProgressFn | None = None
) -> dict[str, Path]:
    """Write the demo corpora named in ``which`` to ``out/<name>`` (``base``, ``target``, ``voice2``); return
    ``{name: folder}``.

    ``progress(done, total)`` counts clips over all requested corpora together.
    """
    out = Path(out)
    unknown = [w for w in which if w not in _KINDS]
    if unknown:
        raise ValueError(f"unknown demo dataset(s) {unknown}; choose from {sorted(_KINDS)}")
    names = list(dict.fromkeys(which))
    total = sum(_KINDS[n][1] for n in names)
    result: dict[str, Path] = {}
    offset = 0
    for name in names:
        fn, n = _KINDS[name]
        sub = None
        if progress is not None:
            sub = (lambda base: lambda done, _total: progress(base + done, total))(offset)
        result[name] = fn(out / name, sub)
        offset += n
    return result


def ensure_demo_target(path: Path, progress: ProgressFn | None = None, voice: VoiceSpec | None = None) -> Path:
    """Make ``path`` (the target dataset folder itself) a complete demo target corpus if it is not; return it.

    ``voice`` defaults to the :data:`DEMO_TARGETS` voice named like the folder (``.../voice2``), else
    :data:`TARGET_VOICE`.
    """
    path = Path(path)
    return _generate_target(path, progress, voice or DEMO_TARGETS.get(path.name, TARGET_VOICE))
