"""The real-size benchmark: the real XTTS v2 GPT shape, freezing at real depths, and the measured step."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest
import torch

from benchmarks.realsize.bench import main, real_size_figures
from benchmarks.realsize.model import (
    ARCH_FILE,
    VOCAB_FILE,
    ArchitectureError,
    accumulate,
    apply_update,
    build_real_size_trainer,
    micro_batch,
    read_architecture,
    real_size_config,
    synthetic_clip,
)
from benchmarks.realsize.step import measure
from benchmarks.realsize.table import format_table, prefix_cache_rows
from xtts_tune.config import ModelConfig, TrainConfig
from xtts_tune.data.features import silence_frame
from xtts_tune.model.freezing import apply_freezing, count_parameters
from xtts_tune.training.result import optimizer_for

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
needs_shared = pytest.mark.skipif(
    not (SHARED / "xtts_vocab.json").is_file(), reason=f"{SHARED} (the workplace's XTTS reference data) is not present"
)

DIM = 1024
BLOCK_PARAMS = 12 * DIM * DIM + 13 * DIM  # a GPT-2 block: qkv, proj, 4x MLP (weights + biases), 2 layer norms


@pytest.fixture(scope="module")
def real_trainer():
    """The 30-layer GPTTrainer, built once for this module (about 15 s on 2 cores)."""
    return build_real_size_trainer()


@pytest.fixture(scope="module")
def real_args():
    return real_size_config(read_architecture(), vocab_path=VOCAB_FILE).model_args


# --- shape ------------------------------------------------------------------------------------------------


def test_built_gpt_has_the_released_xtts_v2_shape(real_trainer):
    gpt = real_trainer.xtts.gpt
    assert len(gpt.gpt.h) == 30
    assert gpt.gpt.config.n_embd == 1024 and gpt.model_dim == 1024
    assert gpt.gpt.config.n_head == 16 and gpt.heads == 16
    assert tuple(gpt.text_embedding.weight.shape) == (6681, 1024)
    assert gpt.text_head.out_features == 6681
    assert tuple(gpt.mel_embedding.weight.shape) == (1026, 1024)
    assert gpt.mel_head.out_features == 1026
    assert gpt.use_perceiver_resampler and gpt.conditioning_perceiver is not None
    assert (gpt.start_audio_token, gpt.stop_audio_token) == (1024, 1025)
    assert real_trainer.xtts.hifigan_decoder is None


def test_packaged_architecture_is_the_released_one():
    arch = read_architecture(ARCH_FILE)
    assert (arch.model_args["gpt_layers"], arch.model_args["gpt_n_model_channels"], arch.model_args["gpt_n_heads"]) == (
        30,
        1024,
        16,
    )
    assert arch.model_args["gpt_number_text_tokens"] == 6681 and arch.model_args["gpt_use_perceiver_resampler"]
    if (SHARED / "xtts_v2_model_args.json").is_file():
        assert json.loads(ARCH_FILE.read_text()) == json.loads((SHARED / "xtts_v2_model_args.json").read_text())


@needs_shared
def test_real_vocabulary_gives_the_released_text_tokens():
    # a 2-layer build is enough: [START]/[STOP] come from the vocabulary, the embedding size from the file
    gpt = build_real_size_trainer(vocab_path=SHARED / "xtts_vocab.json", layers=2).xtts.gpt
    assert (gpt.start_text_token, gpt.stop_text_token) == (261, 0)
    assert tuple(gpt.text_embedding.weight.shape) == (6681, 1024)


def test_synthetic_clip_has_the_sizes_of_an_11_second_clip(real_args):
    clip = synthetic_clip(real_args, sample_rate=22050, clip_seconds=11.0, seed=0)
    assert clip.wav_length == 242550
    assert clip.codes.shape == (242550 // 1024,)
    assert 90 <= clip.text.shape[0] <= 150
    assert int(clip.text.max()) < 6681 and int(clip.codes.max()) < 1024
    again = synthetic_clip(real_args, sample_rate=22050, clip_seconds=11.0, seed=0)
    assert torch.equal(clip.text, again.text) and torch.equal(clip.codes, again.codes)  # seeded


def test_synthetic_batch_is_in_train_step_format(real_trainer, real_args):
    clip = synthetic_clip(real_args, sample_rate=22050, clip_seconds=11.0, seed=0)
    batch = micro_batch(real_trainer, clip, silence_frame(real_trainer), random.Random(0), torch.device("cpu"))
    keys = {"text_inputs", "text_lengths", "audio_codes", "wav_lengths", "cond_mels", "cond_idxs", "cond_lens"}
    assert set(batch) == keys | {"cond_slices"}  # ours: the slices, which the caches key on
    assert batch["cond_slices"] == batch["cond_idxs"].tolist()
    assert batch["cond_mels"].shape == (1, 1, 80, real_args.max_conditioning_length // 256 + 1)
    assert batch["cond_lens"] is None  # the masking approach uses cond_idxs
    start, end = batch["cond_idxs"][0].tolist()
    assert real_args.min_conditioning_length <= end - start <= real_args.max_conditioning_length
    assert start >= 0 and end <= clip.wav_length


def test_clip_longer_than_coquis_limit_is_refused(real_args):
    with pytest.raises(ValueError, match="longest training clip"):
        synthetic_clip(real_args, sample_rate=22050, clip_seconds=12.0, seed=0)


# --- freezing at real depths --------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [24, 28])
def test_freezing_real_depths_trains_only_the_top_blocks(real_trainer, real_args, depth):
    gpt = real_trainer.xtts.gpt
    conditioning = count_parameters(gpt.conditioning_encoder).total + count_parameters(gpt.conditioning_perceiver).total
    total = count_parameters(gpt).total
    counts = apply_freezing(gpt, depth, ModelConfig())
    assert counts.total == total
    assert counts.trainable == total - conditioning - depth * BLOCK_PARAMS
    for i, block in enumerate(gpt.gpt.h):
        assert all(p.requires_grad == (i >= depth) for p in block.parameters()), f"block {i}"

    before = {n: p.detach().clone() for n, p in gpt.named_parameters()}
    clip = synthetic_clip(real_args, sample_rate=22050, clip_seconds=2.0, seed=1)
    batch = micro_batch(real_trainer, clip, silence_frame(real_trainer), random.Random(1), torch.device("cpu"))
    gpt.train()
    opt = optimizer_for(gpt, TrainConfig(freeze_depth=depth, batch_size=1))
    done = accumulate(real_trainer, [batch], autocast_dtype=None)
    assert done.used == 1 and math.isfinite(done.mean_loss)
    grads = {n: p.grad for n, p in gpt.named_parameters()}
    apply_update(opt, [p for p in gpt.parameters() if p.requires_grad], 0.5)
    gpt.eval()

    for n, p in gpt.named_parameters():
        if not p.requires_grad:
            assert grads[n] is None, n
            assert torch.equal(p.detach(), before[n]), f"frozen {n} changed"
    for i in range(depth, len(gpt.gpt.h)):
        for n, p in gpt.gpt.h[i].named_parameters():
            assert not torch.equal(p.detach(), before[f"gpt.h.{i}.{n}"]), f"trainable gpt.h.{i}.{n} did not change"
    for name in ("text_embedding.weight", "mel_head.weight", "final_norm.weight"):
        assert not torch.equal(gpt.get_parameter(name).detach(), before[name]), name


# --- measuring --------------------------------------------------------------------------------------------


def test_measure_runs_optimizer_steps_and_reports_finite_figures():
    record = measure(1, steps=2, accum=2, clip_seconds=3.0, device="cpu", layers=2)
    assert record["layers"] == 2 and record["freeze_depth"] == 1
    assert record["steps"] == 2 and record["timed_steps"] == 1  # the warm-up step is not timed
    assert math.isfinite(record["seconds_per_step"]) and record["seconds_per_step"] > 0
    assert record["microbatches_per_second"] == pytest.approx(2 / record["seconds_per_step"])
    assert math.isfinite(record["loss"]) and record["skipped_microbatches"] == 0
    # the process's peak holds at least the fp32 weights
    assert record["peak_memory_bytes"] >= 4 * record["total_params"]
    assert 0 < record["trainable_params"] < record["total_params"]
    assert record["device"] == "cpu" and record["device_name"].startswith("CPU (")
    assert record["dtype"] == "float32"
    json.dumps(record)  # the child process sends it as JSON


def test_figures_measure_each_depth_in_its_own_process():
    records = real_size_figures(
        (2,),  # depth 0 against 2 is test_freezing_real_depths_trains_only_the_top_blocks's (a child costs ~15 s)
        steps=1,
        accum=1,
        clip_seconds=3.0,
        device="cpu",
        layers=2,
        frozen_embeddings_depths=(2,),
        prefix_cache_depths=(2,),
    )
    assert [(r["freeze_depth"], r["freeze_embeddings"], r["prefix_cache"]) for r in records] == [
        (2, False, False),
        (2, True, False),
        (2, True, True),
    ]
    cached = records[2]
    # the cache holds the clip's 32 conditioning latents, its text positions (start + tokens) and coqui's
    # code-length positions (ceil(samples / 1024) + 3, plus start), 1024 fp16 values each
    positions = 32 + cached["text_tokens"] + 1 + math.ceil(3.0 * 22050 / 1024) + 4
    assert cached["prefix_bytes_per_clip"] == positions * 1024 * 2 and cached["prefix_capture_seconds"] > 0
    assert cached["trainable_params"] == records[1]["trainable_params"]
    assert "prefix cache at freeze 2: step" in prefix_cache_rows(records)
    assert records[0]["trainable_params"] > records[1]["trainable_params"]
    # the text (6681 x 1024) and mel (1026 x 1024) token embeddings and their learned position embeddings
    # (404 and 608 positions: max text/audio tokens + 2, per coqui's GPT) are what the last record also froze
    assert records[0]["trainable_params"] - records[1]["trainable_params"] == (6681 + 1026 + 404 + 608) * 1024
    for r in records:
        assert r["layers"] == 2 and r["accum"] == 1 and r["timed_steps"] == 1
        assert r["seconds_per_step"] > 0 and r["peak_memory_bytes"] > 0 and math.isfinite(r["loss"])
    table = format_table(records)
    assert "trainable / total" in table and "CPU (" in table and "float32" in table


@pytest.mark.slow
def test_true_real_size_step_runs_on_cpu():
    (record,) = real_size_figures((28,), steps=1, accum=1, clip_seconds=3.0, device="cpu")
    assert record["layers"] == 30
    assert record["trainable_share"] < 0.15  # 2 of 30 blocks plus embeddings and heads
    assert record["seconds_per_step"] > 0 and math.isfinite(record["loss"])
    assert record["peak_memory_bytes"] >= 4 * record["total_params"]


# --- errors -----------------------------------------------------------------------------------------------


def test_missing_architecture_file_names_the_file(tmp_path, capsys):
    missing = tmp_path / "nowhere" / "xtts_v2_model_args.json"
    with pytest.raises(ArchitectureError, match=str(missing)):
        read_architecture(missing)
    with pytest.raises(ArchitectureError, match="architecture file not found"):
        real_size_figures((28,), arch_path=missing, device="cpu")
    assert main(["--arch-file", str(missing), "--device", "cpu"]) == 2
    assert str(missing) in capsys.readouterr().err


def test_freeze_depth_beyond_the_layers_is_refused_before_building():
    with pytest.raises(ValueError, match="outside 0..30"):
        real_size_figures((31,), device="cpu")


@pytest.mark.slow
def test_whole_trial_rows_through_the_cli_on_a_released_layout_folder(tmp_path):
    """The whole-trial path of make bench-real-size at 2 of the released 30 layers (full width, real-size
    DVAE and HiFi-GAN): trial and train run through the CLI, the checkpoint holds only what trained, and the
    final run folder holds the GPT once plus that checkpoint."""
    from benchmarks.realsize.trial import format_rows, whole_trial_figures

    trial = whole_trial_figures(tmp_path, freeze_depth=1, layers=2, device="cpu")
    assert trial["peak_memory_bytes"] > 0 and trial["device"] == "cpu"
    assert trial["checkpoint_bytes"] < 0.9 * trial["gpt_bytes"]
    assert 1.0 < trial["final_gpt_copies"] < 2.0
    rows = format_rows(trial, bare_peak=trial["peak_memory_bytes"])
    assert "<= 1.3x" in rows and "<= 12%" in rows and "copies of the GPT" in rows
