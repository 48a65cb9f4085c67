"""Reading audio without FFmpeg: soundfile reads wav/flac/ogg/mp3, torch resamples, FFmpeg is only a fallback.

The GPU machines lent for benchmarks have no FFmpeg, so torchcodec (torchaudio.load since torch 2.9, and coqui's
loader) cannot read one clip there. The trial below runs in a process where importing torchcodec's decoders
fails exactly as it does without FFmpeg's libraries, on the real 48 kHz FLAC clips in corpora/.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
import yaml

from xtts_tune.data.audio import AudioReadError, describe_rates, read_audio

ROOT = Path(__file__).resolve().parents[1]
KATHLEEN = ROOT / "corpora" / "real-voice-kathleen"

NO_FFMPEG = r"""
import sys
sys.modules["torchcodec.decoders"] = None  # torchcodec is installed but cannot load FFmpeg's libraries
sys.modules["torchcodec._core"] = None
import torchaudio
try:
    torchaudio.load(sys.argv[1])
except Exception as exc:
    print(f"torchaudio.load fails: {type(exc).__name__}", flush=True)
else:
    sys.exit("torchaudio.load still works: the test would prove nothing")
from xtts_tune.cli import main
sys.exit(main(sys.argv[2:]))
"""


def test_soundfile_reads_what_coqui_read_and_resamples_like_it():
    from TTS.tts.models.xtts import load_audio  # coqui's own loader (torchcodec), where FFmpeg exists

    flac = KATHLEEN / "wavs" / "arctic_a0001.flac"
    wav, rate = read_audio(flac, 22050)
    assert rate == 48000
    assert torch.equal(wav, load_audio(str(flac), 22050))


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg", "mp3"])
def test_each_common_format_is_read_by_soundfile(tmp_path, monkeypatch, fmt):
    import xtts_tune.data.audio as audio

    monkeypatch.setattr(audio, "_ffmpeg", lambda path: (_ for _ in ()).throw(RuntimeError("no FFmpeg")))
    tone = 0.3 * np.sin(2 * np.pi * 220 * np.arange(16000) / 16000).astype("float32")
    path = tmp_path / f"tone.{fmt}"
    soundfile.write(path, np.stack([tone, tone], axis=1), 16000)  # stereo at 16 kHz
    wav, rate = read_audio(path, 22050)
    assert rate == 16000 and wav.shape[0] == 1 and abs(wav.shape[1] - 22050) < 1200  # mp3 pads its frames
    assert float(wav.abs().max()) == pytest.approx(0.3, abs=0.05)


def test_a_file_neither_reader_can_read_is_one_line_without_internals(tmp_path, monkeypatch):
    import xtts_tune.data.audio as audio

    def no_ffmpeg(path):
        raise RuntimeError("Could not load libtorchcodec. Likely causes: FFmpeg is not properly installed\nmore")

    monkeypatch.setattr(audio, "_ffmpeg", no_ffmpeg)
    bad = tmp_path / "clip.m4a"
    bad.write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(200))
    with pytest.raises(AudioReadError) as err:
        read_audio(bad, 22050)
    line = str(err.value)
    assert "\n" not in line and line.startswith(f"{bad}: cannot read this audio")
    assert "FFmpeg is not properly installed" in line and "convert it to wav or flac" in line


def test_rates_are_stated_once():
    assert describe_rates({48000: 100}, 22050) == "clips: 48000 Hz (100), resampled to 22050 Hz"
    assert describe_rates({22050: 3, 16000: 5}, 22050) == "clips: 16000 Hz (5), 22050 Hz (3), resampled to 22050 Hz"
    assert describe_rates({22050: 7}, 22050) == "clips: 22050 Hz (7)"


@pytest.mark.slow
def test_a_trial_runs_on_the_real_flac_clips_without_ffmpeg(tmp_path):
    doc = yaml.safe_load((ROOT / "studies" / "kathleen.yaml").read_text())
    doc["data"].update(path=str(KATHLEEN), val_count=4, test_count=4, train_count=4)
    doc["output_dir"] = str(tmp_path / "runs")
    doc["train"].update(max_steps=1, eval_every=1, max_epochs=1, augment_prob=0.0)
    config = tmp_path / "kathleen.yaml"
    config.write_text(yaml.safe_dump(doc))
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            NO_FFMPEG,
            str(KATHLEEN / "wavs" / "arctic_a0001.flac"),
            "trial",
            "--config",
            str(config),
            "--run-dir",
            str(tmp_path / "trial"),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
    )
    assert out.returncode == 0, (out.stdout[-2000:], out.stderr[-3000:])
    assert "torchaudio.load fails" in out.stdout
    assert out.stdout.count("clips: 48000 Hz (100), resampled to 22050 Hz") == 1  # stated once
    assert (tmp_path / "trial" / "best_gpt.pth").is_file()
