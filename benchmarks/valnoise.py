"""``make bench-valnoise``: how noisy is the validation loss at the users' size, and how many validation clips
does a ranking need? (issue 28)

On the real hour, 300 clips are held out for validation and 100 for the test, and ``--configs`` configurations
drawn from the study's space (Optuna's seeded ``RandomSampler``, as ``make bench-fidelity`` draws them) are
trained through :func:`xtts_tune.training.loop.run_trial`, the search's own path, at ``--fraction`` of the
train split (a nested subset: the fidelity study found a quarter ranks as the whole does) for the study's
epochs. The first ``--reseeded`` configurations are trained again with another seed: that is the seed noise.
Every best checkpoint is then scored clip by clip on the 300 validation clips, with the evaluator trials use.

From the per-clip losses (:func:`noise_rows`), for 100, 200 and 300 validation clips:
- the relative standard error of a trial's validation loss, and of the *difference* between two trials (the
  paired bootstrap over clips: both trials see the same clips, which is how a search compares them);
- the Spearman correlation of the trials' ranking on n clips (subsets drawn without replacement) with their
  ranking on all 300, its mean and its 5th percentile;
- the evaluation's seconds (proportional to n).
The seed noise is the relative difference between two seeds of a configuration on all 300 clips.

Runs are saved after each one to ``--out`` (atomically), and a rerun skips those already there.

    python -m benchmarks.valnoise --configs 6 --reseeded 2
    python -m benchmarks.valnoise --table benchmarks/records/valnoise-hour.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
from pathlib import Path

import numpy as np
import yaml

from benchmarks.fidelity import NO_EARLY_STOP, draw_configs, provenance
from xtts_tune.analysis.statistics import spearman
from xtts_tune.io import atomic_write_json

ROOT = Path(__file__).resolve().parents[1]
VAL, TEST = 300, 100
SIZES = (100, 200, 300)


def study_config(work: Path) -> Path:
    from benchmarks.datasets import real_hour
    from benchmarks.scale import make_dataset

    real_hour()  # says how to get it
    doc = yaml.safe_load((ROOT / "studies" / "kathleen.yaml").read_text())
    doc.update(study_name="valnoise", output_dir=str(work / "runs"))
    doc["data"].update(path=str(make_dataset(work, 1132)), formatter="ljspeech", metadata="metadata.csv")
    doc["data"].update(val_count=VAL, test_count=TEST, train_count=0)
    doc["train"].update(max_epochs=2)
    path = work / "study.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def run_bench(*, configs: int, reseeded: int, fraction: float, out: Path, work: Path) -> dict:
    from xtts_tune.config import load_config
    from xtts_tune.data.split import nested_train_subset
    from xtts_tune.model.base import load_study_base
    from xtts_tune.model.checkpoint import load_trained_tensors
    from xtts_tune.search.settings import SearchSettings
    from xtts_tune.training.evaluation import validation_loss
    from xtts_tune.training.loop import run_trial
    from xtts_tune.training.prepare import prepare_data

    doc = json.loads(out.read_text()) if out.is_file() else {"meta": provenance(), "runs": []}
    done = {(r["config"], r["seed"]) for r in doc["runs"]}
    cfg = load_config(study_config(work))
    settings = SearchSettings.from_config(cfg)
    base = load_study_base(cfg)
    settings.resolve(base.num_layers, cfg.source)
    drawn = draw_configs(settings.space, configs, 0)
    data = prepare_data(cfg, base)
    sub = dataclasses.replace(data, split=nested_train_subset(data.split, fraction))
    val = list(data.split.val)
    doc.update(configs=drawn, fraction=fraction, split=[len(sub.split.train), len(val), len(data.split.test)])
    todo = [(i, 0) for i in range(configs)] + [(i, 1) for i in range(min(reseeded, configs))]
    todo = [k for k in todo if k not in done]
    started = time.perf_counter()
    for n, (i, seed) in enumerate(todo):
        train = settings.space.train_config(cfg.train, drawn[i], cfg.source)
        per_epoch = math.ceil(len(sub.split.train) / train.batch_size)
        train = dataclasses.replace(train, patience=NO_EARLY_STOP, eval_every=per_epoch, seed=train.seed + seed)
        run_cfg = dataclasses.replace(cfg, train=train)
        result = run_trial(run_cfg, base=base, data=sub, run_dir=work / "trials" / f"c{i:02d}-s{seed}")
        state = load_trained_tensors(result.checkpoint_path, base_fingerprint=base.fingerprint)
        t = time.perf_counter()
        per_clip = [validation_loss(run_cfg, base=base, data=sub, state=state, clips=[c])["loss"] for c in val]
        eval_seconds = time.perf_counter() - t
        result.checkpoint_path.unlink()
        doc["runs"].append(
            {"config": i, "seed": seed, "params": drawn[i], "best_val_loss": result.best_val_loss,
             "per_clip": per_clip, "eval_seconds": eval_seconds, "steps": result.steps}
        )  # fmt: skip
        atomic_write_json(out, doc)
        eta = (time.perf_counter() - started) / (n + 1) * (len(todo) - n - 1)
        print(f"[{n + 1}/{len(todo)}] config {i} seed {seed}: val {np.mean(per_clip):.4f} (ETA {eta / 60:.0f} min)")
    return doc


def noise_rows(runs: list[dict], sizes=SIZES, draws: int = 2000, seed: int = 0) -> list[dict]:
    """Per validation-set size: the trials' relative standard error, the pairs' (paired bootstrap), and the
    Spearman of a size-n subset's ranking with the whole set's.

    >>> rng = np.random.default_rng(1)
    >>> clip = rng.normal(4.0, 0.5, 300)  # what makes a clip hard is shared by every trial
    >>> runs = [{"config": c, "seed": 0, "per_clip": list(clip + 0.02 * c + rng.normal(0, 0.05, 300)),
    ...          "eval_seconds": 3.0} for c in range(4)]
    >>> rows = noise_rows(runs, sizes=(100, 300), draws=300)
    >>> [r["clips"] for r in rows], rows[0]["pair_rel_se"] < rows[0]["trial_rel_se"]
    ([100, 300], True)
    """
    rng = np.random.default_rng(seed)
    main = [r for r in runs if r["seed"] == 0]
    losses = np.array([r["per_clip"] for r in main])  # trials x clips
    pool = losses.shape[1]
    full = losses.mean(axis=1)
    rows = []
    for n in sizes:
        if n > pool:
            continue
        boot = rng.integers(0, pool, size=(draws, n))
        means = losses[:, boot].mean(axis=2)  # trials x draws
        trial_se = float(np.median(means.std(axis=1) / full))
        pairs = [(a, b) for a in range(len(main)) for b in range(a + 1, len(main))]
        pair_se = [float((means[a] - means[b]).std() / full[[a, b]].mean()) for a, b in pairs]
        rhos = []
        for _ in range(200 if n < pool else 1):
            pick = rng.choice(pool, size=n, replace=False)
            rhos.append(spearman(list(losses[:, pick].mean(axis=1)), list(full)))
        rows.append(
            {
                "clips": n,
                "trial_rel_se": trial_se,
                "pair_rel_se": float(np.median(pair_se)) if pair_se else None,
                "pair_rel_se_max": float(np.max(pair_se)) if pair_se else None,
                "spearman_mean": float(np.mean(rhos)),
                "spearman_p5": float(np.percentile(rhos, 5)),
                "eval_seconds": float(np.mean([r["eval_seconds"] for r in main])) * n / pool,
            }
        )
    return rows


def seed_noise(runs: list[dict]) -> list[float]:
    """The relative difference between two seeds of one configuration, on every validation clip."""
    by = {(r["config"], r["seed"]): float(np.mean(r["per_clip"])) for r in runs}
    return [abs(by[(c, 1)] - by[(c, 0)]) / by[(c, 0)] for c, s in by if s == 1 and (c, 0) in by]


def format_table(doc: dict) -> str:
    rows = noise_rows(doc["runs"])
    lines = [
        "| validation clips | rel. SE of a trial | rel. SE of a difference (median / max pair) | Spearman vs 300 "
        "(mean / 5th pct) | evaluation s |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['clips']} | {100 * r['trial_rel_se']:.2f} % | {100 * r['pair_rel_se']:.2f} % / "
            f"{100 * r['pair_rel_se_max']:.2f} % | {r['spearman_mean']:.3f} / {r['spearman_p5']:.3f} | "
            f"{r['eval_seconds']:.1f} |"
        )
    seeds = seed_noise(doc["runs"])
    if seeds:
        lines.append(f"\nseed noise (two seeds, 300 clips): {', '.join(f'{100 * s:.2f} %' for s in seeds)}")
    trials = sorted((np.mean(r["per_clip"]), r["config"]) for r in doc["runs"] if r["seed"] == 0)
    lines.append("trials on 300 clips: " + ", ".join(f"config {c} {v:.4f}" for v, c in trials))
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", type=int, default=6)
    p.add_argument("--reseeded", type=int, default=2, help="the first N configs also train with a second seed")
    p.add_argument("--fraction", type=float, default=0.25)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "records" / "valnoise-hour.json"))
    p.add_argument("--work", default="/tmp/xtts-valnoise")
    p.add_argument("--table", help="only print the table of a saved run")
    args = p.parse_args(argv)
    if not args.table:
        Path(args.work).mkdir(parents=True, exist_ok=True)
        run_bench(
            configs=args.configs,
            reseeded=args.reseeded,
            fraction=args.fraction,
            out=Path(args.out),
            work=Path(args.work),
        )
    print(format_table(json.loads(Path(args.table or args.out).read_text())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
