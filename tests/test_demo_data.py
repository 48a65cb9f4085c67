"""Tests for the espeak-ng demo datasets (xtts_tune.data.demo)."""

from __future__ import annotations

import dataclasses
import shutil
import wave
from pathlib import Path

import numpy as np
import pytest

from xtts_tune.data import demo as demo_data
from xtts_tune.data.demo import (
    ALLOWED_CHARACTERS,
    BASE_COUNT,
    BASE_VOICE,
    SAMPLE_RATE,
    TARGET_COUNT,
    TARGET_VOICE,
    DemoDataError,
    VoiceSpec,
    ensure_demo_target,
    generate_dataset,
    generate_demo_data,
    is_dataset_complete,
    load_demo_sentences,
    split_demo_sentences,
)
from xtts_tune.errors import UserError

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")

SENTENCES = [
    "The kettle is boiling in the kitchen.",
    "Please hand me that blue towel.",
    "The sky looks dark and stormy.",
    "My cat likes to sit in boxes.",
    "We walked to school in the rain.",
    "The shop closes at six tonight.",
    "He drinks his coffee without sugar.",
]


def read_metadata(folder: Path) -> list[list[str]]:
    return [line.split("|") for line in (folder / "metadata.csv").read_text(encoding="utf-8").splitlines()]


def wav_info(path: Path) -> tuple[int, int, int, float]:
    with wave.open(str(path), "rb") as w:
        return w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes() / w.getframerate()


# ---------------------------------------------------------------- shipped sentences (no espeak-ng needed)


def test_shipped_sentences_are_many_distinct_and_plain():
    sentences = load_demo_sentences()
    assert len(sentences) >= 620
    assert len({s.lower() for s in sentences}) == len(sentences), "sentences must be distinct"
    for s in sentences:
        bad = set(s) - ALLOWED_CHARACTERS
        assert not bad, f"{s!r} uses characters outside the tokenizer's set: {sorted(bad)}"
        assert 5 <= len(s.split()) <= 14, f"{s!r} should have 5 to 14 words"
        assert s == s.strip() and "  " not in s
        assert s[-1] in ".?!"


def test_base_and_target_selections_are_disjoint():
    base, target = split_demo_sentences()
    assert len(base) == BASE_COUNT
    assert len(target) >= TARGET_COUNT
    assert not set(base) & set(target)
    assert base + target == load_demo_sentences()


def test_voices_differ():
    assert BASE_VOICE != TARGET_VOICE
    assert BASE_VOICE.voice != TARGET_VOICE.voice
    assert BASE_VOICE.pitch != TARGET_VOICE.pitch and BASE_VOICE.speed != TARGET_VOICE.speed


def test_missing_espeak_raises_with_install_hint(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(DemoDataError, match=r"sudo apt-get install -y espeak-ng"):
        generate_dataset(tmp_path / "ds", SENTENCES, TARGET_VOICE, prefix="t", count=2)
    assert not (tmp_path / "ds").exists()


def test_missing_espeak_is_a_user_error():
    assert issubclass(DemoDataError, UserError)  # the CLI prints it as one error: line


def test_complete_dataset_is_skipped_without_espeak(tmp_path, monkeypatch):
    ds = tmp_path / "ds"
    (ds / "wavs").mkdir(parents=True)
    (ds / "metadata.csv").write_text("t_0001|Hello there friend.|Hello there friend.\n", encoding="utf-8")
    (ds / "wavs" / "t_0001.wav").write_bytes(b"\0" * 100)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))  # would fail if it tried to generate
    seen = []
    out = generate_dataset(ds, SENTENCES, TARGET_VOICE, prefix="t", count=1, progress=lambda d, t: seen.append((d, t)))
    assert out == ds
    assert seen == [(1, 1)]


def test_incomplete_folders_are_not_complete(tmp_path):
    ds = tmp_path / "ds"
    assert not is_dataset_complete(ds)
    (ds / "wavs").mkdir(parents=True)
    assert not is_dataset_complete(ds)  # no metadata
    (ds / "metadata.csv").write_text("a|x|x\nb|y|y\n", encoding="utf-8")
    (ds / "wavs" / "a.wav").write_bytes(b"\0" * 100)
    assert not is_dataset_complete(ds)  # b.wav missing
    (ds / "wavs" / "b.wav").write_bytes(b"\0" * 100)
    assert is_dataset_complete(ds)
    assert not is_dataset_complete(ds, count=3)
    # a complete-looking folder under the .partial name is never the dataset
    partial = tmp_path / "ds2.partial"
    shutil.copytree(ds, partial)
    assert not is_dataset_complete(partial)
    assert not is_dataset_complete(tmp_path / "ds2")


