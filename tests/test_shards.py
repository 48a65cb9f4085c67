"""The on-disk caches at the users' size (issue 28): append-only shards, read on demand, never corrupt."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import torch

from xtts_tune.data.shards import TensorShards
from xtts_tune.training.prefix_cache import PrefixCache

WRITER = textwrap.dedent(
    """
    import sys, time, torch
    from xtts_tune.data.shards import TensorShards
    shards = TensorShards(sys.argv[1], flush_bytes=4 * 1024)
    for i in range(10**6):
        shards.put(f"{sys.argv[2]}-{i}", torch.full((256,), float(i)))  # 1 KiB: a shard every 4 entries
        if i == 40:
            print("ready", flush=True)
        time.sleep(0.001)
    """
)


def test_a_killed_writer_leaves_only_whole_shards_and_a_second_writer_shares_the_folder(tmp_path):
    folder = tmp_path / "cache"
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(folder), name], stdout=subprocess.PIPE, text=True)
        for name in ("a", "b")
    ]
    for p in procs:
        assert p.stdout.readline().strip() == "ready"
    time.sleep(0.2)
    for p in procs:
        os.kill(p.pid, signal.SIGKILL)  # mid-flush, perhaps: nothing but whole shards may remain
        p.wait()
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]
    shards = TensorShards(folder)
    names = {n for n in ("a", "b") for i in range(40) if f"{n}-{i}" in shards}
    assert names == {"a", "b"} and len(shards) >= 80  # both writers' flushed entries, in one folder
    for n in ("a", "b"):
        i = 0
        while f"{n}-{i}" in shards:  # each writer's entries are whole and right, up to its last flush
            assert torch.equal(shards.get(f"{n}-{i}"), torch.full((256,), float(i)))
            i += 1


def test_reading_a_big_cache_does_not_grow_memory(tmp_path):
    shards = TensorShards(tmp_path, flush_bytes=32 << 20)
    for i in range(96):
        shards.put(f"clip-{i}", torch.full((1 << 19,), float(i)))  # 2 MiB each: 192 MiB on disk
    shards.flush()
    assert shards.pending_bytes == 0 and shards.disk_bytes() > 190 << 20
    reader = textwrap.dedent(
        f"""
        import resource, torch
        from xtts_tune.data.shards import TensorShards
        shards = TensorShards({str(tmp_path)!r})
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        for _ in range(2):
            for i in range(96):
                assert float(shards.get(f"clip-{{i}}")[0]) == i
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
        """
    )
    grown_mb = int(subprocess.run([sys.executable, "-c", reader], capture_output=True, text=True, check=True).stdout)
    assert grown_mb < 40, f"reading a 192 MiB cache twice grew the peak RSS by {grown_mb} MiB"


def test_the_prefix_cache_stays_within_its_cap_least_recently_used_depth_first(tmp_path):
    entry = 64 * 64 * 2  # bytes of one float16 piece
    cache = PrefixCache(
        tmp_path, base_fingerprint="abc", dtype="float16", precision="fp32", max_bytes=int(2.5 * 8 * entry)
    )
    for depth in (1, 2, 3):
        for i in range(8):
            cache.put(depth, f"clip-{i}", torch.ones(64, 64))
        cache.save()
    assert cache.evicted == [1] and cache.disk_bytes() <= 2.5 * 8 * entry * 1.2  # depth 1, the oldest, went
    assert cache.lookup(1, ["clip-0"]) == [None]  # a later trial at depth 1 captures it again
    assert cache.lookup(3, ["clip-0"])[0] is not None
