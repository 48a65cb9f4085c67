"""The losses of a trial's batches: coqui's ``GPTTrainer.train_step`` / ``eval_step`` losses, through our caches.

- **Training** calls coqui's ``train_step`` itself, or, with the prefix cache on (:mod:`.prefix_cache`), the
  same GPT forward with the frozen blocks' output taken from the cache.
- **Validation** is eval_step's loss (``cond_idxs`` None). Validation conditioning slices are fixed, so with
  the conditioning encoder and perceiver frozen their output for a validation batch is the same at every
  evaluation of every trial; on the tiny base they are most of an evaluation's compute (they run over ~500
  mel frames, the GPT over ~100 tokens), so we compute it once per batch and pass it as ``cond_latents``.
  With the prefix cache on, the whole frozen prefix comes from the cache instead.

Both keep the conditioning slices in the batch (``cond_slices``) so the caches key on them.
"""

from __future__ import annotations

import hashlib

import torch

from xtts_tune.config import StudyConfig
from xtts_tune.io import GB
from xtts_tune.model.base import LoadedBase
from xtts_tune.model.prefix import gpt_losses
from xtts_tune.training.prefix_cache import PrefixCache, prefix_key
from xtts_tune.training.prepare import PreparedData


def prefix_cache_of(cfg: StudyConfig, base: LoadedBase, data: PreparedData) -> PrefixCache:
    """The study's prefix cache, created on first use and shared by its trials (it lives on ``data``)."""
    if data.prefix_cache is None:
        data.prefix_cache = PrefixCache(
            cfg.cache_dir,
            base_fingerprint=base.fingerprint,
            dtype=cfg.train.prefix_cache_dtype,
            precision=cfg.train.precision,
            max_bytes=int(cfg.train.prefix_cache_max_gb * GB),
        )
    return data.prefix_cache


def conditioning_digest(gpt) -> str | None:
    """A digest of the conditioning encoder's (and perceiver's) weights when they are frozen, else None."""
    modules = [gpt.conditioning_encoder, getattr(gpt, "conditioning_perceiver", None)]
    params = [p for m in modules if m is not None for p in m.parameters()]
    if any(p.requires_grad for p in params):
        return None
    h = hashlib.sha1()
    for p in params:
        h.update(p.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


class TrialLosses:
    """Losses of one trial's training and validation batches (call :meth:`ready` after freezing)."""

    def __init__(self, cfg: StudyConfig, base: LoadedBase, data: PreparedData, *, use_prefix: bool = True):
        self.cfg, self.train_cfg = cfg, cfg.train
        self.base, self.data = base, data
        self.gpt, self.args = base.gpt, base.trainer.args
        self.use_prefix = use_prefix
        self.cond_digest: str | None = None
        self.prefix: PrefixCache | None = None
        self.depth = cfg.train.freeze_depth

    def ready(self, amp_dtype) -> None:
        """Read what the freezing decided: whether validation latents and the frozen prefix can be cached."""
        self.cond_digest = conditioning_digest(self.gpt)
        self.amp = str(amp_dtype)
        if self.use_prefix and self.train_cfg.prefix_cache and self.depth >= 1:
            self.prefix = prefix_cache_of(self.cfg, self.base, self.data)

    def keys(self, ids: list[str], variants: list[int | None], batch: dict, is_eval: bool) -> list[str]:
        t = self.train_cfg
        features = self.data.features
        return [
            prefix_key(features.key(cid, v, seed=t.seed, level_range=tuple(t.noise_level_range)), is_eval, s)
            for cid, v, s in zip(ids, variants, batch["cond_slices"])
        ]

    def train(self, ids: list[str], variants: list[int | None], batch: dict) -> dict[str, torch.Tensor]:
        """The training losses of ``batch`` (on the device) as coqui's train_step computes them."""
        if self.prefix is None:
            return self.base.trainer.train_step(batch, None)[1]
        hidden = self.prefix.hidden(self.gpt, self.depth, self.keys(ids, variants, batch, False), batch)
        return gpt_losses(self.gpt, self.args, batch, prefix=(self.depth, hidden))

    def eval(self, ids: list[str], batch: dict) -> dict[str, torch.Tensor]:
        """eval_step's losses of one validation batch (clean clips, coqui's eval slice)."""
        batch = {**batch, "cond_idxs": None}
        if self.prefix is not None:
            hidden = self.prefix.hidden(self.gpt, self.depth, self.keys(ids, [None] * len(ids), batch, True), batch)
            return gpt_losses(self.gpt, self.args, batch, prefix=(self.depth, hidden))
        key = None
        if self.cond_digest is not None:
            key = (self.cond_digest, str(batch["text_inputs"].device), self.amp, tuple(ids))
        latents = self.data.style_cache.get(key) if key else None
        if latents is None:
            latents = self.gpt.get_style_emb(batch["cond_mels"]).transpose(1, 2)
            if key:
                self.data.style_cache[key] = latents
        return gpt_losses(self.gpt, self.args, batch, cond_latents=latents)
