import json
import shutil
import wave
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import demo_subset
from xtts_tune.config import DataConfig
from xtts_tune.data.clips import DataError, DataValidationError, load_clips
from xtts_tune.data.split import load_or_create_split, make_split
from xtts_tune.errors import ConfigError
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


def test_validation_is_capped_at_the_users_size_and_the_clips_over_it_train():
    ids = [f"c{i:04d}" for i in range(3000)]
    capped = make_split(ids, DataConfig())  # 15 % would be 450 validation clips
    assert (len(capped.train), len(capped.val), len(capped.test)) == (2500, 200, 300)
    assert len(make_split(ids, DataConfig(val_max=0)).val) == 450  # 0: no cap
    assert len(make_split(ids, DataConfig(val_count=400)).val) == 400  # an explicit count wins
    assert len(make_split(ids[:1132], DataConfig()).val) == 170  # the real hour is under the cap
    with pytest.raises(ConfigError, match="data.val_max must be >= 0"):
        DataConfig(val_max=-1).validate("study.yaml")


def test_train_count_trains_on_a_subset_with_the_same_validation_clips():
    ids = [f"c{i:03d}" for i in range(100)]
    full = make_split(ids, DataConfig(val_count=30, split_seed=3))
    small = make_split(ids, DataConfig(val_count=30, train_count=8, split_seed=3))
    assert small.val == full.val and len(small.train) == 8 and set(small.train) <= set(full.train)
    assert small == make_split(list(reversed(ids)), DataConfig(val_count=30, train_count=8, split_seed=3))
    for at_least_all in (70, 71):  # a cap: asking for more than the split leaves trains on all of them
        assert make_split(ids, DataConfig(val_count=30, train_count=at_least_all, split_seed=3)) == full


def test_duplicate_ids_and_a_non_utf8_file_are_one_line_naming_them(demo_target, tmp_path):
    folder = demo_subset(demo_target, tmp_path / "d", 8)
    meta = folder / "metadata.csv"
    lines = meta.read_text().splitlines()
    lines[5] = lines[3]
    meta.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as err:
        load_clips(DataConfig(path=str(folder)), Path("."))
    assert str(err.value) == f"{meta}: clip ids are not unique: target_0004 (lines 4, 6); give each clip its own id"
    lines[5] = lines[5].replace("target_0004", "target_0006").replace("e", "\u00e9", 1)
    meta.write_bytes(("\n".join(lines) + "\n").encode("cp1252"))
    with pytest.raises(DataError) as err:
        load_clips(DataConfig(path=str(folder)), Path("."))
    column = lines[5].index("\u00e9") + 1
    assert str(err.value) == (
        f"{meta}:6: not UTF-8 (byte 0xe9 at byte {column} of the line); it looks like latin-1/cp1252: convert it "
        "with iconv -f cp1252 -t utf-8 metadata.csv > metadata.utf8.csv and use that file"
    )


def test_a_missing_wavs_folder_and_an_unknown_language_are_one_line(demo_target, tmp_path, tiny_base):
    from xtts_tune.data.clips import validate_clips

    folder = demo_subset(demo_target, tmp_path / "d", 4)
    shutil.rmtree(folder / "wavs")
    with pytest.raises(DataError) as err:
        load_clips(DataConfig(path=str(folder)), Path("."))
    assert str(err.value).startswith(f"{folder / 'wavs'}: audio folder not found")
    clips = load_clips(DataConfig(path=str(demo_target), language="xx"), Path("."))
    with pytest.raises(DataError) as err:
        validate_clips(
            clips,
            tiny_base.tokenizer,
            sample_rate=22050,
            max_wav_length=10**6,
            max_text_tokens=200,
            min_seconds=0.5,
            silence_rms=1e-4,
            dataset=demo_target,
        )
    assert str(err.value).startswith("data.language 'xx' cannot be used with this base model's tokenizer")
    assert "\n" not in str(err.value)


