"""``make bench-gpu``: the released shape on a GPU at the users' size, in at most 8 minutes.

Four rows: freeze depth 28 and 24, each with the prefix cache off and on, in bf16, on ``--clips`` clips (1,000
by default). The device machine has only the checkout, so the clips are the CC0 speaker's 100 committed clips
(``corpora/real-voice-kathleen``) repeated under new ids; ``--source hour`` takes the real hour instead
(:func:`benchmarks.datasets.real_hour`). The model is the released layout with random weights
(:func:`xtts_tune.model.released.build_released_folder`: time and memory depend on the shapes, not the values).

Each row is one trial of at most ``--steps`` optimizer steps with ``studies/kathleen.yaml``'s batch of 4, in its
own child process, so its peak VRAM (``max_memory_allocated``) and RSS are its own. The rows share one study
folder: the features are prepared once (the first row's prep; augmentation off, since noisy variants would
multiply the prep and a step costs the same). A cache-on row runs its trial twice: the first captures the
depth's prefix as it trains (its step time in brackets), the second reads it, as a search's later trials of
that depth do. Every row freezes the conditioning and both
embeddings and uses one fixed conditioning slice, which the prefix cache needs, so the cache is the only
difference between a depth's two rows. The 1-epoch trial is projected from the measured step time (steps per
epoch x seconds per step, plus one evaluation) and printed as projected.

    python -m benchmarks.gpu                                   # on the GPU (make bench-gpu)
    python -m benchmarks.gpu --tiny --clips 12 --steps 2       # on a CPU: the path works (a test runs it)
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

ROOT = Path(__file__).resolve().parents[1]
KATHLEEN = ROOT / "corpora" / "real-voice-kathleen"
DEPTHS = (28, 24)


def make_dataset(work: Path, clips: int, source: str) -> Path:
    """``clips`` clips in coqui's layout, symlinked from the CC0 speaker's 100 clips (or the real hour),
    repeated under new ids past the source's end (features are keyed by id, so every repeat is prepared)."""
    if source == "hour":
        from benchmarks.datasets import real_hour

        hour = real_hour()
        rows = [r.split("|")[:2] for r in (hour / "metadata.csv").read_text().splitlines() if r.strip()]
        rows = [(hour / "wavs" / f"{cid}.wav", text) for cid, text in rows]
    else:
        lines = (KATHLEEN / "metadata_coqui.csv").read_text().splitlines()[1:]
        rows = [(KATHLEEN / r.split("|")[0], r.split("|")[1]) for r in lines if r.strip()]
    out = work / "data"
    (out / "wavs").mkdir(parents=True, exist_ok=True)
    meta = ["audio_file|text|speaker_name"]
    for i in range(clips):
        audio, text = rows[i % len(rows)]
        link = out / "wavs" / f"{audio.stem}-r{i // len(rows)}{audio.suffix}"
        if not link.exists():
            link.symlink_to(audio)
        meta.append(f"wavs/{link.name}|{text}|speaker")
    (out / "metadata_coqui.csv").write_text("\n".join(meta) + "\n")
    return out


def study_doc(work: Path, data: Path, base_model: str, *, depth: int, cache: bool, steps: int, device: str) -> dict:
    doc = yaml.safe_load((ROOT / "studies" / "kathleen.yaml").read_text())
    doc.update(study_name="bench-gpu", base_model=base_model, output_dir=str(work / "runs"))
    doc["data"].update(path=str(data), formatter="coqui", metadata="metadata_coqui.csv")
    doc["data"].update(val_count=0, test_count=0, train_count=0)  # the default 10 % / 5 % split
    doc["model"].update(freeze_conditioning=True, freeze_text_embedding=True, freeze_mel_embedding=True)
    doc["train"].update(  # no noisy variants: they would multiply the prep, and a step costs the same
        augment_prob=0.0, freeze_depth=depth, max_steps=steps, max_epochs=1, eval_every=steps, eval_at_start=False,
        prefix_cache=cache, conditioning_slice="fixed", precision="bf16", device=device,
    )  # fmt: skip
    return doc


