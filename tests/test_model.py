import json
import shutil
from pathlib import Path

import pytest
import torch

from xtts_tune.config import ModelConfig
from xtts_tune.model.base import (
    BASE_FILES,
    BaseModelError,
    dvae_kwargs_from_state,
    embedded_base_path,
    load_base,
)
from xtts_tune.model.freezing import apply_freezing, count_parameters, frozen_modules

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def test_embedded_base_loads_with_healthy_dvae(tiny_base):
    assert tiny_base.folder == embedded_base_path()
    assert tiny_base.num_layers == 4
    assert tiny_base.trainer.xtts.hifigan_decoder is None
    build = json.loads((embedded_base_path() / "BUILD.json").read_text())
    assert build["dvae"]["codes_used"] > 0.5 * build["dvae"]["codebook_size"]
    assert sum(f.stat().st_size for f in embedded_base_path().iterdir()) < 25e6


@pytest.mark.parametrize("missing", BASE_FILES)
def test_each_missing_file_gets_one_line_naming_it(tmp_path, missing):
    folder = tmp_path / "base"
    shutil.copytree(embedded_base_path(), folder)
    (folder / missing).unlink()
    with pytest.raises(BaseModelError) as err:
        load_base(folder)
    assert f"missing {missing}" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    "name, damage",
    [
        ("vocab.json", lambda p: p.write_text('{"model": {"vocab": ')),
        ("mel_stats.pth", lambda p: p.write_bytes(b"not a torch file" * 10)),
        ("dvae.pth", lambda p: p.write_bytes(p.read_bytes()[:1000])),
        ("model.pth", lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])),
        ("model.pth", lambda p: p.write_bytes(p.read_bytes()[:100])),
    ],
)
def test_each_corrupt_file_gets_one_line_naming_it(tmp_path, name, damage):
    folder = tmp_path / "base"
    shutil.copytree(embedded_base_path(), folder)
    damage(folder / name)
    with pytest.raises(BaseModelError) as err:
        load_base(folder)
    assert str(err.value).startswith(f"{folder / name}: ") and "\n" not in str(err.value)
    assert "copy it again" in str(err.value)


def test_missing_folder_and_gptless_model(tmp_path):
    with pytest.raises(BaseModelError, match="base model folder not found"):
        load_base(tmp_path / "nowhere")
    folder = tmp_path / "base"
    shutil.copytree(embedded_base_path(), folder)
    torch.save({"model": {}}, folder / "model.pth")
    with pytest.raises(BaseModelError, match="no GPT weights"):
        load_base(folder)


def test_dvae_size_is_read_from_the_checkpoint_and_matches_coquis_hard_coded_one():
    from TTS.tts.layers.xtts.dvae import DiscreteVAE

    released = dict(
        channels=80,
        normalization=None,
        positional_dims=1,
        num_tokens=1024,
        codebook_dim=512,
        hidden_dim=512,
        num_resnet_blocks=3,
        kernel_size=3,
        num_layers=2,
        use_transposed_convs=False,
    )  # exactly what GPTTrainer hard-codes for XTTS v2
    state = DiscreteVAE(**released).state_dict()
    assert dvae_kwargs_from_state(state) == released
    with pytest.raises(BaseModelError, match="not a DiscreteVAE"):
        dvae_kwargs_from_state({"foo": torch.zeros(1)})


