"""Per-clip model inputs (text tokens, DVAE codes, conditioning mels), cached, and batches in coqui's format.

coqui's GPTTrainer recomputes the DVAE codes and conditioning mels of every clip at every step
(``format_batch_on_device``). They do not change between steps, epochs or trials of one base model, so we
compute them once per clip (and per noisy variant) with GPTTrainer's own DVAE and mel extractors, store them
in an append-only folder of shards keyed by base model and clip (:mod:`xtts_tune.data.shards`: read on
demand, so memory does not grow with the dataset), and build batches from them.

The conditioning slice is taken from the clip's full mel instead of re-computing a mel of the sliced audio:
both have the same frames (hop 256) except at the slice's edges, and it lets the cache serve every random
slice. Slice lengths, positions, padding and masking follow coqui's XTTSDataset/GPT exactly.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import torch
import torchaudio

from xtts_tune.data.augmentation import noisy_variant, variant_seed
from xtts_tune.data.clips import Clip, read_wav
from xtts_tune.data.shards import TensorShards

logger = logging.getLogger(__name__)

MEL_HOP = 256  # hop of GPTTrainer's conditioning mel (perceiver path) and of the DVAE mel
PARTS = ("text", "codes", "mel", "n")  # a clip's stored tensors, named "<key>/<part>" in the shards
FLUSH_BYTES = 32 << 20  # new features held in memory before they go to disk by themselves


@dataclass
class ClipFeatures:
    text: torch.Tensor  # int64 tokens
    codes: torch.Tensor  # int64 DVAE codes
    mel: torch.Tensor  # (80, frames) conditioning mel of the whole clip
    wav_length: int


class FeatureStore:
    """Computes and caches :class:`ClipFeatures` for the clips of one dataset with one base model."""

    def __init__(
        self,
        trainer,
        clips: dict[str, Clip],
        *,
        base_fingerprint: str,
        cache_dir: Path | None,
        use_cache: bool = True,
    ):
        self.trainer = trainer
        self.clips = clips
        self.sample_rate = trainer.config.audio.sample_rate
        self.dvae_sample_rate = trainer.config.audio.dvae_sample_rate
        self.use_cache = use_cache
        # an append-only folder of shards, read on demand (xtts_tune.data.shards): memory stays bounded at 3,000
        # clips and noisy variants; new entries are flushed every FLUSH_BYTES and at save()
        self.cache_path = cache_dir / f"features-{base_fingerprint}" if cache_dir else None
        self.shards = TensorShards(self.cache_path if use_cache else None, flush_bytes=FLUSH_BYTES)
        self.timings: dict[str, float] = defaultdict(float)
        self.hits = 0
        self.misses = 0
        self._silence = None

    # -- keys ----------------------------------------------------------------------------------------
    def _key(self, clip: Clip, variant: tuple | None) -> str:
        stat = Path(clip.audio_file).stat()
        base = f"{clip.id}|{clip.text}|{stat.st_size}|{stat.st_mtime_ns}"
        if variant is not None:
            base += f"|noise{variant}"
        return hashlib.sha1(base.encode()).hexdigest()

    # -- public --------------------------------------------------------------------------------------
    def key(self, clip_id: str, variant: int | None = None, *, seed: int = 0, level_range=(0.0, 0.0)) -> str:
        """The cache key of a clip's (or one noisy variant's) features: changes with the file and the text."""
        vkey = None if variant is None else (seed, variant, tuple(level_range))
        return self._key(self.clips[clip_id], vkey)

    def has(self, key: str) -> bool:
        """Whether the features of ``key`` are stored (without reading them)."""
        return all(f"{key}/{part}" in self.shards for part in PARTS)

    def cached(self, key: str) -> ClipFeatures | None:
        """The stored features of ``key`` (None when not computed yet)."""
        parts = [self.shards.get(f"{key}/{part}") for part in PARTS]
        if any(p is None for p in parts):
            return None
        text, codes, mel, n = parts
        return ClipFeatures(text=text, codes=codes, mel=mel.float(), wav_length=int(n[0]))

    def get(self, clip_id: str, variant: int | None = None, *, seed: int = 0, level_range=(0.0, 0.0)) -> ClipFeatures:
        clip = self.clips[clip_id]
        key = self.key(clip_id, variant, seed=seed, level_range=level_range)
        feats = self.cached(key) if self.use_cache else None
        if feats is not None:
            self.hits += 1
            return feats
        self.misses += 1
        t = time.perf_counter()
        wav = read_wav(clip.audio_file, self.sample_rate)
        if variant is not None:
            wav = noisy_variant(wav, seed=seed, clip_id=clip_id, variant=variant, level_range=level_range)
        self.timings["audio_loading"] += time.perf_counter() - t
        feats = self.compute(wav, clip)
        if self.use_cache:
            stored = (feats.text, feats.codes, feats.mel.half(), torch.tensor([feats.wav_length]))
            for part, tensor in zip(PARTS, stored):
                self.shards.put(f"{key}/{part}", tensor)
        return feats

    def refresh(self) -> None:
        """See the entries other workers have stored since this store opened the cache."""
        self.shards.refresh()

    @torch.no_grad()
    def compute(self, wav: torch.Tensor, clip: Clip) -> ClipFeatures:
        """GPTTrainer's own feature extraction for one clip (as in ``format_batch_on_device``)."""
        device = next(self.trainer.dvae.parameters()).device
        w = wav.to(device).view(1, 1, -1)
        t = time.perf_counter()
        mel = self.trainer.torch_mel_spectrogram_style_encoder(w)[0]
        self.timings["conditioning_mels"] += time.perf_counter() - t
        t = time.perf_counter()
        dvae_wav = w
        if self.sample_rate != self.dvae_sample_rate:
            dvae_wav = torchaudio.functional.resample(
                w,
                orig_freq=self.sample_rate,
                new_freq=self.dvae_sample_rate,
                lowpass_filter_width=64,
                rolloff=0.9475937167399596,
                resampling_method="sinc_interp_kaiser",
                beta=14.769656459379492,
            )
        codes = self.trainer.dvae.get_codebook_indices(self.trainer.torch_mel_spectrogram_dvae(dvae_wav))[0]
        self.timings["dvae_codes"] += time.perf_counter() - t
        text = torch.tensor(self.trainer.xtts.tokenizer.encode(clip.text, clip.language), dtype=torch.long)
        # the cache stores mels in fp16; round here too so a cached and a fresh clip give identical batches
        mel = mel.half().float().cpu()
        return ClipFeatures(text=text, codes=codes.long().cpu(), mel=mel, wav_length=int(wav.shape[-1]))

    def save(self) -> None:
        """Write the entries computed since the last save as one more shard (atomically; other workers may
        read and add to the cache at the same time)."""
        if self.use_cache:
            self.shards.flush()

    def silence_frame(self) -> torch.Tensor:
        """The conditioning-mel frame of digital silence (what coqui's zero padding turns into)."""
        if self._silence is None:
            self._silence = silence_frame(self.trainer)
        return self._silence


