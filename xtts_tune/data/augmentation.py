"""Gaussian-noise augmentation (the guide's SimpleAudioAugmenter: noise_prob 0.3, level 0.001–0.01).

Noise is applied to *training* clips only. To keep the DVAE-code cache useful with augmentation on, each
clip has a fixed number of seeded noisy variants (``augment_variants``); a training draw picks the clean clip
with probability ``1 - augment_prob`` and otherwise one of its variants. The variants' features are computed
once and cached like the clean ones, so augmentation costs no DVAE work after the first epoch.
"""

from __future__ import annotations

import hashlib
import random

import torch


def variant_seed(seed: int, clip_id: str, variant: int) -> int:
    digest = hashlib.sha256(f"{seed}|{clip_id}|{variant}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def add_noise(wav: torch.Tensor, level: float, generator: torch.Generator) -> torch.Tensor:
    """``wav + N(0, level²)``, clipped to [-1, 1] like coqui's loader clips."""
    noise = torch.randn(wav.shape, generator=generator, dtype=wav.dtype) * level
    return (wav + noise).clamp_(-1.0, 1.0)


def noisy_variant(wav: torch.Tensor, *, seed: int, clip_id: str, variant: int, level_range) -> torch.Tensor:
    """Variant ``variant`` of a clip: deterministic for (seed, clip, variant), level drawn from the range."""
    s = variant_seed(seed, clip_id, variant)
    low, high = level_range
    level = random.Random(s).uniform(low, high)
    return add_noise(wav, level, torch.Generator().manual_seed(s & 0x7FFFFFFFFFFFFFFF))


def choose_variant(rng: random.Random, augment_prob: float, n_variants: int) -> int | None:
    """None for the clean clip, else the index of a noisy variant."""
    if augment_prob > 0 and rng.random() < augment_prob:
        return rng.randrange(n_variants)
    return None
