"""``xtts-tune confirm``: re-running the top candidates with other seeds, and the recommendation by the mean.

The fast tests use synthetic studies (``test_analysis``'s builders) with a stored ``confirmations``
attribute; the slow one runs a real tiny study on the demo voice and confirms it.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from test_analysis import add_trial, new_study

from xtts_tune.analysis.ranking.recommend import NoRecommendationError, recommend
from xtts_tune.record import read_confirmations, write_confirmation_run
from xtts_tune.search.confirm import (
    ConfirmError,
    confirm_top_trials,
    confirmation_candidates,
)
from xtts_tune.search.storage import load_study

optuna.logging.set_verbosity(optuna.logging.WARNING)


def runs(*pairs: tuple[int, float | None]) -> list[dict]:
    return [{"seed": s, "best_val_loss": v, "best_step": 100 + s} for s, v in pairs]


def store_confirmations(study, table: dict[str, list[dict]]) -> None:
    """Store confirmation runs as ``xtts-tune confirm`` does (one run at a time)."""
    for number, entries in table.items():
        for run in entries:
            write_confirmation_run(study, int(number), run)


def close_study(path: Path):
    """Trial 0 is best on one seed, trial 1 within the 1 % seed noise; trial 2 overfits with the lowest
    loss; trial 3 is clearly worse."""
    study = new_study(path)
    add_trial(study, "healthy", 3.000, {"freeze_depth": 6, "learning_rate": 2e-5})
    add_trial(study, "healthy", 3.020, {"freeze_depth": 8, "learning_rate": 1e-5})
    add_trial(study, "unstable", 2.800, {"freeze_depth": 0, "learning_rate": 5e-4})
    add_trial(study, "healthy", 3.300, {"freeze_depth": 10, "learning_rate": 3e-6})
    return study


# --- fast: the recommendation by the mean -------------------------------------------------------------


def test_confirmations_flip_the_ranking_to_the_better_mean(tmp_path: Path) -> None:
    study = close_study(tmp_path / "s.db")
    before = recommend(study)
    assert before.trial_number == 0 and before.within_noise == [1] and before.n_seeds == 1
    assert before.mean_val_loss is None

    store_confirmations(
        study,
        {
            "0": runs((1, 3.10), (2, 3.12)),  # seed 0 was lucky: mean 3.0733
            "1": runs((1, 3.01), (2, 3.03)),  # mean 3.0200 ± 0.0100
            "2": runs((1, 2.70), (2, 2.71)),  # unstable: never picked, whatever its mean
        },
    )
    rec = recommend(study)

    assert rec.trial_number == 1
    assert rec.val_loss == pytest.approx(3.02)  # the original run's value stays
    assert rec.mean_val_loss == pytest.approx(3.02)
    assert rec.std_val_loss == pytest.approx(0.01)
    assert rec.n_seeds == 3
    text = " ".join(rec.reasons)
    assert rec.reasons[0] == (
        "Trial 1 has the lowest mean best validation loss of the 2 candidates confirmed with other seeds: "
        "3.0200 ± 0.0100 over 3 seeds (original run 3.0200 with seed 0; seed 1: 3.0100, seed 2: 3.0300)."
    )
    assert (
        "Trial 0 had the lowest single-run validation loss (3.0000) but its mean is 3.0733 ± 0.0643 over 3 "
        "seeds, 0.0533 (1.7%) worse than trial 1's." in text
    )
    assert "Trial 2 had a lower validation loss (2.8000) but was not chosen because it was unstable." in text
    assert "Its confirmation runs were best at step 101 (seed 1), 102 (seed 2)." in text
    assert rec.within_noise == []
    assert not any("confirm" in s for s in rec.next_steps if not s.startswith("Export"))
    assert rec.next_steps[-1] == (
        f"Export it: xtts-tune export --study demo --storage 'sqlite:///{tmp_path}/s.db' --out studies/demo-best.yaml"
    )  # not the project's default database
    json.dumps(rec.to_dict())


def test_an_unconfirmed_trial_competes_only_when_it_beat_every_confirmed_one(tmp_path: Path) -> None:
    study = close_study(tmp_path / "s.db")
    store_confirmations(study, {"0": runs((1, 3.10), (2, 3.12)), "1": runs((1, 3.01), (2, 3.03))})
    # below trial 1's mean but above both confirmed originals: trial 0 beat it on one seed already
    add_trial(study, "healthy", 3.015, {"freeze_depth": 7, "learning_rate": 1.5e-5})
    rec = recommend(study)
    assert rec.trial_number == 1
    assert rec.within_noise == [4]
    assert "trial 4 (3.0150, one seed)" in " ".join(rec.reasons)
    assert rec.next_steps[0].startswith("Confirm with other seeds: xtts-tune confirm --study demo --top 2 --seeds 2")

    # a new trial better than every confirmed original (e.g. added after confirm ran) wins on its value
    add_trial(study, "healthy", 2.950, {"freeze_depth": 5, "learning_rate": 3e-5})
    rec = recommend(study)
    assert rec.trial_number == 5 and rec.mean_val_loss is None and rec.n_seeds == 1
    assert "has not been confirmed with other seeds itself" in rec.reasons[0]
    assert rec.next_steps[0].startswith("Confirm with other seeds: xtts-tune confirm --study demo --top 1 --seeds 2")


def test_means_within_the_noise_ask_for_more_seeds(tmp_path: Path) -> None:
    study = close_study(tmp_path / "s.db")
    store_confirmations(study, {"0": runs((1, 3.02), (2, 3.03)), "1": runs((1, 3.00), (2, 3.01))})
    rec = recommend(study)
    assert rec.trial_number == 1 and rec.within_noise == [0]  # 3.0100 vs 3.0167
    assert "1 candidate is within the 1% seed noise of its mean: trial 0 (3.0167 ± 0.0153 over 3 seeds)." in rec.reasons
    assert rec.next_steps[0] == (
        "Their means are within the seed noise; tell them apart with more seeds: "
        "xtts-tune confirm --study demo --top 2 --seeds 4 (runs already stored are skipped)."
    )


def test_a_confirmation_run_without_a_finite_loss_rules_the_trial_out(tmp_path: Path) -> None:
    study = close_study(tmp_path / "s.db")
    store_confirmations(study, {"0": runs((1, None), (2, 3.0)), "1": runs((1, 3.05), (2, 3.06))})
    rec = recommend(study)
    assert rec.trial_number == 1
    assert rec.mean_val_loss == pytest.approx((3.02 + 3.05 + 3.06) / 3)
    assert any(
        "Trial 0 (original run 3.0000) was not chosen because its run with seed 1 gave no finite" in r
        for r in rec.reasons
    )
    assert read_confirmations(study)[0][0] == {"seed": 1, "best_val_loss": None, "best_step": 101}


def test_confirm_skips_stored_runs_and_the_cli_prints_the_table(tmp_path: Path) -> None:
    study = close_study(tmp_path / "s.db")
    url = f"sqlite:///{tmp_path / 's.db'}"
    assert confirmation_candidates(study, 3) == [0, 1, 3]  # the unstable trial 2 is no candidate
    store_confirmations(study, {"0": runs((1, 3.10), (2, 3.12)), "1": runs((1, 3.01), (2, 3.03))})

    result = confirm_top_trials("demo", url, top=2, seeds=2)  # everything stored: nothing trains

    assert (result.runs_done, result.runs_skipped) == (0, 4)
    assert [t.number for t in result.trials] == [0, 1]
    t1 = result.trials[1]
    assert (t1.original_seed, t1.original_value, [r.seed for r in t1.runs]) == (0, 3.02, [1, 2])
    assert (t1.mean, t1.std, t1.n) == (pytest.approx(3.02), pytest.approx(0.01), 3)
    assert result.recommendation.trial_number == 1

    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "xtts_tune.cli",
            "confirm",
            "--study",
            "demo",
            "--storage",
            url,
            "--top",
            "2",
            "--seeds",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert any(
        line.split()[:1] == ["1*"]
        and "3.0200 (s0)" in line
        and "3.0100" in line
        and "3.0300" in line
        and "3.0200 ± 0.0100" in line
        for line in lines
    ), out.stdout
    assert any(line.split()[:1] == ["0"] and "3.0733 ± 0.0643" in line for line in lines), out.stdout
    assert "recommended: trial 1 (mean 3.0200 ± 0.0100 over 3 seeds)" in out.stdout
    assert "Trial 1 has the lowest mean best validation loss" in out.stdout

    bad = subprocess.run(
        [sys.executable, "-m", "xtts_tune.cli", "confirm", "--study", "demo", "--storage", url, "--top", "0"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 2 and "must be >= 1" in bad.stderr


def test_nothing_to_confirm_is_a_clear_error(tmp_path: Path) -> None:
    study = new_study(tmp_path / "s.db")
    add_trial(study, "unstable", 3.0, {"freeze_depth": 0, "learning_rate": 5e-4})
    url = f"sqlite:///{tmp_path / 's.db'}"
    with pytest.raises(ConfirmError, match="nothing to confirm in study 'demo': .*none of its 1 completed"):
        confirm_top_trials("demo", url)
    with pytest.raises(ConfirmError, match="seeds must be a whole number >= 1"):
        confirm_top_trials("demo", url, seeds=0)
    with pytest.raises(NoRecommendationError):
        recommend(study)


# --- slow: a real tiny study, confirmed ----------------------------------------------------------------


@pytest.mark.slow
def test_confirm_a_real_tiny_study(demo_target, tiny_base, tmp_path: Path) -> None:
    from test_study import make_cfg, study_raw

    from xtts_tune.search.runner import run_search

    raw = study_raw(
        "confirm",
        demo_target,
        tmp_path / "out",
        pruner={"type": "none"},
        enqueue_guide=False,
        enqueue=[{"learning_rate": 1.0e-4, "freeze_depth": 2}, {"learning_rate": 3.0e-4, "freeze_depth": 3}],
    )
    cfg = make_cfg(raw, tmp_path)
    url = f"sqlite:///{tmp_path / 'confirm.db'}"
    run_search(cfg, n_trials=2, storage=url, base=tiny_base)
    study = load_study("confirm", url)
    candidates = confirmation_candidates(study, 2)
    assert len(candidates) == 2, [t.user_attrs.get("verdict") for t in study.trials]  # both sane configs
    before = {k: v.detach().clone() for k, v in tiny_base.gpt.state_dict().items()}
    events: list[dict] = []

    result = confirm_top_trials("confirm", url, top=2, seeds=1, progress=events.append, base=tiny_base)

    # stored in the study: one other seed (the trial's seed + 1) per candidate
    stored = load_study("confirm", url).user_attrs["confirmations"]
    assert sorted(stored) == sorted(str(n) for n in candidates)
    for n in candidates:
        (entry,) = stored[str(n)]
        assert entry["seed"] == 1
        assert math.isfinite(entry["best_val_loss"]) and entry["best_step"] in (0, 2, 4)
        run_dir = tmp_path / "out" / "confirm" / "confirm" / f"trial-{n:04d}-seed-1"
        assert Path(entry["run_dir"]) == run_dir
        curve = json.loads((run_dir / "curve.json").read_text())
        assert curve["config"]["train"]["seed"] == 1
        assert curve["summary"]["best_val_loss"] == pytest.approx(entry["best_val_loss"])
        assert not (run_dir / "best_gpt.pth").exists()
        # the trial's own train config ran: its params and the study's fixed knobs
        trial = study.trials[n]
        assert {k: curve["config"]["train"][k] for k in trial.params} == trial.params
        assert curve["config"]["train"]["max_steps"] == 4 and curve["config"]["train"]["eval_every"] == 2
    assert (result.runs_done, result.runs_skipped) == (len(candidates), 0)
    assert [e["number"] for e in events if e["event"] == "confirm_end"] == candidates
    assert any(e["event"] == "eval" and e.get("seed") == 1 for e in events)
    # the base's weights are left as they were
    assert all(tiny_base.gpt.state_dict()[k].equal(v) for k, v in before.items())

    rec = result.recommendation
    assert rec is not None and rec.n_seeds == 2 and rec.trial_number in candidates
    assert "over 2 seeds" in rec.reasons[0]

    again = confirm_top_trials("confirm", url, top=2, seeds=1, base=tiny_base)  # nothing left to run
    assert (again.runs_done, again.runs_skipped) == (0, len(candidates))
