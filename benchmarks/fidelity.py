"""``make bench-fidelity``: does a cheap fidelity rank configurations as full training does? (issue 29)

Multi-fidelity search is worth building only if a cheap run orders configurations the way the full budget
does. This bench measures it before anything is built. It draws ``--configs`` configurations from the
study's space (Optuna's ``RandomSampler``, seeded, so they cover the space instead of TPE's favourite
corner) and trains each, through :func:`xtts_tune.training.loop.run_trial` exactly as a search trial does
(early stopping off, so every run reaches its planned last step), at the data fractions ``--fractions`` of
the train split (:func:`xtts_tune.data.split.nested_train_subset`: nested subsets, the same epochs, so the
cost is proportional to the fraction). Every run's best checkpoint is scored on the validation and on the
test split.

The "1 epoch in place of the full budget" fidelity is read off the full-data runs' curves: validation
runs once per epoch, the learning rate does not depend on the planned length (only a step-based warmup),
and early stopping is off, so the first epoch of a 2-epoch run *is* a 1-epoch run up to its first
evaluation. It has a validation loss, which is all its ranking needs; its test loss is not measured.

Per fidelity (:func:`fidelity_rows`): Spearman of its validation ranking against the full-data one; whether
the full-data best (by validation, what a search would pick) is in its top 3; the test-loss regret of
re-running its top 3 at full data and keeping the lowest validation loss there; and the compute (optimizer
steps) of all N at the fidelity plus 3 at full data, against all N at full data.

Runs are written after each one to ``--out`` (atomically), and a rerun skips the runs already there, so a
killed bench resumes. The full-data runs go first (they are the reference).

    python -m benchmarks.fidelity --dataset hour --configs 12          # the real hour (1,132 clips)
    python -m benchmarks.fidelity --dataset kathleen --configs 16      # the 100-clip CC0 speaker
    python -m benchmarks.fidelity --table benchmarks/fidelity-hour.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import platform
import subprocess
import sys
import time
from pathlib import Path

import yaml

from xtts_tune.analysis.statistics import spearman
from xtts_tune.io import atomic_write_json

ROOT = Path(__file__).resolve().parents[1]
FULL = 1.0
ONE_EPOCH = "1 epoch"
NO_EARLY_STOP = 10**9
DATASETS = {
    # name: (val clips, test clips, epochs of the full budget)
    "hour": (100, 100, 2),
    "kathleen": (20, 20, 8),
}


def study_config(work: Path, dataset: str) -> Path:
    """The bench's study YAML: ``studies/kathleen.yaml``'s settings on ``dataset``, every clip but the
    validation and test ones trained, validation once per epoch (set per fraction)."""
    doc = yaml.safe_load((ROOT / "studies" / "kathleen.yaml").read_text())
    val, test, epochs = DATASETS[dataset]
    doc.update(study_name=f"fidelity-{dataset}", output_dir=str(work / "runs"))
    if dataset == "hour":
        from benchmarks.datasets import real_hour
        from benchmarks.scale import make_dataset

        real_hour()  # says how to get it
        doc["data"].update(path=str(make_dataset(work, 1132)), formatter="ljspeech", metadata="metadata.csv")
    else:
        doc["data"]["path"] = str(ROOT / doc["data"]["path"])
    doc["data"].update(val_count=val, test_count=test, train_count=0)
    doc["train"].update(max_epochs=epochs)
    path = work / "study.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def draw_configs(space, n: int, seed: int) -> list[dict]:
    """``n`` configurations from ``space`` by Optuna's seeded random sampler."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    out = []
    for _ in range(n):
        trial = study.ask()
        out.append(space.suggest(trial))
        study.tell(trial, 0.0)
    return out