def test_refuses_to_replace_foreign_folder(tmp_path):
    ds = tmp_path / "ds"
    ds.mkdir()
    (ds / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(DemoDataError, match="not a complete demo dataset"):
        generate_dataset(ds, SENTENCES, TARGET_VOICE, prefix="t", count=2)
    assert (ds / "notes.txt").exists()


def test_wav_conversion_to_mono_16bit_22050(tmp_path):
    path = tmp_path / "x.wav"
    rate = 16000
    t = np.arange(rate // 2) / rate
    tone = (np.sin(2 * np.pi * 220 * t) * 100 + 128).astype(np.uint8)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(1)
        w.setframerate(rate)
        w.writeframes(np.stack([tone, tone], axis=1).tobytes())
    seconds = demo_data._normalize_wav(path)
    channels, width, sr, dur = wav_info(path)
    assert (channels, width, sr) == (1, 2, SAMPLE_RATE)
    assert abs(dur - 0.5) < 1e-3 and abs(seconds - dur) < 1e-9


# ---------------------------------------------------------------- real synthesis


@needs_espeak
def test_generate_small_dataset(tmp_path):
    calls = []
    out = generate_dataset(
        tmp_path / "target",
        SENTENCES,
        TARGET_VOICE,
        prefix="target",
        count=5,
        min_seconds=2.0,
        max_seconds=5.0,
        progress=lambda d, t: calls.append((d, t)),
    )
    assert out == tmp_path / "target"
    assert not (tmp_path / "target.partial").exists()
    rows = read_metadata(out)
    assert [r[0] for r in rows] == [f"target_{i:04d}" for i in range(1, 6)]
    for clip_id, text, norm in rows:
        assert text == norm and text in SENTENCES
        channels, width, sr, dur = wav_info(out / "wavs" / f"{clip_id}.wav")
        assert (channels, width, sr) == (1, 2, 22050)
        assert 2.0 <= dur <= 5.0
    assert sorted(p.name for p in (out / "wavs").iterdir()) == [f"target_{i:04d}.wav" for i in range(1, 6)]
    assert calls == [(i, 5) for i in range(1, 6)]
    assert is_dataset_complete(out, 5)


@needs_espeak
def test_generation_is_byte_identical(tmp_path):
    a = generate_dataset(tmp_path / "a", SENTENCES, BASE_VOICE, prefix="base", count=3)
    b = generate_dataset(tmp_path / "b", SENTENCES, BASE_VOICE, prefix="base", count=3)
    assert (a / "metadata.csv").read_bytes() == (b / "metadata.csv").read_bytes()
    for name in ("base_0001.wav", "base_0002.wav", "base_0003.wav"):
        assert (a / "wavs" / name).read_bytes() == (b / "wavs" / name).read_bytes()


@needs_espeak
def test_clips_outside_range_are_skipped_in_order(tmp_path):
    sentences = ["Yes it is.", *SENTENCES[:3], "This sentence is certainly much too long to fit inside a tiny window."]
    out = generate_dataset(
        tmp_path / "ds", sentences, TARGET_VOICE, prefix="t", count=3, min_seconds=1.5, max_seconds=4.0
    )
    assert [r[1] for r in read_metadata(out)] == SENTENCES[:3]
    with pytest.raises(DemoDataError, match="only 3 of 5 sentences"):
        generate_dataset(
            tmp_path / "ds2", sentences, TARGET_VOICE, prefix="t", count=4, min_seconds=1.5, max_seconds=4.0
        )
    assert not (tmp_path / "ds2").exists() and not (tmp_path / "ds2.partial").exists()


@needs_espeak
def test_interrupted_generation_is_redone(tmp_path):
    # an interrupted run leaves only the .partial folder, even one whose content looks complete
    first = generate_dataset(tmp_path / "first", SENTENCES, TARGET_VOICE, prefix="t", count=2)
    partial = tmp_path / "ds.partial"
    shutil.copytree(first, partial)
    (partial / "wavs" / "t_0002.wav").unlink()
    (partial / "wavs" / "stale.wav").write_bytes(b"junk")
    assert not is_dataset_complete(tmp_path / "ds")
    out = generate_dataset(tmp_path / "ds", SENTENCES, TARGET_VOICE, prefix="t", count=2)
    assert not partial.exists()
    assert is_dataset_complete(out, 2)
    assert sorted(p.name for p in (out / "wavs").iterdir()) == ["t_0001.wav", "t_0002.wav"]
    # an incomplete dataset of ours in the final place is regenerated too
    (out / "wavs" / "t_0001.wav").unlink()
    generate_dataset(out, SENTENCES, TARGET_VOICE, prefix="t", count=2)
    assert (out / "wavs" / "t_0001.wav").read_bytes() == (first / "wavs" / "t_0001.wav").read_bytes()


@needs_espeak
def test_ensure_demo_target_writes_into_path(tmp_path, monkeypatch):
    # a smaller target keeps this fast; the real corpus uses the same code path
    monkeypatch.setattr(demo_data, "TARGET_COUNT", 4)
    monkeypatch.setitem(demo_data._KINDS, "target", (demo_data._generate_target, 4))
    path = tmp_path / "data" / "demo-target"
    assert ensure_demo_target(path) == path
    rows = read_metadata(path)
    assert len(rows) == 4 and all(r[0].startswith("target_") for r in rows)
    base, _ = split_demo_sentences()
    assert not {r[1] for r in rows} & set(base)
    assert not (path / "target").exists()
    before = (path / "metadata.csv").stat().st_mtime_ns
    ensure_demo_target(path)  # complete: untouched
    assert (path / "metadata.csv").stat().st_mtime_ns == before


@needs_espeak
def test_generate_demo_data_which_and_progress(tmp_path, monkeypatch):
    monkeypatch.setattr(demo_data, "TARGET_COUNT", 3)
    monkeypatch.setitem(demo_data._KINDS, "target", (demo_data._generate_target, 3))
    calls = []
    result = generate_demo_data(tmp_path, which=("target",), progress=lambda d, t: calls.append((d, t)))
    assert result == {"target": tmp_path / "target"}
    assert calls[-1] == (3, 3)
    assert not (tmp_path / "base").exists()
    with pytest.raises(ValueError):
        generate_demo_data(tmp_path, which=("nope",))


def test_voice_spec_is_frozen():
    v = VoiceSpec(name="x", voice="en-us", speed=150, pitch=50)
    with pytest.raises(dataclasses.FrozenInstanceError):
        v.speed = 10  # type: ignore[misc]
