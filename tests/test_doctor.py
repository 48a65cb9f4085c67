"""The dataset doctor (issue 30) on real clips of the CC0 speaker with injected faults: each fault is flagged
with its reason and figures, the clean clips are not, a second run is read from the cache, and
``check-data --write-exclude`` writes a ``data.exclude`` file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from benchmarks.doctor import inject_faults, source_clips
from xtts_tune.config import DataConfig
from xtts_tune.data.clips import Clip, load_clips
from xtts_tune.data.exclude import excluded_ids
from xtts_tune.doctor.checks import ClipLimits, find_outliers
from xtts_tune.doctor.run import examine

FAULTS = ("swapped transcript", "silence added", "clipping", "duplicate")


@pytest.fixture(scope="module")
def faulty(tmp_path_factory):
    """10 clean clips of the real speaker and one clip of each fault (ids ``<fault>-<source>``)."""
    folder = tmp_path_factory.mktemp("doctor") / "set"
    truth = inject_faults(source_clips("kathleen"), folder, clean=10, per_fault=1, faults=FAULTS)
    return folder, truth


def by_fault(truth: dict, fault: str) -> str:
    return next(c for c, t in truth.items() if t == fault)


def test_audio_faults_are_flagged_with_figures_and_a_second_run_is_cached(faulty, tmp_path):
    folder, truth = faulty
    clips = load_clips(DataConfig(path=str(folder)), Path("."))
    report = examine(clips, asr=False, cache_dir=tmp_path / "cache")
    reasons = {f.clip: {r.check: str(r) for r in f.reasons} for f in report.findings}
    assert set(reasons) == {by_fault(truth, f) for f in ("silence added", "clipping", "duplicate")}
    assert reasons[by_fault(truth, "silence added")]["trailing silence"].startswith("trailing silence 3.")
    assert "> 1 s" in reasons[by_fault(truth, "silence added")]["trailing silence"]
    assert "clipping" in reasons[by_fault(truth, "clipping")]
    duplicate = by_fault(truth, "duplicate")
    assert reasons[duplicate]["duplicate audio"] == f"duplicate audio: same as {duplicate.removeprefix('duplicate-')}"
    assert report.asr_note == "n/a: the transcript check was turned off"
    assert report.cached == 1  # the duplicate: the cache is keyed by the audio's content
    again = examine(clips, asr=False, cache_dir=tmp_path / "cache")
    assert again.cached == len(clips) and again.seconds < report.seconds
    assert [f.clip for f in again.findings] == [f.clip for f in report.findings]


def test_thresholds_follow_the_dataset_not_a_fixed_bar():
    # a home recording with 1.5 s of silence before every clip: nobody is flagged for it; one with 6 s is
    clips = [Clip(f"c{i}", f"c{i}.wav", f"Hello there, my friend number {i}.", "en", "m.csv", i) for i in range(20)]
    measures = {
        c.id: {
            "audio": {
                "seconds": 4.0,
                "clipped": 0.0,
                "lead": 1.5 + 0.01 * i,
                "trail": 0.1,
                "inner": 0.2,
                "voiced": 1.4,
            },
            "embedding": [1.0, 0.0],
            "hash": c.id,
        }
        for i, c in enumerate(clips)
    }
    assert find_outliers(clips, measures, ClipLimits())[0] == []
    measures["c3"]["audio"]["lead"] = 6.0
    findings, thresholds = find_outliers(clips, measures, ClipLimits())
    assert [f.clip for f in findings] == ["c3"] and 1.5 < thresholds["leading silence"] < 6.0
    assert str(findings[0].reasons[0]) == f"leading silence 6 s > {thresholds['leading silence']:.3g} s"


@pytest.mark.slow
def test_check_data_flags_a_swapped_transcript_and_writes_the_exclude_file(faulty, tmp_path):
    folder, truth = faulty
    config = tmp_path / "check.yaml"
    config.write_text(
        yaml.safe_dump({"study_name": "check", "output_dir": str(tmp_path / "runs"), "data": {"path": str(folder)}})
    )
    out = tmp_path / "flagged.txt"
    run = subprocess.run(
        [sys.executable, "-m", "xtts_tune.cli", "check-data", "--config", str(config), "--write-exclude", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert "4 of 14 clips flagged" in run.stdout  # the ASR heard every clip (no "n/a")
    swapped = by_fault(truth, "swapped transcript")
    (row,) = [line for line in run.stdout.splitlines() if f". {swapped} (" in line]
    assert "ASR CER" in row and "heard" in row
    assert excluded_ids(DataConfig(exclude=str(out)), tmp_path) == {c for c, t in truth.items() if t != "clean"}
    assert (tmp_path / "runs" / "check" / "cache" / "doctor" / "report.json").is_file()
    # what a search of this study then says about its data (before: how to check it)
    from xtts_tune.config import load_config
    from xtts_tune.doctor.run import data_check_line

    line = data_check_line(load_config(config))
    assert line.startswith("data: check-data flagged 4 of 14 clips") and "report.json" in line, line
    (tmp_path / "runs" / "check" / "cache" / "doctor" / "report.json").unlink()
    assert "not checked yet; `xtts-tune check-data --config" in data_check_line(load_config(config))
