"""What a trial returns, and the optimizer it trains with (AdamW as coqui's XTTS recipe sets it up)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from xtts_tune.config import TrainConfig
from xtts_tune.model.freezing import ParamCounts


@dataclass
class TrialResult:
    curve: list[dict]
    best_val_loss: float
    best_step: int
    best_epoch: float
    steps: int
    planned_steps: int
    stop_reason: str  # "completed" | "early_stopped" | "stopped_by_callback" | "max_steps"
    checkpoint_path: Path | None
    curve_path: Path
    params: ParamCounts
    wall_seconds: float
    compute_seconds: float
    skipped_batches: int
    peak_memory_bytes: int = 0
    """The trial's own peak memory (reset at its start): resident set (RSS) on CPU, ``max_memory_allocated`` on
    CUDA."""
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def stopped_early(self) -> bool:
        return self.stop_reason in ("early_stopped", "stopped_by_callback")

    def summary(self) -> dict:
        return {
            "best_val_loss": self.best_val_loss,
            "best_step": self.best_step,
            "best_epoch": self.best_epoch,
            "steps": self.steps,
            "planned_steps": self.planned_steps,
            "stop_reason": self.stop_reason,
            "checkpoint_path": str(self.checkpoint_path) if self.checkpoint_path else None,
            "curve_path": str(self.curve_path),
            "trainable_params": self.params.trainable,
            "total_params": self.params.total,
            "trainable_share": self.params.share,
            "wall_seconds": self.wall_seconds,
            "compute_seconds": self.compute_seconds,
            "skipped_batches": self.skipped_batches,
            "peak_memory_bytes": self.peak_memory_bytes,
        }


def optimizer_for(gpt: nn.Module, train: TrainConfig) -> torch.optim.Optimizer:
    """AdamW over the trainable GPT parameters; with ``weight_decay_weights_only`` biases, norms and
    embeddings get no decay (coqui's ``optimizer_wd_only_on_weights``)."""
    decay, no_decay = [], []
    norm_or_emb = (nn.LayerNorm, nn.GroupNorm, nn.Embedding, nn.BatchNorm1d)
    for module in gpt.modules():
        for name, p in module.named_parameters(recurse=False):
            if not p.requires_grad:
                continue
            if train.weight_decay_weights_only and (name.endswith("bias") or isinstance(module, norm_or_emb)):
                no_decay.append(p)
            else:
                decay.append(p)
    groups = [{"params": decay, "weight_decay": train.weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    # betas and eps from coqui's XTTS fine-tuning recipe
    return torch.optim.AdamW(groups, lr=train.learning_rate, betas=(0.9, 0.96), eps=1e-8)
