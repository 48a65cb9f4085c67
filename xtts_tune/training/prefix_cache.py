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

Entries live on disk, in append-only safetensors shards read on demand (:mod:`xtts_tune.data.shards`), one
folder per depth, ``<study>/cache/prefix-<base>-d<N>-<precision>-<dtype>/``, beside the feature cache. In
memory there are only the entries not flushed yet (at most ``FLUSH_BYTES``, of the depth in use), so RSS does
not grow with the dataset or with the depths a worker visits. Each save writes the new entries as one more
shard (atomically), so several workers and a killed run never corrupt it. ``train.prefix_cache_max_gb``
bounds the disk: whole depths are deleted, least recently used first. Keys are the clip's feature key (file,
text, noise variant) and its conditioning slice.

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
import shutil
import time
from pathlib import Path

import torch
from torch import nn

from xtts_tune.data.shards import TensorShards
from xtts_tune.model.prefix import assemble_prefix, capture_prefix

logger = logging.getLogger(__name__)

DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}
FLUSH_BYTES = 64 << 20  # new entries held in memory before they go to disk by themselves (a flush peaks at ~3x)


class PrefixCache:
    """Captured block-N inputs of one base model's clips, per freeze depth (see the module docstring)."""

    def __init__(
        self,
        folder: str | Path | None,
        *,
        base_fingerprint: str,
        dtype: str,
        precision: str,
        max_bytes: int = 0,
        flush_bytes: int = FLUSH_BYTES,
    ):
        self.folder = Path(folder) if folder is not None else None
        self.name = f"prefix-{base_fingerprint}-d{{depth}}-{precision}-{dtype}"
        self.dtype = DTYPES[dtype]
        self.max_bytes = max_bytes
        self.flush_bytes = flush_bytes
        self._depth: int | None = None
        self._shards: TensorShards | None = None
        self.hits = 0
        self.misses = 0
        self.capture_seconds = 0.0
        self.evicted: list[int] = []

    def _dir(self, depth: int) -> Path | None:
        return self.folder / self.name.format(depth=depth) if self.folder is not None else None

    def _at(self, depth: int) -> TensorShards:
        """The shards of ``depth``. Only one depth is open at a time (issue 28: memory must not grow with the
        depths a worker visits): visiting another flushes the one before and closes it."""
        if self._depth != depth:
            if self._shards is not None:
                self.save()
                self._shards.close()
            self._depth, self._shards = depth, TensorShards(self._dir(depth), flush_bytes=self.flush_bytes)
            folder = self._dir(depth)
            if folder is not None and folder.is_dir():
                os.utime(folder)  # its last use, for evict_beyond's least-recently-used order
        return self._shards

    def lookup(self, depth: int, keys: list[str]) -> list[torch.Tensor | None]:
        """The cached pieces of ``keys`` at ``depth`` (None where missing)."""
        shards = self._at(depth)
        pieces = [shards.get(k) for k in keys]
        if any(p is None for p in pieces) and shards.refresh():  # another worker may have stored them
            pieces = [p if p is not None else shards.get(k) for p, k in zip(pieces, keys)]
        return pieces

    def put(self, depth: int, key: str, piece: torch.Tensor) -> None:
        self._at(depth).put(key, piece.detach().to("cpu", self.dtype))

    def entries(self, depth: int) -> int:
        return len(self._at(depth))

    def nbytes(self, depth: int | None = None) -> int:
        """Bytes the cache holds in memory (new entries not on disk yet), for ``depth`` or all depths."""
        if self._shards is None or (depth is not None and depth != self._depth):
            return 0
        return self._shards.pending_bytes

    def disk_bytes(self) -> int:
        """Bytes of every depth's shards of this base on disk."""
        return sum(size for _, size, _ in self._depth_folders())

    def _depth_folders(self) -> list[tuple[Path, int, float]]:
        if self.folder is None or not self.folder.is_dir():
            return []
        pattern = self.name.replace("{depth}", "*")
        out = []
        for folder in self.folder.glob(pattern):
            size = sum(p.stat().st_size for p in folder.glob("part-*") if p.is_file())
            out.append((folder, size, folder.stat().st_mtime))
        return out

    def save(self) -> None:
        """Write the entries new since the last save as one more shard, then keep the cache within
        ``max_bytes`` (``train.prefix_cache_max_gb``)."""
        if self._shards is not None:
            self._shards.flush()
        if self.max_bytes:
            self.evict_beyond(self.max_bytes)

    def evict_beyond(self, max_bytes: int) -> list[int]:
        """Delete whole depths, least recently used first, until this base's prefix cache takes at most
        ``max_bytes`` on disk; the depth in use is never deleted. Return the depths deleted (a later trial at
        one of them captures its entries again)."""
        folders = sorted(self._depth_folders(), key=lambda f: f[2])
        total = sum(size for _, size, _ in folders)
        current = self._dir(self._depth) if self._depth is not None else None
        deleted = []
        for folder, size, _ in folders:
            if total <= max_bytes:
                break
            if folder == current:
                continue
            shutil.rmtree(folder, ignore_errors=True)
            total -= size
            deleted.append(int(folder.name.split("-d")[-1].split("-")[0]))
        self.evicted += deleted
        return deleted

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