def run_bench(dataset: str, *, configs: int, fractions: list[float], out: Path, work: Path, seed: int = 0):
    """Train every configuration at every fraction (full data first), scoring validation and test; the
    runs are appended to ``out`` after each one, and those already there are skipped."""
    from xtts_tune.config import load_config
    from xtts_tune.data.split import nested_train_subset
    from xtts_tune.model.base import load_study_base
    from xtts_tune.model.checkpoint import load_trained_tensors
    from xtts_tune.search.settings import SearchSettings
    from xtts_tune.training.evaluation import validation_loss
    from xtts_tune.training.loop import run_trial
    from xtts_tune.training.prepare import prepare_data

    doc = json.loads(out.read_text()) if out.is_file() else {"dataset": dataset, "meta": provenance(), "runs": []}
    done = {(r["config"], r["fraction"]) for r in doc["runs"]}
    cfg = load_config(study_config(work, dataset))
    settings = SearchSettings.from_config(cfg)
    base = load_study_base(cfg)
    settings.resolve(base.num_layers, cfg.source)
    drawn = draw_configs(settings.space, configs, seed)
    doc["configs"] = drawn
    data = prepare_data(cfg, base)
    doc["split"] = [len(data.split.train), len(data.split.val), len(data.split.test)]
    order = sorted(fractions, key=lambda f: (f != FULL, f))
    todo = [(i, f) for f in order for i in range(len(drawn)) if (i, f) not in done]
    started = time.perf_counter()
    for n, (i, f) in enumerate(todo):
        sub = nested_train_subset(data.split, f)
        part = dataclasses.replace(data, split=sub)
        train = settings.space.train_config(cfg.train, drawn[i], cfg.source)
        per_epoch = math.ceil(len(sub.train) / train.batch_size)
        train = dataclasses.replace(train, patience=NO_EARLY_STOP, eval_every=per_epoch, save_checkpoint=True)
        run_cfg = dataclasses.replace(cfg, train=train)
        t = time.perf_counter()
        result = run_trial(run_cfg, base=base, data=part, run_dir=work / "trials" / f"c{i:02d}-f{f}")
        state = load_trained_tensors(result.checkpoint_path, base_fingerprint=base.fingerprint)
        test = validation_loss(run_cfg, base=base, data=part, state=state, clips=list(data.split.test))
        result.checkpoint_path.unlink()
        doc["runs"].append(
            {
                "config": i,
                "fraction": f,
                "train_clips": len(sub.train),
                "params": drawn[i],
                "curve": [
                    {"step": r["step"], "epoch": r.get("epoch"), "val_loss": r["val_loss"]} for r in result.curve
                ],
                "best_val_loss": result.best_val_loss,
                "test_loss": test["loss"],
                "steps": result.steps,
                "seconds": round(time.perf_counter() - t, 2),
            }
        )
        atomic_write_json(out, doc)
        elapsed = time.perf_counter() - started
        eta = elapsed / (n + 1) * (len(todo) - n - 1)
        print(
            f"[{n + 1}/{len(todo)}] config {i} at {f:g}: val {result.best_val_loss:.4f} test {test['loss']:.4f} "
            f"({result.steps} steps, {doc['runs'][-1]['seconds']:.0f} s; ETA {eta / 60:.0f} min)",
            flush=True,
        )
    return doc


def _by_fidelity(runs: list[dict]) -> dict:
    """``{fidelity: {config: (ranking value, test loss or None, steps)}}``, the 1-epoch one from the curves."""
    table: dict = {}
    for r in runs:
        table.setdefault(r["fraction"], {})[r["config"]] = (r["best_val_loss"], r["test_loss"], r["steps"])
        if r["fraction"] == FULL and len(r["curve"]) >= 2:
            first = r["curve"][1]  # the evaluation after epoch 1 (curve[0] is step 0)
            table.setdefault(ONE_EPOCH, {})[r["config"]] = (first["val_loss"], None, first["step"])
    return table


