"""The released XTTS v2 GPT shape with random weights, and one optimizer step through it, for the real-size
benchmark (:mod:`benchmarks.realsize.bench`): architecture file, coqui GPTTrainer built at that size, a
synthetic ~11 s clip in the trials' batch format, accumulation and the update."""

from __future__ import annotations

import contextlib
import json
import logging
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from xtts_tune.data.features import MEL_HOP, ClipFeatures, collate, to_device
from xtts_tune.model.base import (
    BaseModelError,
    dvae_kwargs_from_state,
    embedded_base_path,
    gpt_trainer_builds_dvae,
)
from xtts_tune.model.freezing import count_parameters
from xtts_tune.model.prefix import gpt_losses

logger = logging.getLogger(__name__)


ARCH_FILE = Path(__file__).resolve().parents[2] / "xtts_tune" / "resources" / "xtts_v2_model_args.json"
"""The released XTTS v2 architecture (``model_args`` and ``audio`` of its config.json), shipped with the
package (a copy of ``../shared/data/xtts_v2_model_args.json``; a test checks they agree)."""


VOCAB_FILE = embedded_base_path() / "vocab.json"
"""The tokenizer GPTTrainer is built with. Its size does not matter: the text embedding gets the released
6,681 rows either way (:func:`_tokenizer_reports_tokens`); a real vocabulary only changes the [START]/[STOP]
ids, which do not change the step's time or memory."""


# English read speech runs at ~15 characters per second (LJSpeech's clips average 15-16), so an 11 s clip
# carries ~165 characters. XTTS's BPE vocabulary encodes English at ~1.8 characters per token including
# the [en] and [SPACE] tokens (a 163-character LJSpeech sentence is 92 tokens with the real-format vocab),
# i.e. ~9 text tokens per second of speech: ~100 tokens for an 11 s clip.
TEXT_TOKENS_PER_SECOND = 9.0


class ArchitectureError(BaseModelError):
    """The architecture (or vocabulary) file is missing or unusable; the message names the file."""


@dataclass(frozen=True)
class Architecture:
    """The fields of the released config.json that decide the GPT's shape and the audio rate."""

    model_args: dict[str, Any]
    sample_rate: int
    languages: list[str]
    path: Path


def read_architecture(path: Path = ARCH_FILE) -> Architecture:
    """Read ``xtts_v2_model_args.json``; raise :class:`ArchitectureError` naming the file if unusable."""
    path = Path(path)
    if not path.is_file():
        raise ArchitectureError(
            f"{path}: XTTS v2 architecture file not found (the real-size benchmark builds the GPT's shape from "
            "its model_args; pass --arch-file with the model_args/audio of a released XTTS v2 config.json)"
        )
    try:
        raw = json.loads(path.read_text())
        return Architecture(
            model_args=dict(raw["model_args"]),
            sample_rate=int(raw["audio"]["sample_rate"]),
            languages=list(raw.get("languages", ["en"])),
            path=path,
        )
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ArchitectureError(f"{path}: not an XTTS v2 model_args file ({type(exc).__name__}: {exc})") from None


