"""Make an XTTS v2 model folder speak: text + a reference voice -> a 24 kHz mono 16-bit wav.

The folder is loaded the way coqui-tts loads a released XTTS v2 (``Xtts(config)`` +
``Xtts.load_checkpoint(config, checkpoint_dir=folder, eval=True)``), so a fine-tuned folder that speaks here
speaks in coqui too. It needs config.json, model.pth (a full Xtts state dict: the GPT *and* the HiFi-GAN
decoder) and vocab.json; speakers_xtts.pth is optional (stored voices, ``speaker=``).

Generation is capped (``max_seconds``): a GPT that never emits its stop token (random weights, a diverged
fine-tune) otherwise babbles up to gpt_max_audio_tokens (~28 s of audio). The same seed gives the same bytes.

>>> import subprocess, tempfile
>>> from xtts_tune.model.released import build_released_folder
>>> tmp = tempfile.mkdtemp()
>>> folder = build_released_folder(f"{tmp}/xtts")  # random weights: it babbles, but through the real path
>>> _ = subprocess.run(["espeak-ng", "-w", f"{tmp}/ref.wav", "a reference voice of a few seconds"], check=True)
>>> result = synthesize(folder, "Hello there.", f"{tmp}/ref.wav", f"{tmp}/hello.wav", max_seconds=1.0)
>>> result.sample_rate, 0 < result.seconds <= 1.1
(24000, True)
"""

from __future__ import annotations

import math
import os
import pickle
import re
import wave
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xtts_tune.data.audio import AudioReadError, read_audio, use_in_coqui
from xtts_tune.errors import UserError, plain_reason
from xtts_tune.io import atomic_path
from xtts_tune.model.base import pick_device
from xtts_tune.probes.thresholds import default_max_seconds

REQUIRED_FILES = ("config.json", "model.pth", "vocab.json")


