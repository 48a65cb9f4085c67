"""Export the recommended (or a chosen) trial to a study YAML that trains the final model, and run it.

The exported YAML is an ordinary study config (every knob, searched and fixed), plus:

- ``train.max_steps`` set to the step where the trial's validation loss was best (stop there);
- ``data.split_file`` pointing at the study's saved split, so the final run validates on the same clips;
- ``provenance``: study, trial number, validation loss, date, dataset fingerprint and base model.

``xtts-tune train --config FILE`` runs it (:func:`run_final_training`) and writes, next to the GPT
checkpoint, a complete XTTS folder (config.json, model.pth, dvae.pth, mel_stats.pth, vocab.json) that
coqui-tts (``Xtts.load_checkpoint``) and xtts-tune both load.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
from pathlib import Path
from typing import Any

import optuna
import torch
import yaml

from xtts_tune import __version__
from xtts_tune.config import StudyConfig, TrainConfig, load_config
from xtts_tune.model import BASE_FILES, resolve_base_path
from xtts_tune.trial import TrialResult, atomic_torch_save, run_trial

logger = logging.getLogger(__name__)


class ExportError(ValueError):
    """The study cannot be exported as asked; the message names the study and the fix."""


def _trial_config(study: optuna.Study, trial_number: int | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(train config dict, provenance) of the recommended trial or of ``trial_number``."""
    from xtts_tune.analysis import recommend

    if trial_number is None:
        rec = recommend(study)
        trial = study.trials[rec.trial_number]
        reasons = rec.reasons
    else:
        matches = [t for t in study.trials if t.number == trial_number]
        if not matches or matches[0].state != optuna.trial.TrialState.COMPLETE:
            done = [t.number for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
            raise ExportError(
                f"study '{study.study_name}' has no COMPLETE trial number {trial_number}; "
                f"complete trials: {', '.join(map(str, done)) or 'none'}"
            )
        trial = matches[0]
        reasons = [f"trial {trial_number} chosen by hand"]
    attrs = trial.user_attrs
    train = dict(attrs.get("train_config") or {})
    train.update(trial.params)
    best_step = attrs.get("best_step")
    provenance = {
        "study": study.study_name,
        "trial": trial.number,
        "val_loss": trial.value,
        "best_step": best_step,
        "best_epoch": attrs.get("best_epoch"),
        "verdict": (attrs.get("diagnosis") or {}).get("verdict"),
        "reasons": list(reasons),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "dataset_fingerprint": (study.user_attrs.get("fingerprint") or {}).get("dataset"),
        "base_model_fingerprint": (study.user_attrs.get("fingerprint") or {}).get("base_model"),
        "xtts_tune_version": __version__,
    }
    if best_step:  # stop where the trial was best; 0 means the base model itself was best
        train["max_steps"] = int(best_step)
    return train, provenance


def export_best(study: optuna.Study, out: Path, *, trial_number: int | None = None, fmt: str = "yaml") -> Path:
    """Write the winning config as a study YAML (and, with ``fmt="coqui"``, coqui GPTTrainerConfig fields)."""
    stored = study.user_attrs.get("config")
    if not stored:
        raise ExportError(f"study '{study.study_name}' has no stored config (was it created by xtts-tune search?)")
    train, provenance = _trial_config(study, trial_number)
    known = set(TrainConfig.__dataclass_fields__)
    # relative paths in the stored config are relative to the study's project root: make them absolute so
    # the exported YAML works wherever it is written
    root = Path(study.user_attrs.get("project_root") or ".").resolve()

    def absolute(path: str) -> str:
        return str(path if Path(path).is_absolute() else root / path)

    doc = {k: v for k, v in stored.items() if k != "search"}
    doc["study_name"] = f"{stored['study_name']}-final"
    output_dir = Path(absolute(stored.get("output_dir", "runs")))
    doc["output_dir"] = str(output_dir.parent / f"{output_dir.name}-final")
    if doc.get("base_model", "embedded") != "embedded":
        doc["base_model"] = absolute(doc["base_model"])
    doc["data"] = dict(stored.get("data") or {})
    doc["data"]["path"] = absolute(doc["data"].get("path", "."))
    doc["data"]["split_file"] = str(output_dir / "split.json")
    doc["data"]["demo_target"] = False
    doc["train"] = {k: v for k, v in train.items() if k in known}
    doc["provenance"] = provenance
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    header = (
        f"# xtts-tune export of study '{study.study_name}', trial {provenance['trial']} "
        f"(validation loss {provenance['val_loss']:.4f}).\n"
        f"# Train the final model with: xtts-tune train --config {out}\n"
    )
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(header + yaml.safe_dump(doc, sort_keys=False))
    tmp.replace(out)
    if fmt == "coqui":
        coqui_out = out.with_suffix(".coqui.json")
        coqui_out.write_text(json.dumps(coqui_fields(doc), indent=2))
        logger.info("coqui GPTTrainerConfig fields written to %s", coqui_out)
    return out


def coqui_fields(doc: dict[str, Any]) -> dict[str, Any]:
    """The GPTTrainerConfig fields matching an exported config, for coqui's own XTTS recipe."""
    t = doc["train"]
    return {
        "GPTTrainerConfig": {
            "epochs": t.get("max_epochs"),
            "batch_size": t.get("batch_size"),
            "eval_batch_size": t.get("batch_size"),
            "lr": t.get("learning_rate"),
            "optimizer": "AdamW",
            "optimizer_wd_only_on_weights": t.get("weight_decay_weights_only", True),
            "optimizer_params": {"betas": [0.9, 0.96], "eps": 1e-8, "weight_decay": t.get("weight_decay")},
            "grad_clip": t.get("grad_clip_norm"),
            "training_seed": t.get("seed"),
            "mixed_precision": t.get("precision") != "fp32",
            "precision": t.get("precision"),
        },
        "Trainer": {"grad_accum_steps": t.get("grad_accum_steps")},
        "freezing (apply to model.xtts.gpt before trainer.fit())": {
            "freeze_first_n_gpt_layers": t.get("freeze_depth"),
            **{k: v for k, v in (doc.get("model") or {}).items()},
        },
        "stop_after_optimizer_steps": t.get("max_steps") or None,
        "note": "coqui's Trainer has no early stopping: stop at the step above, as the study found.",
    }


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
