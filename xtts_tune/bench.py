"""``make bench``: fixed, seeded figures for the demo on this machine (``python -m xtts_tune.bench``).

Prints seconds per epoch and a step-time breakdown with the feature cache on and off. Absolute times vary
between machines; compare the ratios measured in the same run.
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import tempfile
import time
from pathlib import Path

import torch

from xtts_tune.config import load_config
from xtts_tune.model import load_base, resolve_base_path
from xtts_tune.trial import prepare_data, run_trial

ROOT = Path(__file__).resolve().parents[1]


def epoch_breakdown(config: Path, *, cache: bool, augment_prob: float, epochs: int = 1) -> dict:
    """One trial of ``epochs`` epochs on a fresh output folder; returns its timings per epoch."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(
            config,
            [f"output_dir={tmp}", f"max_epochs={epochs}", "eval_every=100000", f"augment_prob={augment_prob}"],
        )
        torch.set_num_threads(os.cpu_count() or 1)
        base = load_base(resolve_base_path(cfg.base_model, Path(cfg.root)))
        data = prepare_data(cfg, base, use_cache=cache)
        state = copy.deepcopy(base.gpt.state_dict())
        warm = 0.0
        if cache:  # steady state: clean features computed once per study, before the trials
            t = time.perf_counter()
            for cid in data.clips:
                data.features.get(cid)
            warm = time.perf_counter() - t
            data.features.timings.clear()
            data.features.hits = data.features.misses = 0
        t = time.perf_counter()
        result = run_trial(cfg, base=base, data=data, run_dir=Path(tmp) / "trial", initial_state=state)
        wall = time.perf_counter() - t
        parts = dict(data.features.timings)
        parts.update(result.timings)
        return {
            "wall_per_epoch": wall / epochs,
            "steps_per_epoch": result.steps / epochs,
            "parts_per_epoch": {k: v / epochs for k, v in parts.items()},
            "cache_hits": data.features.hits,
            "cache_misses": data.features.misses,
            "precompute_seconds": warm,
        }


def _print_breakdown(title: str, r: dict) -> None:
    print(f"\n{title}")
    print(f"  seconds per epoch        {r['wall_per_epoch']:8.2f}   ({r['steps_per_epoch']:.0f} optimizer steps)")
    steps = max(r["steps_per_epoch"], 1)
    for name in ("audio_loading", "dvae_codes", "conditioning_mels", "forward_backward", "optimizer", "evaluation"):
        v = r["parts_per_epoch"].get(name, 0.0)
        print(f"  {name:<24} {v:8.2f} s/epoch  {1000 * v / steps:8.1f} ms/step")
    print(f"  feature cache            {r['cache_hits']} hits, {r['cache_misses']} misses"
          f" (one-off precompute {r['precompute_seconds']:.1f} s)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default=str(ROOT / "studies" / "demo.yaml"))
    p.add_argument("--epochs", type=int, default=2)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    from xtts_tune.cli import _quiet_third_party

    _quiet_third_party()
    print(f"xtts-tune benchmark — demo study, {os.cpu_count()} CPU threads, torch {torch.__version__}")
    rows = {}
    for cache in (True, False):
        for aug in (0.0, 0.3):
            rows[(cache, aug)] = epoch_breakdown(Path(args.config), cache=cache, augment_prob=aug, epochs=args.epochs)
            _print_breakdown(f"feature cache {'on' if cache else 'off'}, augment_prob {aug}", rows[(cache, aug)])
    print("\nratios (same run)")
    for aug in (0.0, 0.3):
        on, off = rows[(True, aug)], rows[(False, aug)]
        print(f"  augment_prob {aug}: cached epoch is {off['wall_per_epoch'] / on['wall_per_epoch']:.2f}x faster than uncached")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
