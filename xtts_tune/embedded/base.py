"""The embedded default base model: a tiny XTTS built from coqui-tts's own classes, pre-trained on the demo
base voice, saved in the layout of a released XTTS v2 folder (see :mod:`xtts_tune.model.base`).

``make demo-base`` rebuilds it from a seed:

1. a character-level tokenizer in VoiceBpeTokenizer's format (``vocab.json``);
2. mel normalisers from the base corpus (``mel_stats.pth``);
3. a small DiscreteVAE trained on the base corpus's mels, with k-means initialised codes and dead-code
   restarts so that it uses its codebook instead of collapsing onto a few codes (``dvae.pth``);
4. the XTTS GPT (small dimensions, real architecture), pre-trained on the base corpus by the same trial
   loop that fine-tunes it later (``model.pth``).
"""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path

import torch

logger = logging.getLogger(__name__)

SPECIAL_TOKENS = ["[STOP]", "[UNK]", "[SPACE]"]
CHARACTERS = list("abcdefghijklmnopqrstuvwxyz!'(),-.:;?\"")
LANGUAGE_TOKENS = ["[en]"]


@dataclass
class TinyBaseSpec:
    layers: int = 4
    model_dim: int = 128
    heads: int = 4
    audio_codes: int = 256
    dvae_hidden: int = 64
    dvae_codebook_dim: int = 64
    dvae_steps: int = 1500
    dvae_batch: int = 16
    gpt_epochs: int = 15
    gpt_batch: int = 16
    gpt_learning_rate: float = 1e-3
    seed: int = 0


def write_vocab(path: Path) -> int:
    """A character-level vocabulary in the HF-tokenizers BPE format VoiceBpeTokenizer loads."""
    tokens = SPECIAL_TOKENS + CHARACTERS + LANGUAGE_TOKENS + ["[START]"]
    vocab = {tok: i for i, tok in enumerate(tokens)}
    special = SPECIAL_TOKENS + LANGUAGE_TOKENS + ["[START]"]
    doc = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {
                "id": vocab[t],
                "special": True,
                "content": t,
                "single_word": False,
                "lstrip": False,
                "rstrip": False,
                "normalized": False,
            }
            for t in special
        ],
        "normalizer": None,
        "pre_tokenizer": {"type": "Whitespace"},
        "post_processor": None,
        "decoder": None,
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": "[UNK]",
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "vocab": vocab,
            "merges": [],
        },
    }
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=1))
    return len(vocab)


def write_config(path: Path, spec: TinyBaseSpec, number_text_tokens: int) -> None:
    """config.json in the released XTTS v2 format, with small GPT dimensions."""
    from TTS.tts.configs.xtts_config import XttsConfig

    cfg = XttsConfig()
    args = cfg.model_args
    args.gpt_layers = spec.layers
    args.gpt_n_model_channels = spec.model_dim
    args.gpt_n_heads = spec.heads
    args.gpt_number_text_tokens = number_text_tokens
    args.gpt_num_audio_tokens = spec.audio_codes + 2
    args.gpt_start_audio_token = spec.audio_codes
    args.gpt_stop_audio_token = spec.audio_codes + 1
    args.gpt_max_audio_tokens = 605
    args.gpt_max_text_tokens = 402
    args.gpt_max_prompt_tokens = 70
    args.gpt_use_masking_gt_prompt_approach = True
    args.gpt_use_perceiver_resampler = True
    args.gpt_code_stride_len = 1024
    cfg.languages = ["en"]
    doc = cfg.to_dict()
    doc["xtts_tune"] = {"tiny_base": True, "seed": spec.seed}
    path.write_text(json.dumps(doc, indent=2))


def compute_mel_stats(wavs: list[torch.Tensor], sample_rate: int) -> torch.Tensor:
    """Per-channel mean of the log-mel spectrogram, the normaliser coqui's TorchMelSpectrogram divides by."""
    from TTS.tts.layers.tortoise.arch_utils import TorchMelSpectrogram

    mel = TorchMelSpectrogram(mel_norm_file=None, sampling_rate=sample_rate)
    total = torch.zeros(80, dtype=torch.float64)
    frames = 0
    with torch.no_grad():
        for wav in wavs:
            m = mel(wav.unsqueeze(0)).squeeze(0).double()
            total += m.sum(-1)
            frames += m.shape[-1]
    return (total / frames).float()


def dvae_perplexity(codes: torch.Tensor, num_tokens: int) -> tuple[float, int]:
    """exp(entropy) of the code histogram, and how many distinct codes are used."""
    counts = torch.bincount(codes.flatten(), minlength=num_tokens).double()
    probs = counts / counts.sum()
    nz = probs[probs > 0]
    return float(torch.exp(-(nz * nz.log()).sum())), int((counts > 0).sum())


