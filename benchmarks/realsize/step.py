"""The measured unit of ``make bench-real-size`` (:mod:`benchmarks.realsize.bench`): one optimizer step of the
released XTTS v2 GPT shape (random weights) at a freeze depth, timed, with its peak memory, through the same
freezing, optimizer and batch format trials use. One call measures one configuration in this process; the
benchmark runs each in its own child process for a clean peak-memory figure.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from benchmarks.realsize.model import (
    ARCH_FILE,
    VOCAB_FILE,
    Architecture,
    accumulate,
    apply_update,
    build_real_size_trainer,
    micro_batch,
    read_architecture,
    synthetic_clip,
)
from xtts_tune.config import ModelConfig, TrainConfig
from xtts_tune.data.features import ClipFeatures, fixed_slice_rng, silence_frame
from xtts_tune.model.base import peak_memory_bytes, pick_device
from xtts_tune.model.freezing import apply_freezing
from xtts_tune.training.prefix_cache import PrefixCache
from xtts_tune.training.result import optimizer_for

logger = logging.getLogger("benchmarks.realsize.bench")


DEFAULT_FREEZE_DEPTHS = (0, 24, 28)
DEFAULT_CLIP_SECONDS = 11.0
GIB = 1024**3


def default_steps(device: torch.device) -> int:
    return 3 if device.type == "cuda" else 1


def default_accum(device: torch.device) -> int:
    return 16 if device.type == "cuda" else 1


def autocast_dtype_for(device: torch.device) -> torch.dtype | None:
    """bf16 autocast on a CUDA device that supports it; full fp32 otherwise."""
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({torch.get_num_threads()} threads)"


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def check_freeze_depths(freeze_depths: Sequence[int], arch: Architecture, layers: int | None) -> None:
    """Raise ValueError before building anything if a depth is outside 0..layers."""
    n = layers if layers is not None else int(arch.model_args["gpt_layers"])
    bad = [d for d in freeze_depths if not 0 <= d <= n]
    if bad:
        raise ValueError(f"freeze depth {bad[0]} is outside 0..{n} (the GPT's layers)")


@dataclass
class StepTimes:
    seconds: list[float]  # per optimizer step, warm-up included
    losses: list[float]  # mean micro-batch loss per step
    skipped: int  # micro-batches with a non-finite loss

    @property
    def timed(self) -> list[float]:
        """The steps that count: all but the warm-up, when there is more than one."""
        return self.seconds[1:] if len(self.seconds) > 1 else self.seconds


def time_steps(
    trainer: nn.Module,
    opt: torch.optim.Optimizer,
    clip: ClipFeatures,
    *,
    steps: int,
    accum: int,
    clip_norm: float,
    autocast_dtype: torch.dtype | None,
    seed: int,
    prefix=None,
) -> StepTimes:
    """Run ``steps`` optimizer steps of ``accum`` micro-batches of ``clip``; time each (batches built before).
    With ``prefix`` (``(cache, depth, key)``) every micro-batch has the clip's one fixed conditioning slice."""
    dev = next(trainer.xtts.gpt.parameters()).device
    trainable = [p for p in trainer.xtts.gpt.parameters() if p.requires_grad]
    silence = silence_frame(trainer)
    rng = random.Random(seed)
    out = StepTimes(seconds=[], losses=[], skipped=0)
    for _ in range(steps):
        draw = (lambda: fixed_slice_rng(seed, "clip", None)) if prefix else (lambda: rng)
        batches = [micro_batch(trainer, clip, silence, draw(), dev) for _ in range(accum)]
        _synchronize(dev)
        t = time.perf_counter()
        done = accumulate(trainer, batches, autocast_dtype=autocast_dtype, prefix=prefix)
        if done.used:
            apply_update(opt, trainable, clip_norm)
        _synchronize(dev)
        out.seconds.append(time.perf_counter() - t)
        out.losses.append(done.mean_loss)
        out.skipped += done.skipped
    return out


