"""``make bench``'s study-level figures: a demo search's wall time, steps and verdicts against the same
configurations run unpruned (:func:`search_figures`), and the report's build time and size on a large
synthetic study (:func:`report_figures`).
"""

from __future__ import annotations

import math
import random
import tempfile
import time
from pathlib import Path

from xtts_tune.config import load_config


def search_figures(config: Path, trials: int) -> dict:
    """``make search TRIALS=N`` on the demo (wall time, steps), then the same N configurations unpruned."""
    from xtts_tune.analysis.evidence.holdout import describe_test_comparison
    from xtts_tune.analysis.study_analysis import analyze
    from xtts_tune.record import TestComparison, TrialRecord
    from xtts_tune.search.runner import run_search
    from xtts_tune.search.storage import load_study

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        cfg = load_config(config, [f"output_dir={tmp}/pruned", "study_name=bench_pruned"])
        t = time.perf_counter()
        pruned = run_search(cfg, n_trials=trials, storage=url)
        wall = time.perf_counter() - t
        study = load_study("bench_pruned", url)
        finished = study.trials
        configs = [t.params for t in finished]
        counts = analyze(study).verdict_counts()
        comparison = describe_test_comparison(TestComparison.from_study(study), pruned.best_number)
        compute = sum(TrialRecord.from_trial(t).compute_seconds or 0.0 for t in finished)
        # the same configurations, every one run to completion: no pruner, no early stopping
        full_cfg = load_config(config, [f"output_dir={tmp}/full", "study_name=bench_full", "patience=100000"])
        full_cfg.search = dict(full_cfg.search, pruner={"type": "none"}, enqueue=configs, enqueue_guide=False)
        t = time.perf_counter()
        full = run_search(full_cfg, n_trials=len(configs), storage=url)
        full_wall = time.perf_counter() - t
    return {
        "trials": trials,
        "wall": wall,
        "pruned_steps": pruned.total_steps,
        "pruned_best": pruned.best_value,
        "compute": compute,
        "full_wall": full_wall,
        "full_steps": full.total_steps,
        "full_best": full.best_value,
        "verdicts": counts,
        "unseen": comparison,
    }


def report_figures(n_trials: int = 100) -> dict:
    """Build time and size of the report for a synthetic study of ``n_trials`` finished trials."""

    import optuna

    from xtts_tune.record import TrialRecord
    from xtts_tune.report.page import build_report

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rng = random.Random(0)
    study = optuna.create_study(study_name="bench-report")
    dists = {
        "freeze_depth": optuna.distributions.IntDistribution(0, 4),
        "learning_rate": optuna.distributions.FloatDistribution(1e-5, 3e-3, log=True),
        "weight_decay": optuna.distributions.FloatDistribution(0.0, 0.2),
        "augment_prob": optuna.distributions.FloatDistribution(0.0, 0.5),
    }
    for _ in range(n_trials):
        params = {
            "freeze_depth": rng.randint(0, 4),
            "learning_rate": math.exp(rng.uniform(math.log(1e-5), math.log(3e-3))),
            "weight_decay": rng.uniform(0, 0.2),
            "augment_prob": rng.uniform(0, 0.5),
        }
        speed, rise = params["learning_rate"] * 300, params["learning_rate"] * 100 / (1 + params["freeze_depth"])
        curve = []
        for i, step in enumerate(range(0, 50, 5)):
            val = 6.5 - 3 * (1 - math.exp(-speed * i)) + rise * max(0, i - 4) ** 2 * 0.02
            curve.append(
                {"step": step, "epoch": step / 15, "train_loss": None if i == 0 else val - 0.05 * i, "val_loss": val}
            )
        best = min(curve, key=lambda r: r["val_loss"])
        user_attrs, system_attrs = TrialRecord(
            curve=curve, best_step=best["step"], steps=45, planned_steps=45, trainable_share=0.1, train_config={}
        ).split_attrs()
        study.add_trial(
            optuna.trial.create_trial(
                params=params,
                distributions=dists,
                value=best["val_loss"],
                intermediate_values={r["step"]: r["val_loss"] for r in curve},
                user_attrs=user_attrs,
                system_attrs=system_attrs,
            )
        )
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        path = build_report(study, Path(tmp) / "report.html")
        seconds = time.perf_counter() - t
        size = path.stat().st_size
    return {"trials": n_trials, "seconds": seconds, "bytes": size}
