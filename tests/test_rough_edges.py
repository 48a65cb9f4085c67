"""The rough edges of a real-size run (issue 22, part 5): each one as a user meets it."""

from __future__ import annotations

from pathlib import Path

from tests.test_analysis import add_trial, new_study
from xtts_tune.analysis.recommend import recommend
from xtts_tune.io import human_bytes


def test_human_bytes_says_binary_units():
    assert human_bytes(1536) == "1.5 KiB"
    assert human_bytes(12 * 2**30) == "12.0 GiB"
    assert human_bytes(512) == "512 B"


def test_an_inconclusive_trial_is_not_called_overfitting_or_unstable(tmp_path: Path):
    study = new_study(tmp_path / "s.db")
    add_trial(study, "healthy", 3.00)
    add_trial(study, "healthy", 2.80, points=2, store_diagnosis=False)  # two evaluations: inconclusive
    add_trial(study, "healthy", 3.10)
    rec = recommend(study)
    assert rec.trial_number == 0
    assert "completed trials that were not inconclusive (out of 3 completed)" in rec.reasons[0], rec.reasons
    assert not any("overfit" in r or "unstable" in r for r in rec.reasons), rec.reasons