@torch.no_grad()
def silence_frame(trainer) -> torch.Tensor:
    """The conditioning-mel frame of digital silence of GPTTrainer's style-encoder mel, on the CPU."""
    device = next(trainer.dvae.parameters()).device
    z = torch.zeros(1, 1, 32 * MEL_HOP, device=device)
    return trainer.torch_mel_spectrogram_style_encoder(z)[0][:, 16].float().cpu()


def collate(
    feats: list[ClipFeatures],
    *,
    args,
    silence: torch.Tensor,
    rng: random.Random | list[random.Random] | None,
    is_eval: bool,
) -> dict:
    """A batch exactly as GPTTrainer.format_batch_on_device returns it, from cached per-clip features.

    ``args`` is the trainer's GPTArgs (conditioning lengths, masking approach). ``rng`` draws the training
    conditioning slices (XTTSDataset uses the global ``random``; we use a seeded one), or is one generator per
    clip (:func:`fixed_slice_rng`: the same slice every time). ``batch["cond_slices"]`` lists each clip's
    ``[start, end]`` in samples.
    """
    min_len, max_len = args.min_conditioning_length, args.max_conditioning_length
    cond_frames = max_len // MEL_HOP + 1
    masking = args.gpt_use_masking_gt_prompt_approach
    b = len(feats)
    text_lengths = torch.tensor([f.text.shape[0] for f in feats], dtype=torch.long)
    wav_lengths = torch.tensor([f.wav_length for f in feats], dtype=torch.long)
    text = torch.zeros(b, int(text_lengths.max()), dtype=torch.long)
    codes = torch.zeros(b, max(f.codes.shape[0] for f in feats), dtype=torch.long)
    cond = silence.view(1, 1, -1, 1).repeat(b, 1, 1, cond_frames)
    idxs, lens = [], []
    for i, f in enumerate(feats):
        draw = rng[i] if isinstance(rng, list) else rng
        text[i, : f.text.shape[0]] = f.text
        codes[i, : f.codes.shape[0]] = f.codes
        # coqui's get_prompt_slice, in samples
        length = (min_len + max_len) // 2 if is_eval else draw.randint(min_len, max_len)
        if f.wav_length - length < 0:
            length = f.wav_length // 2
        start = 0 if is_eval else draw.randint(0, f.wav_length - length)
        first, n = start // MEL_HOP, length // MEL_HOP + 1
        piece = f.mel[:, first : first + n]
        cond[i, 0, :, : piece.shape[-1]] = piece
        idxs.append([start, start + length])
        lens.append(length)
    batch = {
        "text_inputs": text,
        "text_lengths": text_lengths,
        "audio_codes": codes,
        "wav_lengths": wav_lengths,
        "cond_mels": cond,
        "cond_idxs": torch.tensor(idxs, dtype=torch.long) if masking else None,
        "cond_lens": None if masking else torch.tensor(lens, dtype=torch.long),
        "cond_slices": idxs,
    }
    return batch


def fixed_slice_rng(seed: int, clip_id: str, variant: int | None) -> random.Random:
    """The generator of a clip's one conditioning slice (``train.conditioning_slice: fixed``): the same for
    every step, trial and worker of a study with this ``seed``."""
    return random.Random(variant_seed(seed, clip_id, -1 if variant is None else variant))


def to_device(batch: dict, device: torch.device) -> dict:
    """Move a batch to ``device``. To a GPU, from pinned (page-locked) memory with non-blocking copies, so
    the copy overlaps the work already queued; on the CPU the batch is returned as it is."""
    device = torch.device(device)
    if device.type != "cuda":
        return {k: (v.to(device) if torch.is_tensor(v) else v) for k, v in batch.items()}
    return {k: (v.pin_memory().to(device, non_blocking=True) if torch.is_tensor(v) else v) for k, v in batch.items()}
