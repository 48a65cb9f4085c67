"""Load an XTTS v2 base folder through coqui-tts's GPTTrainer (the one place that builds a base model).

A base folder has the layout of a released XTTS v2 checkpoint::

    config.json     XttsConfig (``model_args`` decides the GPT's dimensions)
    model.pth       {"model": Xtts state dict} (gpt.* and, for a real release, hifigan_decoder.*)
    dvae.pth        DiscreteVAE state dict
    mel_stats.pth   80 per-channel mel normalisers
    vocab.json      VoiceBpeTokenizer vocabulary

The tiny embedded base (``xtts_tune/assets/tiny_base``) and a real XTTS v2 folder load through the same
:func:`load_base`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import pickle
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch
from torch import nn

from xtts_tune.config import EMBEDDED_BASE, StudyConfig, check_freeze_depth
from xtts_tune.errors import UserError

logger = logging.getLogger(__name__)


BASE_FILES = ("config.json", "model.pth", "dvae.pth", "mel_stats.pth", "vocab.json")
OPTIONAL_BASE_FILES = ("speakers_xtts.pth",)
"""Copied into the final folder when the base has them (coqui's speaker manager reads speakers_xtts.pth)."""


class BaseModelError(UserError):
    """A base model folder that cannot be used; the message names the folder, the file and the fix."""


def embedded_base_path() -> Path:
    return Path(str(resources.files("xtts_tune") / "assets" / "tiny_base"))


def resolve_base_path(base_model: str, root: Path | None = None) -> Path:
    if base_model == EMBEDDED_BASE:
        return embedded_base_path()
    path = Path(base_model).expanduser()
    if not path.is_absolute() and root is not None:
        path = root / path
    return path


def check_base_folder(folder: Path) -> None:
    """Raise :class:`BaseModelError` naming the first missing file of an XTTS v2 folder."""
    if not folder.is_dir():
        raise BaseModelError(
            f"{folder}: base model folder not found; set base_model to an XTTS v2 folder "
            f"({', '.join(BASE_FILES)}) or to '{EMBEDDED_BASE}'"
        )
    for name in BASE_FILES:
        if not (folder / name).is_file():
            raise BaseModelError(f"{folder}: missing {name} (an XTTS v2 base folder needs {', '.join(BASE_FILES)})")


def base_fingerprint(folder: Path) -> str:
    """Content hash of a base folder (sizes + a sample of bytes of each file; cheap even for 1.8 GB)."""
    h = hashlib.sha256()
    for name in BASE_FILES:
        path = folder / name
        size = path.stat().st_size
        h.update(f"{name}:{size}:".encode())
        with path.open("rb") as f:
            h.update(f.read(1 << 20))
            if size > 2 << 20:
                f.seek(size - (1 << 20))
                h.update(f.read())
    return h.hexdigest()[:16]


def dvae_kwargs_from_state(state: dict[str, torch.Tensor]) -> dict:
    """DiscreteVAE constructor arguments that match a DVAE state dict."""
    try:
        first = state["encoder.0.0.weight"]
        embed = state["codebook.embed"]
    except KeyError as exc:
        raise BaseModelError(f"dvae.pth is not a DiscreteVAE state dict (no {exc.args[0]})") from None
    conv_layers = {int(m.group(1)) for k in state if (m := re.fullmatch(r"encoder\.(\d+)\.0\.weight", k))}
    res_blocks = {int(m.group(1)) for k in state if (m := re.match(r"encoder\.(\d+)\.net\.", k))}
    return {
        "channels": int(first.shape[1]),
        "normalization": None,
        "positional_dims": 1,
        "num_tokens": int(embed.shape[1]),
        "codebook_dim": int(embed.shape[0]),
        "hidden_dim": int(first.shape[0]),
        "num_resnet_blocks": len(res_blocks),
        "kernel_size": int(first.shape[-1]),
        "num_layers": len(conv_layers),
        "use_transposed_convs": False,
    }


@contextlib.contextmanager
def gpt_trainer_builds_dvae(dvae_kwargs: dict):
    """Make coqui's GPTTrainer construct a DVAE with ``dvae_kwargs`` while it initialises."""
    from TTS.tts.layers.xtts.dvae import DiscreteVAE
    from TTS.tts.layers.xtts.trainer import gpt_trainer

    def sized_dvae(**_hard_coded):
        return DiscreteVAE(**dvae_kwargs)

    original = gpt_trainer.DiscreteVAE
    gpt_trainer.DiscreteVAE = sized_dvae
    try:
        yield
    finally:
        gpt_trainer.DiscreteVAE = original


def trainer_config(folder: Path):
    """A coqui ``GPTTrainerConfig`` for a base folder, as coqui's XTTS fine-tuning recipe builds it."""
    from TTS.tts.configs.xtts_config import XttsAudioConfig, XttsConfig
    from TTS.tts.layers.xtts.trainer.gpt_trainer import GPTArgs, GPTTrainerConfig

    try:
        xcfg = XttsConfig()
        xcfg.load_json(str(folder / "config.json"))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise BaseModelError(f"{folder / 'config.json'}: not a valid XTTS config ({exc})") from None
    arch = xcfg.model_args.to_dict()
    fields = set(GPTArgs.__dataclass_fields__)
    args = GPTArgs(**{k: v for k, v in arch.items() if k in fields})
    args.xtts_checkpoint = str(folder / "model.pth")
    args.dvae_checkpoint = str(folder / "dvae.pth")
    args.mel_norm_file = str(folder / "mel_stats.pth")
    args.tokenizer_file = str(folder / "vocab.json")
    args.gpt_checkpoint = ""
    # the training sample limits follow the GPT's own context (coqui's recipe: 255995 samples ≈ 11.6 s)
    args.max_wav_length = min(255995, (args.gpt_max_audio_tokens - 3) * args.gpt_code_stride_len)
    args.max_text_length = min(200, args.gpt_max_text_tokens)
    audio = XttsAudioConfig(
        sample_rate=xcfg.audio.sample_rate,
        dvae_sample_rate=getattr(xcfg.audio, "dvae_sample_rate", xcfg.audio.sample_rate),
        output_sample_rate=xcfg.audio.output_sample_rate,
    )
    return GPTTrainerConfig(
        model_args=args, audio=audio, run_eval=True, mixed_precision=False, languages=list(xcfg.languages)
    )


@dataclass
class LoadedBase:
    """A base model ready for fine-tuning: coqui's GPTTrainer (GPT, DVAE, mel extractors, tokenizer)."""

    folder: Path
    trainer: nn.Module  # TTS.tts.layers.xtts.trainer.gpt_trainer.GPTTrainer
    fingerprint: str

    @property
    def gpt(self) -> nn.Module:
        return self.trainer.xtts.gpt

    @property
    def tokenizer(self):
        return self.trainer.xtts.tokenizer

    @property
    def config(self):
        return self.trainer.config

    @property
    def num_layers(self) -> int:
        return len(self.gpt.gpt.h)


def load_base(folder: Path, *, device: str | torch.device = "cpu") -> LoadedBase:
    """Load a base folder (the tiny embedded base or a real XTTS v2 release) for fine-tuning."""
    from TTS.tts.layers.xtts.trainer.gpt_trainer import GPTTrainer

    folder = Path(folder)
    check_base_folder(folder)
    config = trainer_config(folder)
    dvae_state = _read_torch(folder / "dvae.pth")
    _read_torch(folder / "mel_stats.pth")  # GPTTrainer reads it too, with a 7-line message when it is corrupt
    _check_vocab(folder / "vocab.json")
    # GPTTrainer loads model.pth with strict=False and ignores what is missing; we load it ourselves, the
    # same way (Xtts.get_compatible_checkpoint_state_dict), to report a model.pth without GPT weights.
    model_pth, config.model_args.xtts_checkpoint = config.model_args.xtts_checkpoint, ""
    dvae_kwargs = dvae_kwargs_from_state(dvae_state)
    audio_tokens = config.model_args.gpt_num_audio_tokens
    if dvae_kwargs["num_tokens"] + 2 != audio_tokens:
        raise BaseModelError(
            f"{folder}: dvae.pth has {dvae_kwargs['num_tokens']} codes but config.json's gpt_num_audio_tokens is "
            f"{audio_tokens} (it must be the codes + 2 for start/stop); the files come from different models"
        )
    with gpt_trainer_builds_dvae(dvae_kwargs):
        try:
            trainer = GPTTrainer(config)
        except (RuntimeError, EOFError, OSError, KeyError, pickle.UnpicklingError) as exc:
            raise BaseModelError(f"{folder}: cannot load the base model ({_first_line(exc)})") from None
    # The HiFi-GAN decoder is only needed to synthesise audio, never to fine-tune the GPT: drop it before
    # the weights are read, and read only the GPT's (memory-mapped, so model.pth is never held twice).
    trainer.xtts.hifigan_decoder = None
    state = _gpt_weights(Path(model_pth), trainer)
    config.model_args.xtts_checkpoint = model_pth
    try:
        loaded = trainer.xtts.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shapes that disagree with config.json
        raise BaseModelError(f"{folder / 'model.pth'}: does not match config.json ({str(exc)[:300]})") from None
    del state
    missing = [k for k in loaded.missing_keys if k.startswith("gpt.")]
    if missing:
        raise BaseModelError(f"{folder / 'model.pth'}: no GPT weights for {missing[0]} (and {len(missing) - 1} more)")
    trainer.eval()
    trainer.to(device)
    return LoadedBase(folder=folder, trainer=trainer, fingerprint=base_fingerprint(folder))


def _gpt_weights(model_pth: Path, trainer) -> dict[str, torch.Tensor]:
    """The ``gpt.*`` tensors (and ``mel_stats``) of a model.pth, named as Xtts names them (coqui's key rules:
    ``Xtts.get_compatible_checkpoint_state_dict``), read through a memory map."""
    try:
        obj = torch.load(model_pth, map_location="cpu", weights_only=True, mmap=True)
    except (RuntimeError, pickle.UnpicklingError, ValueError):
        # a legacy checkpoint (pickled config, or not in torch's zip format): coqui's own loader reads it
        try:
            obj = trainer.xtts.get_compatible_checkpoint_state_dict(str(model_pth))
        except (RuntimeError, EOFError, OSError, KeyError, pickle.UnpicklingError) as exc:
            raise BaseModelError(
                f"{model_pth}: cannot be read as an XTTS model.pth, truncated or corrupt ({_first_line(exc)}); "
                "copy it again from the XTTS v2 release"
            ) from None
    except (EOFError, OSError) as exc:
        raise BaseModelError(
            f"{model_pth}: cannot be read, truncated or not a torch file ({_first_line(exc)}); copy it again"
        ) from None
    state = obj.get("model", obj) if isinstance(obj, dict) else {}
    out = {}
    for key, value in state.items():
        key = key[len("xtts.") :] if key.startswith("xtts.") else key  # saved by coqui's Trainer
        if key.startswith("gpt.") or key == "mel_stats":
            out[key] = value
    return out


def _first_line(exc: BaseException) -> str:
    """An exception's first sentence of its first line (torch's messages run to several lines)."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return text.split(". ")[0][:160]


def _read_torch(path: Path):
    """``torch.load`` of a small base file; a truncated or non-torch file is one line naming it."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a corrupt file
        raise BaseModelError(
            f"{path}: cannot be read as a torch file, truncated or corrupt ({_first_line(exc)}); copy it again "
            "from the base model's release"
        ) from None


def _check_vocab(path: Path) -> None:
    """Refuse a vocab.json the tokenizer cannot read (coqui's own message is a bare Rust parse error)."""
    from tokenizers import Tokenizer

    try:
        Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises a bare Exception
        raise BaseModelError(
            f"{path}: not a valid tokenizer vocabulary ({_first_line(exc)}); copy it again from the base model's release"
        ) from None


def has_decoder(folder: Path) -> bool:
    """Whether the folder's model.pth holds a HiFi-GAN decoder (it can make audio); read through a memory map."""
    try:
        obj = torch.load(Path(folder) / "model.pth", map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # legacy or unreadable: load_base reports it
        return False
    state = obj.get("model", obj) if isinstance(obj, dict) else {}
    return any(k.startswith(("hifigan_decoder.", "xtts.hifigan_decoder.")) for k in state)


def pick_device(name: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; anything else as torch names it (``cpu``, ``cuda:1``)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def reset_peak_memory(device: torch.device) -> bool:
    """Start a new peak (a trial's own, not an earlier trial's): CUDA's peak statistics, or on Linux the
    process's resident high-water mark (``/proc/self/clear_refs``); False where it cannot be reset (the peak
    is then the process's so far)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return True
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_memory_bytes(device: torch.device) -> int:
    """Peak memory since :func:`reset_peak_memory`: ``max_memory_allocated`` on CUDA, the resident set's
    high-water mark on CPU (``VmHWM``; ``ru_maxrss``, the process's whole-life peak, where /proc is missing)."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # Linux reports KiB


def load_study_base(cfg: StudyConfig, base: LoadedBase | None = None) -> LoadedBase:
    """The base model a study config names (``base_model``, on ``train.device``), or ``base`` when one is
    already loaded; either way the config's freeze depth is checked against it (the one place that does).

    >>> from xtts_tune.config import StudyConfig
    >>> load_study_base(StudyConfig()).num_layers
    4
    """
    if base is None:
        base = load_base(resolve_base_path(cfg.base_model, Path(cfg.root)), device=pick_device(cfg.train.device))
    check_freeze_depth(cfg.train.freeze_depth, base.num_layers, cfg.source)
    return base