def test_a_folder_in_the_released_format_with_the_real_vocabulary_loads(tmp_path):
    """config.json from the released XTTS v2 figures (shrunk), the real tokenizer vocabulary, and a model.pth
    holding a full Xtts state dict (GPT and HiFi-GAN decoder keys) as the release does."""
    from TTS.tts.configs.xtts_config import XttsConfig
    from TTS.tts.layers.xtts.tokenizer import VoiceBpeTokenizer
    from TTS.tts.models.xtts import Xtts

    if not (SHARED / "xtts_vocab.json").is_file():
        pytest.skip("../shared/data is not present")
    released = json.loads((SHARED / "xtts_v2_model_args.json").read_text())
    folder = tmp_path / "xtts"
    folder.mkdir()
    shutil.copy(SHARED / "xtts_vocab.json", folder / "vocab.json")
    args = dict(released["model_args"], gpt_layers=2, gpt_n_model_channels=64, gpt_n_heads=4)
    doc = {k: v for k, v in released.items() if k != "model_args"} | {"model_args": args}
    (folder / "config.json").write_text(json.dumps(doc))
    cfg = XttsConfig()
    cfg.load_json(str(folder / "config.json"))
    xtts = Xtts(cfg)
    xtts.tokenizer = VoiceBpeTokenizer(str(folder / "vocab.json"))
    xtts.init_models()
    torch.save({"model": xtts.state_dict()}, folder / "model.pth")
    shutil.copy(embedded_base_path() / "mel_stats.pth", folder / "mel_stats.pth")
    shutil.copy(embedded_base_path() / "dvae.pth", folder / "dvae.pth")  # 256 codes: disagrees with the GPT
    with pytest.raises(BaseModelError, match="256 codes.*gpt_num_audio_tokens is 1026"):
        load_base(folder)
    from TTS.tts.layers.xtts.dvae import DiscreteVAE

    small_dvae = DiscreteVAE(
        channels=80,
        positional_dims=1,
        num_tokens=1024,
        codebook_dim=32,
        hidden_dim=16,
        num_resnet_blocks=1,
        kernel_size=3,
        num_layers=2,
        use_transposed_convs=False,
    )
    torch.save(small_dvae.state_dict(), folder / "dvae.pth")
    wrong = dict(doc, model_args=dict(args, gpt_n_model_channels=32))
    (folder / "config.json").write_text(json.dumps(wrong))
    with pytest.raises(BaseModelError, match="does not match config.json"):
        load_base(folder)
    (folder / "config.json").write_text(json.dumps(doc))
    base = load_base(folder)
    assert base.num_layers == 2
    assert base.gpt.text_embedding.weight.shape[0] == base.tokenizer.get_number_tokens()
    assert torch.equal(base.gpt.text_head.weight, xtts.gpt.text_head.weight)


def _grad_names(gpt):
    return {n for n, p in gpt.named_parameters() if p.requires_grad}


def test_freezing_selects_exactly_the_intended_parameters(fresh_base):
    gpt = fresh_base.gpt
    counts = apply_freezing(gpt, 3, ModelConfig(freeze_conditioning=True))
    trainable = _grad_names(gpt)
    for name, _ in gpt.named_parameters():
        frozen = name.startswith(
            ("gpt.h.0.", "gpt.h.1.", "gpt.h.2.", "conditioning_encoder.", "conditioning_perceiver.")
        )
        assert (name in trainable) == (not frozen), name
    assert counts.trainable == sum(p.numel() for n, p in gpt.named_parameters() if n in trainable)
    assert counts.total == sum(p.numel() for p in gpt.parameters())
    assert str(counts).startswith("trainable ") and f"({100 * counts.share:.1f}%)" in str(counts)

    opts = ModelConfig(
        freeze_conditioning=False,
        freeze_text_embedding=True,
        freeze_text_head=True,
        freeze_mel_embedding=True,
        freeze_mel_head=True,
    )
    apply_freezing(gpt, 0, opts)
    frozen = {n for n, _ in gpt.named_parameters()} - _grad_names(gpt)
    assert {n.split(".")[0] for n in frozen} == {
        "text_embedding",
        "text_pos_embedding",
        "text_head",
        "mel_embedding",
        "mel_pos_embedding",
        "mel_head",
    }
    assert count_parameters(gpt).trainable < count_parameters(gpt).total


def test_freeze_depth_bounds(fresh_base):
    with pytest.raises(ValueError, match="between 0 and 4"):
        frozen_modules(fresh_base.gpt, 5, ModelConfig())
    apply_freezing(fresh_base.gpt, 4, ModelConfig(freeze_conditioning=False))
    assert not any(n.startswith("gpt.h.") for n in _grad_names(fresh_base.gpt))
