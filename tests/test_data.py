import json
import shutil
import wave
from pathlib import Path

import numpy as np
import pytest

from xtts_tune.config import DataConfig
from xtts_tune.data.clips import DataError, DataValidationError, load_clips
from xtts_tune.data.split import load_or_create_split, make_split
from xtts_tune.training.loop import run_trial


def _write_wav(path: Path, samples: np.ndarray, rate: int = 22050) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())


@pytest.fixture
def broken_dataset(demo_target, tmp_path) -> Path:
    """Twelve good demo clips plus one of each of the five problems the issue names."""
    folder = tmp_path / "broken"
    (folder / "wavs").mkdir(parents=True)
    lines = (demo_target / "metadata.csv").read_text().splitlines()[:12]
    for line in lines:
        cid = line.split("|")[0]
        shutil.copy(demo_target / "wavs" / f"{cid}.wav", folder / "wavs" / f"{cid}.wav")
    rng = np.random.default_rng(0)
    (folder / "wavs" / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk" + bytes(100))
    _write_wav(folder / "wavs" / "toolong.wav", 0.1 * rng.standard_normal(22050 * 13))
    _write_wav(folder / "wavs" / "empty.wav", 0.1 * rng.standard_normal(22050 * 2))
    _write_wav(folder / "wavs" / "unencodable.wav", 0.1 * rng.standard_normal(22050 * 2))
    lines += [
        "missing|A clip whose wav is gone.|A clip whose wav is gone.",
        "corrupt|A corrupt file.|A corrupt file.",
        "toolong|A very long clip.|A very long clip.",
        "empty|| ",
        "unencodable|Caf\u00e9 \u4f60\u597d.|Caf\u00e9 \u4f60\u597d.",
    ]
    (folder / "metadata.csv").write_text("\n".join(lines) + "\n")
    return folder


def test_all_five_problems_are_reported_together_and_nothing_trains(broken_dataset, tmp_path, make_config):
    cfg = make_config(broken_dataset, tmp_path / "run")
    with pytest.raises(DataValidationError) as err:
        run_trial(cfg)
    problems = {p.clip: p for p in err.value.problems}
    assert set(problems) == {"missing", "corrupt", "toolong", "empty", "unencodable"}
    meta = str(broken_dataset / "metadata.csv")
    assert problems["missing"].where == f"{meta}:13" and "missing audio file" in problems["missing"].message
    assert "corrupt" in problems["corrupt"].message
    assert "too long" in problems["toolong"].message
    assert "empty transcript" in problems["empty"].message
    assert "cannot encode" in problems["unencodable"].message and "'\u4f60'" in problems["unencodable"].message
    text = str(err.value)
    assert all(f"{meta}:{n}" in text for n in range(13, 18))
    assert not (tmp_path / "run").exists() or not list((tmp_path / "run").rglob("*.pth"))


def test_loads_through_coquis_formatters(demo_target, tmp_path):
    clips = load_clips(DataConfig(path=str(demo_target)), Path("."))
    assert len(clips) == 150 and clips[0].line == 1 and clips[0].text
    # the same data in coqui's CSV format
    folder = tmp_path / "coqui"
    shutil.copytree(demo_target / "wavs", folder / "wavs")
    rows = ["audio_file|text|speaker_name"] + [f"wavs/{c.id}.wav|{c.text}|demo" for c in clips]
    (folder / "metadata.csv").write_text("\n".join(rows) + "\n")
    coqui = load_clips(DataConfig(path=str(folder), formatter="coqui"), Path("."))
    assert [(c.id, c.text) for c in coqui] == [(c.id, c.text) for c in clips]
    assert coqui[0].line == 2


def test_malformed_metadata_line_is_named(tmp_path):
    (tmp_path / "wavs").mkdir()
    (tmp_path / "metadata.csv").write_text("a|b|c\nonly-one-column\n")
    with pytest.raises(DataError, match=r"metadata.csv:2: expected 3 columns"):
        load_clips(DataConfig(path=str(tmp_path)), Path("."))
    with pytest.raises(DataError, match="metadata file not found"):
        load_clips(DataConfig(path=str(tmp_path / "nope")), Path("."))


def test_split_is_deterministic_and_saved_for_later_trials(tmp_path):
    ids = [f"c{i:03d}" for i in range(100)]
    cfg = DataConfig(val_fraction=0.2, split_seed=3)
    a, b = make_split(ids, cfg), make_split(list(reversed(ids)), cfg)
    assert a == b and len(a.val) == 20 and not set(a.val) & set(a.train)
    assert make_split(ids, DataConfig(val_count=7)).val.__len__() == 7
    assert make_split(ids, DataConfig(val_fraction=0.2, split_seed=4)).val != a.val
    path = tmp_path / "split.json"
    saved = load_or_create_split(ids, cfg, path)
    assert json.loads(path.read_text())["val"] == saved.val
    # a later trial with another seed in its config still gets the saved split
    assert load_or_create_split(ids, DataConfig(split_seed=99), path) == saved
    with pytest.raises(DataError, match="not in the dataset any more"):
        load_or_create_split(ids[:50], cfg, path)


def test_train_count_trains_on_a_subset_with_the_same_validation_clips():
    ids = [f"c{i:03d}" for i in range(100)]
    full = make_split(ids, DataConfig(val_count=30, split_seed=3))
    small = make_split(ids, DataConfig(val_count=30, train_count=8, split_seed=3))
    assert small.val == full.val and len(small.train) == 8 and set(small.train) <= set(full.train)
    assert small == make_split(list(reversed(ids)), DataConfig(val_count=30, train_count=8, split_seed=3))
    for at_least_all in (70, 71):  # a cap: asking for more than the split leaves trains on all of them
        assert make_split(ids, DataConfig(val_count=30, train_count=at_least_all, split_seed=3)) == full
