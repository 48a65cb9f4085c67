from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest

from xtts_tune.analysis.curve.diagnosis import Diagnosis, diagnose
from xtts_tune.analysis.curve.thresholds import DiagnosisThresholds


def _curve(
    val: list[float | None],
    train: list[float | None] | None = None,
    steps: list[int] | None = None,
) -> list[dict]:
    steps = steps if steps is not None else list(range(len(val)))
    train = train if train is not None else [None] * len(val)
    return [{"step": s, "train_loss": t, "val_loss": v} for s, t, v in zip(steps, train, val)]


# The guide's worked examples: one evaluation per epoch, epoch used as the step.
BAD = _curve([3.412, 3.427, 3.607], [3.50, 3.30, 3.10])
GOOD = _curve([3.412, 3.350, 3.380], [3.50, 3.30, 3.10])


def test_guide_bad_configuration_is_overfitting() -> None:
    d = diagnose(BAD)
    assert d.verdict == "overfitting"
    assert d.best_step == 0
    assert d.best_index == 0
    assert d.best_val_loss == pytest.approx(3.412)
    # the rise is sustained: both evaluations after the minimum are above it by more than the noise
    assert d.overfit_onset_step == 1
    assert d.metrics["risen_evals"] == 2
    assert d.reasons[0].startswith("validation loss rose after its best at step 0 (3.412) and stayed up: its last 2")
    assert "the train-loss trend over the same window fell 11.4%" in d.reasons[0]
    assert not d.rising_at_end


def test_guide_good_configuration_is_healthy() -> None:
    d = diagnose(GOOD)
    assert d.verdict == "healthy"
    assert d.best_step == 1
    assert d.best_val_loss == pytest.approx(3.350)
    assert d.overfit_onset_step is None
    assert d.metrics["max_val_rise_rel"] == pytest.approx(0.03 / 3.350)
    assert d.reasons[0].startswith("validation loss improved 1.8% to 3.350 at step 1")
    # the guide's "+0.030 → early stop" is one evaluation: a flag with advice, not a verdict
    assert d.rising_at_end and d.reasons[1].startswith("rising at the end (1 evaluation): validation loss rose 0.9%")
    assert d.warnings == []


def test_healthy_still_improving() -> None:
    d = diagnose(_curve([3.0, 2.8, 2.6, 2.5], [None, 2.9, 2.7, 2.6], steps=[0, 200, 400, 600]))
    assert d.verdict == "healthy"
    assert d.best_step == 600
    assert "last evaluation" in d.reasons[0]
    assert d.metrics["val_slope_after_best"] is None


def test_overfitting() -> None:
    d = diagnose(_curve([3.0, 2.5, 2.6, 2.9], [3.1, 2.6, 2.3, 2.0], steps=[0, 500, 1000, 1500]))
    assert d.verdict == "overfitting"
    assert d.best_step == 500
    assert d.overfit_onset_step == 1000


def test_overfitting_without_train_loss_at_best() -> None:
    # Rising validation loss alone is enough when no train loss exists at the best point.
    d = diagnose(_curve([3.0, 3.2, 3.4], [None, 3.0, 2.9]))
    assert d.verdict == "overfitting"
    assert d.metrics["train_drop_after_best_rel"] is None


def test_rising_val_with_rising_train_is_not_overfitting() -> None:
    d = diagnose(_curve([3.0, 3.2, 3.4], [3.0, 3.1, 3.2]))
    assert d.verdict == "underfitting"


def test_underfitting() -> None:
    d = diagnose(_curve([3.412, 3.405, 3.398], [3.5, 3.45, 3.44]))
    assert d.verdict == "underfitting"
    assert d.reasons[0] == ("validation loss improved only 0.4% overall (3.412 → 3.398); the model is barely learning")


def test_unstable_nan() -> None:
    curve = _curve([3.0, 2.8, 2.7, 2.6], [None, 2.9, float("nan"), 2.5], steps=[0, 10, 20, 30])
    d = diagnose(curve)
    assert d.verdict == "unstable"
    assert d.reasons == ["train loss is nan at step 20"]


def test_missing_train_loss_after_first_record_is_unstable() -> None:
    d = diagnose(_curve([3.0, 2.8, 2.7], [3.1, 2.9, None]))
    assert d.verdict == "unstable"
    assert d.reasons == ["train loss is nan at step 2"]
    assert d.metrics["gap_at_end"] is None


def test_unstable_inf() -> None:
    d = diagnose(_curve([3.0, 2.8, float("inf"), 2.6], [3.1, 2.9, 2.8, 2.7]))
    assert d.verdict == "unstable"
    assert d.reasons == ["validation loss is inf at step 2"]
    assert d.best_step == 3


