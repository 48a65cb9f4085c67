"""The verdicts agree with a person's reading of real curves (tests/data/labelled_curves/, see extract.py there).

Each file is one study's curves: the study-level verdicts (under-trained compares a trial with the study's best)
are computed over all of a file's curves, as :func:`xtts_tune.analysis.ranking.verdicts.verdicts_of` does for a study.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import optuna
import pytest

from xtts_tune.analysis.curve.thresholds import DiagnosisThresholds
from xtts_tune.analysis.ranking.verdicts import TrialVerdict, verdicts_of
from xtts_tune.record import TrialRecord

HERE = Path(__file__).parent / "data" / "labelled_curves"
FILES = sorted(HERE.glob("*.json"))

EXPECTED = {
    # label: (study-level verdict, still_improving, rising_at_end); None: either
    "overfitting": ("overfitting", None, None),
    "healthy": ("healthy", False, False),
    "still-improving": ("healthy", True, False),
    "rising-at-end": ("healthy", None, True),
    "under-trained": ("under-trained", None, None),
    "underfitting": ("underfitting", None, None),
}


def _trial(number: int, entry: dict) -> optuna.trial.FrozenTrial:
    curve = entry["curve"]
    user_attrs, system_attrs = TrialRecord(curve=curve).split_attrs()
    trial = optuna.trial.create_trial(
        value=min(r["val_loss"] for r in curve),
        params={},
        distributions={},
        user_attrs=user_attrs,
        system_attrs=system_attrs,
    )
    trial.number = number
    return trial


@cache
def study_verdicts(path: Path) -> dict[str, TrialVerdict]:
    entries = json.loads(path.read_text())["curves"]
    verdicts = verdicts_of([_trial(i, e) for i, e in enumerate(entries)], DiagnosisThresholds())
    return {e["id"]: v for e, v in zip(entries, verdicts)}


def _cases():
    for path in FILES:
        for entry in json.loads(path.read_text())["curves"]:
            yield pytest.param(path, entry, id=entry["id"])


def agrees(label: str, v: TrialVerdict) -> bool:
    verdict, improving, rising = EXPECTED[label]
    return (
        v.verdict == verdict
        and (improving is None or v.still_improving == improving)
        and (rising is None or v.rising_at_end == rising)
    )


@pytest.mark.parametrize("path, entry", list(_cases()))
def test_verdict_agrees_with_the_label(path: Path, entry: dict) -> None:
    v = study_verdicts(path)[entry["id"]]
    assert agrees(entry["label"], v), (entry["label"], entry["reason"], v.verdict, v.reasons)


def test_the_set_covers_every_label_on_real_curves() -> None:
    labels = [e["label"] for p in FILES for e in json.loads(p.read_text())["curves"]]
    for label in ("overfitting", "healthy", "under-trained", "still-improving"):
        assert labels.count(label) >= 2, (label, labels.count(label))
    assert labels.count("rising-at-end") >= 1
    kathleen = [e["label"] for e in json.loads((HERE / "kathleen.json").read_text())["curves"]]
    assert {"overfitting", "healthy", "under-trained", "still-improving"} <= set(kathleen)  # the real speaker
    assert all(e.get("reason") for p in FILES for e in json.loads(p.read_text())["curves"])
