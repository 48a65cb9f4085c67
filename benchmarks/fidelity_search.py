"""``make bench-fidelity-search``: the multi-rung search (``search.fidelity``) against today's default, one
fidelity, on the same dataset, budget and sampler seed (issue 29).

Both are real searches (:func:`xtts_tune.search.runner.run_search`, early stopping as the study sets it, no
listening samples), each in its own study: ``--trials`` trials on all the clips, and ``--trials`` trials on
the first of ``--rungs`` with the best ``--promote`` re-run on all the clips. Per search: the optimizer steps
and seconds spent, the recommended trial's validation loss and its loss on the unseen test clips (the
search's own :mod:`xtts_tune.search.holdout` comparison), and, for the default, what it had found at the
rung search's compute (the recommendation among its first trials that cost as many steps).

    python -m benchmarks.fidelity_search --dataset kathleen --trials 8      # the 100-clip CC0 speaker
    python -m benchmarks.fidelity_search --dataset hour --trials 20         # the real hour (hours on a CPU)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

from benchmarks.fidelity import DATASETS, ROOT, provenance, study_config
from xtts_tune.io import atomic_write_json

EPOCH_ENDS_ONLY = 10**6
"""``train.eval_every`` beyond any trial's length: a trial evaluates at its epochs' ends only."""


def run_bench(dataset: str, *, trials: int, rungs: list[float], promote: int, work: Path) -> dict:
    """Run both searches (a search already recorded in ``work``'s JSON is not run again)."""
    from xtts_tune.analysis.ranking.order import rank
    from xtts_tune.config import load_config
    from xtts_tune.model.base import load_study_base
    from xtts_tune.search.runner import run_search
    from xtts_tune.search.storage import load_study

    out = work / "result.json"
    doc = json.loads(out.read_text()) if out.is_file() else {"dataset": dataset, "meta": provenance(), "rows": {}}
    doc["fidelity"] = {"rungs": rungs, "promote": promote}
    path = study_config(work, dataset)
    base = None
    for name, fidelity in (("default", None), ("rungs", {"rungs": rungs, "promote": promote})):
        if name in doc["rows"]:
            continue
        # validation at every epoch's end (and the base's at step 0), as the fidelity bench measured it
        cfg = load_config(path, [f"study_name=fidelity-search-{name}", f"eval_every={EPOCH_ENDS_ONLY}"])
        search = {**cfg.search, "samples": 0, "short_samples": 0}
        if fidelity is not None:
            search["fidelity"] = fidelity
        cfg = dataclasses.replace(cfg, search=search)
        base = base or load_study_base(cfg)
        url = f"sqlite:///{work / f'{name}.db'}"
        started = time.perf_counter()
        summary = run_search(cfg, n_trials=trials, storage=url, base=base)
        seconds = time.perf_counter() - started
        comparison = summary.test_comparison
        doc["rows"][name] = {
            "trials": len(summary.rows),
            "steps": summary.total_steps,
            "seconds": round(seconds, 1),
            "winner": summary.best_number,
            "val_loss": summary.best_value,
            "test_loss": comparison.winner_loss if comparison else None,
            "guide_test_loss": comparison.guide_loss if comparison else None,
            "rungs": summary.rungs,
            "url": url,
        }
        atomic_write_json(out, doc)
        print(f"{name}: {doc['rows'][name]}", flush=True)
    if "default" in doc["rows"] and "rungs" in doc["rows"]:
        study = load_study("fidelity-search-default", doc["rows"]["default"]["url"])
        finished = sorted((t for t in study.get_trials() if t.state.is_finished()), key=lambda t: t.number)
        spent, prefix = 0, []
        for t in finished:  # the default's trials until they cost what the whole rung search cost
            steps = t.user_attrs.get("steps") or 0
            if prefix and spent + steps > doc["rows"]["rungs"]["steps"]:
                break
            spent += steps
            prefix.append(t)
        winner = rank(study, trials=prefix).winner
        doc["default_at_rung_compute"] = {
            "trials": len(prefix),
            "steps": spent,
            "winner": winner.number if winner else None,
            "val_loss": winner.value if winner else None,
        }
        atomic_write_json(out, doc)
    return doc


def format_table(doc: dict) -> str:
    """The Markdown table of both searches (and the default at the rung search's compute)."""
    rows = doc["rows"]
    full = rows.get("default", {})
    lines = [
        "| search | trials | optimizer steps | compute vs default | wall time | recommended | its val loss | "
        "its unseen-clip test loss |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        share = f"{100 * r['steps'] / full['steps']:.0f} %" if full.get("steps") else "-"
        test = f"{r['test_loss']:.4f}" if r.get("test_loss") is not None else "-"
        label = "today's default (one fidelity)" if name == "default" else f"search.fidelity {doc.get('fidelity')}"
        lines.append(
            f"| {label} | {r['trials']} | {r['steps']:,} | {share} | {r['seconds'] / 60:.1f} min | trial "
            f"{r['winner']} | {r['val_loss']:.4f} | {test} |"
        )
    same = doc.get("default_at_rung_compute")
    if same and same["val_loss"] is not None:
        lines.append(
            f"| today's default at the rung search's compute (its first {same['trials']} trials) | {same['trials']} | "
            f"{same['steps']:,} | {100 * same['steps'] / full['steps']:.0f} % | | trial {same['winner']} | "
            f"{same['val_loss']:.4f} | (not scored) |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", choices=sorted(DATASETS), default="kathleen")
    p.add_argument("--trials", type=int, default=8)
    p.add_argument("--rungs", type=float, nargs="+", default=[0.25, 1.0])
    p.add_argument("--promote", type=int, default=3)
    p.add_argument("--work", type=Path, help="a work folder (default /tmp/xtts-tune-fidelity-search-DATASET)")
    p.add_argument("--table", type=Path, help="only print the table of a recorded result.json")
    args = p.parse_args(argv)
    if args.table:
        print(format_table(json.loads(args.table.read_text())))
        return 0
    work = args.work or Path(f"/tmp/xtts-tune-fidelity-search-{args.dataset}")
    work.mkdir(parents=True, exist_ok=True)
    doc = run_bench(args.dataset, trials=args.trials, rungs=args.rungs, promote=args.promote, work=work)
    print(format_table(doc))
    print(f"(commit {doc['meta']['commit']}, {doc['meta']['machine']}; {ROOT.name})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
