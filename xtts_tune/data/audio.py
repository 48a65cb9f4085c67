"""Reading audio without FFmpeg: wav, flac, ogg and mp3 through ``soundfile`` (libsndfile ships in its wheel),
resampled in torch; torchaudio (torchcodec, which needs FFmpeg's libraries) only for other formats.

coqui-tts reads every clip with ``torchaudio.load``, which since torch 2.9 is torchcodec, so a machine without
FFmpeg (many GPU containers) cannot read a single clip. :func:`read_audio` is the one reader of the project;
:func:`use_in_coqui` points coqui's own ``load_audio`` (speaker wavs, its trainer's dataset) at it. Like
coqui's loader it mixes down to mono, resamples to the rate asked for (``torchaudio.functional.resample``,
coqui's defaults) and clips to [-1, 1], so features are the same whichever reader ran.

>>> import numpy as np, soundfile, tempfile
>>> path = f"{tempfile.mkdtemp()}/tone.flac"
>>> soundfile.write(path, 0.1 * np.sin(np.arange(48000) / 10.0), 48000)
>>> wav, rate = read_audio(path, 22050)
>>> tuple(wav.shape), rate
((1, 22050), 48000)
>>> describe_rates({48000: 100}, 22050)
'clips: 48000 Hz (100), resampled to 22050 Hz'
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

import torch

from xtts_tune.errors import UserError, plain_reason

logger = logging.getLogger(__name__)

SOUNDFILE_FORMATS = ("wav", "flac", "ogg", "mp3")
"""What soundfile's bundled libsndfile reads (and more: aiff, caf, w64...); anything it cannot goes to FFmpeg."""


class AudioReadError(UserError):
    """An audio file neither soundfile nor FFmpeg (through torchcodec) can read; ``reason``: soundfile's word."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


def _first_line(exc: BaseException) -> str:
    return plain_reason(exc, 120)


def _soundfile(path: str) -> tuple[torch.Tensor, int]:
    import soundfile

    data, rate = soundfile.read(path, dtype="float32", always_2d=True)  # (frames, channels)
    return torch.from_numpy(data.T.copy()), int(rate)


def _ffmpeg(path: str) -> tuple[torch.Tensor, int]:
    import torchaudio

    audio, rate = torchaudio.load(path)
    return audio.float(), int(rate)


def read_audio(path: str | os.PathLike, sample_rate: int) -> tuple[torch.Tensor, int]:
    """(mono waveform at ``sample_rate`` of shape (1, samples), the file's own sample rate).

    soundfile first; FFmpeg (torchaudio/torchcodec) only when soundfile cannot read the file. When neither
    can, :class:`AudioReadError` says why in one line (and how to convert the file).
    """
    path = str(path)
    try:
        audio, rate = _soundfile(path)
    except Exception as sf_exc:  # soundfile.LibsndfileError, RuntimeError, ... for a format it lacks
        try:
            audio, rate = _ffmpeg(path)
        except Exception as ff_exc:  # torchcodec without FFmpeg raises RuntimeError/ImportError/OSError
            raise AudioReadError(
                f"{path}: cannot read this audio: soundfile (wav, flac, ogg, mp3) says '{_first_line(sf_exc)}', and "
                f"the FFmpeg fallback (torchcodec) says '{_first_line(ff_exc)}'; convert it to wav or flac "
                "(e.g. ffmpeg -i IN -ar 22050 OUT.wav on another machine), or install ffmpeg",
                reason=_first_line(sf_exc),
            ) from None
        logger.debug("%s: read through FFmpeg (soundfile: %s)", path, _first_line(sf_exc))
    if audio.shape[0] != 1:
        audio = audio.mean(dim=0, keepdim=True)
    if rate != sample_rate:
        import torchaudio.functional

        audio = torchaudio.functional.resample(audio, rate, sample_rate)
    return audio.clip_(-1, 1), rate


def load_audio(audiopath, sampling_rate):
    """coqui's ``load_audio(audiopath, sampling_rate)`` (a (1, samples) tensor), read by :func:`read_audio`."""
    return read_audio(audiopath, sampling_rate)[0]


def use_in_coqui() -> None:
    """Make coqui-tts's XTTS code (speaker wavs for the conditioning latents, its trainer's dataset) read audio
    with :func:`read_audio` instead of torchaudio/torchcodec. Idempotent."""
    import importlib

    for name in ("TTS.tts.models.xtts", "TTS.tts.layers.xtts.trainer.dataset"):
        module = importlib.import_module(name)
        if getattr(module, "load_audio", None) is not load_audio:
            module.load_audio = load_audio


def describe_rates(rates: Mapping[int, int], sample_rate: int) -> str:
    """The clips' own sample rates with their counts, once: ``clips: 48000 Hz (100), resampled to 22050 Hz``."""
    shown = ", ".join(f"{rate} Hz ({count})" for rate, count in sorted(rates.items(), key=lambda kv: -kv[1]))
    if any(rate != sample_rate for rate in rates):
        return f"clips: {shown}, resampled to {sample_rate} Hz"
    return f"clips: {shown}"
