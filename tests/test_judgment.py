"""What the tool tells a user, checked on a real demo search: one "best" everywhere, verdicts with evidence,
advice with numbers, and the winner against the guide's recipe on clips selection never saw."""

from __future__ import annotations

import pytest
import yaml

from xtts_tune.analysis.ranking.order import rank
from xtts_tune.config import load_config
from xtts_tune.export import export_best
from xtts_tune.report.page import build_report
from xtts_tune.search.runner import run_search
from xtts_tune.search.storage import load_study
from xtts_tune.terminal import render_summary

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def judged(demo_target, tmp_path_factory):
    """Four real demo trials: the guide's recipe (trial 0), an enqueued trial with every block frozen that the
    median pruner cuts at its second evaluation, then two sampled ones."""
    tmp = tmp_path_factory.mktemp("judged")
    cfg = load_config(
        "studies/demo.yaml",
        [
            f"output_dir={tmp}/runs",
            f"data.path={demo_target}",
            "data.demo_target=false",
            "search.forgetting=false",  # measured in test_forgetting
            "max_steps=6",
            "eval_every=2",
            "max_epochs=3",
            "search.pruner={type: median, n_startup_trials: 1, n_warmup_steps: 0}",
            "search.enqueue=[{learning_rate: 1.0e-5, freeze_depth: 4}]",
        ],
    )
    summary = run_search(cfg, n_trials=4, storage=f"sqlite:///{tmp}/judged.db")
    return tmp, summary, load_study("demo", summary.storage)


def test_a_two_point_pruned_trial_is_inconclusive_and_never_recommended(judged):
    _, summary, study = judged
    verdicts = {v.number: v for v in rank(study).verdicts}
    assert study.trials[1].state.name == "PRUNED" and verdicts[1].n_evaluations == 2
    assert verdicts[1].verdict == "inconclusive" and "too few to judge" in verdicts[1].reasons[0]
    assert study.trials[1].user_attrs["verdict"] == "inconclusive"  # the dashboard's short attribute
    assert {r.number: r.verdict for r in summary.rows}[1] == "inconclusive"
    assert summary.best_number != 1


def test_one_best_in_the_summary_the_report_the_export_and_the_unseen_clips(judged):
    tmp, summary, study = judged
    winner = rank(study).winner.number
    assert summary.best_number == winner
    exported = yaml.safe_load(export_best(study, tmp / "best.yaml").read_text())
    assert exported["provenance"]["trial"] == winner
    comparison = study.user_attrs["test_comparison"]
    assert comparison["winner"] == winner and comparison["guide"] == 0 and comparison["clips"] == 15
    assert comparison["winner_loss"] > 0 and comparison["guide_loss"] > 0 and comparison["base_loss"] > 0
    line = f"on 15 unseen test clips: trial {winner} (recommended) {comparison['winner_loss']:.4f} vs the guide's"
    assert line in render_summary(summary)
    assert exported["provenance"]["unseen_clips"].startswith(line)
    page = build_report(study, tmp / "report.html").read_text()
    assert f"Recommended: trial {winner} " in page and 'id="test-comparison"' in page
    assert line.replace("'", "&#x27;") in page
    # the test clips never reached a trial: no feature of theirs was ever computed for training or validation
    split = __import__("json").loads((tmp / "runs" / "demo" / "split.json").read_text())
    assert len(split["test"]) == 15 and not set(split["test"]) & set(split["train"] + split["val"])


def test_a_winner_still_improving_gets_advice_with_numbers(judged):
    _, _, study = judged
    from xtts_tune.analysis.ranking.recommend import recommend

    rec = recommend(study)
    v = next(v for v in rank(study).verdicts if v.number == rec.trial_number)
    assert v.still_improving and rec.stop_step == 6
    assert any("still improving at its last evaluation" in r and "max_steps 12" in r for r in rec.reasons)
    assert any("--set max_steps=12" in s for s in rec.next_steps)


@pytest.fixture(scope="module")
def demo_study(demo_target, tmp_path_factory):
    """A shorter demo search with the demo's own settings (studies/demo.yaml): the guide's recipe (trial 0)
    and four configurations a 20-trial demo search samples (two overfit, two are healthy)."""
    tmp = tmp_path_factory.mktemp("demo-verdicts")
    enqueue = [
        {"freeze_depth": 2, "learning_rate": 5.48e-3, "weight_decay": 0.066, "augment_prob": 0.309},
        {"freeze_depth": 3, "learning_rate": 9.04e-3, "weight_decay": 0.032, "augment_prob": 0.246},
        {"freeze_depth": 0, "learning_rate": 9.48e-5, "weight_decay": 0.097, "augment_prob": 0.335},
        {"freeze_depth": 2, "learning_rate": 7.82e-4, "weight_decay": 0.118, "augment_prob": 0.447},
    ]
    cfg = load_config(
        "studies/demo.yaml",
        [
            f"output_dir={tmp}/runs",
            f"data.path={demo_target}",
            "data.demo_target=false",
            "search.forgetting=false",  # measured in test_forgetting
            f"search.enqueue={yaml.safe_dump(enqueue, default_flow_style=True).strip()}",
        ],
    )
    summary = run_search(cfg, n_trials=5, storage=f"sqlite:///{tmp}/demo.db")
    return tmp, summary, load_study("demo", summary.storage)


def test_the_demo_shows_overfitting_healthy_and_under_trained_trials(demo_study):
    tmp, summary, study = demo_study
    from xtts_tune.analysis.study_analysis import analyze

    analysis = analyze(study)
    counts = analysis.verdict_counts()
    assert counts.get("overfitting", 0) >= 2 and counts.get("healthy", 0) >= 2, counts
    assert counts.get("under-trained", 0) >= 1 and counts.get("inconclusive", 0) == 0, counts
    onsets = [v.overfit_onset_step for v in analysis.verdicts if v.verdict == "overfitting"]
    assert all(s is not None for s in onsets)
    assert sum(r.overfitting for r in analysis.rates.by_freeze_depth.values()) == counts["overfitting"]
    page = build_report(study, tmp / "report.html").read_text()
    assert page.count('"overfitting onset"') >= 2  # the onset markers of the overfitting trials' curves
    assert summary.best_number in {v.number for v in analysis.verdicts if v.verdict == "healthy"}
