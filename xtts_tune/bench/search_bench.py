"""``make bench-search``: which search strategy finds the best configuration in the fewest optimizer steps.

``python -m xtts_tune.bench.search_bench`` replays, on each study's table of measured curves
(:mod:`~xtts_tune.bench.search_table`), searches of every strategy in
:data:`~xtts_tune.bench.search_replay.STRATEGIES` over several seeds, and prints per strategy: the optimizer
steps until the search's best is within 1 % of the table's best (median and worst over the seeds), the best
reached at 20 trials, and the steps as a share of random search without pruning, seed by seed, against the
issue's target (at most 25 % in 9 of 10 seeds). ``--record`` (``make bench-search RECORD=1``) first records
the tables again (real trials: about 15 minutes per study on a 2-core CPU).

>>> from xtts_tune.bench.search_replay import ReplayRun
>>> rows = strategy_rows({"tpe": [ReplayRun("tpe", 0, [10, 10], [5.0, 4.0], None)],
...                       "random": [ReplayRun("random", 0, [10, 10, 20], [6.0, 5.0, 4.0], None)]}, target=4.0)
>>> [(r.key, r.steps, r.ratios, r.met) for r in rows]
[('tpe', [20], [0.5], 0), ('random', [40], [1.0], 0)]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from xtts_tune.bench.search_record import provenance, record_table
from xtts_tune.bench.search_replay import (
    BASELINE,
    STRATEGIES,
    WITHIN,
    Replay,
    ReplayRun,
    replay_search,
)
from xtts_tune.bench.search_table import load_table, table_path
from xtts_tune.config import load_config
from xtts_tune.errors import UserError
from xtts_tune.search.settings import DEFAULT_SAMPLER, PrunerSettings

ROOT = Path(__file__).resolve().parents[2]
STUDIES = ("studies/demo.yaml", "studies/demo-voice2.yaml", "studies/kathleen.yaml")
SEEDS = 10
TRIALS = 100
"""Each search's trial budget: a search that has not come within 1 % of the table's best by then never did."""
REPORT_AT = 20
TARGET_RATIO = 0.25
TARGET_SEEDS = 0.9
"""The issue's target for the default: at most 25 % of random search's steps (no pruning) in 9 of 10 seeds."""


def default_strategy() -> str:
    """The strategy that is the product's default: the study's sampler with :data:`DEFAULT_SAMPLER`'s options
    (``search.sampler`` left out) and ``search.pruner``'s default type, none.

    >>> STRATEGIES[default_strategy()].pruner
    'none'
    """
    for key, spec in STRATEGIES.items():
        if spec.sampler == "study" and spec.pruner == PrunerSettings().type:
            if {**DEFAULT_SAMPLER, **dict(spec.options)} == DEFAULT_SAMPLER:
                return key
    raise ValueError("no strategy of the bench is the default sampler: add it to STRATEGIES")


DEFAULT = default_strategy()


@dataclass
class StrategyRow:
    """One strategy's figures over the seeds (``None``: never within 1 % of the table's best)."""

    key: str
    steps: list[int | None]
    best_at: list[float | None]
    ratios: list[float | None]
    """Steps / the baseline's steps with the same seed."""
    bounds: list[bool]
    """Seeds where the baseline never got there: the ratio divides by its whole budget (an upper bound)."""

    @property
    def met(self) -> int:
        return sum(1 for r in self.ratios if r is not None and r <= TARGET_RATIO)

    @property
    def label(self) -> str:
        return STRATEGIES[self.key].label


def strategy_rows(runs: dict[str, list[ReplayRun]], target: float, report_at: int = REPORT_AT) -> list[StrategyRow]:
    """The figures of each strategy's runs (one per seed, in the baseline's seed order)."""
    base = {run.seed: run for run in runs.get(BASELINE, [])}
    rows = []
    for key, key_runs in runs.items():
        steps = [run.steps_to(target) for run in key_runs]
        ratios, bounds = [], []
        for run, spent in zip(key_runs, steps):
            ref = base.get(run.seed)
            ref_steps = ref.steps_to(target) if ref else None
            denominator = ref_steps if ref_steps is not None else (ref.total_steps if ref else None)
            ratios.append(spent / denominator if spent is not None and denominator else None)
            bounds.append(ref is not None and ref_steps is None)
        rows.append(StrategyRow(key, steps, [run.best_at(report_at) for run in key_runs], ratios, bounds))
    return rows


def _median(values: list[float | None]) -> float:
    return statistics.median(math.inf if v is None else v for v in values)


def _fmt_steps(v: float | None) -> str:
    return "never" if v is None or math.isinf(v) else f"{v:,.0f}"


def _fmt_loss(v: float | None) -> str:
    return "none" if v is None or math.isinf(v) else f"{v:.4f}"


def _fmt_ratio(v: float | None, bound: bool = False) -> str:
    return "never" if v is None or math.isinf(v) else f"{'<' if bound else ''}{100 * v:.0f} %"