def _mel_batches(mels: list[torch.Tensor], batch: int, frames: int, rng: random.Random):
    while True:
        chunk = []
        for _ in range(batch):
            m = mels[rng.randrange(len(mels))]
            start = rng.randrange(max(1, m.shape[-1] - frames))
            piece = m[:, start : start + frames]
            if piece.shape[-1] < frames:
                piece = torch.nn.functional.pad(piece, (0, frames - piece.shape[-1]), value=float(m.min()))
            chunk.append(piece)
        yield torch.stack(chunk)


def _kmeans(x: torch.Tensor, k: int, iters: int, gen: torch.Generator) -> torch.Tensor:
    centers = x[torch.randperm(x.shape[0], generator=gen)[:k]].clone()
    for _ in range(iters):
        assign = torch.cdist(x, centers).argmin(1)
        for j in range(k):
            members = x[assign == j]
            centers[j] = members.mean(0) if len(members) else x[torch.randint(x.shape[0], (1,), generator=gen)][0]
    return centers


def train_dvae(mels: list[torch.Tensor], spec: TinyBaseSpec, progress=None):
    """Train a small DiscreteVAE (coqui's class) on normalised mels; return it and its code usage."""
    from TTS.tts.layers.xtts.dvae import DiscreteVAE

    torch.manual_seed(spec.seed)
    gen = torch.Generator().manual_seed(spec.seed)
    rng = random.Random(spec.seed)
    dvae = DiscreteVAE(
        channels=80,
        normalization=None,
        positional_dims=1,
        num_tokens=spec.audio_codes,
        codebook_dim=spec.dvae_codebook_dim,
        hidden_dim=spec.dvae_hidden,
        num_resnet_blocks=1,
        kernel_size=3,
        num_layers=2,
        use_transposed_convs=False,
    )
    opt = torch.optim.AdamW(dvae.parameters(), lr=1e-3)
    batches = _mel_batches(mels, spec.dvae_batch, 128, rng)

    def encode(x):
        return dvae.encoder(x).permute(0, 2, 1).reshape(-1, spec.dvae_codebook_dim)

    def reseed_codebook():
        # k-means on encoder outputs: every code starts where the data is, so none is dead from the start
        with torch.no_grad():
            z = torch.cat([encode(next(batches)) for _ in range(8)])
            centers = _kmeans(z, spec.audio_codes, 10, gen)
            dvae.codebook.embed.copy_(centers.T)
            dvae.codebook.embed_avg.copy_(centers.T)
            dvae.codebook.cluster_size.fill_(1.0)

    dvae.train()
    reseed_codebook()
    usage = torch.zeros(spec.audio_codes)
    for step in range(1, spec.dvae_steps + 1):
        # DiscreteVAE.forward, unrolled to see which codes each batch uses
        mel = next(batches)
        z = dvae.encoder(mel).permute(0, 2, 1)
        sampled, codes, commitment = dvae.codebook(z)
        out = sampled.permute(0, 2, 1)
        for layer in dvae.decoder:
            out = layer(out)
        loss = torch.nn.functional.mse_loss(out, mel) + 0.25 * commitment.mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        usage += torch.bincount(codes.flatten(), minlength=spec.audio_codes)
        if step % 25 == 0 and step <= spec.dvae_steps * 0.8:
            # dead-code restart: move codes no batch used lately onto random encoder outputs
            _restart_dead_codes(dvae, z.detach().reshape(-1, spec.dvae_codebook_dim), usage == 0, gen)
            usage.zero_()
        if progress and step % 50 == 0:
            progress(step, spec.dvae_steps, float(loss.detach()))
    dvae.eval()
    with torch.no_grad():
        codes = torch.cat([dvae.get_codebook_indices(m.unsqueeze(0)).flatten() for m in mels])
    perplexity, used = dvae_perplexity(codes, spec.audio_codes)
    return dvae, {"perplexity": perplexity, "codes_used": used, "codebook_size": spec.audio_codes}


def _restart_dead_codes(dvae, z: torch.Tensor, dead: torch.Tensor, gen: torch.Generator) -> None:
    cb = dvae.codebook
    n = int(dead.sum())
    if n:
        picks = z[torch.randint(z.shape[0], (n,), generator=gen)]
        cb.embed[:, dead] = picks.T
        cb.embed_avg[:, dead] = picks.T
        cb.cluster_size[dead] = 1.0


