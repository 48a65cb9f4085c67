"""The final fine-tune from an exported YAML, and the loadable XTTS folder it writes.

``xtts-tune train --config studies/demo-best.yaml`` runs :func:`run_final_training`: the exported trial's
config (stop at its best step, validate on the study's saved split), then a complete XTTS folder in
``<output_dir>/final/model`` (config.json, model.pth, dvae.pth, mel_stats.pth, vocab.json and, when the base
has them, speakers_xtts.pth) that coqui-tts (``Xtts.load_checkpoint``) and xtts-tune both load.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from xtts_tune.config import StudyConfig, load_config
from xtts_tune.io import atomic_path
from xtts_tune.model.base import (
    BASE_FILES,
    OPTIONAL_BASE_FILES,
    base_fingerprint,
    resolve_base_path,
)
from xtts_tune.model.checkpoint import (
    atomic_torch_save,
    full_gpt_state,
    load_trained_tensors,
)
from xtts_tune.training.loop import run_trial
from xtts_tune.training.result import TrialResult


@dataclass
class FinalTraining:
    """The final fine-tune's trial result and the loadable XTTS folder it wrote (None without a checkpoint)."""

    trial: TrialResult
    model_dir: Path | None


def run_final_training(config_path: Path, *, overrides: list[str] | None = None, progress=None) -> FinalTraining:
    """The final fine-tune from an exported YAML; writes a loadable XTTS folder in ``<output_dir>/final/model``.

    >>> import tempfile
    >>> from xtts_tune import export_best, load_config, load_study, run_search
    >>> tmp = tempfile.mkdtemp()
    >>> cfg = load_config("studies/demo.yaml", [f"output_dir={tmp}/runs", "max_steps=2", "eval_every=1"])
    >>> summary = run_search(cfg, n_trials=1, storage=f"sqlite:///{tmp}/demo.db")
    >>> best = export_best(load_study("demo", summary.storage), f"{tmp}/demo-best.yaml")
    >>> final = run_final_training(best)
    >>> sorted(p.name for p in final.model_dir.iterdir())
    ['config.json', 'dvae.pth', 'mel_stats.pth', 'model.pth', 'vocab.json']
    """
    cfg = load_config(config_path, overrides)
    run_dir = cfg.output_path / "final"
    result = run_trial(cfg, run_dir=run_dir, progress=progress)
    model_dir = write_xtts_folder(cfg, result.checkpoint_path, run_dir / "model") if result.checkpoint_path else None
    return FinalTraining(result, model_dir)


def write_xtts_folder(cfg: StudyConfig, gpt_checkpoint: Path, out: Path) -> Path:
    """A complete XTTS folder: the base folder's files (speakers_xtts.pth too, when the base has it) with the
    trained tensors of ``gpt_checkpoint`` in place in model.pth (the rest of the base's model.pth, the
    HiFi-GAN decoder included, unchanged). Refuses a checkpoint trained from another base."""
    base = resolve_base_path(cfg.base_model, Path(cfg.root))
    trained = load_trained_tensors(gpt_checkpoint, base_fingerprint=base_fingerprint(base))
    out.mkdir(parents=True, exist_ok=True)
    for name in (*BASE_FILES, *OPTIONAL_BASE_FILES):
        if name != "model.pth" and (base / name).is_file():
            with atomic_path(out / name) as tmp:
                shutil.copy2(base / name, tmp)
    # mmap: the base's tensors are read from disk as they are written, not held twice in memory
    model = torch.load(base / "model.pth", map_location="cpu", weights_only=True, mmap=True)
    state = dict(model.get("model", model))
    gpt = full_gpt_state({k[4:]: v for k, v in state.items() if k.startswith("gpt.")}, trained)
    state.update({f"gpt.{k}": gpt[k] for k in trained})
    atomic_torch_save({"model": state}, out / "model.pth")
    return out