class SpeakError(UserError):
    """A model folder, text, voice or language that cannot be spoken; one line naming the file and the fix."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))  # coqui's messages span lines; ours stay one


@dataclass(frozen=True)
class SpeakResult:
    path: Path
    seconds: float
    sample_rate: int
    capped_at: float | None = None
    """``max_seconds`` when generation stopped there (the GPT never emitted its stop token), else None."""


@dataclass
class LoadedVoice:
    """An Xtts model loaded from ``folder`` (coqui's ``Xtts``) and its XttsConfig."""

    folder: Path
    model: Any
    config: Any

    @property
    def sample_rate(self) -> int:
        return int(self.config.model_args.output_sample_rate)

    @property
    def speakers(self) -> list[str]:
        return self.model.speaker_manager.speaker_names if self.model.speaker_manager else []


def _config(folder: Path):
    from TTS.tts.configs.xtts_config import XttsConfig

    if not folder.is_dir():
        raise SpeakError(f"{folder}: model folder not found; give an XTTS v2 folder ({', '.join(REQUIRED_FILES)})")
    for name in REQUIRED_FILES:
        if not (folder / name).is_file():
            raise SpeakError(f"{folder / name}: missing; an XTTS v2 folder needs {', '.join(REQUIRED_FILES)}")
    config = XttsConfig()
    try:
        config.load_json(str(folder / "config.json"))
    except (ValueError, KeyError, TypeError) as exc:
        raise SpeakError(f"{folder / 'config.json'}: not a valid XTTS config ({exc}); use the model's own") from None
    return config


def spoken_languages(folder: str | os.PathLike) -> tuple[str, ...]:
    """The languages an XTTS v2 folder speaks (its config.json's ``languages``)."""
    return tuple(_config(Path(folder)).languages)


def _check_language(folder: Path, config, language: str) -> None:
    if language not in config.languages:
        raise SpeakError(
            f"{folder / 'config.json'}: language '{language}' is not supported; "
            f"choose one of {', '.join(config.languages)}"
        )


def _missing_keys(message: str) -> list[str]:
    """Missing keys of a strict load_state_dict error, less the ones coqui's v1 retry adds itself."""
    line = next((ln for ln in message.splitlines() if "Missing key(s)" in ln), "")
    keys = re.findall(r'"([^"]+)"', line)
    return [k for k in keys if not k.startswith(("gpt.gpt_inference.", "gpt.gpt.wte."))]


def load_voice_model(
    model_dir: str | os.PathLike, *, device: str = "auto", gpt_tensors: Mapping[str, torch.Tensor] | None = None
) -> LoadedVoice:
    """Load an XTTS v2 folder for speaking (coqui's own loader), on ``device`` ('auto': CUDA when present).

    ``gpt_tensors`` (a trial checkpoint's trained tensors, GPT state-dict names) replace the folder's GPT
    weights: a trial speaks with its base folder's decoder without a full copy of the model on disk.
    """
    from TTS.tts.models.xtts import Xtts

    folder = Path(model_dir)
    config = _config(folder)
    device = pick_device(device)
    model = Xtts(config)  # what the deprecated Xtts.init_from_config(config) returns, without its warning
    try:
        model.load_checkpoint(config, checkpoint_dir=str(folder), eval=True)
    except RuntimeError as exc:
        message, pth = str(exc), folder / "model.pth"
        missing = _missing_keys(message)
        if any(k.startswith("hifigan_decoder.") for k in missing):
            raise SpeakError(
                f"{pth}: has no HiFi-GAN decoder (hifigan_decoder.*), so it cannot make audio; the tiny embedded "
                "base and GPT-only checkpoints have none: use a full XTTS v2 folder (GPT and decoder weights)"
            ) from None
        if missing or "size mismatch" in message:
            detail = f"no weights for {missing[0]}" if missing else message.split("size mismatch", 1)[1].splitlines()[0]
            raise SpeakError(
                f"{pth}: does not match config.json ({detail.strip()[:240]}); the files are from different models"
            ) from None
        raise SpeakError(f"{pth}: cannot be loaded ({message.splitlines()[0][:200]})") from None
    except (EOFError, OSError, KeyError, ValueError, pickle.UnpicklingError) as exc:  # truncated, not torch, no "model"
        raise SpeakError(f"{folder / 'model.pth'}: cannot be read as an XTTS checkpoint ({exc})") from None
    if gpt_tensors:
        # in place: coqui's inference wrapper (gpt.gpt_inference) shares these modules
        result = model.gpt.load_state_dict(dict(gpt_tensors), strict=False)
        if result.unexpected_keys:
            raise SpeakError(f"{folder}: the trained tensors do not fit this model ({result.unexpected_keys[0]})")
    model.to(device)
    return LoadedVoice(folder=folder, model=model, config=config)


def voice_latents(voice: LoadedVoice, speaker_wav: str | os.PathLike | None, speaker: str | None = None):
    """(gpt_cond_latent, speaker_embedding) from a reference wav, or from a speaker in speakers_xtts.pth."""
    if speaker is not None:
        if speaker not in voice.speakers:
            where = voice.folder / "speakers_xtts.pth"
            raise SpeakError(f"{where}: no speaker '{speaker}'; stored speakers: {', '.join(voice.speakers) or 'none'}")
        stored = voice.model.speaker_manager.speakers[speaker]
        return stored["gpt_cond_latent"], stored["speaker_embedding"]
    if speaker_wav is None:
        raise SpeakError(f"{voice.folder}: no voice given; pass a speaker wav (3-30 s of the target speaker)")
    wav, cfg = Path(speaker_wav), voice.config
    if not wav.is_file():
        raise SpeakError(f"{wav}: speaker wav not found; give a wav of 3-30 s of the target speaker")
    use_in_coqui()  # coqui reads the speaker wav with soundfile (no FFmpeg needed)
    try:
        return voice.model.get_conditioning_latents(
            audio_path=str(wav),
            gpt_cond_len=cfg.gpt_cond_len,
            gpt_cond_chunk_len=cfg.gpt_cond_chunk_len,
            max_ref_length=cfg.max_ref_len,
            sound_norm_refs=cfg.sound_norm_refs,
        )
    except AudioReadError as exc:
        raise SpeakError(
            f"{wav}: cannot be used as a speaker wav ({exc.reason}); give a readable wav of 3-30 s"
        ) from None
    except (RuntimeError, OSError, ValueError) as exc:  # shorter than coqui's 0.33 s
        reason = plain_reason(exc)
        raise SpeakError(f"{wav}: cannot be used as a speaker wav ({reason}); give a readable wav of 3-30 s") from None


def speak(
    voice: LoadedVoice,
    text: str,
    latents,
    out_wav: str | os.PathLike,
    *,
    language: str = "en",
    temperature: float | None = None,
    seed: int = 0,
    max_seconds: float | None = None,
) -> SpeakResult:
    """Speak ``text`` with a loaded model and voice latents into ``out_wav`` (written atomically)."""
    out, cfg, args = Path(out_wav), voice.config, voice.config.model_args
    text = (text or "").strip()
    if not text:
        raise SpeakError(f"{out}: the text to speak is empty; give a sentence")
    _check_language(voice.folder, cfg, language)
    try:
        n_tokens = len(voice.model.tokenizer.encode(text.lower(), lang=language))
    except ImportError as exc:
        raise SpeakError(f"{out}: language '{language}' needs an optional package ({exc})") from None
    if n_tokens >= args.gpt_max_text_tokens:
        raise SpeakError(
            f"{out}: the text is {n_tokens} tokens, the model takes under {args.gpt_max_text_tokens}; "
            "split it into sentences"
        )
    seconds_per_code = args.gpt_code_stride_len / args.input_sample_rate
    if max_seconds is None:  # about twice a normal speaking rate
        max_seconds = default_max_seconds(text)
    gpt = voice.model.gpt
    model_cap = gpt.max_gen_mel_tokens
    cap = max(1, min(model_cap, math.ceil(max_seconds / seconds_per_code)))
    gpt_cond_latent, speaker_embedding = latents
    dev = voice.model.device
    devices = [torch.cuda.current_device() if dev.index is None else dev.index] if dev.type == "cuda" else []
    gpt.max_gen_mel_tokens = cap  # coqui's generate() reads its length limit from here
    generate, stopped = gpt.generate, []

    def generate_and_see(*a, **kw):  # whether the GPT emitted its stop token or ran into the cap
        codes = generate(*a, **kw)
        stopped.append(bool((codes[0] if isinstance(codes, tuple) else codes).eq(gpt.stop_audio_token).any()))
        return codes

    gpt.generate = generate_and_see
    try:
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            result = voice.model.inference(
                text,
                language,
                gpt_cond_latent,
                speaker_embedding,
                temperature=cfg.temperature if temperature is None else temperature,
                length_penalty=cfg.length_penalty,
                repetition_penalty=cfg.repetition_penalty,
                top_k=cfg.top_k,
                top_p=cfg.top_p,
            )
    finally:
        gpt.max_gen_mel_tokens = model_cap
        del gpt.generate  # the class's method again
    audio = np.asarray(result["wav"], dtype=np.float32).reshape(-1)
    if not np.isfinite(audio).all():
        raise SpeakError(
            f"{voice.folder / 'model.pth'}: the model produced non-finite audio (NaN/inf); its weights "
            "are broken (a diverged fine-tune?): use an earlier checkpoint"
        )
    pcm = (np.clip(audio, -1.0, 1.0) * 32767.0).round().astype("<i2")
    with atomic_path(out) as tmp, wave.open(str(tmp), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(voice.sample_rate)
        f.writeframes(pcm.tobytes())
    return SpeakResult(
        path=out,
        seconds=len(pcm) / voice.sample_rate,
        sample_rate=voice.sample_rate,
        capped_at=None if all(stopped) else max_seconds,
    )


def _prepare(
    model_dir, texts: list[str], outs: list[Path], speaker_wav, speaker, language: str, device: str, gpt_tensors=None
):
    """Refuse what can be refused before the weights load (text, wav, folder, language); then load and clone."""
    for text, out in zip(texts, outs, strict=True):
        if not (text or "").strip():
            raise SpeakError(f"{out}: the text to speak is empty; give a sentence")
    return load_speaker(
        model_dir, speaker_wav, languages=(language,), device=device, gpt_tensors=gpt_tensors, speaker=speaker
    )


def load_speaker(
    model_dir, speaker_wav, *, languages=("en",), device: str = "auto", gpt_tensors=None, speaker: str | None = None
):
    """The model loaded once and the voice cloned: ``(voice, latents)`` for :func:`speak` in any of ``languages``
    (a speaker wav that cannot be read, or a language the folder does not speak, is refused before the weights
    load)."""
    if speaker_wav is not None and not Path(speaker_wav).is_file():
        raise SpeakError(f"{speaker_wav}: speaker wav not found; give a wav of 3-30 s of the target speaker")
    if speaker_wav is not None:  # readable, before the model takes its seconds to load
        try:
            read_audio(speaker_wav, 22050)
        except AudioReadError as exc:
            raise SpeakError(
                f"{speaker_wav}: cannot be used as a speaker wav ({exc.reason}); give a readable wav of 3-30 s"
            ) from None
    config = _config(Path(model_dir))
    for language in languages:
        _check_language(Path(model_dir), config, language)
    voice = load_voice_model(model_dir, device=device, gpt_tensors=gpt_tensors)
    return voice, voice_latents(voice, speaker_wav, speaker)


def synthesize(
    model_dir: str | os.PathLike,
    text: str,
    speaker_wav: str | os.PathLike | None,
    out_wav: str | os.PathLike,
    *,
    language: str = "en",
    device: str = "auto",
    temperature: float | None = None,
    seed: int = 0,
    max_seconds: float | None = None,
    speaker: str | None = None,
) -> SpeakResult:
    """Speak ``text`` in the voice of ``speaker_wav`` (or stored ``speaker``) with the model in ``model_dir``.

    ``temperature`` None takes the config's (0.75 in the release); ``max_seconds`` None caps the audio at
    1 s + 0.15 s per character (never above the model's own limit).
    """
    voice, latents = _prepare(model_dir, [text], [Path(out_wav)], speaker_wav, speaker, language, device)
    return speak(
        voice, text, latents, out_wav, language=language, temperature=temperature, seed=seed, max_seconds=max_seconds
    )


def speak_samples(
    model_dir: str | os.PathLike,
    texts: list[str],
    speaker_wav: str | os.PathLike | None,
    out_dir: str | os.PathLike,
    *,
    language: str = "en",
    device: str = "auto",
    temperature: float | None = None,
    seed: int = 0,
    max_seconds: float | None = None,
    speaker: str | None = None,
    gpt_tensors: Mapping[str, torch.Tensor] | None = None,
) -> list[Path]:
    """Load the model once and write ``out_dir/sample_NN.wav`` for each text (listening samples of a trial,
    whose trained tensors ``gpt_tensors`` replace the folder's).

    Sample i is byte-identical to ``synthesize(model_dir, texts[i], ..., seed=seed)``.
    """
    texts = list(texts)
    outs = [Path(out_dir) / f"sample_{i:02d}.wav" for i in range(len(texts))]
    voice, latents = _prepare(model_dir, texts, outs, speaker_wav, speaker, language, device, gpt_tensors)
    return [
        speak(
            voice, text, latents, out, language=language, temperature=temperature, seed=seed, max_seconds=max_seconds
        ).path
        for text, out in zip(texts, outs, strict=True)
    ]