def measure(
    freeze_depth: int,
    *,
    steps: int | None = None,
    accum: int | None = None,
    clip_seconds: float = DEFAULT_CLIP_SECONDS,
    device: str = "auto",
    layers: int | None = None,
    arch_path: Path = ARCH_FILE,
    vocab_path: Path = VOCAB_FILE,
    seed: int = 0,
    freeze_embeddings: bool = False,
    prefix_cache: bool = False,
) -> dict[str, Any]:
    """Time ``steps`` optimizer steps of the real-size GPT at ``freeze_depth``, in this process.

    The first step is a warm-up and is not timed when more than one step runs. Returns one record: the
    parameter counts, seconds per optimizer step, micro-batches per second, peak memory, device and dtype.
    ``layers`` overrides the number of GPT blocks (tests only). ``prefix_cache`` (needs ``freeze_embeddings``)
    captures the clip's block-N input once, untimed, and steps from the cache, as trials with
    ``train.prefix_cache`` do.
    """
    if prefix_cache and not freeze_embeddings:
        raise ValueError("the prefix cache needs the embeddings frozen (--freeze-embeddings)")
    dev = pick_device(device)
    steps = default_steps(dev) if steps is None else steps
    accum = default_accum(dev) if accum is None else accum
    if steps < 1 or accum < 1:
        raise ValueError(f"steps and accum must be >= 1, got steps={steps}, accum={accum}")
    check_freeze_depths([freeze_depth], read_architecture(arch_path), layers)
    trainer = build_real_size_trainer(arch_path, vocab_path=vocab_path, layers=layers, seed=seed)
    # importing coqui's XTTS trainer calls torch.set_num_threads(1); time with every core, as trials do
    torch.set_num_threads(os.cpu_count() or 1)
    gpt = trainer.xtts.gpt
    train = TrainConfig(freeze_depth=freeze_depth, batch_size=1, grad_accum_steps=accum, seed=seed)
    # the guide's setting freezes the conditioning only; with the text and mel embeddings trainable the
    # backward pass still runs through every block to reach them, so freeze_embeddings shows the difference
    model = ModelConfig(freeze_text_embedding=freeze_embeddings, freeze_mel_embedding=freeze_embeddings)
    params = apply_freezing(gpt, freeze_depth, model)
    sample_rate = trainer.config.audio.sample_rate
    clip = synthetic_clip(trainer.args, sample_rate=sample_rate, clip_seconds=clip_seconds, seed=seed)
    trainer.to(dev)
    gpt.train()
    opt = optimizer_for(gpt, train)
    amp = autocast_dtype_for(dev)
    if dev.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(dev)  # the peak then counts weights + optimizer state + the step
    prefix, capture = None, 0.0
    if prefix_cache and freeze_depth:
        cache = PrefixCache(
            None, base_fingerprint="bench", dtype="bfloat16" if amp else "float16", precision="bf16" if amp else "fp32"
        )
        prefix = (cache, freeze_depth, "clip")
        batch = micro_batch(trainer, clip, silence_frame(trainer), fixed_slice_rng(seed, "clip", None), dev)
        with torch.autocast(dev.type, dtype=amp) if amp else contextlib.nullcontext():
            cache.hidden(gpt, freeze_depth, ["clip"], batch)
        capture = cache.capture_seconds
    run = time_steps(
        trainer,
        opt,
        clip,
        steps=steps,
        accum=accum,
        clip_norm=train.grad_clip_norm,
        autocast_dtype=amp,
        seed=seed,
        prefix=prefix,
    )
    seconds = sum(run.timed) / len(run.timed)
    record = {
        "freeze_depth": freeze_depth,
        "freeze_embeddings": freeze_embeddings,
        "prefix_cache": prefix is not None,
        "prefix_bytes_per_clip": prefix[0].nbytes() if prefix else 0,
        "prefix_capture_seconds": capture,
        "layers": len(gpt.gpt.h),
        "trainable_params": params.trainable,
        "total_params": params.total,
        "trainable_share": params.share,
        "steps": steps,
        "timed_steps": len(run.timed),
        "accum": accum,
        "batch_size": 1,
        "clip_seconds": clip_seconds,
        "text_tokens": int(clip.text.shape[0]),
        "audio_codes": int(clip.codes.shape[0]),
        "seconds_per_step": seconds,
        "microbatches_per_second": accum / seconds,
        "peak_memory_bytes": peak_memory_bytes(dev),
        "peak_memory_kind": "cuda max_memory_allocated" if dev.type == "cuda" else "process peak RSS",
        "device": dev.type,
        "device_name": device_name(dev),
        "dtype": "bfloat16 (autocast)" if amp == torch.bfloat16 else "float32",
        "loss": run.losses[-1],
        "skipped_microbatches": run.skipped,
    }
    logger.info(
        "freeze depth %d: %.2f s per step of %d micro-batches, peak %.2f GiB",
        freeze_depth,
        seconds,
        accum,
        record["peak_memory_bytes"] / GIB,
    )
    return record
