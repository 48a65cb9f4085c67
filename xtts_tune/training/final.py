"""The final fine-tune from an exported YAML, and the loadable XTTS folder it writes.

``xtts-tune train --config studies/demo-best.yaml`` runs :func:`run_final_training`: the exported trial's
config (stop at its best step, validate on the study's saved split), then a complete XTTS folder in
``<output_dir>/final/model`` (config.json, model.pth, dvae.pth, mel_stats.pth, vocab.json and, when the base
has them, speakers_xtts.pth) that coqui-tts (``Xtts.load_checkpoint``) and xtts-tune both load.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from xtts_tune.config import StudyConfig, load_config
from xtts_tune.model.base import BASE_FILES, resolve_base_path
from xtts_tune.model.checkpoint import atomic_torch_save
from xtts_tune.training.loop import run_trial
from xtts_tune.training.result import TrialResult


def run_final_training(config_path: Path, *, overrides: list[str] | None = None, progress=None) -> TrialResult:
    """The final fine-tune from an exported YAML; writes a loadable XTTS folder in ``<output_dir>/final/model``."""
    cfg = load_config(config_path, overrides)
    run_dir = cfg.output_path / "final"
    result = run_trial(cfg, run_dir=run_dir, progress=progress)
    if result.checkpoint_path:
        write_xtts_folder(cfg, result.checkpoint_path, run_dir / "model")
    return result


def write_xtts_folder(cfg: StudyConfig, gpt_checkpoint: Path, out: Path) -> Path:
    """A complete XTTS folder: the base folder's files with the fine-tuned GPT weights in model.pth."""
    base = resolve_base_path(cfg.base_model, Path(cfg.root))
    out.mkdir(parents=True, exist_ok=True)
    for name in BASE_FILES:
        if name != "model.pth":
            shutil.copy2(base / name, out / name)
    model = torch.load(base / "model.pth", map_location="cpu", weights_only=True)
    state = model.get("model", model)
    gpt = torch.load(gpt_checkpoint, map_location="cpu", weights_only=True)
    state.update({f"gpt.{k}": v for k, v in gpt.items()})
    atomic_torch_save({"model": state}, out / "model.pth")
    return out
