"""Does forgetting grow with the learning rate and with fewer frozen layers? ``make bench-forgetting``
(``python -m benchmarks.forgetting``).

For each study YAML (default: the demo and the CC0 speaker, both on the embedded base, whose forgetting set
is the demo base voice's 45 held-out clips) it runs one search whose trials are a grid of learning rates x
freeze depths (enqueued; every checkpoint kept and no pruner, so every trial is scored on the forgetting set
as the search scores kept trials), then retrains one configuration with other seeds to see how far another
seed moves the figure. Prints a table and writes it as JSON (``--out``). Seconds to minutes on a CPU.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import statistics
import tempfile
import time
from pathlib import Path

STUDIES = ("studies/demo.yaml", "studies/kathleen.yaml")
LEARNING_RATES = (1e-4, 1e-3, 1e-2)
DEPTHS = (0, 2, 4)


def grid_search(config: str, learning_rates, depths, out: Path) -> list[dict]:
    """One search over the grid; a row per trial: params, validation loss and forgetting figures."""
    import optuna

    from xtts_tune.config import load_config
    from xtts_tune.record import ForgettingSet, TrialRecord
    from xtts_tune.search.runner import run_search

    grid = [{"learning_rate": lr, "freeze_depth": d} for lr, d in itertools.product(learning_rates, depths)]
    # the other searched knobs fixed at the study's own values, so only the two under test vary
    fixed = "weight_decay: 0.1, augment_prob: 0.3"
    items = [f"{{learning_rate: {g['learning_rate']}, freeze_depth: {g['freeze_depth']}, {fixed}}}" for g in grid]
    enqueue = "[" + ", ".join(items) + "]"
    overrides = [
        f"output_dir={out}",
        "search.pruner={type: none}",
        "search.enqueue_guide=false",
        f"search.enqueue={enqueue}",
        f"search.keep_top_k={len(grid) + 1}",
    ]
    cfg = load_config(config, overrides)
    url = f"sqlite:///{out}/bench.db"
    started = time.perf_counter()
    run_search(cfg, n_trials=len(grid), storage=url)
    study = optuna.load_study(study_name=cfg.study_name, storage=url)
    fset = ForgettingSet.from_study(study)
    rows = []
    for t in study.trials:
        rec = TrialRecord.from_trial(t)
        rows.append(
            {
                "study": cfg.study_name,
                "trial": t.number,
                "learning_rate": t.params.get("learning_rate"),
                "freeze_depth": t.params.get("freeze_depth"),
                "val_loss": rec.best_val_loss,
                "best_step": rec.best_step,
                "trainable_share": rec.trainable_share,
                "forget_loss": rec.forget_loss,
                "forget_loss_change": rec.forget_loss_change,
                "forget_loss_se": rec.forget_loss_se,
                "base_loss": fset.base_loss if fset else None,
                "set": fset.source if fset else None,
            }
        )
    print(f"{cfg.study_name}: {len(rows)} trials in {time.perf_counter() - started:.0f} s")
    return rows


def seed_spread(config: str, learning_rate: float, depth: int, seeds, out: Path) -> dict:
    """The same configuration trained with each seed and scored on the forgetting set: how far a seed moves it."""
    from xtts_tune.config import load_config
    from xtts_tune.model.base import load_study_base
    from xtts_tune.model.checkpoint import load_trained_tensors
    from xtts_tune.search.forgetting import forgetting_figures, prepare_forgetting
    from xtts_tune.training.evaluation import clip_losses
    from xtts_tune.training.loop import run_trial
    from xtts_tune.training.prepare import prepare_data

    cfg = load_config(config, [f"output_dir={out}"])
    base = load_study_base(cfg)
    data = prepare_data(cfg, base)
    fset = prepare_forgetting(cfg, base)
    base_losses = clip_losses(cfg, base=base, data=fset.data, clips=fset.ids)
    changes = []
    for seed in seeds:
        train = dataclasses.replace(cfg.train, learning_rate=learning_rate, freeze_depth=depth, seed=seed)
        run_cfg = dataclasses.replace(cfg, train=train)
        result = run_trial(run_cfg, base=base, data=data, run_dir=out / f"seed-{seed}")
        tensors = load_trained_tensors(result.checkpoint_path, base_fingerprint=base.fingerprint)
        losses = clip_losses(cfg, base=base, data=fset.data, clips=fset.ids, state=tensors)
        figures = forgetting_figures(losses, base_losses)
        changes.append({"seed": seed, **figures, "val_loss": result.best_val_loss})
    values = [c["forget_loss_change"] for c in changes]
    return {
        "study": cfg.study_name,
        "learning_rate": learning_rate,
        "freeze_depth": depth,
        "runs": changes,
        "change_sd": statistics.stdev(values) if len(values) > 1 else None,
        "change_range": max(values) - min(values),
    }


def print_table(rows: list[dict]) -> None:
    print(
        f"{'study':<9} {'lr':>7} {'depth':>5} {'share':>6} {'val loss':>9} {'other voices':>12} {'change':>8} {'se':>6}"
    )
    for r in rows:
        change = "-" if r["forget_loss_change"] is None else f"{100 * r['forget_loss_change']:+.1f}%"
        se = "-" if r["forget_loss_se"] is None else f"{100 * r['forget_loss_se']:.1f}%"
        fl = "-" if r["forget_loss"] is None else f"{r['forget_loss']:.4f}"
        share = "-" if r["trainable_share"] is None else f"{100 * r['trainable_share']:.0f}%"
        print(
            f"{r['study']:<9} {r['learning_rate']:>7.0e} {r['freeze_depth']:>5} {share:>6} "
            f"{r['val_loss'] or float('nan'):>9.4f} {fl:>12} {change:>8} {se:>6}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", action="append", help=f"study YAML (repeatable; default {', '.join(STUDIES)})")
    parser.add_argument("--seeds", type=int, default=3, help="seeds of the spread check (0: skip it)")
    parser.add_argument("--out", default="benchmarks/forgetting-table.json")
    args = parser.parse_args(argv)
    configs = args.config or list(STUDIES)
    result = {"grid": [], "seed_spread": []}
    with tempfile.TemporaryDirectory(prefix="bench-forgetting-") as tmp:
        for i, config in enumerate(configs):
            result["grid"] += grid_search(config, LEARNING_RATES, DEPTHS, Path(tmp) / f"grid-{i}")
            if args.seeds > 1:
                spread = seed_spread(config, 1e-3, 2, range(args.seeds), Path(tmp) / f"seeds-{i}")
                result["seed_spread"].append(spread)
                values = ", ".join(f"{100 * r['forget_loss_change']:+.2f}%" for r in spread["runs"])
                print(f"{spread['study']}: lr 1e-3, depth 2, seeds 0..{args.seeds - 1}: {values}")
    print_table(result["grid"])
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
