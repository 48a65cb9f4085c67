"""Append-only tensor shards on disk, read on demand: the store under the feature and prefix caches.

An hour or three of speech makes caches that outgrow memory (issue 28): the released GPT's block inputs
take 1.5-7 GB per freeze depth at 2,000 clips. A cache here is a folder of safetensors files
(``part-<time>-<pid>.safetensors``), each written once, atomically, and never rewritten. A flush writes the
entries new since the last one as one more shard, so several workers may add to one cache at once, and a
kill or a power loss loses at most the entries not flushed yet. Opening a cache reads only the shards' JSON
headers (an index of name -> file, offsets, dtype, shape); an entry's bytes are read when it is asked for.
New entries wait in memory until ``flush_bytes`` of them have piled up, then go to disk by themselves, so
memory stays bounded by that setting and not by the size of the cache.

Why our own reader rather than ``safetensors.safe_open``: safe_open maps the whole file, and every page a
run touches stays in its resident set until the kernel wants it back. A search reads every entry once per
epoch, so a mapped cache shows up as RSS the size of the cache. ``os.pread`` of one entry's bytes copies only
what a batch needs, into memory freed with the batch; the kernel's page cache, not the process, keeps the
file warm. The files are written with safetensors' own ``save``, so any safetensors tool reads them.

>>> import tempfile, torch
>>> shards = TensorShards(tempfile.mkdtemp())
>>> shards.put("clip-1.mel", torch.ones(2, 3, dtype=torch.float16))
>>> shards.flush().suffix, len(TensorShards(shards.folder)), TensorShards(shards.folder).get("clip-1.mel").shape
('.safetensors', 1, torch.Size([2, 3]))
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import struct
import time
from pathlib import Path

import torch

from xtts_tune.io import atomic_path

logger = logging.getLogger(__name__)

SUFFIX = ".safetensors"
DTYPES = {
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "F32": torch.float32,
    "F64": torch.float64,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
MAX_OPEN = 32  # shard files kept open between reads (the rest are reopened when needed)


class TensorShards:
    """A folder of append-only safetensors shards (see the module docstring); ``folder=None`` keeps
    everything in memory (a run without a cache folder)."""

    def __init__(self, folder: str | Path | None, *, flush_bytes: int = 64 << 20):
        self.folder = Path(folder) if folder is not None else None
        self.flush_bytes = flush_bytes
        self._index: dict[str, tuple[Path, int, int, torch.dtype, list[int]]] = {}
        self._seen: set[Path] = set()
        self._pending: dict[str, torch.Tensor] = {}
        self._pending_bytes = 0
        self._open: dict[Path, int] = {}
        self.refresh()

    # -- reading -------------------------------------------------------------------------------------
    def refresh(self) -> int:
        """Index the shards written since the last look (by this or another process); return how many."""
        if self.folder is None or not self.folder.is_dir():
            return 0
        new = [p for p in sorted(self.folder.glob(f"part-*{SUFFIX}")) if p not in self._seen]
        for path in new:
            self._seen.add(path)
            try:
                self._index_shard(path)
            except (OSError, ValueError, KeyError) as exc:  # a cache is disposable: recompute rather than fail
                logger.warning("ignoring unreadable cache shard %s (%s)", path, exc)
        return len(new)

    def _index_shard(self, path: Path) -> None:
        with open(path, "rb") as f:
            (size,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(size))
        start = 8 + size
        for name, meta in header.items():
            if name == "__metadata__":
                continue
            begin, end = meta["data_offsets"]
            self._index[name] = (path, start + begin, start + end, DTYPES[meta["dtype"]], list(meta["shape"]))

    def __contains__(self, name: str) -> bool:
        return name in self._pending or name in self._index

    def __len__(self) -> int:
        return len(self._index.keys() | self._pending.keys())

    def get(self, name: str) -> torch.Tensor | None:
        """The tensor stored as ``name`` (None when absent, or when its shard has been deleted)."""
        if name in self._pending:
            return self._pending[name]
        entry = self._index.get(name)
        if entry is None:
            return None
        path, begin, end, dtype, shape = entry
        try:
            data = os.pread(self._fd(path), end - begin, begin)
        except OSError:  # evicted (prefix_cache_max_gb) or removed by hand: the caller recomputes it
            self._forget(path)
            return None
        if len(data) != end - begin:
            self._forget(path)
            return None
        if not data:
            return torch.empty(shape, dtype=dtype)
        return torch.frombuffer(bytearray(data), dtype=dtype).reshape(shape)

    def _fd(self, path: Path) -> int:
        fd = self._open.get(path)
        if fd is None:
            if len(self._open) >= MAX_OPEN:
                self.close()
            fd = self._open[path] = os.open(path, os.O_RDONLY)
        return fd

    def _forget(self, path: Path) -> None:
        """Drop a vanished shard from the index (its entries are recomputed when asked for)."""
        self._index = {k: v for k, v in self._index.items() if v[0] != path}
        fd = self._open.pop(path, None)
        if fd is not None:
            os.close(fd)

    def close(self) -> None:
        """Close the shard files held open for reading (reopened on the next read)."""
        for fd in self._open.values():
            os.close(fd)
        self._open.clear()

    def __del__(self):
        with contextlib.suppress(Exception):
            self.close()

    # -- writing -------------------------------------------------------------------------------------
    def put(self, name: str, tensor: torch.Tensor) -> None:
        """Add ``name``; it goes to disk with the next flush (by itself once ``flush_bytes`` are waiting)."""
        tensor = tensor.detach().to("cpu").contiguous()
        if tensor.untyped_storage().nbytes() != tensor.numel() * tensor.element_size():
            tensor = tensor.clone()  # a slice of a batch: keep only its own bytes (safetensors refuses views)
        self._pending[name] = tensor
        self._pending_bytes += tensor.numel() * tensor.element_size()
        if self.folder is not None and self._pending_bytes >= self.flush_bytes:
            self.flush()

    @property
    def pending_bytes(self) -> int:
        """Bytes of new entries held in memory until the next flush."""
        return self._pending_bytes

    def flush(self) -> Path | None:
        """Write the new entries as one more shard (atomically); return its path (None when nothing is new,
        or without a folder)."""
        if self.folder is None or not self._pending:
            return None
        from safetensors.torch import save

        path = self.folder / f"part-{time.time_ns()}-{os.getpid()}{SUFFIX}"
        blob = save(self._pending)
        with atomic_path(path) as tmp:
            tmp.write_bytes(blob)
        self._seen.add(path)
        self._index_shard(path)
        self._pending.clear()
        self._pending_bytes = 0
        return path

    def disk_bytes(self) -> int:
        """Bytes of this cache's shards on disk."""
        if self.folder is None or not self.folder.is_dir():
            return 0
        return sum(p.stat().st_size for p in self.folder.glob(f"part-*{SUFFIX}") if p.is_file())
