"""The final fine-tune from an exported YAML, and the loadable XTTS folder it writes.

``xtts-tune train --config studies/demo-best.yaml`` runs :func:`run_final_training`: the exported trial's
config (stop at its best step, validate on the study's saved split), then a complete XTTS folder in
``<output_dir>/<study_name>/model`` (config.json, model.pth, dvae.pth, mel_stats.pth, vocab.json and, when the
base has them, speakers_xtts.pth) that coqui-tts (``Xtts.load_checkpoint``) and xtts-tune both load.

The final run validates on the study's clips or not at all: ``data.split_file`` must be set and exist, and
(for an exported YAML) the split and the dataset must be the ones its ``provenance`` names; anything else is
refused with one line before training.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from xtts_tune.config import ConfigError, StudyConfig, load_config
from xtts_tune.data.clips import DataError
from xtts_tune.data.content import dataset_fingerprint
from xtts_tune.data.split import saved_split
from xtts_tune.io import atomic_path, json_safe
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
from xtts_tune.training.prepare import audio_hashes, ensure_dataset
from xtts_tune.training.result import TrialResult
from xtts_tune.training.resume import ResumeState

logger = logging.getLogger(__name__)

RESUME_EVERY = 50
"""Optimizer steps between two saved resumable states of the final fine-tune (``xtts-tune train --resume-every``)."""


@dataclass
class FinalTraining:
    """The final fine-tune's trial result and the loadable XTTS folder it wrote (None without a checkpoint)."""

    trial: TrialResult
    model_dir: Path | None


def run_final_training(
    config_path: Path, *, overrides: list[str] | None = None, progress=None, resume_every: int = RESUME_EVERY
) -> FinalTraining:
    """The final fine-tune from an exported YAML; writes a loadable XTTS folder in ``<study_dir>/model``.

    Every ``resume_every`` optimizer steps it saves a resumable state in the run folder
    (:mod:`xtts_tune.training.resume`); after a kill the same call continues from the last one.

    >>> import tempfile
    >>> from xtts_tune import export_best, load_config, load_study, run_search
    >>> tmp = tempfile.mkdtemp()
    >>> cfg = load_config("studies/demo.yaml", [f"output_dir={tmp}/runs", "max_steps=2", "eval_every=1"])
    >>> summary = run_search(cfg, n_trials=1, storage=f"sqlite:///{tmp}/demo.db")
    >>> best = export_best(load_study("demo", summary.storage), f"{tmp}/demo-best.yaml")
    >>> final = run_final_training(best)
    >>> sorted(p.name for p in final.model_dir.iterdir())
    ['config.json', 'dvae.pth', 'mel_stats.pth', 'model.pth', 'vocab.json']
    >>> final.model_dir.relative_to(tmp).parts
    ('runs', 'demo-final', 'model')
    """
    cfg = load_config(config_path, overrides)
    check_final_data(cfg)
    warn_missing_speakers(cfg)
    run_dir = cfg.study_dir
    identity = json_safe({"config": cfg.to_dict(), "split": saved_split(cfg.split_path, must_exist=True).fingerprint})
    resume = ResumeState(run_dir, every=resume_every, identity=identity)
    result = run_trial(cfg, run_dir=run_dir, progress=progress, resume=resume)
    model_dir = write_xtts_folder(cfg, result.checkpoint_path, run_dir / "model") if result.checkpoint_path else None
    return FinalTraining(result, model_dir)


def warn_missing_speakers(cfg: StudyConfig) -> bool:
    """Warn once, naming the file, when the base folder has no ``speakers_xtts.pth``: the trained folder then
    has none either (no stored speakers; ``speak`` needs a speaker wav). The embedded tiny base never has one."""
    if cfg.base_model == "embedded":
        return False
    base = resolve_base_path(cfg.base_model, Path(cfg.root))
    if (base / "speakers_xtts.pth").is_file():
        return False
    logger.warning(
        "%s: not found, so the trained XTTS folder will have no speakers_xtts.pth (no stored speakers: "
        "speak with --speaker-wav); copy it from the released XTTS v2 folder to keep them",
        base / "speakers_xtts.pth",
    )
    return True


def check_final_data(cfg: StudyConfig) -> None:
    """Refuse a final run without the study's split (``data.split_file``), or (for an exported YAML) with a
    split or a dataset other than the study's; reads only."""
    if not cfg.data.split_file:
        raise ConfigError(
            f"{cfg.source}: data.split_file is not set, so the final model would be validated on other clips than "
            "the study's; train the YAML xtts-tune export writes, or set data.split_file to the study's split.json"
        )
    split = saved_split(cfg.split_path, must_exist=True)
    study = cfg.provenance.get("study", "the study")
    expected = cfg.provenance.get("split_fingerprint")
    if expected and split.fingerprint != expected:
        raise DataError(
            f"{cfg.split_path}: not the split study '{study}' used (fingerprint {split.fingerprint}, "
            f"the study's {expected}); restore the study's split.json, or export the config again"
        )
    expected = cfg.provenance.get("dataset_fingerprint")
    if expected:
        found = dataset_fingerprint(ensure_dataset(cfg), audio_hashes(cfg))
        if found != expected:
            raise DataError(
                f"{cfg.data_path}: the dataset changed since study '{study}' (fingerprint {found}, the study's "
                f"{expected}); restore the study's data, or run a new study on this data"
            )


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