def print_rows(rows: list[StrategyRow], *, seeds: int, report_at: int = REPORT_AT) -> None:
    """The table of one study (Markdown, so that it can go into the README as printed)."""
    need = math.ceil(TARGET_SEEDS * seeds)
    print(f"| strategy | steps to within 1 %: median / worst | best at {report_at} trials: median / worst "
          f"| steps / random's (no pruning): median / worst | seeds at ≤ {100 * TARGET_RATIO:.0f} % (target ≥ {need} of {seeds}) |")
    print("| --- | --- | --- | --- | --- |")
    for row in rows:
        worst = None if any(s is None for s in row.steps) else max(row.steps)
        never = sum(s is None for s in row.steps)
        worst_text = _fmt_steps(worst) + (f" ({never} of {len(row.steps)} never)" if never else "")
        best_worst = None if any(b is None for b in row.best_at) else max(row.best_at)
        ratio_worst = None if any(r is None for r in row.ratios) else max(row.ratios)
        default = " (the default)" if row.key == DEFAULT else ""
        bound = any(row.bounds)
        verdict = "met" if row.met >= need else "not met"
        print(f"| {row.label}{default} | {_fmt_steps(_median(row.steps))} / {worst_text} "
              f"| {_fmt_loss(_median(row.best_at))} / {_fmt_loss(best_worst)} "
              f"| {_fmt_ratio(_median(row.ratios), bound)} / {_fmt_ratio(ratio_worst, bound)} "
              f"| {row.met} of {len(row.ratios)}: {verdict} |")


def bench_study(config: str, *, seeds: int, trials: int, strategies: list[str], record: bool, work: Path) -> None:
    """Record the study's table if asked (or missing), then replay every strategy and print its table."""
    cfg = load_config(ROOT / config)
    path = table_path(cfg)
    if record or not path.is_file():
        print(f"recording {path.relative_to(ROOT)} from {config} (real trials, one after another)", flush=True)

        def progress(event: dict) -> None:
            params = " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in event["params"].items())
            print(f"  [{event['index']}/{event['total']}] {params}: best {event['best_val_loss']:.4f} "
                  f"({event['seconds']:.1f} s)", flush=True)

        record_table(cfg, work_dir=work / cfg.study_name, progress=progress).save(path)
    table = load_table(path)
    replay = Replay.of(table, cfg)
    table.check(cfg, replay.settings.space, path)
    t0 = time.perf_counter()
    best = replay.table_best()
    target = best.value * (1 + WITHIN)
    runs = {key: [replay_search(replay, key, seed, trials, target=target, at_least=REPORT_AT) for seed in range(seeds)]
            for key in strategies}
    meta = table.meta
    params = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in best.params.items())
    print(f"\n{config}: table {path.relative_to(ROOT)}, {len(table.configs)} configurations "
          f"({len(table.configs) - 1} on the grid and the guide's recipe), recorded at commit {meta.get('commit')}"
          f"{' (uncommitted changes)' if meta.get('dirty') else ''} on {meta.get('machine')} ({meta.get('device')}, "
          f"{meta.get('threads')} thread(s), torch {meta.get('torch')}), {meta.get('date')}, "
          f"{meta.get('seconds', 0) / 60:.1f} min")
    print(f"table's best (rank()'s winner of every configuration run unpruned): {params}: {best.value:.4f} "
          f"({best.verdict}); within {100 * WITHIN:.0f} %: ≤ {target:.4f}")
    own = replay.settings.pruner.type
    kinds = [k for k in dict.fromkeys(STRATEGIES[k].pruner for k in strategies) if k != "none"]
    pruners = "; ".join(f"{k} {replay.pruner(k).kwargs}" + (" (the study's own)" if k == own else "") for k in kinds)
    print(f"seeds 0-{seeds - 1}, at most {trials} trials per search (stopped once within {100 * WITHIN:.0f} % after at least "
          f"{REPORT_AT} trials), trial 0 the guide's recipe; pruners: {pruners}; replayed in "
          f"{time.perf_counter() - t0:.0f} s\n")
    rows = strategy_rows(runs, target)
    print_rows(rows, seeds=seeds)
    need = math.ceil(TARGET_SEEDS * seeds)
    default = next((row for row in rows if row.key == DEFAULT), None)
    met = [row.label for row in rows if row.key != BASELINE and row.met >= need]
    print(f"\ntarget (at most {100 * TARGET_RATIO:.0f} % of random search's steps without pruning, in at least {need} of "
          f"{seeds} seeds): the default, {STRATEGIES[DEFAULT].label}: "
          + (f"{default.met} of {seeds}, {'met' if default.met >= need else 'not met'}" if default else "not run")
          + f"; met by: {', '.join(met) or 'none'}")
    for row in rows:
        print(f"  {row.label}: steps per seed {[_fmt_steps(s) for s in row.steps]}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m xtts_tune.bench.search_bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--record", action="store_true", help="record the tables again first (real trials, minutes)")
    p.add_argument("--study", action="append", help=f"study YAML (repeatable; default {' and '.join(STUDIES)})")
    p.add_argument("--seeds", type=int, default=SEEDS)
    p.add_argument("--trials", type=int, default=TRIALS, help="each search's trial budget")
    p.add_argument("--strategies", default=",".join(STRATEGIES), help="comma-separated keys of " + ", ".join(STRATEGIES))
    args = p.parse_args(argv)
    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown or args.seeds < 1 or args.trials < 1:
        p.error(f"unknown strategies {unknown}" if unknown else "--seeds and --trials must be >= 1")
    code = provenance(ROOT)
    print(f"search-strategy bench: code at commit {code['commit']}{' (uncommitted changes)' if code['dirty'] else ''}, "
          f"{code['machine']}, {code['date']}")
    try:
        with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
            for config in args.study or STUDIES:
                bench_study(config, seeds=args.seeds, trials=args.trials, strategies=strategies,
                            record=args.record, work=Path(tmp))
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
