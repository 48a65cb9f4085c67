"""Measure what the overfitting flag should do to the pick: score every kept trial of a finished study on its
test split and compare the picks with and without overfitting trials (:mod:`xtts_tune.analysis.evidence.flag_effect`).

``python -m benchmarks.flag_effect --config studies/kathleen.yaml --set data.train_count=24 ...`` with the
``--set`` overrides the search ran with (the same split and base). Prints one row per trial and the comparison;
the rows are stored in the study's ``test_scores`` attribute. Keep every checkpoint during the search
(``--set search.keep_top_k=N``) or only the kept ones are scored.
"""

from __future__ import annotations

import argparse
import json


def main(argv: list[str] | None = None) -> int:
    from xtts_tune.analysis.evidence.flag_effect import flag_effect
    from xtts_tune.config import load_config
    from xtts_tune.model.base import load_study_base
    from xtts_tune.search.holdout import score_kept_on_test
    from xtts_tune.search.storage import default_storage, load_study
    from xtts_tune.training.prepare import prepare_data

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    parser.add_argument("--storage")
    parser.add_argument("--json", help="also write the rows and the comparison to this file")
    args = parser.parse_args(argv)

    cfg = load_config(args.config, args.overrides)
    study = load_study(cfg.study_name, args.storage or default_storage(cfg))
    base = load_study_base(cfg)
    data = prepare_data(cfg, base)
    rows = score_kept_on_test(study, cfg, base, data)
    print(f"{'trial':>5} {'verdict':<14} {'val loss':>9} {'test loss':>9}  best step  onset")
    for r in rows:
        test = "-" if r["test_loss"] is None else f"{r['test_loss']:.4f}"
        val = "-" if r["val_loss"] is None else f"{r['val_loss']:.4f}"
        mark = " *" if r["recommended"] else ""
        rising = " (rising at end)" if r["rising_at_end"] else ""
        print(
            f"{r['number']:>5} {r['verdict']:<14} {val:>9} {test:>9}  {r['best_step']!s:>9}  "
            f"{r['overfit_onset_step']!s:>5}{mark}{rising}"
        )
    effect = flag_effect(rows)
    print(effect.describe())
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(
                {"rows": rows, "effect": effect.describe(), "change": effect.change, "spearman": effect.spearman},
                f,
                indent=1,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