def _missing_wavs_error(demo_target, folder: Path, tiny_base, clips: int, missing: int):
    """Validate a demo subset of ``clips`` clips whose first ``missing`` wavs are deleted; the folder and the
    error it raises."""
    from xtts_tune.data.clips import validate_clips

    folder = demo_subset(demo_target, folder, clips)
    for wav in sorted((folder / "wavs").iterdir())[:missing]:
        wav.unlink()
    loaded = load_clips(DataConfig(path=str(folder)), Path("."))
    with pytest.raises(DataValidationError) as err:
        validate_clips(
            loaded,
            tiny_base.tokenizer,
            sample_rate=22050,
            max_wav_length=10**6,
            max_text_tokens=200,
            min_seconds=0.5,
            silence_rms=1e-4,
            dataset=folder,
        )
    return folder, err


def test_problems_of_one_kind_are_grouped(demo_target, tmp_path, tiny_base):
    folder, err = _missing_wavs_error(demo_target, tmp_path / "d", tiny_base, 12, 10)
    lines = str(err.value).splitlines()
    assert len(err.value.problems) == 10 and len(lines) == 2
    meta = folder / "metadata.csv"
    assert lines[1] == "  - 10 clips: audio file missing: " + ", ".join(
        f"target_{i:04d} ({meta}:{i})" for i in range(1, 11)
    )  # every clip named, up to 10
    assert err.value.problems_file is None  # the line is complete: no file


def test_more_than_ten_clips_of_one_kind_are_listed_in_a_file(demo_target, tmp_path, tiny_base):
    folder, err = _missing_wavs_error(demo_target, tmp_path / "d", tiny_base, 14, 13)
    lines = str(err.value).splitlines()
    listed = err.value.problems_file
    assert f"(all 13: {listed})" in lines[0]
    assert lines[1].startswith("  - 13 clips: audio file missing: target_0001 (") and lines[1].endswith(
        f"target_0010 ({folder / 'metadata.csv'}:10) and 3 more"
    )
    assert listed.read_text().splitlines() == [str(p) for p in err.value.problems]
    assert "target_0013" in listed.read_text()


def test_a_tiny_dataset_warns_with_the_split_sizes(demo_target, tmp_path, tiny_base, make_config, caplog):
    from xtts_tune.training.prepare import prepare_data

    folder = demo_subset(demo_target, tmp_path / "d", 3)
    cfg = make_config(folder, tmp_path / "run")
    cfg.data.val_count = 1
    cfg.data.test_fraction = 0  # 3 clips cannot hold a test part as well (that is refused with one line)
    with caplog.at_level("WARNING", logger="xtts_tune.training.prepare"):
        data = prepare_data(cfg, tiny_base)
    assert (len(data.split.train), len(data.split.val)) == (2, 1)
    (record,) = [r for r in caplog.records if "tiny dataset" in r.getMessage()]
    assert record.levelname == "WARNING" and "3 clips, 2 for training and 1 for validation" in record.getMessage()


def test_a_missing_split_file_is_refused_not_replaced(demo_target, tmp_path, make_config):
    cfg = make_config(demo_target, tmp_path / "run")
    cfg.data.split_file = str(tmp_path / "gone" / "split.json")
    with pytest.raises(DataError, match=r"gone/split\.json: data\.split_file not found"):
        run_trial(cfg)
    assert not (tmp_path / "gone").exists()


def test_the_dataset_fingerprint_sees_re_processed_audio_of_the_same_size(demo_target, tmp_path):
    import os

    from xtts_tune.data.content import AudioHashes, dataset_fingerprint

    folder = demo_subset(demo_target, tmp_path / "d", 4)
    clips = load_clips(DataConfig(path=str(folder)), Path("."))
    cache = tmp_path / "cache" / "audio-sha256.json"
    before = dataset_fingerprint(clips, AudioHashes(cache))
    wav = Path(clips[0].audio_file)
    data = bytearray(wav.read_bytes())
    data[2000:2100] = bytes(100)
    wav.write_bytes(bytes(data))  # same size, other samples
    assert dataset_fingerprint(clips, AudioHashes(cache)) != before
    hashes = AudioHashes(cache)
    dataset_fingerprint(clips, hashes)
    hashes.save()
    os.utime(wav, ns=(1, 1))  # an unchanged cache entry is read back, a stale one recomputed
    assert AudioHashes(cache).cached(wav) is None and AudioHashes(cache).cached(Path(clips[1].audio_file))