def test_unstable_spike() -> None:
    d = diagnose(_curve([3.0, 2.9, 4.5, 2.8], [3.1, 3.0, 2.9, 2.8], steps=[0, 100, 200, 300]))
    assert d.verdict == "unstable"
    assert d.reasons == ["validation loss spiked from 2.900 to 4.500 (×1.55) at step 200"]


def test_train_spike_and_nan_first_train_loss_ignored() -> None:
    d = diagnose(_curve([3.0, 2.9, 2.8], [float("nan"), 2.0, 3.5]))
    assert d.verdict == "unstable"
    assert d.reasons == ["train loss spiked from 2.000 to 3.500 (×1.75) at step 2"]


def test_missing_first_train_loss_is_fine() -> None:
    curve = [{"step": 0, "val_loss": 3.0}, {"step": 1, "train_loss": 2.9, "val_loss": 2.8}]
    assert diagnose(curve).verdict == "healthy"


def test_best_step_is_first_minimum() -> None:
    curve = _curve([3.0, 2.5, 2.6, 2.5, 2.55], [3.0, 2.9, 2.8, 2.7, 2.6], steps=[0, 5, 10, 15, 20])
    d = diagnose(curve)
    assert d.best_index == 1
    assert d.best_step == 5


def test_metrics() -> None:
    d = diagnose(_curve([3.0, 2.7, 2.75, 2.8], [None, 3.0, 2.8, 2.6], steps=[0, 100, 200, 300]))
    m = d.metrics
    assert set(m) == {
        "val_rise_abs",
        "val_rise_rel",
        "max_val_rise_abs",
        "max_val_rise_rel",
        "gap_at_best",
        "gap_at_end",
        "val_improvement_rel",
        "val_slope_after_best",
        "train_drop_after_best_rel",
        "train_trend_after_best_rel",
        "noise",
        "risen_evals",
        "end_drop_rel",
        "end_pace",
        "n_points",
    }
    assert m["val_rise_abs"] == pytest.approx(0.1)
    assert m["val_rise_rel"] == pytest.approx(0.1 / 2.7)
    assert m["max_val_rise_abs"] == pytest.approx(0.1)
    assert m["max_val_rise_rel"] == pytest.approx(0.1 / 2.7)
    assert m["gap_at_best"] == pytest.approx(-0.3)
    assert m["gap_at_end"] == pytest.approx(0.2)
    assert m["val_improvement_rel"] == pytest.approx(0.1)
    assert m["val_slope_after_best"] == pytest.approx(0.5)
    assert m["train_drop_after_best_rel"] == pytest.approx(0.4 / 3.0)
    assert m["n_points"] == 4
    assert m["train_trend_after_best_rel"] == pytest.approx(-0.4 / 3.0)
    assert m["noise"] == pytest.approx(0.001 * 2.7)  # no reversal but the minimum: the floor
    assert m["risen_evals"] == 2
    assert d.verdict == "overfitting"
    # both evaluations after the minimum rose above it: the rise started at step 200
    assert d.overfit_onset_step == 200


def test_thresholds_change_verdicts() -> None:
    # A looser tolerance clears the overfitting; the bad curve then never improved.
    loose = DiagnosisThresholds(overfit_rise_rel=0.10)
    assert diagnose(BAD, thresholds=loose).verdict == "underfitting"
    loose = DiagnosisThresholds(overfit_rise_rel=0.10, underfit_improvement_rel=0.0)
    assert diagnose(BAD, thresholds=loose).verdict == "healthy"
    for thresholds in (
        DiagnosisThresholds(overfit_rise_abs=0.5),
        DiagnosisThresholds(train_falling_rel=0.2),  # train fell only 11.4 %
    ):
        assert diagnose(BAD, thresholds=thresholds).verdict == "underfitting"

    strict = DiagnosisThresholds(overfit_min_evals=1)  # one evaluation above the minimum is enough
    d = diagnose(GOOD, thresholds=strict)
    assert d.verdict == "overfitting"
    assert d.overfit_onset_step == 2
    assert diagnose(BAD, thresholds=DiagnosisThresholds(overfit_min_evals=3)).verdict == "underfitting"
    noisy = DiagnosisThresholds(noise_floor_rel=0.005)  # the noise floor 0.017 hides the first +0.015
    assert diagnose(BAD, thresholds=noisy).rising_at_end
    slow = DiagnosisThresholds(underfit_improvement_rel=0.05)
    assert diagnose(GOOD, thresholds=slow).verdict == "underfitting"

    spiky = _curve([3.0, 2.9, 4.5, 2.8], [3.1, 3.0, 2.9, 2.8])
    assert diagnose(spiky, thresholds=DiagnosisThresholds(spike_factor=2.0)).verdict != "unstable"


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"overfit_rise_rel": -0.1}, "overfit_rise_rel"),
        ({"overfit_rise_abs": -1.0}, "overfit_rise_abs"),
        ({"train_falling_rel": float("nan")}, "train_falling_rel"),
        ({"underfit_improvement_rel": -0.01}, "underfit_improvement_rel"),
        ({"spike_factor": 1.0}, "spike_factor"),
        ({"max_trainable_share": 1.5}, "max_trainable_share"),
    ],
)
def test_invalid_thresholds(kwargs: dict, field: str) -> None:
    thresholds = DiagnosisThresholds(**kwargs)
    with pytest.raises(ValueError, match=field):
        thresholds.validate()
    with pytest.raises(ValueError, match=field):
        diagnose(GOOD, thresholds=thresholds)


