"""The data curve: the power-law fit on constructed points (a known law is recovered, a flat curve says it
has flattened, too few points say so), and one tiny end-to-end ``xtts-tune data-curve`` on the demo target
(nested fractions, one step budget, resumed after more fractions are asked, refused with other settings)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from xtts_tune.analysis.data_curve import MIN_GAIN, budget_note, fit_power_law, hindsight, sentence
from xtts_tune.cli import main

N = [15, 30, 60, 120, 240]


def test_a_noisy_power_law_gives_back_its_parameters_and_the_gain_of_twice_the_data():
    rng = np.random.default_rng(3)
    truth = [1.5 + 4.0 * n**-0.6 for n in N]
    fit = fit_power_law(N, [y + rng.normal(0, 0.002) for y in truth])
    assert fit.ok and abs(fit.a - 1.5) < 0.1 and abs(fit.b - 4.0) < 1.0 and abs(fit.c - 0.6) < 0.1, fit
    expected = (1.5 + 4.0 * 480**-0.6) / (1.5 + 4.0 * 240**-0.6) - 1  # -2.7 %
    assert abs(fit.doubled_change - expected) < 0.005 and 0 < fit.doubled_sd < 0.01, fit
    assert not fit.flattened
    assert (
        sentence(fit) == f"twice your data: test loss {100 * fit.doubled_change:+.1f} % (±{100 * fit.doubled_sd:.1f})"
    )


def test_a_flat_curve_says_more_of_the_same_data_will_not_help():
    rng = np.random.default_rng(4)
    fit = fit_power_law(N, [3.0 + rng.normal(0, 0.01) for _ in N])
    assert fit.ok and fit.flattened, fit
    assert -fit.doubled_change <= max(fit.doubled_sd, MIN_GAIN)
    assert sentence(fit).startswith("the curve has flattened: more of the same data will not help")


def test_a_gain_inside_its_noise_is_flattened_too():
    # a real but small decrease buried in noise 10x its size: the ± covers the predicted gain
    rng = np.random.default_rng(5)
    fit = fit_power_law(N[:4], [2.0 + 0.05 * n**-0.5 + rng.normal(0, 0.03) for n in N[:4]])
    assert fit.ok and fit.flattened, fit


def test_a_real_gain_under_half_a_percent_is_flattened_and_says_how_small():
    fit = fit_power_law(N, [2.9 + 0.5 * n**-0.7 for n in N])  # -0.2 % for twice 240 clips, no noise
    assert fit.ok and fit.flattened and fit.doubled_sd < -fit.doubled_change < MIN_GAIN, fit
    assert sentence(fit).startswith("the curve has flattened: twice your data would lower the test loss by only 0.")


def test_too_few_points_or_a_lost_one_are_said_honestly():
    fit = fit_power_law([10, 20, 40, 80], [3.0, 2.5, float("nan"), 2.1])
    assert not fit.ok and fit.a is None and not fit.flattened
    assert sentence(fit).startswith("3 points: a curve needs at least 4")


def test_hindsight_predicts_the_largest_point_from_the_smaller_ones():
    pts = [{"train_clips": n, "test_loss": 2 + 3 * n**-0.5 + (0.05 if n == 240 else 0)} for n in N]
    h = hindsight(pts)
    assert h["n"] == 240 and h["fit_on"] == N[:4]
    assert h["predicted"] == pytest.approx(2 + 3 * 240**-0.5, rel=1e-4)
    assert h["error"] == pytest.approx(h["predicted"] / h["measured"] - 1) and h["error"] < 0
    assert hindsight(pts[:3]) is None


@pytest.mark.slow
def test_data_curve_on_the_demo_resumes_and_refuses_other_settings(demo_target, tmp_path, capsys):
    """About 15 s: four 3-step runs of the tiny base on 2 to 16 demo clips."""
    doc = yaml.safe_load(Path("studies/demo.yaml").read_text())
    doc.update(output_dir=str(tmp_path / "runs"), study_name="curve")
    doc["data"].update(path=str(demo_target), val_count=6, test_count=6, train_count=16)
    doc["train"].update(max_steps=3, eval_every=3, batch_size=4, max_epochs=1)
    config = tmp_path / "best.yaml"
    config.write_text(yaml.safe_dump(doc))
    folder = tmp_path / "runs" / "curve" / "data-curve"

    assert main(["data-curve", "--config", str(config), "--fractions", "0.25", "0.5", "1"]) == 0
    out = capsys.readouterr().out
    assert "[3/3] 100 %: test loss " in out and "3 points: a curve needs at least 4" in out
    first = json.loads((folder / "curve.json").read_text())
    assert [(p["fraction"], p["train_clips"], p["steps"]) for p in first["points"]] == [
        (0.25, 4, 3),
        (0.5, 8, 3),
        (1.0, 16, 3),
    ]  # nested fractions, one budget: the full data's 3 steps (1 epoch of 16 clips at batch 4 is 4)
    assert all(math.isfinite(p["test_loss"]) for p in first["points"])

    assert main(["data-curve", "--config", str(config), "--fractions", "0.125", "0.25", "0.5", "1"]) == 0
    out = capsys.readouterr().out
    assert "[1/1] 12.5 % of the train split: 2 clips" in out and "[2/" not in out  # only the new fraction ran
    again = json.loads((folder / "curve.json").read_text())
    assert again["points"][1:] == first["points"] and again["points"][0]["train_clips"] == 2
    fit = json.loads((folder / "fit.json").read_text())
    assert fit["problem"] is None and fit["hindsight"]["n"] == 16
    assert fit["sentence"] in out and (folder / "data-curve.html").stat().st_size > 1_000_000  # plotly inside

    assert main(["data-curve", "--config", str(config), "--set", "train.learning_rate=1e-3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {folder / 'curve.json'}: measured with other settings (train differ)")
    assert json.loads((folder / "curve.json").read_text()) == again  # nothing already written changed


def test_runs_still_improving_at_their_last_step_are_named():
    points = [
        {"fraction": 0.5, "best_step": 60, "steps": 80, "train_clips": 8, "test_loss": 3.0},
        {"fraction": 1.0, "best_step": 100, "steps": 100, "train_clips": 16, "test_loss": 2.9},
    ]
    assert budget_note(points).startswith("the 100 % run was still improving at its last step (100)")
    points[1]["stop_reason"] = "early_stopped"  # improving by less than min_delta: early stopping judged it
    assert budget_note(points) is None
    points[1].update(best_step=90, stop_reason="completed")
    assert budget_note(points) is None


def test_the_study_report_shows_the_data_curve_of_its_export(tmp_path):
    from xtts_tune.analysis.examples import example_study
    from xtts_tune.io import atomic_write_json
    from xtts_tune.record.study import write_study
    from xtts_tune.report.page import build_report

    study = example_study()
    assert 'id="plot-data-curve"' not in build_report(study, tmp_path / "before.html").read_text()
    points = [
        {"fraction": f, "train_clips": int(64 * f), "test_loss": 2 + 3 * (64 * f) ** -0.5, "best_step": 9, "steps": 10}
        for f in (0.125, 0.25, 0.5, 1.0)
    ]
    atomic_write_json(tmp_path / "runs" / "example-final" / "data-curve" / "curve.json", {"points": points})
    write_study(study, study_dir=str(tmp_path / "runs" / "example"))
    page = build_report(study, tmp_path / "after.html").read_text()
    assert 'id="plot-data-curve"' in page and "twice your data: test loss -4.6 % (±0.0)" in page


def test_a_fraction_outside_zero_to_one_is_one_error_line(capsys):
    assert main(["data-curve", "--config", "studies/demo.yaml", "--fractions", "0.5", "2"]) == 2
    err = capsys.readouterr().err
    assert err == "error: --fractions [2.0]: every fraction must be in (0, 1], e.g. 0.125 0.25 0.5 1\n"
