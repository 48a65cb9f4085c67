"""``make bench-scale``: what a search costs against the dataset's size, one row per size, each in a child process
(a clean peak RSS).

A row takes the first N clips of the real hour (:func:`benchmarks.datasets.real_hour`; above its 1,132 clips
the hour is repeated under new ids), ``studies/kathleen.yaml``'s settings on every clip (``train_count: 0``,
``max_epochs: 1``, validation once per epoch as the template has it, the default 10 %/5 % split), and measures:
the feature prep (every clip and noisy variant the trial uses, then the store saved), one trial, the caches on
disk, the peak RSS, the evaluation's share of the trial, and the ETA of a 20-trial search (20 trials at this
trial's time; prep once). ``--base released`` runs it on the released layout with random weights
(:func:`xtts_tune.model.released.build_released_folder`, freeze depth 28) and reports every cost per clip, so
it extrapolates linearly to 3,000 clips (stated as extrapolated in the table).

    python -m benchmarks.scale --clips 100 300 1132 3000
    python -m benchmarks.scale --base released --clips 100 300
    python -m benchmarks.scale --base released --clips 300 3000 --steps 8   # the peak RSS at each size
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from benchmarks.datasets import real_hour

ROOT = Path(__file__).resolve().parents[1]
SEARCH_TRIALS = 20


def make_dataset(work: Path, clips: int) -> Path:
    """``clips`` clips of the real hour in LJSpeech layout (symlinked; repeated under new ids past its end)."""
    hour = real_hour()
    rows = [line.split("|") for line in (hour / "metadata.csv").read_text().splitlines() if line.strip()]
    out = work / "data"
    (out / "wavs").mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(clips):
        cid, text = rows[i % len(rows)][0], rows[i % len(rows)][1]
        new = cid if i < len(rows) else f"{cid}-r{i // len(rows)}"
        link = out / "wavs" / f"{new}.wav"
        if not link.exists():
            link.symlink_to(hour / "wavs" / f"{cid}.wav")
        lines.append(f"{new}|{text}|{text}")
    (out / "metadata.csv").write_text("\n".join(lines) + "\n")
    return out


def study_config(work: Path, data: Path, base_model: str, clips: int, extra: dict) -> Path:
    doc = yaml.safe_load((ROOT / "studies" / "kathleen.yaml").read_text())
    doc.update(base_model=base_model, output_dir=str(work / "runs"))
    doc["data"].update(
        path=str(data), formatter="ljspeech", metadata="metadata.csv", val_count=0, test_count=0, train_count=0
    )
    n_train = clips - max(1, round(0.1 * clips)) - max(2, round(0.05 * clips))
    steps_per_epoch = math.ceil(n_train / doc["train"]["batch_size"])
    every = min(steps_per_epoch, extra.get("max_steps") or steps_per_epoch)  # evaluated once, even when capped
    doc["train"].update(max_epochs=1, eval_every=every, **extra)  # the template's once per epoch
    path = work / "study.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _dir_bytes(folder: Path, pattern: str) -> int:
    return sum(p.stat().st_size for p in folder.glob(pattern) if p.is_file())


def measure_row(work: Path, clips: int, base_model: str, extra: dict) -> dict:
    """One row, in this process (run it in a child: :func:`row_in_child`)."""
    from xtts_tune.config import load_config
    from xtts_tune.model.base import load_study_base
    from xtts_tune.training.feature_prep import prepare_features
    from xtts_tune.training.loop import run_trial
    from xtts_tune.training.prepare import prepare_data

    config = study_config(work, make_dataset(work, clips), base_model, clips, extra)
    cfg = load_config(config)
    base = load_study_base(cfg)
    t = time.perf_counter()
    data = prepare_data(cfg, base)
    prepare_features(data, cfg.train, augment=cfg.train.augment_prob > 0)  # what a search runs before trial 1
    prep = time.perf_counter() - t
    result = run_trial(cfg, base=base, data=data, run_dir=work / "trial")
    hours = sum(data.features.get(c).wav_length for c in data.clips) / base.config.audio.sample_rate / 3600
    return {
        "clips": clips,
        "hours": hours,
        "split": [len(data.split.train), len(data.split.val), len(data.split.test)],
        "prep_seconds": prep,
        "trial_seconds": result.wall_seconds,
        "steps": result.steps,
        "eval_seconds": result.timings.get("evaluation", 0.0),
        "feature_cache_bytes": _dir_bytes(cfg.cache_dir, "features-*/*"),
        "prefix_cache_bytes": _dir_bytes(cfg.cache_dir, "prefix-*/*"),
        "checkpoint_bytes": _dir_bytes(work / "trial", "*.pth"),
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


DEPTHS_CHILD = """
import resource, sys, torch
from xtts_tune.training.prefix_cache import PrefixCache
folder, depths, clips = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
cache = PrefixCache(folder, base_fingerprint="bench", dtype="float16", precision="fp32")
start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
for depth in range(1, depths + 1):
    for i in range(clips):  # 130 x 128 float16 per clip: the 34 MB per depth of a 1,000-clip tiny-base search
        cache.put(depth, f"clip-{i}", torch.ones(130, 128))
    cache.save()
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - start) / 1024
    print(f"depth {depth}: peak RSS grown {grown:.0f} MiB, {cache.disk_bytes() / 2**20:.0f} MiB on disk", flush=True)