def real_size_config(arch: Architecture, *, vocab_path: Path, layers: int | None = None):
    """A coqui ``GPTTrainerConfig`` with the released architecture and no checkpoints (random weights).

    ``layers`` overrides the number of transformer blocks (tests only; the real figure is the file's).
    GPTTrainer insists on a DVAE checkpoint and mel normalisers: the embedded tiny base's serve, since the
    step uses neither (codes and conditioning mels are synthetic).
    """
    from TTS.tts.configs.xtts_config import XttsAudioConfig
    from TTS.tts.layers.xtts.trainer.gpt_trainer import GPTArgs, GPTTrainerConfig

    fields = set(GPTArgs.__dataclass_fields__)
    args = GPTArgs(**{k: v for k, v in arch.model_args.items() if k in fields})
    if layers is not None:
        args.gpt_layers = layers
    tiny = embedded_base_path()
    args.tokenizer_file = str(vocab_path)
    args.mel_norm_file = str(tiny / "mel_stats.pth")
    args.dvae_checkpoint = str(tiny / "dvae.pth")
    args.xtts_checkpoint = ""
    args.gpt_checkpoint = ""
    # the training sample limits, as xtts_tune.model.trainer_config sets them (coqui's recipe: 11.6 s)
    args.max_wav_length = min(255995, (args.gpt_max_audio_tokens - 3) * args.gpt_code_stride_len)
    args.max_text_length = min(200, args.gpt_max_text_tokens)
    audio = XttsAudioConfig(sample_rate=arch.sample_rate, dvae_sample_rate=arch.sample_rate)
    return GPTTrainerConfig(model_args=args, audio=audio, mixed_precision=False, languages=arch.languages)


@contextlib.contextmanager
def _tokenizer_reports_tokens(number_tokens: int) -> Iterator[None]:
    """Make GPTTrainer's tokenizer report ``number_tokens`` text tokens while it initialises.

    ``Xtts.init_models`` sizes the GPT's text embedding and head from the tokenizer's vocabulary (and takes
    [START]/[STOP] from it). The real-format vocabulary we have is smaller than the released one (5,413 vs
    6,681 tokens), so it would build a smaller text embedding than the real model's.
    """
    from TTS.tts.layers.xtts.tokenizer import VoiceBpeTokenizer
    from TTS.tts.layers.xtts.trainer import gpt_trainer

    class RealSizeTokenizer(VoiceBpeTokenizer):
        def get_number_tokens(self) -> int:
            return max(super().get_number_tokens(), number_tokens)

    original = gpt_trainer.VoiceBpeTokenizer
    gpt_trainer.VoiceBpeTokenizer = RealSizeTokenizer
    try:
        yield
    finally:
        gpt_trainer.VoiceBpeTokenizer = original


def build_real_size_trainer(
    arch_path: Path = ARCH_FILE,
    *,
    vocab_path: Path = VOCAB_FILE,
    layers: int | None = None,
    seed: int = 0,
) -> nn.Module:
    """coqui's ``GPTTrainer`` with the real XTTS v2 GPT shape and seeded random weights, on the CPU.

    The HiFi-GAN decoder is dropped (as :func:`xtts_tune.model.load_base` does): fine-tuning never uses it.
    """
    from TTS.tts.layers.xtts.trainer.gpt_trainer import GPTTrainer

    arch = read_architecture(arch_path)
    if not Path(vocab_path).is_file():
        raise ArchitectureError(f"{vocab_path}: XTTS tokenizer vocabulary not found (VoiceBpeTokenizer's vocab.json)")
    config = real_size_config(arch, vocab_path=Path(vocab_path), layers=layers)
    dvae_state = torch.load(config.model_args.dvae_checkpoint, map_location="cpu", weights_only=True)
    torch.manual_seed(seed)
    t = time.perf_counter()
    with (
        gpt_trainer_builds_dvae(dvae_kwargs_from_state(dvae_state)),
        _tokenizer_reports_tokens(int(arch.model_args["gpt_number_text_tokens"])),
    ):
        trainer = GPTTrainer(config)
    trainer.xtts.hifigan_decoder = None
    trainer.eval()
    logger.info(
        "built a %d-layer XTTS GPT with random weights in %.1f s (%s)",
        len(trainer.xtts.gpt.gpt.h),
        time.perf_counter() - t,
        count_parameters(trainer.xtts.gpt),
    )
    return trainer


def text_tokens_for(clip_seconds: float, max_text_length: int) -> int:
    """Text tokens of ``clip_seconds`` of English speech (see :data:`TEXT_TOKENS_PER_SECOND`)."""
    return max(1, min(max_text_length, round(clip_seconds * TEXT_TOKENS_PER_SECOND)))


