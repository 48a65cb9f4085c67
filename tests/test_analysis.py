"""Study-level analysis on synthetic Optuna studies stored in SQLite (no training needed).

The builders here (``new_study``, ``add_trial``, ``synthetic_study``) write trials the way the
study runner does; ``tests/test_report.py`` reuses them.
"""

from __future__ import annotations

import dataclasses
import math
import random
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.trial import TrialState

from xtts_tune.analysis.curve.diagnosis import diagnose
from xtts_tune.analysis.ranking.recommend import NoRecommendationError, recommend
from xtts_tune.analysis.ranking.verdicts import trial_verdicts
from xtts_tune.analysis.statistics import (
    compute_saved,
    learning_rate_band,
    overfitting_rates,
    parameter_importances,
)
from xtts_tune.analysis.study_analysis import analyze
from xtts_tune.config import StudyConfig
from xtts_tune.record import StudyRecord, TrialRecord, write_study

optuna.logging.set_verbosity(optuna.logging.WARNING)

DISTRIBUTIONS = {
    "freeze_depth": IntDistribution(0, 12),
    "learning_rate": FloatDistribution(1e-6, 1e-3, log=True),
    "weight_decay": FloatDistribution(0.0, 0.3),
    "augment_prob": FloatDistribution(0.0, 0.6),
}
EVAL_EVERY = 10
STEPS_PER_EPOCH = 40


# --- builders ---------------------------------------------------------------------------------------