def measure_row(work: Path, doc: dict) -> dict:
    """One row, in this process (:func:`row_in_child` runs it in a child)."""
    import torch

    from xtts_tune.config import load_config
    from xtts_tune.model.base import load_study_base
    from xtts_tune.training.feature_prep import prepare_features
    from xtts_tune.training.loop import run_trial
    from xtts_tune.training.prepare import prepare_data

    config = work / f"row-{doc['train']['freeze_depth']}-{int(doc['train']['prefix_cache'])}.yaml"
    config.write_text(yaml.safe_dump(doc))
    cfg = load_config(config)
    base = load_study_base(cfg)
    t = time.perf_counter()
    data = prepare_data(cfg, base)
    prepare_features(data, cfg.train, augment=cfg.train.augment_prob > 0)
    prep = time.perf_counter() - t
    prefix_dirs = lambda: sum(p.stat().st_size for p in cfg.cache_dir.glob("prefix-*/**/*") if p.is_file())  # noqa: E731
    before = prefix_dirs()
    result = run_trial(cfg, base=base, data=data, run_dir=work / f"trial-{config.stem}")
    capture_step = None
    if cfg.train.prefix_cache:  # the first trial of a depth captures; a search's later trials read, like this one
        capture_step = _step_seconds(result)
        result = run_trial(cfg, base=base, data=data, run_dir=work / f"trial-{config.stem}-again")
    timings, per_step = result.timings, _step_seconds(result)
    epoch_steps = math.ceil(len(data.split.train) / cfg.train.batch_size / cfg.train.grad_accum_steps)
    cuda = torch.cuda.is_available() and cfg.train.device != "cpu"
    return {
        "depth": cfg.train.freeze_depth,
        "prefix_cache": cfg.train.prefix_cache,
        "device": torch.cuda.get_device_name() if cuda else "cpu",
        "clips": len(data.clips),
        "prep_seconds": prep,
        "trial_seconds": result.wall_seconds,
        "steps": result.steps,
        "step_seconds": per_step,
        "capture_step_seconds": capture_step,
        "batch_prep_seconds": timings.get("batch_preparation", 0.0),
        "eval_seconds": timings.get("evaluation", 0.0),
        "epoch_trial_seconds": epoch_steps * per_step + timings.get("evaluation", 0.0),
        "epoch_steps": epoch_steps,
        "peak_vram_bytes": torch.cuda.max_memory_allocated() if cuda else None,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "prefix_cache_bytes": prefix_dirs() - before,
    }


def _step_seconds(result) -> float:
    """Seconds per optimizer step: forward, backward and update (batch preparation and evaluation apart)."""
    return (result.timings.get("forward_backward", 0.0) + result.timings.get("optimizer", 0.0)) / max(1, result.steps)


def row_in_child(work: Path, doc: dict, timeout: float) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.gpu", "--row", json.dumps(doc), "--work", str(work)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"row depth {doc['train']['freeze_depth']}: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def format_table(rows: list[dict]) -> str:
    gib = 2**30
    lines = [
        "| device | clips | depth | prefix cache | prep s | steps | s per step (capturing) | batch prep s | trial s | "
        "1-epoch trial s (projected) | peak VRAM | peak RSS | prefix cache on disk |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        vram = f"{r['peak_vram_bytes'] / gib:.2f} GiB" if r["peak_vram_bytes"] is not None else "n/a (CPU)"
        capture = f" ({r['capture_step_seconds']:.3f})" if r["capture_step_seconds"] is not None else ""
        lines.append(
            f"| {r['device']} | {r['clips']:,} | {r['depth']} | {'on' if r['prefix_cache'] else 'off'} | "
            f"{r['prep_seconds']:.1f} | {r['steps']} | {r['step_seconds']:.3f}{capture} | {r['batch_prep_seconds']:.1f} | "
            f"{r['trial_seconds']:.1f} | {r['epoch_trial_seconds']:.0f} ({r['epoch_steps']} steps) | {vram} | "
            f"{r['peak_rss_bytes'] / gib:.2f} GiB | {r['prefix_cache_bytes'] / 2**20:.1f} MiB |"
        )
    return "\n".join(lines)


def build_base(work: Path, tiny: bool) -> str:
    """The released layout with random weights: the released GPT's shape, or (``tiny``) its 30 blocks at width
    64 with a small DVAE."""
    from benchmarks.realsize.model import read_architecture
    from xtts_tune.model.released import build_released_folder

    arch = read_architecture().model_args
    shape = (
        {"layers": arch["gpt_layers"], "model_channels": 64, "heads": 4}
        if tiny
        else {
            "layers": arch["gpt_layers"],
            "model_channels": arch["gpt_n_model_channels"],
            "heads": arch["gpt_n_heads"],
        }
    )
    return str(build_released_folder(work / "base", decoder=False, speakers=False, released_dvae=not tiny, **shape))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clips", type=int, default=1000)
    p.add_argument("--steps", type=int, default=40, help="optimizer steps per row (the epoch is projected)")
    p.add_argument("--depths", type=int, nargs="+", default=list(DEPTHS), help="freeze depths, each cache off and on")
    p.add_argument("--source", choices=["kathleen", "hour"], default="kathleen")
    p.add_argument("--tiny", action="store_true", help="a 30-block GPT of width 64 and a small DVAE (a CPU check)")
    p.add_argument("--device", default="auto")
    p.add_argument("--timeout", type=float, default=240, help="seconds per row")
    p.add_argument("--json", help="also write the rows to this file")
    p.add_argument("--row", help=argparse.SUPPRESS)
    p.add_argument("--work", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.row:
        print(json.dumps(measure_row(Path(args.work), json.loads(args.row))))
        return 0
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-gpu-") as tmp:
        work = Path(tmp)
        base, data = build_base(work, args.tiny), make_dataset(work, args.clips, args.source)
        print(f"built the released layout in {time.perf_counter() - started:.0f} s", flush=True)
        rows = []
        for depth, cache in ((d, c) for d in args.depths for c in (False, True)):
            doc = study_doc(work, data, base, depth=depth, cache=cache, steps=args.steps, device=args.device)
            rows.append(row_in_child(work, doc, args.timeout))
            print(json.dumps(rows[-1]), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    print(format_table(rows))
    print(f"total {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