def build_tiny_base(base_corpus: Path, out: Path, spec: TinyBaseSpec | None = None, progress=None) -> dict:
    """Build the tiny base folder at ``out`` from an LJSpeech-style corpus; return a summary of the build."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="tiny-base-") as work:
        return _build(base_corpus, out, spec or TinyBaseSpec(), Path(work), progress)


def _build(base_corpus: Path, out: Path, spec: TinyBaseSpec, work_dir: Path, progress) -> dict:
    from xtts_tune.config import DataConfig, ModelConfig, StudyConfig, TrainConfig
    from xtts_tune.data.clips import load_clips, read_wav
    from xtts_tune.data.demo import BASE_VAL_FRACTION
    from xtts_tune.model.base import load_base
    from xtts_tune.training.loop import run_trial

    started = time.time()
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(spec.seed)
    n_text = write_vocab(out / "vocab.json")
    write_config(out / "config.json", spec, n_text)

    data_cfg = DataConfig(path=str(base_corpus), val_fraction=BASE_VAL_FRACTION)
    clips = load_clips(data_cfg, Path("."))
    sample_rate = 22050
    wavs = [read_wav(c.audio_file, sample_rate) for c in clips]
    mel_stats = compute_mel_stats(wavs, sample_rate)
    torch.save(mel_stats, out / "mel_stats.pth")

    from TTS.tts.layers.tortoise.arch_utils import TorchMelSpectrogram

    mel = TorchMelSpectrogram(mel_norm_file=str(out / "mel_stats.pth"), sampling_rate=sample_rate)
    with torch.no_grad():
        mels = [mel(w.unsqueeze(0)).squeeze(0) for w in wavs]
    dvae, usage = train_dvae(
        mels, spec, progress=(lambda s, n, loss: progress("dvae", s, n, loss)) if progress else None
    )
    torch.save(dvae.state_dict(), out / "dvae.pth")
    logger.info(
        "DVAE uses %d of %d codes (perplexity %.1f)", usage["codes_used"], usage["codebook_size"], usage["perplexity"]
    )

    # a randomly initialised GPT in model.pth, so the folder loads like any XTTS v2 folder
    _write_random_gpt(out, spec.seed)

    base = load_base(out)
    cfg = StudyConfig(
        study_name="tiny-base",
        output_dir=str(work_dir),
        data=data_cfg,
        model=ModelConfig(freeze_conditioning=False),
        train=TrainConfig(
            freeze_depth=0,
            learning_rate=spec.gpt_learning_rate,
            weight_decay=0.01,
            batch_size=spec.gpt_batch,
            max_epochs=spec.gpt_epochs,
            eval_every=10**9,
            patience=3,
            min_delta=0.0,
            augment_prob=0.0,
            grad_clip_norm=1.0,
            seed=spec.seed,
            eval_at_start=False,
            warmup_steps=50,
        ),
    )
    result = run_trial(cfg, base=base, progress=(lambda rec: progress("gpt", rec)) if progress else None)
    from xtts_tune.model.checkpoint import full_gpt_state, load_trained_tensors

    trained = load_trained_tensors(result.checkpoint_path, base_fingerprint=base.fingerprint)
    save_gpt_into_base(out, full_gpt_state(base.gpt.state_dict(), trained))
    summary = {
        "seconds": round(time.time() - started, 1),
        "dvae": usage,
        "gpt_best_val_loss": result.best_val_loss,
        "gpt_steps": result.steps,
        "clips": len(clips),
        "spec": dict(spec.__dict__),
    }
    (out / "BUILD.json").write_text(json.dumps(summary, indent=2))
    return summary


def _write_random_gpt(out: Path, seed: int) -> None:
    from TTS.tts.layers.xtts.tokenizer import VoiceBpeTokenizer
    from TTS.tts.models.xtts import Xtts

    from xtts_tune.model.base import trainer_config

    torch.manual_seed(seed)
    cfg = trainer_config(out)
    xtts = Xtts(cfg)
    xtts.tokenizer = VoiceBpeTokenizer(str(out / "vocab.json"))
    xtts.init_models()
    save_gpt_into_base(out, xtts.gpt.state_dict())


def save_gpt_into_base(out: Path, gpt_state: dict[str, torch.Tensor]) -> None:
    """Write GPT weights as model.pth in the released format: {"model": {"gpt.<name>": tensor}}."""
    from xtts_tune.io import atomic_torch_save

    atomic_torch_save(
        {"model": {f"gpt.{k}": v.detach().cpu().clone() for k, v in gpt_state.items()}}, out / "model.pth"
    )
