"""The tiny base's HiFi-GAN decoder: coqui's own ``HifiDecoder``, trained on the tiny GPT's latents.

coqui builds the decoder with hard-coded widths (512 upsampling channels, a 512-dim ResNet speaker encoder),
so ``Xtts.load_checkpoint`` only loads a decoder of that size. Training that size is far beyond a 2-core CPU
(about 25 s per second of audio, forward and backward). So the build trains a *narrow* ``HifiDecoder`` (the
same class with ``upsample_initial_channel_decoder`` = ``DecoderSpec.channels``) and then embeds it into the
full-size one: the narrow channels become the first channels of each level and every other weight is zero,
so the extra channels stay exactly zero and the full-size decoder computes the narrow one's function. The
speaker encoder keeps seeded random weights (a fixed random feature map of the reference's log-mel); the
decoder learns to read a voice from it through its conditioning layers.

Training data: teacher-forced GPT latents (the tiny base's DVAE codes of a clip, its text, and the
conditioning latents of *another* clip of the same voice, through ``GPT.forward(return_latent=True)``, the
call ``Xtts.inference`` makes) of several espeak-ng voices, never the demo target's (``DEMO_TARGETS``), so
that a target voice is rendered unseen. Loss: multi-resolution STFT (spectral convergence + log magnitude),
no discriminator (a GAN does not fit the CPU budget).

>>> [v.voice for v in DECODER_VOICES][:2]
['en-us', 'en-us+m1']
>>> any(v.voice == t.voice for v in DECODER_VOICES for t in DEMO_TARGETS.values())
False
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from xtts_tune.data.demo import BASE_VOICE, DEMO_TARGETS, VoiceSpec

DECODER_VOICES = (
    BASE_VOICE,
    VoiceSpec(name="dec-m1", voice="en-us+m1", speed=175, pitch=35),
    VoiceSpec(name="dec-f2", voice="en-us+f2", speed=150, pitch=60),
    VoiceSpec(name="dec-f4", voice="en-us+f4", speed=165, pitch=85),
    VoiceSpec(name="dec-m7", voice="en-us+m7", speed=180, pitch=50),
)
"""The voices the decoder is trained on (the base voice and four others; no demo target)."""

FULL_CHANNELS = 512  # what coqui's Xtts builds (HifiDecoder's default upsample_initial_channel_decoder)


@dataclass
class DecoderSpec:
    channels: int = 128  # the narrow decoder's upsample_initial_channel_decoder
    output_sample_rate: int = 16000
    clips_per_voice: int = 80
    steps: int = 600
    batch: int = 8
    frames: int = 12  # latent frames per training segment (46 ms each)
    learning_rate: float = 1e-3
    seed: int = 0


def narrow_decoder(spec: DecoderSpec, input_dim: int, d_vector_dim: int):
    """coqui's HifiDecoder at width ``spec.channels`` (the speaker encoder is built but not used)."""
    from TTS.tts.layers.xtts.hifigan_decoder import HifiDecoder

    return HifiDecoder(
        output_sample_rate=spec.output_sample_rate,
        decoder_input_dim=input_dim,
        d_vector_dim=d_vector_dim,
        upsample_initial_channel_decoder=spec.channels,
    )


