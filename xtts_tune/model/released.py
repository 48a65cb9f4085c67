"""Build a tiny XTTS v2 folder in the released layout, with random weights, for tests.

The folder holds what a released XTTS v2 checkpoint holds::

    config.json        the released figures (xtts_v2_model_args.json), the GPT shrunk
    vocab.json         the real XTTS tokenizer vocabulary (or the tiny base's, see below)
    model.pth          {"model": Xtts state dict}: gpt.*, hifigan_decoder.* and mel_stats
    dvae.pth           a small DiscreteVAE whose code count is gpt_num_audio_tokens - 2
    mel_stats.pth      80 per-channel mel normalisers (the same values as model.pth's mel_stats)
    speakers_xtts.pth  {speaker name: {"gpt_cond_latent", "speaker_embedding"}} (coqui's SpeakerManager)

Only the GPT can be shrunk: coqui builds the HiFi-GAN decoder (``HifiDecoder``) with hard-coded widths
(512 upsampling channels, a ResNet speaker encoder with 512-dim output), so ``decoder=True`` writes the
real-size decoder (22.4 M parameters, about 90 MB). Its input width ``decoder_input_dim`` must equal the
GPT width, which the released config leaves at 1024; the shrunk config sets it to ``model_channels``.
"""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path

import torch

SPEAKER_NAMES = ("Tiny Speaker A", "Tiny Speaker B")


def _package_file(*parts: str) -> Path | None:
    try:
        path = Path(str(resources.files("xtts_tune").joinpath(*parts)))
    except ModuleNotFoundError:
        return None
    return path if path.is_file() else None


def _first_file(*candidates: Path | None) -> Path | None:
    return next((p for p in candidates if p is not None and p.is_file()), None)


def _shared_data(name: str) -> list[Path]:
    """``../shared/data/NAME`` beside the checkout, wherever in it this file lives (scratch, tests/, package)."""
    here = Path(__file__).resolve()
    return [parent / "shared" / "data" / name for parent in here.parents[1:4]]


def released_model_args_path() -> Path:
    path = _first_file(_package_file("resources", "xtts_v2_model_args.json"), *_shared_data("xtts_v2_model_args.json"))
    if path is None:
        raise FileNotFoundError("xtts_v2_model_args.json not found (xtts_tune/resources or ../shared/data)")
    return path


def real_vocab_path() -> Path | None:
    """The real XTTS vocabulary (5,413 tokens, 14 languages), or None where ../shared/data is absent."""
    return _first_file(_package_file("resources", "xtts_vocab.json"), *_shared_data("xtts_vocab.json"))


def _vocab_languages(vocab: Path) -> set[str]:
    doc = json.loads(vocab.read_text(encoding="utf-8"))
    tokens = [t["content"] for t in doc.get("added_tokens", [])] + list(doc.get("model", {}).get("vocab", {}))
    return {t[1:-1] for t in tokens if t.startswith("[") and t.endswith("]")}


def build_released_folder(
    out: Path,
    *,
    layers: int = 2,
    model_channels: int = 64,
    heads: int = 4,
    decoder: bool = True,
    speakers: bool = True,
    seed: int = 0,
    released_dvae: bool = False,
) -> Path:
    """Write a tiny random-weight XTTS v2 folder in the released layout to ``out`` and return it.

    ``decoder=False`` leaves the hifigan_decoder.* keys out of model.pth (a GPT-only checkpoint, like the
    tiny embedded base); ``speakers=False`` writes no speakers_xtts.pth; ``released_dvae=True`` writes a DVAE of
    the released size (52.7 M parameters, what GPTTrainer hard-codes) instead of a small one.
    """
    from TTS.tts.configs.xtts_config import XttsConfig
    from TTS.tts.layers.xtts.dvae import DiscreteVAE
    from TTS.tts.layers.xtts.tokenizer import VoiceBpeTokenizer
    from TTS.tts.models.xtts import Xtts

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    released = json.loads(released_model_args_path().read_text(encoding="utf-8"))

    vocab = real_vocab_path()
    if vocab is None:  # no real vocabulary here: the tiny base's character vocabulary (English only)
        vocab = _package_file("assets", "tiny_base", "vocab.json")
        if vocab is None:
            raise FileNotFoundError("no XTTS vocabulary: neither shared/data/xtts_vocab.json nor the tiny base's")
    shutil.copy(vocab, out / "vocab.json")
    tokenizer = VoiceBpeTokenizer(str(out / "vocab.json"))

    args = dict(
        released["model_args"],
        gpt_layers=layers,
        gpt_n_model_channels=model_channels,
        gpt_n_heads=heads,
        decoder_input_dim=model_channels,  # the HiFi-GAN reads the GPT's latents
        gpt_number_text_tokens=tokenizer.get_number_tokens(),
    )
    # a language is only speakable when the vocabulary has its [xx] token (the coqui test vocabulary has 14)
    have = _vocab_languages(out / "vocab.json")
    languages = [lang for lang in released["languages"] if lang in have]
    doc = {k: v for k, v in released.items() if k not in ("model_args", "languages")}
    doc |= {"model_args": args, "languages": languages}
    (out / "config.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        config = XttsConfig()
        config.load_json(str(out / "config.json"))
        xtts = Xtts(config)  # sized by config.json (text tokens = the vocabulary's); no second init_models()
        mel_stats = 1.0 + 4.0 * torch.rand(80)  # log-mel magnitudes of real speech are a few units
        xtts.mel_stats.copy_(mel_stats)
        # train(False), not coqui's eval(): that one also adds gpt.gpt_inference and gpt.gpt.wte, which a
        # released model.pth does not have
        xtts.train(False)

        state = xtts.state_dict()
        if not decoder:
            state = {k: v for k, v in state.items() if not k.startswith("hifigan_decoder.")}
        torch.save({"model": state}, out / "model.pth")
        torch.save(mel_stats.clone(), out / "mel_stats.pth")

        size = (
            dict(codebook_dim=512, hidden_dim=512, num_resnet_blocks=3)
            if released_dvae
            else dict(codebook_dim=32, hidden_dim=16, num_resnet_blocks=1)
        )
        dvae = DiscreteVAE(
            channels=80,
            normalization=None,
            positional_dims=1,
            num_tokens=args["gpt_num_audio_tokens"] - 2,
            kernel_size=3,
            num_layers=2,
            use_transposed_convs=False,
            **size,
        )
        torch.save(dvae.state_dict(), out / "dvae.pth")

        if speakers:
            voices = {}
            for i, name in enumerate(SPEAKER_NAMES):
                t = torch.arange(22050 * 2) / 22050  # 2 s of a buzzy tone: the model's own latents for it
                buzz = 0.3 * torch.sign(torch.sin(2 * torch.pi * (110 + 40 * i) * t))
                audio = (buzz + 0.01 * torch.randn_like(t))[None]
                with torch.inference_mode():
                    cond = xtts.get_gpt_cond_latents(audio, 22050, length=30, chunk_length=4)
                    if decoder:
                        emb = xtts.get_speaker_embedding(audio, 22050)
                    else:
                        emb = torch.nn.functional.normalize(torch.randn(1, args["d_vector_dim"]), dim=1).unsqueeze(-1)
                voices[name] = {"gpt_cond_latent": cond.clone(), "speaker_embedding": emb.clone()}
            torch.save(voices, out / "speakers_xtts.pth")
    return out
