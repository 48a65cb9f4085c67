"""``make bench`` rows for the prefix cache: demo trials at freeze depth L-1 and L-2, cache on vs off.

Both runs of a depth train the same configuration (the conditioning and both embeddings frozen, one fixed
conditioning slice per clip, the demo's learning rate, no early stopping) on one loaded base; only
``train.prefix_cache`` differs. Each is run twice: the first run computes what its caches hold (features; with
the cache on, also the block-N inputs) and the second is timed, as a study's later trials are. Step time is
the trial's forward + backward + optimizer time per optimizer step; trial time is its wall time, evaluations
included.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from xtts_tune.config import load_config
from xtts_tune.model.base import load_study_base
from xtts_tune.training.loop import run_trial
from xtts_tune.training.prepare import prepare_data

CACHE_CONDITIONS = [
    "model.freeze_conditioning=true",
    "model.freeze_text_embedding=true",
    "model.freeze_mel_embedding=true",
    "train.conditioning_slice=fixed",
    "patience=100000",
]


def prefix_figures(config: Path, *, depths_below_top: tuple[int, ...] = (1, 2)) -> list[dict]:
    """One record per depth ``L - k`` (k in ``depths_below_top``): step and trial seconds with the cache off and
    on, the one-off capture time and the cache's size. Figures of the second (warm) run of each."""
    records = []
    with tempfile.TemporaryDirectory() as tmp:
        base = None
        for k in depths_below_top:
            record: dict = {}
            for cache in (False, True):
                overrides = [
                    f"output_dir={tmp}/{k}-{cache}",
                    f"train.prefix_cache={str(cache).lower()}",
                    *CACHE_CONDITIONS,
                ]
                cfg = load_config(config, overrides)
                base = base or load_study_base(cfg)
                depth = base.num_layers - k
                cfg.train.freeze_depth = depth
                data = prepare_data(cfg, base)
                cold = run_trial(cfg, base=base, data=data, run_dir=Path(tmp) / f"cold-{k}-{cache}")
                warm = run_trial(cfg, base=base, data=data, run_dir=Path(tmp) / f"warm-{k}-{cache}")
                step = (warm.timings["forward_backward"] + warm.timings["optimizer"]) / max(warm.steps, 1)
                side = "on" if cache else "off"
                record.update(
                    {
                        "depth": depth,
                        "layers": base.num_layers,
                        "steps": warm.steps,
                        "evaluations": len(warm.curve),
                        f"step_{side}": step,
                        f"trial_{side}": warm.wall_seconds,
                        f"cold_trial_{side}": cold.wall_seconds,
                        f"best_{side}": warm.best_val_loss,
                    }
                )
                if cache:
                    record["capture_seconds"] = data.prefix_cache.capture_seconds
                    record["cache_bytes"] = data.prefix_cache.nbytes(depth)
                    record["cache_entries"] = data.prefix_cache.entries(depth)
            records.append(record)
    return records


def prefix_rows(records: list[dict]) -> list[tuple[str, str, str]]:
    """The summary rows (figure, value, target) of :func:`prefix_figures`."""
    rows = []
    for r in records:
        below = r["layers"] - r["depth"]
        where = f"freeze {r['depth']} of {r['layers']} (L-{below})"
        target = "<= 0.35x" if below == 1 else ""
        rows += [
            (
                f"prefix cache, step time on/off, {where}",
                f"{1000 * r['step_on']:.1f} / {1000 * r['step_off']:.1f} ms = {r['step_on'] / r['step_off']:.2f}x",
                target,
            ),
            (
                f"prefix cache, trial time on/off, {where} ({r['steps']} steps, {r['evaluations']} evaluations)",
                f"{r['trial_on']:.2f} / {r['trial_off']:.2f} s = {r['trial_on'] / r['trial_off']:.2f}x",
                "",
            ),
            (
                f"prefix cache, first trial (fills it) / later trial, {where}",
                f"{r['cold_trial_on']:.2f} / {r['trial_on']:.2f} s; {r['cache_entries']} clips, "
                f"{r['cache_bytes'] / 2**20:.1f} MiB, captured in {r['capture_seconds']:.2f} s",
                "",
            ),
        ]
    return rows
