"""Freezing parts of the XTTS GPT, and counting what trains.

``freeze_depth`` N freezes transformer blocks 0..N-1; the ``model`` section's flags freeze the conditioning
encoder and perceiver, the text and mel embeddings (token and position) and heads.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from xtts_tune.config import ModelConfig


@dataclass(frozen=True)
class ParamCounts:
    total: int
    trainable: int

    @property
    def share(self) -> float:
        return self.trainable / self.total if self.total else 0.0

    def __str__(self) -> str:
        return f"trainable {_human(self.trainable)} / {_human(self.total)} ({100 * self.share:.1f}%)"


def _human(n: int) -> str:
    if n >= 1e6:
        return f"{n / 1e6:.1f}M"
    if n >= 1e3:
        return f"{n / 1e3:.1f}K"
    return str(n)


def frozen_modules(gpt: nn.Module, freeze_depth: int, options: ModelConfig) -> dict[str, nn.Module]:
    """The GPT submodules to freeze, by name. ``freeze_depth`` freezes transformer blocks 0..N-1."""
    blocks = gpt.gpt.h
    if not 0 <= freeze_depth <= len(blocks):
        raise ValueError(f"freeze_depth must be between 0 and {len(blocks)} (the GPT's layers), got {freeze_depth}")
    chosen: dict[str, nn.Module] = {f"gpt.h.{i}": blocks[i] for i in range(freeze_depth)}
    if options.freeze_conditioning:
        chosen["conditioning_encoder"] = gpt.conditioning_encoder
        if getattr(gpt, "conditioning_perceiver", None) is not None:
            chosen["conditioning_perceiver"] = gpt.conditioning_perceiver
    # an input embedding is its token and its learned position embedding: with either one trainable the
    # backward pass must still run through every block (frozen or not) to reach it
    flags = {
        "text_embedding": options.freeze_text_embedding,
        "text_pos_embedding": options.freeze_text_embedding,
        "text_head": options.freeze_text_head,
        "mel_embedding": options.freeze_mel_embedding,
        "mel_pos_embedding": options.freeze_mel_embedding,
        "mel_head": options.freeze_mel_head,
    }
    chosen.update({name: getattr(gpt, name) for name, on in flags.items() if on and hasattr(gpt, name)})
    return chosen


def apply_freezing(gpt: nn.Module, freeze_depth: int, options: ModelConfig) -> ParamCounts:
    """Set ``requires_grad`` on the GPT: everything trainable except :func:`frozen_modules`."""
    for p in gpt.parameters():
        p.requires_grad_(True)
    for module in frozen_modules(gpt, freeze_depth, options).values():
        for p in module.parameters():
            p.requires_grad_(False)
    return count_parameters(gpt)


def count_parameters(module: nn.Module) -> ParamCounts:
    params = list(module.parameters())
    return ParamCounts(
        total=sum(p.numel() for p in params), trainable=sum(p.numel() for p in params if p.requires_grad)
    )
