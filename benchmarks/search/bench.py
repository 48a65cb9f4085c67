"""``make bench-search``: which search strategy finds the best configuration in the fewest optimizer steps.

``python -m benchmarks.search.bench`` replays, on each study's table of measured curves
(:mod:`~benchmarks.search.table`), searches of every strategy in
:data:`~benchmarks.search.replay.STRATEGIES` over several seeds, and prints per strategy: the optimizer
steps until the search's best is within 1 % of the table's best (median and worst over the seeds), the best
reached at 20 trials, and its median steps as a share of random search's median (no pruning), against the
target for the default (issue 21), per table: median steps at most random search's, no seed that never got
within 1 % in 100 trials, a median best at 20 trials no worse than random search's; and on at least one table
at most 60 % of random search's median steps. ``--record`` (``make bench-search RECORD=1``) first records the
tables again (real trials: about 15 minutes per study on a 2-core CPU).

>>> from benchmarks.search.replay import ReplayRun
>>> rows = strategy_rows({"tpe": [ReplayRun("tpe", 0, [10, 10], [5.0, 4.0], None)],
...                       "random": [ReplayRun("random", 0, [10, 10, 20], [6.0, 5.0, 4.0], None)]}, target=4.0)
>>> [(r.key, r.steps, r.ratios, r.share, r.meets(rows[1])) for r in rows]
[('tpe', [20], [0.5], 0.5, True), ('random', [40], [1.0], 1.0, True)]
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

from benchmarks.search.record import provenance, record_table
from benchmarks.search.replay import (
    BASELINE,
    SLOW,
    STRATEGIES,
    WITHIN,
    Replay,
    ReplayRun,
    replay_search,
)
from benchmarks.search.table import load_table, table_path
from xtts_tune.config import load_config
from xtts_tune.errors import UserError
from xtts_tune.search.settings import DEFAULT_SAMPLER, PrunerSettings

ROOT = Path(__file__).resolve().parents[2]
STUDIES = ("studies/demo.yaml", "studies/demo-voice2.yaml", "studies/kathleen.yaml")
SEEDS = 10
TRIALS = 100
"""Each search's trial budget: a search that has not come within 1 % of the table's best by then never did."""
REPORT_AT = 20
TARGET_SHARE = 0.6
"""The target for the default (issue 21), on every table: median steps at most random search's (no pruning),
no "never" in the seeds, a median best at 20 trials no worse than random search's; and on at least one table
median steps at most this share of random search's."""


