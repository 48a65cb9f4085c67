"""One verdict everywhere: the study-level verdict reaches the dashboard notes (issue 20, part 4)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import optuna
from optuna_dashboard import get_note

from xtts_tune.analysis.curve.diagnosis import diagnose
from xtts_tune.analysis.curve.thresholds import DiagnosisThresholds
from xtts_tune.analysis.ranking.verdicts import trial_verdicts
from xtts_tune.record import StudyRecord
from xtts_tune.search.verdict_sync import sync_verdicts, verdict_at_end


def _trial(number: int, val: list[float], verdict: str | None = None) -> optuna.trial.FrozenTrial:
    curve = [
        {"step": 6 * i, "epoch": float(i), "train_loss": None if i == 0 else v - 0.1, "val_loss": v}
        for i, v in enumerate(val)
    ]
    attrs = {
        "curve": curve,
        "diagnosis": diagnose(curve).to_dict(),
        "best_val_loss": min(val),
        "best_step": 6 * val.index(min(val)),
        "steps": 6 * (len(val) - 1),
        "planned_steps": 6 * (len(val) - 1),
        "trainable_params": 10,
        "total_params": 100,
        "trainable_share": 0.1,
    }
    if verdict:
        attrs["verdict"] = verdict
    trial = optuna.trial.create_trial(value=min(val), params={}, distributions={}, user_attrs=attrs)
    trial.number = number
    return trial


# SLOW: kathleen trial 0 (the guide's recipe) as recorded; FAST: a curve that falls fast and levels off
SLOW = [
    7.175,
    7.145,
    7.117,
    7.088,
    7.059,
    7.031,
    7.003,
    6.975,
    6.946,
    6.917,
    6.887,
    6.857,
    6.827,
    6.797,
    6.766,
    6.737,
    6.707,
]
FAST = [7.175, 3.654, 3.711, 3.489, 3.475, 3.496, 3.461, 3.437, 3.423, 3.420, 3.418, 3.417, 3.417]


def test_a_trial_healthy_when_it_ended_is_under_trained_everywhere_at_the_end(tmp_path: Path) -> None:
    study = optuna.create_study(study_name="s", storage=f"sqlite:///{tmp_path}/s.db")
    first = _trial(0, SLOW)
    # alone, the guide's recipe is the best the study has seen: healthy when it ends
    assert verdict_at_end([], first, DiagnosisThresholds()) == "healthy"
    first.user_attrs["verdict"] = "healthy"
    study.add_trial(first)
    second = _trial(1, FAST)
    assert verdict_at_end(study.trials, second, DiagnosisThresholds()) == "healthy"
    second.user_attrs["verdict"] = "healthy"
    study.add_trial(second)

    changed = sync_verdicts(study)
    assert changed == {0: "under-trained"}
    assert [v.verdict for v in trial_verdicts(study)] == ["under-trained", "healthy"]
    assert StudyRecord.from_study(study).verdicts == {"0": "under-trained", "1": "healthy"}
    trial = study.trials[0]
    note = get_note(SimpleNamespace(storage=study._storage, study=study, _trial_id=trial._trial_id))
    assert "**Verdict: under-trained**" in note
    assert "its own curve alone said healthy" in note