def fidelity_rows(runs: list[dict], top: int = 3) -> list[dict]:
    """Per fidelity: Spearman against full data, the full-data best in its top ``top``, the test regret of
    re-running its top ``top`` at full data, and its compute against all configurations at full data.

    >>> runs = [{"config": c, "fraction": f, "best_val_loss": v, "test_loss": v + 0.1, "steps": int(100 * f), "params": {},
    ...          "curve": [{"step": 0, "val_loss": 9}, {"step": int(50 * f), "val_loss": v + 1}]}
    ...         for c in range(4) for f, v in ((1.0, 3 + c), (0.5, 3 + (c * 7) % 4))]
    >>> [(r["fidelity"], r["spearman"], r["best_in_top"], r["regret"], r["compute"]) for r in fidelity_rows(runs)]
    [(0.5, 0.2, True, 0.0, 1.25), ('1 epoch', 1.0, True, 0.0, 1.25)]
    """
    table = _by_fidelity(runs)
    full = table.get(FULL, {})
    if not full:
        return []
    full_best = min(full, key=lambda c: full[c][0])
    full_steps = sum(v[2] for v in full.values())
    rows = []
    for fid, got in table.items():
        if fid == FULL:
            continue
        common = sorted(set(got) & set(full))
        picks = sorted(common, key=lambda c: got[c][0])[:top]
        chosen = min(picks, key=lambda c: full[c][0])
        rows.append(
            {
                "fidelity": fid,
                "configs": len(common),
                "spearman": spearman([got[c][0] for c in common], [full[c][0] for c in common]),
                "spearman_test": spearman([got[c][0] for c in common], [full[c][1] for c in common]),
                "best_in_top": full_best in picks,
                "regret": round(full[chosen][1] - full[full_best][1], 4),
                "compute": round((sum(got[c][2] for c in common) + sum(full[c][2] for c in picks)) / full_steps, 3),
                "best_params": _best_params(runs, fid, got),
            }
        )
    return sorted(rows, key=lambda r: (isinstance(r["fidelity"], str), r["fidelity"]))


def _best_params(runs: list[dict], fid, got: dict) -> dict:
    best = min(got, key=lambda c: got[c][0])
    return next(r["params"] for r in runs if r["config"] == best)


def format_table(doc: dict) -> str:
    """The Markdown table of :func:`fidelity_rows`, with the full-data best's own row."""
    rows = fidelity_rows(doc["runs"])
    full = {r["config"]: r for r in doc["runs"] if r["fraction"] == FULL}
    best = min(full.values(), key=lambda r: r["best_val_loss"])
    lines = [
        "| fidelity | configs | Spearman vs full (val) | vs full test | full-data best in top 3 | test regret of top 3 "
        "| compute vs all at full | its best: freeze, lr |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        name = f"{100 * r['fidelity']:g} % data" if isinstance(r["fidelity"], float) else r["fidelity"]
        p = r["best_params"]
        lines.append(
            f"| {name} | {r['configs']} | {r['spearman']} | {r['spearman_test']} | "
            f"{'yes' if r['best_in_top'] else 'no'} | {r['regret']:+.4f} | {100 * r['compute']:.0f} % | "
            f"{p.get('freeze_depth')}, {p.get('learning_rate', 0):.2g} |"
        )
    p = best["params"]
    lines.append(
        f"| 100 % data (reference) | {len(full)} | 1 | {spearman([r['best_val_loss'] for r in full.values()], [r['test_loss'] for r in full.values()])} "
        f"| | | 100 % | {p.get('freeze_depth')}, {p.get('learning_rate', 0):.2g} |"
    )
    return "\n".join(lines)


def provenance() -> dict:
    def git(*args):
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    return {"commit": git("rev-parse", "--short", "HEAD"), "machine": f"{platform.machine()}, {platform.node()}",
            "python": sys.version.split()[0]}  # fmt: skip


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", choices=sorted(DATASETS), default="hour")
    p.add_argument("--configs", type=int, default=16)
    p.add_argument("--fractions", type=float, nargs="+", default=[0.125, 0.25, 0.5, 1.0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, help="the runs' JSON (default benchmarks/fidelity-DATASET.json)")
    p.add_argument("--work", type=Path, help="a work folder (default /tmp/xtts-tune-fidelity-DATASET)")
    p.add_argument("--table", type=Path, help="only print the table of a recorded JSON")
    args = p.parse_args(argv)
    if args.table:
        print(format_table(json.loads(args.table.read_text())))
        return 0
    out = args.out or ROOT / "benchmarks" / f"fidelity-{args.dataset}.json"
    work = args.work or Path(f"/tmp/xtts-tune-fidelity-{args.dataset}")
    work.mkdir(parents=True, exist_ok=True)
    doc = run_bench(args.dataset, configs=args.configs, fractions=args.fractions, out=out, work=work, seed=args.seed)
    print(format_table(doc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
