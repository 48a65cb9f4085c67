"""``make bench``: fixed, seeded figures for the demo on this machine (``python -m benchmarks``).

Prints seconds per epoch and a step-time breakdown with the feature cache on and off. Absolute times vary
between machines; compare the ratios measured in the same run.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.demo_search import report_figures, search_figures
from xtts_tune.config import load_config
from xtts_tune.model.base import load_base, resolve_base_path
from xtts_tune.training.evaluation import validation_loss
from xtts_tune.training.loop import run_trial
from xtts_tune.training.prepare import prepare_data

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
        warm = 0.0
        if cache:  # steady state: clean features computed once per study, before the trials
            t = time.perf_counter()
            for cid in data.clips:
                data.features.get(cid)
            warm = time.perf_counter() - t
            data.features.timings.clear()
            data.features.hits = data.features.misses = 0
        t = time.perf_counter()
        result = run_trial(cfg, base=base, data=data, run_dir=Path(tmp) / "trial")
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
            "overhead": result.wall_seconds / result.compute_seconds if result.compute_seconds else float("nan"),
        }


def _print_breakdown(title: str, r: dict) -> None:
    print(f"\n{title}")
    print(f"  {'seconds per epoch':<32} {r['wall_per_epoch']:8.2f}   ({r['steps_per_epoch']:.0f} optimizer steps)")
    steps = max(r["steps_per_epoch"], 1)
    names = (
        "batch_preparation",
        "  audio_loading",
        "  dvae_codes",
        "  conditioning_mels",
        "forward_backward",
        "optimizer",
        "evaluation",
    )
    for name in names:
        v = r["parts_per_epoch"].get(name.strip(), 0.0)
        label = name if not name.startswith(" ") else f"  of which {name.strip()}"
        print(f"  {label:<32} {v:8.2f} s/epoch  {1000 * v / steps:8.1f} ms/step")
    print(
        f"  {'feature cache':<32} {r['cache_hits']} hits, {r['cache_misses']} misses"
        f" (one-off precompute {r['precompute_seconds']:.1f} s)"
    )
    print(
        f"  {'overhead (trial wall / compute)':<32} {r['overhead']:8.2f}   (forward, backward, optimizer, evaluation)"
    )


def stock_comparison(config: Path, *, epochs: int = 3, seed: int = 0) -> dict:
    """The same fine-tune through coqui's stock ``Trainer`` and through our trial loop (issue: target ≥ 1.5×).

    Same base weights, split, freezing, optimizer settings, batch size, accumulation, seed and number of
    optimizer steps; validation once per epoch in both (the stock Trainer's schedule); no augmentation (the
    stock path has none). Ours is timed twice: with the feature cache cold (a study's first trial, which
    computes every clip's features) and warm (every later trial). A second seed of our loop gives the
    seed-to-seed noise the loss differences are compared with.
    """
    from benchmarks.stock_trainer import run_stock_trainer

    with tempfile.TemporaryDirectory() as tmp:
        overrides = [
            f"output_dir={tmp}",
            f"max_epochs={epochs}",
            "eval_every=100000",
            "augment_prob=0",
            "patience=100000",
            "eval_at_start=false",
            "max_steps=0",
            f"seed={seed}",
        ]
        cfg = load_config(config, overrides)
        torch.set_num_threads(os.cpu_count() or 1)
        base = load_base(resolve_base_path(cfg.base_model, Path(cfg.root)))
        data = prepare_data(cfg, base)
        other_cfg = load_config(config, overrides[:-1] + [f"seed={seed + 1}"])

        def stock_run(c, name):
            r = run_stock_trainer(c, base=base, data=data, output_dir=Path(tmp) / name, keep_epoch_states=True)
            # the stock-trained weights of each epoch, measured the way our trials measure validation loss
            return r, [validation_loss(c, base=base, data=data, state=s)["loss"] for s in r.epoch_states]

        stock, stock_val = stock_run(cfg, "stock")
        _, stock_other_val = stock_run(other_cfg, "stock-seed")

        def ours(run: str, c=cfg):
            t = time.perf_counter()
            r = run_trial(c, base=base, data=data, run_dir=Path(tmp) / run)
            return r, time.perf_counter() - t

        cold, cold_wall = ours("cold")  # computes and caches every clip's features on the way
        warm, warm_wall = ours("warm")
        other_seed, _ = ours("seed", other_cfg)

    def per_epoch(values: list[float], n: int) -> list[float]:
        k = len(values) / n
        return [
            sum(values[round(i * k) : round((i + 1) * k)]) / max(1, round((i + 1) * k) - round(i * k)) for i in range(n)
        ]

    val = lambda r: [c["val_loss"] for c in r.curve]  # noqa: E731
    train = lambda r: [c["train_loss"] for c in r.curve]  # noqa: E731
    stock_train = per_epoch([x for x in stock.train_losses if x == x], epochs)
    return {
        "epochs": epochs,
        "steps": {"stock": stock.steps, "ours": warm.steps},
        "seconds": {"stock": stock.wall_seconds, "ours_cold": cold_wall, "ours_warm": warm_wall},
        "steps_per_second": {
            "stock": stock.steps_per_second,
            "ours_cold": cold.steps / cold_wall,
            "ours_warm": warm.steps / warm_wall,
        },
        "val_loss": {
            "stock": stock_val,
            "stock_own_eval": stock.eval_losses,
            "stock_other_seed": stock_other_val,
            "ours": val(warm),
            "ours_other_seed": val(other_seed),
        },
        "train_loss": {"stock": stock_train, "ours": train(warm), "ours_other_seed": train(other_seed)},
        "max_val_difference": max(abs(a - b) for a, b in zip(stock_val, val(warm))),
        "seed_noise": max(abs(a - b) for a, b in zip(val(other_seed), val(warm))),
        "stock_seed_noise": max(abs(a - b) for a, b in zip(stock_other_val, stock_val)),
    }


def _print_stock(r: dict) -> None:
    sps = r["steps_per_second"]
    print(
        f"\nagainst coqui's stock Trainer (same fine-tune, {r['epochs']} epochs, {r['steps']['stock']} optimizer steps each)"
    )
    print(f"  {'stock Trainer.fit()':<34} {r['seconds']['stock']:7.1f} s   {sps['stock']:6.2f} steps/s")
    print(
        f"  {'our loop, feature cache cold':<34} {r['seconds']['ours_cold']:7.1f} s   {sps['ours_cold']:6.2f} steps/s"
    )
    print(
        f"  {'our loop, feature cache warm':<34} {r['seconds']['ours_warm']:7.1f} s   {sps['ours_warm']:6.2f} steps/s"
    )
    print("  validation loss after each epoch, every column measured by our evaluator (per-clip features);")
    print("  coqui's own figure for its run is in brackets (it depends on how the validation batches are padded)")
    print(
        f"  {'epoch':<7}{'stock':>9}{'(coqui)':>10}{'stock seed+1':>14}{'ours':>9}{'ours seed+1':>13}"
        f"{'train: stock':>14}{'ours':>8}"
    )
    for i in range(r["epochs"]):
        v, t = r["val_loss"], r["train_loss"]
        print(
            f"  {i + 1:<7}{v['stock'][i]:9.4f}{'(' + format(v['stock_own_eval'][i], '.4f') + ')':>10}"
            f"{v['stock_other_seed'][i]:14.4f}{v['ours'][i]:9.4f}{v['ours_other_seed'][i]:13.4f}"
            f"{t['stock'][i]:14.4f}{t['ours'][i]:8.4f}"
        )
    print(
        f"  largest stock-vs-ours validation difference {r['max_val_difference']:.4f}; seed to seed, the stock"
        f" Trainer differs by up to {r['stock_seed_noise']:.4f}, our loop by up to {r['seed_noise']:.4f}"
    )


def _commit() -> str:
    """The measured code's commit, ``+changes`` when tracked files differ from it (one definition:
    :func:`~benchmarks.search.record.provenance`)."""
    from benchmarks.search.record import provenance

    where = provenance(ROOT)
    return (where["commit"] or "unknown") + ("+changes" if where["dirty"] else "")


def summary_table(rows: list[tuple[str, str, str]]) -> str:
    """The one table ``make bench`` ends with: figure, value measured in this run, target."""
    widths = [max(len(r[i]) for r in rows + [("figure", "value", "target")]) for i in range(3)]
    line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join(
        [line(("figure", "value", "target")), "  ".join("-" * w for w in widths)] + [line(r) for r in rows]
    )


def _device_line() -> str:
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)}"
    return f"CPU, {torch.get_num_threads()} threads"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default=str(ROOT / "studies" / "demo.yaml"))
    p.add_argument("--epochs", type=int, default=2, help="epochs of each cache on/off measurement")
    p.add_argument("--stock-epochs", type=int, default=3, help="epochs of the stock-Trainer comparison (0 skips it)")
    p.add_argument("--search-trials", type=int, default=20, help="0 skips the search figures")
    p.add_argument(
        "--real-size",
        action="store_true",
        help="only the real-size XTTS v2 GPT figures (python -m benchmarks.realsize.bench; GPU figures on a GPU)",
    )
    args, rest = p.parse_known_args(argv)
    if args.real_size:
        from benchmarks import realsize

        return realsize.main(rest)
    if rest:
        p.error(f"unrecognized arguments: {' '.join(rest)}")
    logging.basicConfig(level=logging.WARNING)
    from xtts_tune.terminal import quiet_third_party

    quiet_third_party()
    torch.set_num_threads(os.cpu_count() or 1)
    commit = _commit()  # once: a commit made while the bench runs must not relabel its figures
    print(f"xtts-tune benchmark at commit {commit} — demo study, {_device_line()}, torch {torch.__version__}")
    table: list[tuple[str, str, str]] = []

    if args.stock_epochs:
        st = stock_comparison(Path(args.config), epochs=args.stock_epochs)
        _print_stock(st)
        sps = st["steps_per_second"]
        table += [
            (
                "our loop vs coqui's stock Trainer, steps/s (cache warm)",
                f"{sps['ours_warm'] / sps['stock']:.2f}x",
                ">= 1.5x",
            ),
            ("our loop vs coqui's stock Trainer, steps/s (cache cold)", f"{sps['ours_cold'] / sps['stock']:.2f}x", ""),
            (
                "validation loss, stock vs ours (same seed), largest per-epoch gap",
                f"{st['max_val_difference']:.4f}",
                f"seed-to-seed: stock {st['stock_seed_noise']:.4f}, ours {st['seed_noise']:.4f}",
            ),
        ]

    rows = {}
    for cache in (True, False):
        for aug in (0.0, 0.3):
            rows[(cache, aug)] = epoch_breakdown(Path(args.config), cache=cache, augment_prob=aug, epochs=args.epochs)
            _print_breakdown(f"feature cache {'on' if cache else 'off'}, augment_prob {aug}", rows[(cache, aug)])
    for aug in (0.0, 0.3):
        on, off = rows[(True, aug)], rows[(False, aug)]
        table.append(
            (
                f"cached vs uncached epoch, augment_prob {aug}",
                f"{off['wall_per_epoch'] / on['wall_per_epoch']:.2f}x",
                "> 1",
            )
        )
    table.append(
        ("seconds per demo epoch, cache on, augment_prob 0.3", f"{rows[(True, 0.3)]['wall_per_epoch']:.1f} s", "")
    )
    table.append(
        (
            "trial overhead: wall / compute (cache on, augment_prob 0.3)",
            f"{rows[(True, 0.3)]['overhead']:.3f}",
            "<= 1.10",
        )
    )

    from benchmarks.prefix import prefix_figures, prefix_rows

    prefix = prefix_rows(prefix_figures(Path(args.config)))
    print("\nprefix cache (demo trials, the conditioning and both embeddings frozen, one fixed slice per clip)")
    for name, value, target in prefix:
        print(f"  {name:<78} {value}" + (f"   (target {target})" if target else ""))
    table += prefix

    rep = report_figures()
    print(f"\nreport for a {rep['trials']}-trial study: {rep['seconds']:.2f} s, {rep['bytes'] / 1e6:.1f} MB")
    table.append(
        (f"report build, {rep['trials']}-trial study", f"{rep['seconds']:.2f} s, {rep['bytes'] / 1e6:.1f} MB", "")
    )

    if args.search_trials:
        s = search_figures(Path(args.config), args.search_trials)
        print(f"\nsearch, {s['trials']} trials on the demo (target: under 10 minutes)")
        print(
            f"  wall time with pruning     {s['wall'] / 60:6.1f} min, {s['pruned_steps']} optimizer steps, best {s['pruned_best']:.4f}"
        )
        print(
            f"  same configs, no pruning   {s['full_wall'] / 60:6.1f} min, {s['full_steps']} optimizer steps, best {s['full_best']:.4f}"
        )
        print(
            f"  pruned/unpruned steps      {s['pruned_steps'] / max(s['full_steps'], 1):6.2f}   (target: at most 0.40)"
        )
        table += [
            (f"search wall time, {s['trials']} trials", f"{s['wall'] / 60:.1f} min", "< 10 min"),
            (
                "search overhead: wall / trial compute (everything: model, data, cache, storage, checkpoints)",
                f"{s['wall'] / s['compute']:.3f}" if s["compute"] else "n/a",
                "<= 1.10",
            ),
            (
                "optimizer steps, pruned / unpruned",
                f"{s['pruned_steps']}/{s['full_steps']} = {s['pruned_steps'] / max(s['full_steps'], 1):.2f}",
                "<= 0.40",
            ),
            ("best validation loss, pruned vs unpruned", f"{s['pruned_best']:.4f} vs {s['full_best']:.4f}", "equal"),
            (
                f"verdicts of the {s['trials']}-trial demo search",
                ", ".join(f"{n} {v}" for v, n in s["verdicts"].items()),
                ">= 2 overfitting, >= 2 healthy, >= 1 under-trained",
            ),
            ("recommended trial vs the guide's recipe", s["unseen"], "lower on unseen clips"),
        ]
    print(f"\nsummary (commit {commit}, {_device_line()})")
    print(summary_table(table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