def _stft_mag(x: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    window = torch.hann_window(n_fft, device=x.device)
    spec = torch.stft(x, n_fft, hop, n_fft, window, return_complex=True)
    return spec.abs().clamp_min(1e-5)


def stft_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Multi-resolution STFT loss: spectral convergence + L1 of log magnitudes, over three resolutions."""
    total = pred.new_zeros(())
    for n_fft, hop in ((1024, 256), (512, 128), (256, 64)):
        p, t = _stft_mag(pred, n_fft, hop), _stft_mag(target, n_fft, hop)
        total = total + torch.linalg.norm(t - p) / torch.linalg.norm(t) + (p.log() - t.log()).abs().mean()
    return total / 3


@dataclass
class DecoderExample:
    """One clip: its teacher-forced GPT latents [T, dim], speaker embedding [d, 1] and audio at the output rate."""

    latents: torch.Tensor
    speaker: torch.Tensor
    audio: torch.Tensor
    voice: str
    text: str


def teacher_forced_latents(xtts, wav22: torch.Tensor, text: str, cond_latent: torch.Tensor, mel_fn, dvae):
    """The GPT latents of a clip given its real DVAE codes (what Xtts.inference computes from generated ones)."""
    with torch.inference_mode():
        codes = dvae.get_codebook_indices(mel_fn(wav22[None]))
        tokens = torch.IntTensor(xtts.tokenizer.encode(text.strip().lower(), lang="en"))[None]
        lat = xtts.gpt(
            tokens,
            torch.tensor([tokens.shape[-1]]),
            codes,
            torch.tensor([codes.shape[-1] * xtts.gpt.code_stride_len]),
            cond_latents=cond_latent,
            return_attentions=False,
            return_latent=True,
        )
    return lat[0], codes[0]


def load_tiny_xtts(folder: Path, seed: int, output_sample_rate: int):
    """Xtts of the tiny base folder with its GPT weights, a seeded random full-size decoder, and its DVAE."""
    from TTS.tts.configs.xtts_config import XttsConfig
    from TTS.tts.layers.tortoise.arch_utils import TorchMelSpectrogram
    from TTS.tts.layers.xtts.dvae import DiscreteVAE
    from TTS.tts.layers.xtts.tokenizer import VoiceBpeTokenizer
    from TTS.tts.models.xtts import Xtts

    from xtts_tune.model.base import dvae_kwargs_from_state

    config = XttsConfig()
    config.load_json(str(folder / "config.json"))
    config.model_args.decoder_input_dim = config.model_args.gpt_n_model_channels
    config.model_args.output_sample_rate = output_sample_rate
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        xtts = Xtts(config)
    xtts.tokenizer = VoiceBpeTokenizer(str(folder / "vocab.json"))
    state = torch.load(folder / "model.pth", map_location="cpu", weights_only=True)["model"]
    gpt = {k[4:]: v for k, v in state.items() if k.startswith("gpt.")}
    xtts.gpt.load_state_dict(gpt)
    xtts.mel_stats.copy_(torch.load(folder / "mel_stats.pth", weights_only=True))
    xtts.train(False)
    dvae_state = torch.load(folder / "dvae.pth", map_location="cpu", weights_only=True)
    dvae = DiscreteVAE(**dvae_kwargs_from_state(dvae_state))
    dvae.load_state_dict(dvae_state)
    dvae.train(False)
    mel_fn = TorchMelSpectrogram(mel_norm_file=str(folder / "mel_stats.pth"), sampling_rate=22050)
    return xtts, dvae, mel_fn, config


def voice_examples(
    xtts,
    dvae,
    mel_fn,
    config,
    corpus: Path,
    voice: str,
    output_sample_rate: int,
    limit: int | None = None,
    references: int = 4,
) -> list[DecoderExample]:
    """Teacher-forced examples of an LJSpeech-style corpus. The voice comes from one of ``references`` other
    clips of the corpus (the last ones), never the clip itself, as in inference."""
    import torchaudio

    from xtts_tune.data.clips import read_wav

    rows = [line.split("|") for line in (corpus / "metadata.csv").read_text(encoding="utf-8").splitlines() if line]
    refs = [rows.pop() for _ in range(min(references, len(rows) - 1))]
    rows = rows[:limit] if limit else rows
    voices = [
        xtts.get_conditioning_latents(
            audio_path=str(corpus / "wavs" / f"{ref[0]}.wav"),
            gpt_cond_len=config.gpt_cond_len,
            gpt_cond_chunk_len=config.gpt_cond_chunk_len,
            max_ref_length=config.max_ref_len,
            sound_norm_refs=config.sound_norm_refs,
        )
        for ref in refs
    ]
    out = []
    for i, row in enumerate(rows):
        cond, speaker = voices[i % len(voices)]
        wav = read_wav(corpus / "wavs" / f"{row[0]}.wav", 22050)
        lat, _ = teacher_forced_latents(xtts, wav, row[-1], cond, mel_fn, dvae)
        audio = torchaudio.functional.resample(wav, 22050, output_sample_rate)
        out.append(DecoderExample(lat.clone(), speaker[0].clone(), audio, voice, row[-1]))
    return out


def _segments(examples: list[DecoderExample], spec: DecoderSpec, rng: random.Random):
    samples_per_frame = 1024 * spec.output_sample_rate / 22050
    while True:
        lats, spks, auds = [], [], []
        for _ in range(spec.batch):
            ex = examples[rng.randrange(len(examples))]
            start = rng.randrange(max(1, ex.latents.shape[0] - spec.frames))
            lat = ex.latents[start : start + spec.frames]
            if lat.shape[0] < spec.frames:
                continue
            a0 = round(start * samples_per_frame)
            lats.append(lat)
            spks.append(ex.speaker)
            auds.append(ex.audio[a0 : a0 + round(spec.frames * samples_per_frame) + 256])
        if lats:
            n = min(a.shape[0] for a in auds)
            yield torch.stack(lats), torch.stack(spks), torch.stack([a[:n] for a in auds])


def train_narrow(examples: list[DecoderExample], spec: DecoderSpec, progress=None):
    """Train the narrow decoder on ``examples``; return it and its loss curve (every 25 steps)."""
    torch.manual_seed(spec.seed)
    dec = narrow_decoder(spec, examples[0].latents.shape[1], examples[0].speaker.shape[0])
    dec.speaker_encoder = None  # the full-size one's embeddings are precomputed in the examples
    opt = torch.optim.AdamW(dec.waveform_decoder.parameters(), lr=spec.learning_rate, betas=(0.8, 0.99))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, spec.learning_rate, total_steps=spec.steps, pct_start=0.05)
    batches = _segments(examples, spec, random.Random(spec.seed))
    curve, running, started = [], 0.0, time.time()
    dec.train()
    for step in range(1, spec.steps + 1):
        lat, spk, aud = next(batches)
        out = dec(lat, g=spk)[:, 0]
        n = min(out.shape[-1], aud.shape[-1])
        loss = stft_loss(out[:, :n], aud[:, :n])
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(dec.parameters(), 5.0)
        opt.step()
        sched.step()
        running += float(loss.detach())
        if step % 25 == 0:
            curve.append((step, round(running / 25, 4), round(time.time() - started, 1)))
            running = 0.0
            if progress:
                progress(step, spec.steps, curve[-1][1])
    dec.train(False)
    return dec, curve


def _effective(module) -> dict[str, torch.Tensor]:
    """A module's own tensors with weight-norm folded in (weight = g * v / |v|)."""
    out = {"weight": module.weight.detach().clone()}
    if getattr(module, "bias", None) is not None:
        out["bias"] = module.bias.detach().clone()
    return out


def embed_into_full(narrow, full) -> None:
    """Copy the narrow waveform decoder into the full-size one: first channels of each level, zeros elsewhere."""
    from torch.nn.utils import parametrize

    small = dict(narrow.waveform_decoder.named_modules())
    with torch.no_grad():
        for name, mod in full.waveform_decoder.named_modules():
            if not isinstance(mod, (torch.nn.Conv1d, torch.nn.ConvTranspose1d)):
                continue
            src = _effective(small[name])
            for pname, value in src.items():
                wide = torch.zeros_like(mod.weight if pname == "weight" else mod.bias)
                wide[tuple(slice(0, s) for s in value.shape)] = value
                if pname == "weight" and parametrize.is_parametrized(mod, "weight"):
                    g, v = mod.parametrizations.weight.original0, mod.parametrizations.weight.original1
                    dims = tuple(range(1, wide.ndim))
                    norm = wide.norm(dim=dims, keepdim=True) if g.shape[0] == wide.shape[0] else None
                    if norm is None or g.shape != norm.shape:
                        raise RuntimeError(f"unexpected weight-norm layout in {name}")
                    g.copy_(norm)
                    v.copy_(torch.where(norm > 0, wide, torch.ones_like(wide)))
                elif pname == "weight":
                    mod.weight.copy_(wide)
                else:
                    mod.bias.copy_(wide)


def write_decoder_into_base(folder: Path, full_decoder, output_sample_rate: int, sampling: dict | None = None) -> None:
    """Add the hifigan_decoder.* tensors to ``folder/model.pth`` (the GPT's tensors are left as they are) and
    set config.json's decoder width and output rate (and the sampling settings, when given)."""
    import json

    from xtts_tune.io import atomic_write_text
    from xtts_tune.model.checkpoint import atomic_torch_save

    state = torch.load(folder / "model.pth", map_location="cpu", weights_only=True)["model"]
    state = {k: v for k, v in state.items() if not k.startswith("hifigan_decoder.")}
    state |= {f"hifigan_decoder.{k}": v.detach().clone() for k, v in full_decoder.state_dict().items()}
    state.setdefault("mel_stats", torch.load(folder / "mel_stats.pth", weights_only=True))
    atomic_torch_save({"model": state}, folder / "model.pth")
    doc = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    doc["model_args"]["decoder_input_dim"] = doc["model_args"]["gpt_n_model_channels"]
    doc["model_args"]["output_sample_rate"] = output_sample_rate
    doc.update(sampling or {})
    atomic_write_text(folder / "config.json", json.dumps(doc, indent=2))


def copy_synthesis_distance(decoder, examples: list[DecoderExample]) -> dict:
    """Multi-resolution STFT loss of the decoder's output on teacher-forced latents of held-out clips."""
    losses = []
    with torch.inference_mode():
        for ex in examples:
            out = decoder(ex.latents[None], g=ex.speaker[None])[0, 0]
            n = min(out.shape[-1], ex.audio.shape[-1])
            losses.append(float(stft_loss(out[None, :n], ex.audio[None, :n])))
    return {"stft_loss": round(sum(losses) / len(losses), 4), "clips": len(losses)}


def build_tiny_decoder(
    folder: Path, spec: DecoderSpec | None = None, sampling: dict | None = None, progress=None
) -> dict:
    """Train the decoder for the tiny base in ``folder`` and write it there (model.pth, config.json); add its
    record to BUILD.json under "decoder" and return that record. The GPT's tensors are not changed.

    Held out: the base voice's clips of ``split_demo_sentences()[1][:21]`` (texts no training clip has), whose
    teacher-forced copy-synthesis distance is recorded.
    """
    import json
    import tempfile

    from xtts_tune.data.demo import generate_dataset, split_demo_sentences
    from xtts_tune.io import atomic_write_text

    spec = spec or DecoderSpec()
    if {v.voice for v in DECODER_VOICES} & {t.voice for t in DEMO_TARGETS.values()}:
        raise ValueError("a demo target voice is among DECODER_VOICES; the decoder must never hear it")
    started = time.time()
    train_texts, held_texts = split_demo_sentences()
    with tempfile.TemporaryDirectory(prefix="tiny-decoder-") as work:
        xtts, dvae, mel_fn, config = load_tiny_xtts(folder, spec.seed, spec.output_sample_rate)
        examples = []
        for voice in DECODER_VOICES:
            corpus = generate_dataset(
                Path(work) / voice.name, train_texts, voice, prefix=voice.name, count=spec.clips_per_voice
            )
            examples += voice_examples(xtts, dvae, mel_fn, config, corpus, voice.name, spec.output_sample_rate)
        held_corpus = generate_dataset(Path(work) / "held", held_texts, BASE_VOICE, prefix="held", count=21)
        held = voice_examples(
            xtts, dvae, mel_fn, config, held_corpus, BASE_VOICE.name, spec.output_sample_rate, references=1
        )
    narrow, curve = train_narrow(examples, spec, progress)
    record = {
        "seconds": round(time.time() - started, 1),
        "spec": dict(spec.__dict__),
        "voices": [v.__dict__ for v in DECODER_VOICES],
        "train_clips": len(examples),
        "loss_curve": curve,
        "copy_synthesis_heldout": copy_synthesis_distance(narrow, held),
    }
    embed_into_full(narrow, xtts.hifigan_decoder)
    write_decoder_into_base(folder, xtts.hifigan_decoder, spec.output_sample_rate, sampling)
    build = folder / "BUILD.json"
    doc = json.loads(build.read_text(encoding="utf-8")) if build.is_file() else {}
    doc["decoder"] = record
    atomic_write_text(build, json.dumps(doc, indent=2))
    return record
