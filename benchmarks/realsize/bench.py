"""Real-size benchmark: step time and peak memory of fine-tuning the full-size XTTS v2 GPT.

The demo trains a tiny GPT; a real fine-tune trains the released XTTS v2 GPT (30 layers, model dim 1024,
16 heads, 6,681 text tokens, 1,026 audio tokens, perceiver resampler). This module builds that exact shape
from the released ``model_args`` (``xtts_v2_model_args.json``) and measures, for a few freeze depths, the
seconds per optimizer step and the peak memory of one optimizer step: ``accum`` micro-batches of one ~11 s
clip (coqui's longest training clip is 11.6 s), each through ``GPTTrainer.train_step`` → ``loss / accum``
→ ``backward``, then gradient clipping and ``AdamW.step``, with the same freezing
(:func:`xtts_tune.model.apply_freezing`), optimizer (:func:`xtts_tune.trial.optimizer_for`) and batch format
(:func:`xtts_tune.data.features.collate`) that trials use.

The weights are random: the released weights (model.pth ≈ 1.8 GB) cannot be downloaded on these machines.
Time and memory of a training step depend on the shapes only, not on the values of the weights, so the
figures hold for the released model; the losses do not, and are reported only to show they are finite.
The text tokens, DVAE codes and conditioning mels are synthetic for the same reason (and the DVAE is not
needed to time the GPT: trials compute codes once per clip, outside the step).

Each freeze depth runs in its own child process (``python -m benchmarks.realsize.bench --one DEPTH``), because a
process's peak resident memory (the CPU figure) only grows; on CUDA it also starts each figure from an
empty allocator.

Command line: ``python -m benchmarks.realsize.bench [--freeze-depths 0,24,28] [--steps N] [--accum N]
[--clip-seconds S] [--device auto|cpu|cuda]``. On CUDA the defaults are 3 steps (1 warm-up + 2 timed) of
batch 1 × accumulation 16; on CPU 1 step of accumulation 1, which only shows that the path works.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.realsize.model import (
    ARCH_FILE,
    ArchitectureError,
    read_architecture,
)
from benchmarks.realsize.step import (
    DEFAULT_CLIP_SECONDS,
    DEFAULT_FREEZE_DEPTHS,
    check_freeze_depths,
    default_accum,
    default_steps,
    measure,
)
from benchmarks.realsize.table import describe_run, format_table, prefix_cache_rows
from xtts_tune.model.base import pick_device

logger = logging.getLogger("benchmarks.realsize.bench")  # also when run as __main__


def _child_command(
    freeze_depth: int,
    *,
    steps: int,
    accum: int,
    clip_seconds: float,
    device: str,
    layers: int | None,
    arch_path: Path,
    freeze_embeddings: bool = False,
    prefix_cache: bool = False,
) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.realsize.bench",
        "--one",
        str(freeze_depth),
        "--steps",
        str(steps),
        "--accum",
        str(accum),
        "--clip-seconds",
        repr(clip_seconds),
        "--device",
        device,
        "--arch-file",
        str(arch_path),
    ]
    if layers is not None:
        cmd += ["--layers", str(layers)]
    if freeze_embeddings:
        cmd += ["--freeze-embeddings"]
    if prefix_cache:
        cmd += ["--prefix-cache"]
    return cmd


def measure_in_child(
    freeze_depth: int,
    *,
    steps: int,
    accum: int,
    clip_seconds: float,
    device: str,
    layers: int | None,
    arch_path: Path,
    freeze_embeddings: bool = False,
    prefix_cache: bool = False,
) -> dict[str, Any]:
    """:func:`measure` in a fresh Python process (a clean peak-memory figure); returns its record."""
    cmd = _child_command(
        freeze_depth,
        steps=steps,
        accum=accum,
        clip_seconds=clip_seconds,
        device=device,
        layers=layers,
        arch_path=arch_path,
        freeze_embeddings=freeze_embeddings,
        prefix_cache=prefix_cache,
    )
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    logger.info("measuring freeze depth %d in a child process", freeze_depth)
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"real-size measurement of freeze depth {freeze_depth} failed ({done.returncode}):\n{tail}")
    lines = done.stdout.strip().splitlines()
    if not lines:
        raise RuntimeError(f"real-size measurement of freeze depth {freeze_depth} printed no record")
    return json.loads(lines[-1])


def real_size_figures(
    freeze_depths: Sequence[int] = DEFAULT_FREEZE_DEPTHS,
    *,
    steps: int | None = None,
    accum: int | None = None,
    clip_seconds: float = DEFAULT_CLIP_SECONDS,
    device: str = "auto",
    layers: int | None = None,
    arch_path: Path = ARCH_FILE,
    frozen_embeddings_depths: Sequence[int] = (),
    prefix_cache_depths: Sequence[int] = (),
) -> list[dict[str, Any]]:
    """One :func:`measure` record per freeze depth, each measured in its own child process; then one per
    depth in ``frozen_embeddings_depths`` with the text and mel embeddings frozen as well, and one per depth
    in ``prefix_cache_depths`` with them frozen and the prefix cache on."""
    # fail here, with the file's name or the bad depth, rather than in every child
    check_freeze_depths(
        [*freeze_depths, *frozen_embeddings_depths, *prefix_cache_depths], read_architecture(arch_path), layers
    )
    dev = pick_device(device)
    steps = default_steps(dev) if steps is None else steps
    accum = default_accum(dev) if accum is None else accum
    return [
        measure_in_child(
            depth,
            steps=steps,
            accum=accum,
            clip_seconds=clip_seconds,
            device=str(dev),
            layers=layers,
            arch_path=Path(arch_path),
            freeze_embeddings=embeddings,
            prefix_cache=cached,
        )
        for depth, embeddings, cached in [
            *[(d, False, False) for d in freeze_depths],
            *[(d, True, False) for d in frozen_embeddings_depths],
            *[(d, True, True) for d in prefix_cache_depths],
        ]
    ]


def _depths(text: str) -> list[int]:
    try:
        depths = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        depths = []
    if not depths:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 0,24,28, got {text!r}")
    return depths


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.realsize.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--freeze-depths", type=_depths, default=list(DEFAULT_FREEZE_DEPTHS), help="e.g. 0,24,28")
    p.add_argument("--steps", type=int, default=None, help="optimizer steps (first is warm-up if > 1); CUDA 3, CPU 1")
    p.add_argument("--accum", type=int, default=None, help="micro-batches of 1 clip per step; CUDA 16, CPU 1")
    p.add_argument("--clip-seconds", type=float, default=DEFAULT_CLIP_SECONDS)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--arch-file", type=Path, default=ARCH_FILE, help="XTTS v2 model_args JSON")
    p.add_argument(
        "--frozen-embeddings-depths",
        type=lambda t: _depths(t) if t.strip() else [],
        default=[24, 28],
        help="also measure these depths with the text and mel embeddings frozen ('' skips)",
    )
    p.add_argument(
        "--prefix-cache-depths",
        type=lambda t: _depths(t) if t.strip() else [],
        default=[28],
        help="also measure these depths with the embeddings frozen and the prefix cache on ('' skips)",
    )
    p.add_argument("--freeze-embeddings", action="store_true", help=argparse.SUPPRESS)  # child
    p.add_argument("--prefix-cache", action="store_true", help=argparse.SUPPRESS)  # child
    p.add_argument("--layers", type=int, default=None, help=argparse.SUPPRESS)  # tests: fewer blocks
    p.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)  # child: one depth, JSON out
    p.add_argument(
        "--no-whole-trial",
        dest="whole_trial",
        action="store_false",
        help="skip the whole-trial rows (xtts-tune trial and train on a real-size folder)",
    )
    p.add_argument("--work", type=Path, help="folder for the real-size base and runs (default: a temporary one)")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    common = dict(
        steps=args.steps,
        accum=args.accum,
        clip_seconds=args.clip_seconds,
        device=args.device,
        layers=args.layers,
        arch_path=args.arch_file,
    )
    try:
        if args.one is not None:
            print(
                json.dumps(
                    measure(
                        args.one,
                        freeze_embeddings=args.freeze_embeddings or args.prefix_cache,
                        prefix_cache=args.prefix_cache,
                        **common,
                    )
                )
            )
            return 0
        records = real_size_figures(
            args.freeze_depths,
            frozen_embeddings_depths=args.frozen_embeddings_depths,
            prefix_cache_depths=args.prefix_cache_depths,
            **common,
        )
    except (ArchitectureError, ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(describe_run(records, args.arch_file))
    print(format_table(records))
    if any(r.get("prefix_cache") for r in records):
        print(prefix_cache_rows(records))
    if args.whole_trial:
        import tempfile

        from benchmarks.realsize.trial import format_rows, whole_trial_figures

        depth = max(d for d in args.freeze_depths if d <= (args.layers or 30))
        bare = next(
            (r["peak_memory_bytes"] for r in records if r["freeze_depth"] == depth and not r.get("freeze_embeddings")),
            None,
        )
        with tempfile.TemporaryDirectory(dir=args.work) as work:
            trial = whole_trial_figures(
                Path(work), freeze_depth=depth, layers=args.layers, device=args.device, arch_path=args.arch_file
            )
        print(f"\nwhole trial at freeze {depth}, through xtts-tune trial / train (batch 1, 8 demo clips, 2 steps):")
        print(format_rows(trial, bare))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