def test_thresholds_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        DiagnosisThresholds().spike_factor = 3.0  # type: ignore[misc]


def test_trainable_share_warning() -> None:
    d = diagnose(GOOD, trainable_share=0.235)
    message = "trains 23.5% of parameters; the guide recommends under 10%"
    assert d.verdict == "healthy"
    assert d.warnings == [message]
    assert d.reasons[-1] == message
    assert len(d.reasons) == 3  # the verdict, the rise at its end, the warning

    assert diagnose(GOOD, trainable_share=0.05).warnings == []
    with pytest.raises(ValueError, match="trainable_share"):
        diagnose(GOOD, trainable_share=1.5)


def test_json_list_file(tmp_path: Path) -> None:
    path = tmp_path / "curve.json"
    path.write_text(json.dumps(BAD))
    assert diagnose(path).verdict == "overfitting"
    assert diagnose(str(path)).verdict == "overfitting"


def test_json_object_file(tmp_path: Path) -> None:
    path = tmp_path / "curve.json"
    path.write_text(json.dumps({"curve": GOOD, "trainable_share": 0.2}))
    d = diagnose(path)
    assert d.verdict == "healthy"
    assert d.warnings == ["trains 20.0% of parameters; the guide recommends under 10%"]
    # The argument takes precedence over the file.
    assert diagnose(path, trainable_share=0.01).warnings == []
    assert diagnose({"curve": GOOD}).warnings == []


def test_file_errors(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(FileNotFoundError, match="nope.json"):
        diagnose(missing)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json"):
        diagnose(bad)
    no_key = tmp_path / "no_key.json"
    no_key.write_text(json.dumps({"points": GOOD}))
    with pytest.raises(ValueError, match='"curve"'):
        diagnose(no_key)


@pytest.mark.parametrize(
    "curve, match",
    [
        ([], "at least 2 evaluations, got 0"),
        (GOOD[:1], "at least 2 evaluations, got 1"),
        (
            [GOOD[0], GOOD[1], {"step": 2, "train_loss": 3.1}],
            "record 2 is missing the key 'val_loss'",
        ),
        ([GOOD[0], {"step": 1, "val_loss": 3.3}], "record 1 is missing the key 'train_loss'"),
        ([{"train_loss": 3.0, "val_loss": 3.0}, GOOD[1]], "record 0 is missing the key 'step'"),
        ([GOOD[1], GOOD[0]], "steps must increase"),
        ([GOOD[0], {"step": 1.5, "train_loss": 3.0, "val_loss": 3.0}], "'step' must be an integer"),
        (
            [GOOD[0], {"step": 1, "train_loss": 3.0, "val_loss": "3.0"}],
            "'val_loss' must be a number",
        ),
        ([GOOD[0], "oops"], "record 1 must be a dict"),
        (42, "must be a list of evaluation records"),
    ],
)
def test_bad_input(curve: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        diagnose(curve)  # type: ignore[arg-type]


def test_to_dict_is_json_serialisable() -> None:
    d = diagnose(_curve([3.0, 2.8, float("nan")], [3.1, 2.9, 2.8]))
    assert d.verdict == "unstable"
    assert math.isnan(d.metrics["val_rise_abs"])
    data = d.to_dict()
    text = json.dumps(data, allow_nan=False)
    assert json.loads(text) == data
    assert data["metrics"]["val_rise_abs"] is None
    assert data["best_step"] == 1
    assert data["overfit_onset_step"] is None

    good = diagnose(GOOD).to_dict()
    json.dumps(good, allow_nan=False)
    assert set(good) == {f.name for f in dataclasses.fields(Diagnosis)}
    assert good["verdict"] == "healthy"
    assert good["best_val_loss"] == pytest.approx(3.350)