def default_strategy() -> str:
    """The strategy that is the product's default: the study's sampler with :data:`DEFAULT_SAMPLER`'s options
    (``search.sampler`` left out) and ``search.pruner``'s default type, none.

    >>> STRATEGIES[default_strategy()].pruner
    'none'
    """
    for key, spec in STRATEGIES.items():
        same = {**DEFAULT_SAMPLER, **dict(spec.options)} == DEFAULT_SAMPLER
        if spec.sampler == "study" and spec.pruner == PrunerSettings().type and same:
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
    def share(self) -> float:
        """Median steps / the baseline's median steps (inf: never within 1 % in half the seeds or more)."""
        return _median(self.steps) / self.baseline_median if self.baseline_median else math.inf

    baseline_median: float = 0.0

    def meets(self, baseline: StrategyRow) -> bool:
        """This table's part of the target: median steps and median best at 20 trials no worse than the
        baseline's, and no seed that never got within 1 %."""
        return (
            self.share <= 1
            and not any(s is None for s in self.steps)
            and _median(self.best_at) <= _median(baseline.best_at)
        )

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
    reference = _median([run.steps_to(target) for run in runs.get(BASELINE, [])])
    for row in rows:
        row.baseline_median = reference
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
    """The table of one study (Markdown, so that it can go into docs/benchmarks.md as printed)."""
    baseline = next((row for row in rows if row.key == BASELINE), None)
    print(
        f"| strategy | steps to within 1 %: median / worst | best at {report_at} trials: median / worst "
        f"| median steps / random's | steps / random's, seed by seed: median / worst | this table's target |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for row in rows:
        worst = None if any(s is None for s in row.steps) else max(row.steps)
        never = sum(s is None for s in row.steps)
        worst_text = _fmt_steps(worst) + (f" ({never} of {len(row.steps)} never)" if never else "")
        best_worst = None if any(b is None for b in row.best_at) else max(row.best_at)
        ratio_worst = None if any(r is None for r in row.ratios) else max(row.ratios)
        default = " (the default)" if row.key == DEFAULT else ""
        bound = any(row.bounds)
        verdict = (
            "-"
            if baseline is None
            else "the baseline"
            if row.key == BASELINE
            else "met"
            if row.meets(baseline)
            else "not met"
        )
        print(
            f"| {row.label}{default} | {_fmt_steps(_median(row.steps))} / {worst_text} "
            f"| {_fmt_loss(_median(row.best_at))} / {_fmt_loss(best_worst)} | {_fmt_ratio(row.share)} "
            f"| {_fmt_ratio(_median(row.ratios), bound)} / {_fmt_ratio(ratio_worst, bound)} | {verdict} |"
        )


def target_line(row: StrategyRow, baseline: StrategyRow) -> str:
    """One table's target, in words, for one strategy."""
    never = sum(s is None for s in row.steps)
    return (
        f"{row.label}: median {_fmt_steps(_median(row.steps))} steps, {_fmt_ratio(row.share)} of random search's "
        f"{_fmt_steps(row.baseline_median)} (≤ 100 %: {'yes' if row.share <= 1 else 'no'}); never: {never} of "
        f"{len(row.steps)} seeds; best at {REPORT_AT}: {_fmt_loss(_median(row.best_at))} against random search's "
        f"{_fmt_loss(_median(baseline.best_at))}; this table: {'met' if row.meets(baseline) else 'not met'}"
    )


def overall(tables: dict[str, list[StrategyRow]]) -> dict[str, tuple[bool, float]]:
    """Per strategy run on every table: whether it meets the whole target (each table's part, and at most
    :data:`TARGET_SHARE` of random search's median steps on one), and its smallest share."""
    out = {}
    keys = set.intersection(*({row.key for row in rows} for rows in tables.values())) if tables else set()
    for key in [k for k in STRATEGIES if k in keys]:
        parts = []
        for rows in tables.values():
            row = next(r for r in rows if r.key == key)
            baseline = next((r for r in rows if r.key == BASELINE), None)
            parts.append((baseline is not None and row.meets(baseline), row.share))
        best = min(share for _, share in parts)
        out[key] = (all(ok for ok, _ in parts) and best <= TARGET_SHARE, best)
    return out


def bench_study(
    config: str, *, seeds: int, trials: int, strategies: list[str], record: bool, work: Path
) -> list[StrategyRow]:
    """Record the study's table if asked, then replay every strategy and print its table. A table not recorded
    yet is skipped with one line (recording one takes 15+ minutes of real trials: only when asked)."""
    cfg = load_config(ROOT / config)
    path = table_path(cfg)
    if not record and not path.is_file():
        print(
            f"\n{config}: no table yet ({path.relative_to(ROOT)}); skipped. Record it with "
            f"make bench-search RECORD=1 ARGS='--study {config}' (real trials, 15+ minutes)",
            flush=True,
        )
        return []
    if record:
        print(f"recording {path.relative_to(ROOT)} from {config} (real trials, one after another)", flush=True)

        def progress(event: dict) -> None:
            params = " ".join(
                f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in event["params"].items()
            )
            print(
                f"  [{event['index']}/{event['total']}] {params}: best {event['best_val_loss']:.4f} "
                f"({event['seconds']:.1f} s)",
                flush=True,
            )

        record_table(cfg, work_dir=work / cfg.study_name, progress=progress).save(path)
    table = load_table(path)
    replay = Replay.of(table, cfg)
    table.check(cfg, replay.settings.space, path)
    t0 = time.perf_counter()
    best = replay.table_best()
    target = best.value * (1 + WITHIN)
    runs = {
        key: [replay_search(replay, key, seed, trials, target=target, at_least=REPORT_AT) for seed in range(seeds)]
        for key in strategies
    }
    meta = table.meta
    params = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in best.params.items())
    print(
        f"\n{config}: table {path.relative_to(ROOT)}, {len(table.configs)} configurations "
        f"({len(table.configs) - 1} on the grid and the guide's recipe), recorded at commit {meta.get('commit')}"
        f"{' (uncommitted changes)' if meta.get('dirty') else ''} on {meta.get('machine')} ({meta.get('device')}, "
        f"{meta.get('threads')} thread(s), torch {meta.get('torch')}), {meta.get('date')}, "
        f"{meta.get('seconds', 0) / 60:.1f} min"
    )
    print(
        f"table's best (rank()'s winner of every configuration run unpruned): {params}: {best.value:.4f} "
        f"({best.verdict}); within {100 * WITHIN:.0f} %: ≤ {target:.4f}"
    )
    own = replay.settings.pruner.type
    kinds = [k for k in dict.fromkeys(STRATEGIES[k].pruner for k in strategies) if k != "none"]
    pruners = "; ".join(f"{k} {replay.pruner(k).kwargs}" + (" (the study's own)" if k == own else "") for k in kinds)
    print(
        f"seeds 0-{seeds - 1}, at most {trials} trials per search (stopped once within {100 * WITHIN:.0f} % after at least "
        f"{REPORT_AT} trials), trial 0 the guide's recipe; pruners: {pruners}; replayed in "
        f"{time.perf_counter() - t0:.0f} s\n"
    )
    rows = strategy_rows(runs, target)
    print_rows(rows, seeds=seeds)
    baseline = next((row for row in rows if row.key == BASELINE), None)
    default = next((row for row in rows if row.key == DEFAULT), None)
    if baseline is not None and default is not None:
        print(
            f"\ntarget (median steps ≤ random search's, no never in {seeds} seeds within {trials} trials, best at "
            f"{REPORT_AT} no worse than random search's): the default, {target_line(default, baseline)}"
        )
    met = [row.label for row in rows if baseline is not None and row.key != BASELINE and row.meets(baseline)]
    print(f"this table's target met by: {', '.join(met) or 'none'}")
    for row in rows:
        print(f"  {row.label}: steps per seed {[_fmt_steps(s) for s in row.steps]}")
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.search.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--record", action="store_true", help="record the tables again first (real trials, minutes)")
    p.add_argument("--study", action="append", help=f"study YAML (repeatable; default {' and '.join(STUDIES)})")
    p.add_argument("--seeds", type=int, default=SEEDS)
    p.add_argument("--trials", type=int, default=TRIALS, help="each search's trial budget")
    p.add_argument(
        "--strategies",
        default=",".join(k for k in STRATEGIES if k not in SLOW),
        help=f"comma-separated keys of {', '.join(STRATEGIES)} (default: all but {', '.join(sorted(SLOW))})",
    )
    args = p.parse_args(argv)
    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown or args.seeds < 1 or args.trials < 1:
        p.error(f"unknown strategies {unknown}" if unknown else "--seeds and --trials must be >= 1")
    code = provenance(ROOT)
    print(
        f"search-strategy bench: code at commit {code['commit']}{' (uncommitted changes)' if code['dirty'] else ''}, "
        f"{code['machine']}, {code['date']}"
    )
    try:
        with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
            tables = {
                config: bench_study(
                    config,
                    seeds=args.seeds,
                    trials=args.trials,
                    strategies=strategies,
                    record=args.record,
                    work=Path(tmp),
                )
                for config in args.study or STUDIES
            }
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    verdicts = overall({config: rows for config, rows in tables.items() if rows})  # skipped tables: no rows
    if DEFAULT in verdicts and BASELINE in strategies:
        ok, best = verdicts[DEFAULT]
        print(
            f"\nthe whole target (every table's, and ≤ {100 * TARGET_SHARE:.0f} % of random search's median steps on "
            f"at least one of {len(tables)}): the default, {STRATEGIES[DEFAULT].label}: {'met' if ok else 'not met'} "
            f"(its smallest share {_fmt_ratio(best)}); met by: "
            f"{', '.join(STRATEGIES[k].label for k, (m, _) in verdicts.items() if m and k != BASELINE) or 'none'}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