def synthetic_clip(args, *, sample_rate: int, clip_seconds: float, seed: int) -> ClipFeatures:
    """One clip's features with random values and real sizes: text tokens, DVAE codes and the clip's mel."""
    wav_length = round(clip_seconds * sample_rate)
    if wav_length > args.max_wav_length:
        raise ValueError(
            f"clip_seconds={clip_seconds} is longer than the longest training clip "
            f"({args.max_wav_length / sample_rate:.2f} s; coqui's dataset drops longer clips)"
        )
    if wav_length < args.gpt_code_stride_len:
        raise ValueError(f"clip_seconds={clip_seconds} is shorter than one DVAE code")
    g = torch.Generator().manual_seed(seed)
    n_text = text_tokens_for(clip_seconds, args.max_text_length)
    return ClipFeatures(
        text=torch.randint(0, args.gpt_number_text_tokens, (n_text,), generator=g),
        # the DVAE emits one code per 1024 samples; its codes are the audio tokens below start/stop
        codes=torch.randint(0, args.gpt_start_audio_token, (wav_length // args.gpt_code_stride_len,), generator=g),
        mel=torch.randn(80, wav_length // MEL_HOP + 1, generator=g),
        wav_length=wav_length,
    )


def micro_batch(trainer: nn.Module, clip: ClipFeatures, silence: torch.Tensor, rng: random.Random, device) -> dict:
    """A batch of one clip in ``GPTTrainer.train_step``'s format, with a random conditioning slice.

    Built fresh per micro-batch: the GPT rescales ``cond_idxs`` in place.
    """
    return to_device(collate([clip], args=trainer.args, silence=silence, rng=rng, is_eval=False), device)


@dataclass
class Accumulated:
    mean_loss: float  # over the micro-batches used (NaN if none)
    used: int
    skipped: int


def accumulate(
    trainer: nn.Module,
    batches: Sequence[dict],
    *,
    autocast_dtype: torch.dtype | None,
    prefix=None,
) -> Accumulated:
    """Forward and backward of each micro-batch (loss / number of micro-batches), as trials do.

    ``prefix`` is ``(cache, depth, key)``: take the frozen blocks' output of the (one-clip) micro-batches from
    that :class:`~xtts_tune.training.prefix_cache.PrefixCache`, as trials with ``train.prefix_cache`` do.

    Like :mod:`xtts_tune.training.loop`, a micro-batch whose loss is not finite is skipped (coqui's masking approach
    can mask every mel target of a short clip, which makes ``loss_mel_ce`` NaN).
    """
    device_type = next(trainer.xtts.gpt.parameters()).device.type
    losses: list[float] = []
    for batch in batches:
        ctx = torch.autocast(device_type, dtype=autocast_dtype) if autocast_dtype else contextlib.nullcontext()
        with ctx:
            if prefix is None:
                _, out = trainer.train_step(batch, None)
            else:
                cache, depth, key = prefix
                hidden = cache.hidden(trainer.xtts.gpt, depth, [key], batch)
                out = gpt_losses(trainer.xtts.gpt, trainer.args, batch, prefix=(depth, hidden))
        loss = out["loss"]
        if not torch.isfinite(loss):
            continue
        (loss / len(batches)).backward()
        losses.append(loss.item())
    mean = sum(losses) / len(losses) if losses else float("nan")
    return Accumulated(mean_loss=mean, used=len(losses), skipped=len(batches) - len(losses))


def apply_update(opt: torch.optim.Optimizer, params: list[nn.Parameter], clip_norm: float) -> float:
    """Clip the gradients, step the optimizer and clear the gradients; returns the gradient norm."""
    norm = float(torch.nn.utils.clip_grad_norm_(params, clip_norm if clip_norm > 0 else float("inf")))
    opt.step()
    opt.zero_grad(set_to_none=True)
    return norm