def synthetic_curve(kind: str, *, level: float = 3.0, points: int = 13) -> list[dict[str, Any]]:
    """A curve whose diagnosis is ``kind``; its best validation loss is ``level``."""
    steps = [i * EVAL_EVERY for i in range(points)]
    start = level * 1.15
    val: list[float] = []
    train: list[float | None] = [None]
    for i in range(points):
        x = i / (points - 1)
        if kind == "healthy":
            v = level + (start - level) * (1 - x) ** 2
        elif kind == "overfitting":  # best at 25 %, then up 8 %
            v = level + (start - level) * max(0.0, 1 - x / 0.25) ** 2 + level * 0.08 * max(0.0, x - 0.25) / 0.75
        elif kind == "underfitting":
            v = level * 1.004 - level * 0.004 * x
        elif kind == "unstable":
            v = level + (start - level) * (1 - x) ** 2
        else:
            raise ValueError(kind)
        val.append(v)
        if i:
            train.append(level * 1.1 - 0.4 * x)
    if kind == "unstable":
        val[points // 2] = val[points // 2 - 1] * 2.5
    return [
        {
            "step": s,
            "epoch": round(s / STEPS_PER_EPOCH, 4),
            "train_loss": t,
            "val_loss": v,
            "val_loss_mel_ce": v * 0.9,
            "val_loss_text_ce": v * 0.1,
            "lr": 1e-5,
            "grad_norm": None if s == 0 else 0.5,
            "elapsed_s": s * 0.1,
        }
        for s, t, v in zip(steps, train, val)
    ]


def new_study(path: Path, name: str = "demo") -> optuna.Study:
    study = optuna.create_study(study_name=name, storage=f"sqlite:///{path}", direction="minimize")
    config = StudyConfig(study_name=name).to_dict()
    write_study(
        study,
        config=config,
        fingerprint={"dataset": "d" * 64, "split": "s" * 64, "base_model": "b" * 64},
        xtts_tune_version="0.1.0",
    )
    return study


def add_trial(
    study: optuna.Study,
    kind: str,
    level: float,
    params: dict[str, Any] | None = None,
    *,
    state: TrialState = TrialState.COMPLETE,
    store_diagnosis: bool = True,
    points: int = 13,
    share: float = 0.05,
    enqueued: str | None = None,
    probes: dict[str, Any] | None = None,
) -> None:
    """Add one trial the way the study runner stores it."""
    params = params or {
        "freeze_depth": 6,
        "learning_rate": 1e-5,
        "weight_decay": 0.1,
        "augment_prob": 0.3,
    }
    planned = (points - 1) * EVAL_EVERY
    curve = synthetic_curve(kind, level=level, points=points)
    if state == TrialState.PRUNED:
        curve = curve[: max(2, points // 2)]
    record = TrialRecord()
    value = None
    if state in (TrialState.COMPLETE, TrialState.PRUNED):
        d = diagnose(curve, trainable_share=share)
        best = curve[d.best_index]
        value = d.best_val_loss if state == TrialState.COMPLETE else curve[-1]["val_loss"]
        record = TrialRecord(
            curve=curve,
            best_step=best["step"],
            best_epoch=best["epoch"],
            best_val_loss=d.best_val_loss,
            steps=curve[-1]["step"],
            planned_steps=planned,
            stop_reason="completed" if state == TrialState.COMPLETE else "stopped_by_callback",
            trainable_share=share,
            trainable_params=int(share * 1_000_000),
            total_params=1_000_000,
            wall_seconds=12.5,
            checkpoint_path=f"runs/demo/trial-{len(study.trials)}/best_gpt.pth",
            seed=0,
            train_config={**StudyConfig().train.__dict__, **params},
            diagnosis=d.to_dict() if store_diagnosis else None,
            enqueued=enqueued,
            probes=probes,
        )
    elif state == TrialState.RUNNING:
        curve = curve[:3]
    intermediate = {r["step"]: r["val_loss"] for r in curve if state != TrialState.FAIL}
    user_attrs, system_attrs = record.split_attrs()
    trial = optuna.trial.create_trial(
        state=state,
        value=value,
        params=params,
        distributions={k: DISTRIBUTIONS[k] for k in params},
        user_attrs=user_attrs,
        intermediate_values=intermediate,
        system_attrs={**system_attrs, **({"fixed_params": dict(params)} if enqueued else {})},  # Optuna's key
    )
    study.add_trial(trial)


def synthetic_params(rng: random.Random) -> dict[str, Any]:
    return {
        "freeze_depth": rng.randint(0, 12),
        "learning_rate": 10 ** rng.uniform(-6, -3),
        "weight_decay": rng.uniform(0.0, 0.3),
        "augment_prob": rng.uniform(0.0, 0.6),
    }


def synthetic_kind(params: dict[str, Any], rng: random.Random) -> str:
    """Overfitting at high learning rates with few frozen layers, underfitting at tiny ones."""
    lr, depth = params["learning_rate"], params["freeze_depth"]
    if rng.random() < 0.05:
        return "unstable"
    if lr > 1e-4 and depth < 8:
        return "overfitting"
    if lr < 3e-6:
        return "underfitting"
    return "healthy"


def synthetic_study(path: Path, n: int, *, seed: int = 0, name: str = "demo") -> optuna.Study:
    """``n`` trials with mixed verdicts and states (about 15 % pruned, a few failed)."""
    rng = random.Random(seed)
    study = new_study(path, name)
    for i in range(n):
        params = synthetic_params(rng)
        kind = synthetic_kind(params, rng)
        level = 3.0 + 0.15 * abs(math.log10(params["learning_rate"]) + 4.5) + 0.01 * params["freeze_depth"]
        level += rng.uniform(0.0, 0.02)
        state = TrialState.COMPLETE
        if i and i % 7 == 0:
            state = TrialState.PRUNED
        elif i and i % 23 == 0:
            state = TrialState.FAIL
        add_trial(
            study, kind, level, params, state=state, store_diagnosis=i % 3 != 0, enqueued="guide" if i == 0 else None
        )
    return study


# --- tests ------------------------------------------------------------------------------------------


def test_recommendation_never_picks_unstable(tmp_path: Path) -> None:
    study = new_study(tmp_path / "s.db")
    add_trial(study, "unstable", 2.80, {"freeze_depth": 0, "learning_rate": 5e-4})
    add_trial(study, "unstable", 2.70, {"freeze_depth": 1, "learning_rate": 9e-4})
    add_trial(study, "healthy", 3.20, {"freeze_depth": 6, "learning_rate": 2e-5})
    add_trial(study, "healthy", 3.40, {"freeze_depth": 8, "learning_rate": 5e-6})
    values = {t.number: t.value for t in study.trials}
    assert min(values, key=values.get) == 1  # the unstable one has the lowest loss

    rec = recommend(study)

    assert rec.trial_number == 2
    assert rec.verdict == "healthy"
    assert rec.val_loss == pytest.approx(3.20)
    assert rec.stop_step == 120 and rec.stop_epoch == pytest.approx(3.0)
    assert rec.params == {"freeze_depth": 6, "learning_rate": 2e-5}
    assert rec.train_config["learning_rate"] == 2e-5 and rec.train_config["batch_size"] == 8
    text = " ".join(rec.reasons)
    assert "Trial 1 had a lower validation loss (2.7000) but was not chosen because it was unstable." in text
    assert "Trial 0 had a lower validation loss (2.8000) but was not chosen because it was unstable." in text
    assert "It beat the runner-up, trial 3 (healthy, 3.4000), by 0.2000 (5.9%)." in text
    assert "Its verdict is healthy: validation loss improved" in text
    assert "It trains 5.0% of the model's parameters (50,000 of 1,000,000), under the guide's 10%." in text
    assert rec.within_noise == []
    assert not any("confirm" in s for s in rec.next_steps)
    # the study is not in its project's default database: the printed command names it
    assert rec.next_steps[-1] == (
        f"Export it: xtts-tune export --study demo --storage 'sqlite:///{tmp_path}/s.db' --out studies/demo-best.yaml"
    )
    assert rec.to_dict()["trial_number"] == 2


def test_the_export_command_omits_storage_only_for_the_default_database(tmp_path: Path) -> None:
    (tmp_path / "studies").mkdir()
    study = new_study(tmp_path / "studies" / "demo.db")
    study.set_user_attr("project_root", str(tmp_path))
    add_trial(study, "healthy", 3.0)
    assert recommend(study).next_steps[-1] == "Export it: xtts-tune export --study demo --out studies/demo-best.yaml"
    study.set_user_attr("project_root", str(tmp_path / "elsewhere"))
    assert "--storage 'sqlite:///" in recommend(study).next_steps[-1]


def test_recommendation_rediagnoses_when_no_diagnosis_is_stored(tmp_path: Path) -> None:
    study = new_study(tmp_path / "s.db")
    add_trial(study, "overfitting", 2.80, store_diagnosis=False)
    add_trial(study, "healthy", 3.00, store_diagnosis=False)
    verdicts = trial_verdicts(study)
    assert [(v.verdict, v.source) for v in verdicts] == [
        ("overfitting", "recomputed"),
        ("healthy", "recomputed"),
    ]
    assert verdicts[0].overfit_onset_step is not None
    # an overfitting trial competes (its checkpoint is its best step, before the rise: docs/verdicts.md) ...
    rec = recommend(study)
    assert rec.trial_number == 0 and rec.verdict == "overfitting"
    # ... and the recommendation says to stop there with early stopping
    assert any(
        "its validation loss rose after it" in r and "train the final model with early stopping" in r
        for r in rec.reasons
    )


def test_an_overfitting_trial_competes_but_every_trial_overfitting_still_gets_advice(tmp_path: Path) -> None:
    study = new_study(tmp_path / "s.db")
    for i in range(3):
        add_trial(study, "overfitting", 3.0 + i / 10, {"freeze_depth": 2, "learning_rate": 3e-4})
    add_trial(study, "unstable", 2.5, {"freeze_depth": 2, "learning_rate": 9e-4})
    rec = recommend(study)
    assert rec.trial_number == 0 and rec.verdict == "overfitting"
    advice = " ".join(rec.next_steps)
    # what the overfitting map shows: every trial overfit at 3e-4, at the one depth tried (no depth to suggest)
    assert "they overfit at learning rates from 3.0e-04 up: lower the learning-rate range's upper bound" in advice
    assert "freeze more layers" not in advice


def test_no_recommendation_when_every_trial_is_unstable(tmp_path: Path) -> None:
    study = new_study(tmp_path / "s.db")
    for i in range(3):
        add_trial(study, "unstable", 3.0 + i / 10, {"freeze_depth": 2, "learning_rate": 9e-4})
    with pytest.raises(NoRecommendationError) as e:
        recommend(study)
    message = str(e.value)
    assert "none of its 3 completed trials can be recommended" in message
    assert "because every one is unstable or inconclusive (3 unstable)" in message
    assert "lower the learning-rate range's upper bound" in message
    assert isinstance(e.value, ValueError)


def test_no_recommendation_without_completed_trials(tmp_path: Path) -> None:
    study = new_study(tmp_path / "s.db")
    add_trial(study, "healthy", 3.0, state=TrialState.RUNNING)
    add_trial(study, "healthy", 3.0, state=TrialState.FAIL)
    with pytest.raises(NoRecommendationError, match="no completed trial to recommend yet .1 fail, 1 running."):
        recommend(study)
    verdicts = trial_verdicts(study)
    assert [v.verdict for v in verdicts] == ["unknown", "unknown"]
    assert verdicts[0].reasons == ["still running; no learning curve recorded yet"]
    assert verdicts[1].reasons == ["failed before a learning curve was recorded"]


def test_candidates_within_seed_noise_suggest_confirm(tmp_path: Path) -> None:
    study = new_study(tmp_path / "s.db", name="voice")
    add_trial(study, "healthy", 3.000)
    add_trial(study, "healthy", 3.020)  # 0.67 % worse: within 1 %
    add_trial(study, "healthy", 3.200)
    rec = recommend(study)
    assert rec.trial_number == 0
    assert rec.within_noise == [1]
    assert any(
        "Near-tie: 1 candidate is within the 1% seed noise: trial 1 (3.0200, trains 5.0%)" in r for r in rec.reasons
    )
    assert rec.next_steps[0].startswith("Confirm with other seeds: xtts-tune confirm --study voice --top 3 --seeds 3")

    tight = recommend(study, noise=0.005)
    assert tight.within_noise == []
    assert not any("confirm" in s for s in tight.next_steps)
    with pytest.raises(ValueError, match="noise"):
        recommend(study, noise=-0.1)


def test_a_near_tie_goes_to_the_trial_that_trains_fewer_parameters(tmp_path: Path) -> None:
    study = new_study(tmp_path / "s.db", name="voice")
    add_trial(study, "healthy", 3.000, share=0.30)
    add_trial(study, "healthy", 3.020, share=0.05)  # within 1 %, a sixth of the trainable parameters
    add_trial(study, "healthy", 3.200, share=0.01)  # far worse: fewer parameters do not matter
    rec = recommend(study)
    assert rec.trial_number == 1 and rec.within_noise == [0]
    assert rec.reasons[0].startswith(
        "Trial 1 (validation loss 3.0200) is within the 1% seed noise of the lowest, "
        "trial 0 (3.0000), and trains fewer of the model's parameters (5.0% against 30.0%)"
    )
    assert rec.next_steps[0].startswith("Confirm with other seeds")
    from xtts_tune.analysis.ranking.order import rank, why_passed_over

    ranking = rank(study)
    assert ranking.winner.number == 1 and ranking.runner_up.number == 0 and ranking.order() == [1, 0, 2]
    assert "trains more of the model (30.0% against 5.0%)" in why_passed_over(ranking.passed_over[0], ranking.winner)


def test_most_trials_overfit_gives_search_space_advice(tmp_path: Path) -> None:
    study = new_study(tmp_path / "s.db")
    for i in range(3):
        add_trial(study, "overfitting", 2.9 + i / 10, {"freeze_depth": i, "learning_rate": 4e-4})
    add_trial(study, "healthy", 3.3, {"freeze_depth": 10, "learning_rate": 1e-5})
    rec = recommend(study)
    assert rec.trial_number == 0  # the lowest loss: an overfitting trial competes
    advice = [s for s in rec.next_steps if " overfit" in s and not s.startswith("Export")]
    assert advice == [
        "3 of 4 finished trials (75%) overfit: they overfit at learning rates from 4.0e-04 up: lower the "
        "learning-rate range's upper bound to about 4e-04 (now 1e-03) or freeze more layers: none of the 1 trials "
        "with freeze_depth ≥ 10 overfit (raise the freeze_depth low bound to 10)."
    ]


def test_the_advice_counts_every_finished_trial_and_follows_the_map(tmp_path: Path) -> None:
    # the study: 5 overfit, 4 under-trained among 12: 42%, under the advice's majority trigger
    study = new_study(tmp_path / "s.db")
    for i in range(5):
        add_trial(study, "overfitting", 2.9 + i / 100, {"freeze_depth": i % 3, "learning_rate": 8e-4})
    for i in range(3):
        add_trial(study, "healthy", 3.0 + i / 100, {"freeze_depth": 1, "learning_rate": 2e-4})
    verdicts = trial_verdicts(study)
    from xtts_tune.analysis.ranking import advice

    assert advice.trend_advice(verdicts, study.trials)[0].startswith("5 of 8 finished trials (62%) overfit")
    for v in verdicts[5:]:
        v.verdict = "under-trained"
    for i in range(4):
        verdicts.append(dataclasses.replace(verdicts[5], number=100 + i))
    assert advice.trend_advice(verdicts, study.trials) == []  # 5 of 12


def test_most_trials_underfit_gives_search_space_advice(tmp_path: Path) -> None:
    study = new_study(tmp_path / "s.db")
    for i in range(3):
        add_trial(study, "underfitting", 3.3 + i / 10, {"freeze_depth": 11, "learning_rate": 2e-6})
    add_trial(study, "healthy", 3.2, {"freeze_depth": 4, "learning_rate": 5e-5})
    rec = recommend(study)
    advice = [s for s in rec.next_steps if "underfit" in s and not s.startswith("Export")]
    assert len(advice) == 1
    assert "raise the learning-rate range (now 1e-06–1e-03; try 1e-05–1e-02)" in advice[0]
    assert "unfreeze more layers (lower freeze_depth high bound from 12 to about 6)" in advice[0]


def test_importances_rates_and_compute_on_a_synthetic_study(tmp_path: Path) -> None:
    study = synthetic_study(tmp_path / "s.db", 40)

    importances = parameter_importances(study)
    assert set(importances) == {"freeze_depth", "learning_rate", "weight_decay", "augment_prob"}
    assert sum(importances.values()) == pytest.approx(1.0)
    assert max(importances, key=importances.get) == "learning_rate"
    assert parameter_importances(study) == importances  # deterministic
    stats = analyze(study).importances
    assert stats.values == importances and stats.trials >= 10 and stats.method.startswith("PED-ANOVA")

    rates = overfitting_rates(study)
    verdicts = {v.number: v for v in trial_verdicts(study)}
    finished = [
        t
        for t in study.trials
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED) and verdicts[t.number].verdict != "inconclusive"
    ]
    assert sum(r.trials for r in rates.by_freeze_depth.values()) == len(finished)
    assert sum(r.trials for r in rates.by_learning_rate.values()) == len(finished)
    for depth, rate in rates.by_freeze_depth.items():
        expected = [t for t in finished if t.params["freeze_depth"] == depth]
        overfit = [t for t in expected if verdicts[t.number].verdict == "overfitting"]
        assert (rate.trials, rate.overfitting) == (len(expected), len(overfit))
    assert list(rates.by_learning_rate) == sorted(rates.by_learning_rate, key=lambda label: float(label.split("–")[0]))
    # the generator overfits only above 1e-4 with fewer than 8 frozen layers
    assert rates.by_learning_rate["1e-4–1e-3"].overfitting > 0
    assert all(r.overfitting == 0 for k, r in rates.by_learning_rate.items() if k != "1e-4–1e-3")
    assert all(r.overfitting == 0 for k, r in rates.by_freeze_depth.items() if k >= 8)
    assert rates.to_dict()["by_learning_rate"]["1e-4–1e-3"]["rate"] == rates.by_learning_rate["1e-4–1e-3"].rate

    compute = compute_saved(study)
    finished = [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    pruned = [t for t in finished if t.state == TrialState.PRUNED]
    assert compute.trials == len(finished)
    assert compute.planned_steps == 120 * len(finished)
    assert compute.steps == 120 * (len(finished) - len(pruned)) + 50 * len(pruned)
    assert compute.saved_fraction == pytest.approx(70 * len(pruned) / compute.planned_steps)
    assert compute.to_dict()["saved_steps"] == 70 * len(pruned)

    analysis = analyze(study)
    assert analysis.recommendation is not None
    assert analysis.recommendation.verdict not in ("unstable", "inconclusive")
    assert sum(analysis.verdict_counts().values()) == len(finished)
    assert analysis.recommendation.trial_number != 0
    assert any(
        r.startswith("It beat trial 0, the guide's recommended configuration (")
        for r in analysis.recommendation.reasons
    )


def test_importances_need_ten_complete_trials_and_a_varied_knob(tmp_path: Path) -> None:
    study = new_study(tmp_path / "s.db")
    for i in range(9):
        add_trial(study, "healthy", 3.0 + i / 100, {"freeze_depth": i % 3, "learning_rate": 1e-5 * (i + 1)})
    stats = analyze(study).importances
    assert stats.values == {} and stats.trials == 9
    assert stats.note == "too few trials to rank the knobs: 9 complete, importances need at least 10"
    add_trial(study, "healthy", 3.2, {"freeze_depth": 1, "learning_rate": 1e-4})
    assert set(analyze(study).importances.values) == {"freeze_depth", "learning_rate"}
    same = new_study(tmp_path / "same.db")
    for i in range(10):
        add_trial(same, "healthy", 3.0 + i / 100)  # the same params every time
    assert analyze(same).importances.note == "no searched knob varied between the complete trials"


def test_learning_rate_bands() -> None:
    assert learning_rate_band(3e-5) == "1e-5–1e-4"
    assert learning_rate_band(1e-4) == "1e-4–1e-3"
    assert learning_rate_band(9.99e-7) == "1e-7–1e-6"


def test_thresholds_come_from_the_study_config(tmp_path: Path) -> None:
    study = new_study(tmp_path / "s.db")
    add_trial(study, "overfitting", 3.0, store_diagnosis=False)
    assert trial_verdicts(study)[0].verdict == "overfitting"
    config = dict(StudyRecord.from_study(study).config)
    config["diagnosis"] = {"overfit_rise_rel": 0.5}  # an 8 % rise is now within tolerance
    write_study(study, config=config)
    assert trial_verdicts(study)[0].verdict == "healthy"
