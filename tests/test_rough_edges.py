"""The rough edges of a real-size run (issue 22, part 5): each one as a user meets it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.test_analysis import add_trial, new_study
from xtts_tune.analysis.ranking.recommend import recommend
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


def test_speak_checks_the_speaker_wav_before_loading_the_model(tmp_path, monkeypatch):
    import xtts_tune.model.speak as speak
    from xtts_tune.model.base import embedded_base_path
    from xtts_tune.model.speak import SpeakError, synthesize

    def never(*a, **kw):
        raise AssertionError("the model was loaded before the speaker wav was checked")

    monkeypatch.setattr(speak, "load_voice_model", never)
    garbage = tmp_path / "voice.wav"
    garbage.write_bytes(b"RIFF this is not audio" + bytes(64))
    with pytest.raises(SpeakError) as err:
        synthesize(embedded_base_path(), "Hello.", garbage, tmp_path / "o.wav", device="cpu")
    line = str(err.value)
    assert line.startswith(f"{garbage}: cannot be used as a speaker wav (") and "\n" not in line
    for internal in ("/__w/", ".cpp", "site-packages", "Exception raised from"):  # FFmpeg's fallback said it too
        assert internal not in line, line


def test_library_internals_never_reach_a_message():
    from xtts_tune.errors import plain_reason

    torchcodec = RuntimeError(
        "Could not open input file: /data/a.wav Invalid data found when processing input "
        "/__w/torchcodec/torchcodec/pytorch/torchcodec/src/torchcodec/_core/SingleStreamDecoder.cpp:95\n"
        "Exception raised from SingleStreamDecoder at /__w/torchcodec/torchcodec/src/SingleStreamDecoder.cpp:95"
    )
    assert plain_reason(torchcodec) == "Could not open input file: /data/a.wav Invalid data found when processing input"
    assert plain_reason(OSError("")) == "OSError"
    wrapped = ValueError("bad header (/usr/lib/python3/site-packages/soundfile.py:1234)")
    assert plain_reason(wrapped) == "bad header"


@pytest.mark.slow
def test_train_reuses_the_studys_caches_and_warns_once_about_speakers(demo_target, tmp_path, caplog):
    import logging
    import shutil

    import yaml

    from tests.conftest import demo_subset
    from xtts_tune.config import load_config
    from xtts_tune.model.base import embedded_base_path
    from xtts_tune.training.final import run_final_training
    from xtts_tune.training.loop import run_trial

    data = demo_subset(demo_target, tmp_path / "data", 12)
    base = tmp_path / "base"  # a base folder of the released layout, but without speakers_xtts.pth
    shutil.copytree(embedded_base_path(), base)
    assert not (base / "speakers_xtts.pth").exists()
    doc = {
        "study_name": "demo",
        "base_model": str(base),
        "output_dir": str(tmp_path / "runs"),
        "data": {"path": str(data), "val_count": 4},
        "train": {"max_steps": 1, "eval_every": 1},
    }
    study_yaml = tmp_path / "study.yaml"
    study_yaml.write_text(yaml.safe_dump(doc))
    run_trial(load_config(study_yaml))  # the study: its split and feature cache in runs/demo
    study_cache = tmp_path / "runs" / "demo" / "cache"
    before = {p.name: p.stat().st_mtime_ns for p in study_cache.iterdir()}
    doc.update(study_name="demo-final")
    doc["data"]["split_file"] = str(tmp_path / "runs" / "demo" / "split.json")
    final_yaml = tmp_path / "best.yaml"
    final_yaml.write_text(yaml.safe_dump(doc))
    with caplog.at_level(logging.WARNING):
        final = run_final_training(final_yaml)
    warned = [r.getMessage() for r in caplog.records if "speakers_xtts.pth" in r.getMessage()]
    assert len(warned) == 1 and warned[0].startswith(f"{base / 'speakers_xtts.pth'}: not found"), warned
    assert not (tmp_path / "runs" / "demo-final" / "cache").exists()  # nothing rebuilt in its own folder
    assert {p.name: p.stat().st_mtime_ns for p in study_cache.iterdir()} == before  # every clip was a hit
    assert final.model_dir is not None and not (final.model_dir / "speakers_xtts.pth").exists()


def test_a_trials_peak_memory_is_its_own_not_an_earlier_one(demo_target, tmp_path, fresh_base, make_config):
    import mmap

    from tests.conftest import demo_subset
    from xtts_tune.model.base import peak_memory_bytes
    from xtts_tune.training.loop import run_trial

    # 1 GiB of fresh pages touched, then returned to the system: an earlier trial's peak in this process. (An
    # anonymous mapping, not a numpy array: in a long test process the allocator may hand an array pages that
    # are already resident, and the peak would not move.)
    spike = mmap.mmap(-1, 2**30)
    for offset in range(0, 2**30, mmap.PAGESIZE):
        spike[offset] = 1
    process_peak = peak_memory_bytes(torch.device("cpu"))
    spike.close()
    data = demo_subset(demo_target, tmp_path / "d", 12)
    result = run_trial(make_config(data, tmp_path / "run", max_steps=1, eval_every=1), base=fresh_base)
    assert 0 < result.peak_memory_bytes < process_peak - 2**29, (result.peak_memory_bytes, process_peak)
