"""The tiny base's decoder: a narrow coqui HifiDecoder embedded into the full-size one computes the same
waveform, and a base folder with it loads and speaks through coqui's own Xtts.load_checkpoint/inference."""

from __future__ import annotations

import json
import shutil
import subprocess
from importlib import resources
from pathlib import Path

import pytest
import torch

from xtts_tune.training.tiny_decoder import DecoderSpec, embed_into_full, narrow_decoder


def test_narrow_decoder_embedded_into_full_size_gives_the_same_waveform():
    from TTS.tts.layers.xtts.hifigan_decoder import HifiDecoder

    torch.manual_seed(0)
    spec = DecoderSpec(channels=32)
    narrow = narrow_decoder(spec, 128, 512)
    for p in narrow.waveform_decoder.parameters():  # not the init's near-zero output: a real signal to compare
        p.data.normal_(0, 0.3)
    full = HifiDecoder(output_sample_rate=spec.output_sample_rate, decoder_input_dim=128, d_vector_dim=512)
    embed_into_full(narrow, full)
    latents, g = torch.randn(1, 3, 128), torch.nn.functional.normalize(torch.randn(1, 512, 1), dim=1)
    with torch.inference_mode():
        a, b = narrow(latents, g=g), full(latents, g=g)
    assert a.shape == b.shape and a.abs().max() > 0.01
    assert torch.allclose(a, b, atol=1e-4), float((a - b).abs().max())


@pytest.mark.slow
def test_base_with_decoder_loads_and_speaks_through_coqui(tmp_path):
    from xtts_tune.model.speak import synthesize
    from xtts_tune.training.tiny_decoder import load_tiny_xtts, write_decoder_into_base

    base = Path(str(resources.files("xtts_tune").joinpath("assets", "tiny_base")))
    folder = shutil.copytree(base, tmp_path / "base")
    gpt_before = {k: v for k, v in torch.load(folder / "model.pth", weights_only=True)["model"].items()}
    xtts, *_ = load_tiny_xtts(folder, 0, 16000)
    write_decoder_into_base(folder, xtts.hifigan_decoder, 16000, {"repetition_penalty": 1.3})
    after = torch.load(folder / "model.pth", weights_only=True)["model"]
    assert all(torch.equal(after[k], v) for k, v in gpt_before.items())  # the GPT is unchanged
    assert json.loads((folder / "config.json").read_text())["repetition_penalty"] == 1.3
    subprocess.run(["espeak-ng", "-w", str(tmp_path / "ref.wav"), "a reference voice of a few seconds"], check=True)
    result = synthesize(folder, "hello there.", tmp_path / "ref.wav", tmp_path / "out.wav", max_seconds=0.5)
    assert result.sample_rate == 16000 and 0 < result.seconds <= 0.6
