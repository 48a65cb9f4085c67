"""The rough edges of a real-size run (issue 22, part 5): each one as a user meets it."""

from __future__ import annotations

from pathlib import Path

import pytest

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
        "Exception raised from SingleStreamDecoder at /__w/torchcodec/torchcodec/src/SingleStreamDecoder.cpp:95")
    assert plain_reason(torchcodec) == "Could not open input file: /data/a.wav Invalid data found when processing input"
    assert plain_reason(OSError("")) == "OSError"
    wrapped = ValueError("bad header (/usr/lib/python3/site-packages/soundfile.py:1234)")
    assert plain_reason(wrapped) == "bad header"