"""


def depths_rss(depths: int = 8, clips: int = 1000) -> str:
    """The prefix cache's memory as a worker visits ``depths`` freeze depths of ``clips`` entries each (in a
    child process, for a clean peak): it must not grow with the depths."""
    with tempfile.TemporaryDirectory(prefix="scale-depths-") as work:
        cmd = [sys.executable, "-c", DEPTHS_CHILD, work, str(depths), str(clips)]
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout


def row_in_child(clips: int, base_model: str, extra: dict, timeout: float) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"scale-{clips}-") as work:
        cmd = [sys.executable, "-m", "benchmarks.scale", "--row", str(clips), "--base-model", base_model,
               "--work", work, "--extra", json.dumps(extra)]  # fmt: skip
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if out.returncode != 0:
            raise RuntimeError(f"row {clips}: {out.stderr[-2000:]}")
        return json.loads(out.stdout.strip().splitlines()[-1])


def format_table(rows: list[dict], label: str) -> str:
    """The Markdown table; per-clip figures let a reader extrapolate to 3,000 clips."""
    head = (
        "| base | clips | hours | split (train/val/test) | feature prep s | ms per clip | peak RSS | feature cache | "
        "trial s (1 epoch) | evaluation share | ETA of 20 trials |\n|---|---|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for r in rows:
        eta = r["prep_seconds"] + SEARCH_TRIALS * r["trial_seconds"]
        lines.append(
            f"| {label} | {r['clips']:,} | {r['hours']:.2f} | {'/'.join(map(str, r['split']))} | "
            f"{r['prep_seconds']:.1f} | {1000 * r['prep_seconds'] / r['clips']:.1f} | "
            f"{r['peak_rss_bytes'] / 2**30:.2f} GiB | {r['feature_cache_bytes'] / 2**20:.1f} MiB | "
            f"{r['trial_seconds']:.1f} ({r['steps']} steps) | {100 * r['eval_seconds'] / r['trial_seconds']:.0f} % | "
            f"{eta / 60:.0f} min |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clips", type=int, nargs="+", default=[100, 300, 1132, 3000])
    p.add_argument("--base", choices=["embedded", "released"], default="embedded")
    p.add_argument("--timeout", type=float, default=1800)
    p.add_argument("--depths", type=int, help="only the prefix cache's RSS over this many depths")
    p.add_argument(
        "--steps",
        type=int,
        default=0,
        help="cap each row's trial at N optimizer steps (its memory at that size, "
        "not a whole epoch: the released shape takes about 20 s a step on a CPU)",
    )
    p.add_argument("--row", type=int, help=argparse.SUPPRESS)
    p.add_argument("--base-model", default="embedded", help=argparse.SUPPRESS)
    p.add_argument("--work", help=argparse.SUPPRESS)
    p.add_argument("--extra", default="{}", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.row:
        print(json.dumps(measure_row(Path(args.work), args.row, args.base_model, json.loads(args.extra))))
        return 0
    if args.depths:
        print(depths_rss(args.depths), end="")
        return 0
    real_hour()  # says how to get it, before any row starts
    base_model, extra = "embedded", {}
    if args.base == "released":
        from benchmarks.realsize.model import read_architecture
        from xtts_tune.model.released import build_released_folder

        arch = read_architecture().model_args
        folder = Path(tempfile.mkdtemp(prefix="released-")) / "base"
        build_released_folder(
            folder, layers=arch["gpt_layers"], model_channels=arch["gpt_n_model_channels"],
            heads=arch["gpt_n_heads"], decoder=False, speakers=False, released_dvae=True,
        )  # fmt: skip
        base_model, extra = str(folder), {"freeze_depth": 28}
    if args.steps:
        extra["max_steps"] = args.steps
    rows = []
    for clips in args.clips:
        rows.append(row_in_child(clips, base_model, extra, args.timeout))
        print(json.dumps(rows[-1]), flush=True)
    print(format_table(rows, args.base))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
