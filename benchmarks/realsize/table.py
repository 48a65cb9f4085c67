"""The tables ``make bench-real-size`` prints from the bare-step records of :mod:`benchmarks.realsize.bench`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

GIB = 1024**3


def format_table(records: Sequence[dict[str, Any]]) -> str:
    header = (
        "freeze",
        "embeddings",
        "prefix cache",
        "trainable / total (share)",
        "s/step",
        "micro-b/s",
        "peak GiB",
        "device",
        "dtype",
    )
    rows = [header]
    for r in records:
        rows.append(
            (
                str(r["freeze_depth"]),
                "frozen" if r.get("freeze_embeddings") else "trainable",
                (f"on, {r['prefix_bytes_per_clip'] / 2**20:.2f} MiB/clip" if r.get("prefix_cache") else "off"),
                f"{r['trainable_params'] / 1e6:.1f}M / {r['total_params'] / 1e6:.1f}M ({100 * r['trainable_share']:.1f}%)",
                f"{r['seconds_per_step']:.2f}",
                f"{r['microbatches_per_second']:.2f}",
                f"{r['peak_memory_bytes'] / GIB:.2f}",
                r["device_name"],
                r["dtype"],
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def describe_run(records: Sequence[dict[str, Any]], arch_path: Path) -> str:
    r = records[0]
    lines = [
        f"XTTS v2 GPT, real size ({r['layers']} layers, from {arch_path}), random weights; "
        f"batch 1 x accumulation {r['accum']}, one {r['clip_seconds']:g} s clip "
        f"({r['text_tokens']} text tokens, {r['audio_codes']} audio codes); "
        f"{r['steps']} step(s), {r['timed_steps']} timed; peak memory = {r['peak_memory_kind']}",
    ]
    skipped = sum(rec.get("skipped_microbatches", 0) for rec in records)
    if skipped:
        lines.append(f"{skipped} micro-batch(es) had a non-finite loss and were skipped, as trials skip them")
    if r["device"] == "cpu":
        lines.append(
            f"CPU figures use accumulation {r['accum']} and only show that the path works; "
            "real figures need a GPU (CUDA defaults: 3 steps, accumulation 16)."
        )
    return "\n".join(lines)


def prefix_cache_rows(records: Sequence[dict[str, Any]]) -> str:
    """Per depth measured both ways: step time and peak memory with the prefix cache on / off (embeddings
    frozen in both), and the cache's size per clip."""
    lines = []
    for on in (r for r in records if r.get("prefix_cache")):
        off = next(
            (
                r
                for r in records
                if r["freeze_depth"] == on["freeze_depth"] and r.get("freeze_embeddings") and not r.get("prefix_cache")
            ),
            None,
        )
        if off is None:
            continue
        lines.append(
            f"prefix cache at freeze {on['freeze_depth']}: step {on['seconds_per_step']:.2f} s vs "
            f"{off['seconds_per_step']:.2f} s = {on['seconds_per_step'] / off['seconds_per_step']:.2f}x "
            f"(target <= 0.35x at L-1 on the demo); peak {on['peak_memory_bytes'] / GIB:.2f} vs "
            f"{off['peak_memory_bytes'] / GIB:.2f} GiB; cache {on['prefix_bytes_per_clip'] / 2**20:.2f} MiB per "
            f"{on['clip_seconds']:g} s clip, captured once in {on['prefix_capture_seconds']:.2f} s"
        )
    return "\n".join(lines)
