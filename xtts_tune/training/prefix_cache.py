"""The prefix cache (``train.prefix_cache``): block-N inputs computed once per clip and reused by every trial.

With freeze depth N, the conditioning encoder and perceiver and both embeddings frozen, and one fixed
conditioning slice per clip (``train.conditioning_slice: fixed``), the hidden states entering block N of a
clip, or of one of its noisy variants, are the same at every step of every trial of that depth. The first
batch that needs one computes it (:func:`xtts_tune.model.prefix.capture_prefix`, eval mode); afterwards a
step runs only blocks ``N..`` and the heads.

What the mode fixes, and why it is acceptable for a search:

- **One conditioning slice per clip and variant** instead of coqui's new random 3-6 s slice at every step.
  The slice is the speaker prompt; the text and audio codes the losses score are the same. Every trial of the
  study sees the same slices, so trials stay comparable; the exported config trains the final model with
  whatever ``conditioning_slice`` the study YAML sets.
- **No dropout in the frozen blocks** (their output is computed once, in eval mode). The trainable blocks keep
  theirs. Validation never had dropout, so validation losses are those of the uncached path (to the storage
  precision: ``prefix_cache_dtype``).

Only the depth in use lives in memory (visiting another saves and drops it); entries also live in shard files ``<study>/cache/prefix-<base>-d<N>-<precision>-<dtype>/`` beside
the feature cache: each save writes the entries new since the last one as one more shard (atomically), so
several workers and a killed run never corrupt it. Keys are the clip's feature key (file, text, noise
variant) and its conditioning slice.

>>> import tempfile, torch
>>> cache = PrefixCache(tempfile.mkdtemp(), base_fingerprint="abc", dtype="float16", precision="fp32")
>>> cache.put(2, "clip-1|train|0:66150", torch.ones(5, 4))
>>> cache.save()
>>> again = PrefixCache(cache.folder, base_fingerprint="abc", dtype="float16", precision="fp32")
>>> again.lookup(2, ["clip-1|train|0:66150", "clip-2|train|0:66150"])[0].dtype, again.entries(2)
(torch.float16, 1)
"""

from __future__ import annotations

import logging
import os
import time
from collections import defaultdict
from pathlib import Path

import torch
from torch import nn

from xtts_tune.io import atomic_torch_save
from xtts_tune.model.prefix import assemble_prefix, capture_prefix

logger = logging.getLogger(__name__)

DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


class PrefixCache:
    """Captured block-N inputs of one base model's clips, per freeze depth (see the module docstring)."""

    def __init__(self, folder: str | Path | None, *, base_fingerprint: str, dtype: str, precision: str):
        self.folder = Path(folder) if folder is not None else None
        self.name = f"prefix-{base_fingerprint}-d{{depth}}-{precision}-{dtype}"
        self.dtype = DTYPES[dtype]
        self._mem: dict[int, dict[str, torch.Tensor]] = defaultdict(dict)
        self._new: dict[int, dict[str, torch.Tensor]] = defaultdict(dict)
        self._loaded: set[int] = set()
        self.hits = 0
        self.misses = 0
        self.capture_seconds = 0.0

    def _dir(self, depth: int) -> Path | None:
        return self.folder / self.name.format(depth=depth) if self.folder is not None else None

    def _resident(self, depth: int) -> None:
        """Keep only ``depth`` in memory (issue 28: RSS must not grow with the depths a worker visits):
        the other depths' new entries are saved first, then dropped; a revisit reads its shards again."""
        others = [d for d in self._mem if d != depth]
        if not others:
            return
        self.save()
        for d in others:
            del self._mem[d]
            self._loaded.discard(d)

    def _load(self, depth: int) -> None:
        self._resident(depth)
        if depth in self._loaded:
            return
        self._loaded.add(depth)
        folder = self._dir(depth)
        if folder is None or not folder.is_dir():
            return
        for shard in sorted(folder.glob("part-*.pt")):
            try:
                self._mem[depth].update(torch.load(shard, map_location="cpu", weights_only=True))
            except Exception as exc:  # a cache is disposable: recompute rather than fail
                logger.warning("ignoring unreadable prefix-cache shard %s (%s)", shard, exc)

    def lookup(self, depth: int, keys: list[str]) -> list[torch.Tensor | None]:
        """The cached pieces of ``keys`` at ``depth`` (None where missing)."""
        self._load(depth)
        return [self._mem[depth].get(k) for k in keys]

    def put(self, depth: int, key: str, piece: torch.Tensor) -> None:
        self._resident(depth)
        stored = piece.detach().to("cpu", self.dtype)
        self._mem[depth][key] = stored
        self._new[depth][key] = stored

    def entries(self, depth: int) -> int:
        self._load(depth)
        return len(self._mem[depth])

    def nbytes(self, depth: int | None = None) -> int:
        """Bytes the cache holds in memory (for ``depth``, or all depths)."""
        depths = [depth] if depth is not None else list(self._mem)
        return sum(t.numel() * t.element_size() for d in depths for t in self._mem[d].values())

    def save(self) -> None:
        """Write the entries new since the last save as one more shard per depth."""
        for depth, new in list(self._new.items()):
            folder = self._dir(depth)
            if new and folder is not None:
                atomic_torch_save(dict(new), folder / f"part-{time.time_ns()}-{os.getpid()}.pt")
            self._new[depth] = {}

    def hidden(self, gpt: nn.Module, depth: int, keys: list[str], batch: dict) -> torch.Tensor:
        """The block-``depth`` input of ``batch`` (on the batch's device, in the GPT's dtype), capturing and
        storing the clips not cached yet (the whole batch is captured once when any is missing)."""
        pieces = self.lookup(depth, keys)
        if any(p is None for p in pieces):
            self.misses += sum(p is None for p in pieces)
            self.hits += sum(p is not None for p in pieces)
            started = time.perf_counter()
            captured = capture_prefix(gpt, depth, batch)
            self.capture_seconds += time.perf_counter() - started
            for i, (key, piece) in enumerate(zip(keys, captured)):
                if pieces[i] is None:
                    self.put(depth, key, piece)
            pieces = self.lookup(depth, keys)
        else:
            self.hits += len(keys)
        device = batch["text_inputs"].device
        moved = [p.to(device, non_blocking=True) for p in pieces]
        return assemble_prefix(moved, batch, gpt).to(gpt.final_norm.weight.dtype)


def prefix_key(feature_key: str, is_eval: bool, cond_slice) -> str:
    """The cache key of one clip's prefix: its feature key (file, text, variant) and conditioning slice."""
    start, end = (int(x) for x in cond_slice)
    return f"{feature_key}|{'eval' if is_eval else 'train'}|{start}:{end}"
