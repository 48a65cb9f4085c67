"""Export the recommended (or a chosen) trial to a study YAML that trains the final model, and run it.

The exported YAML is an ordinary study config (every knob, searched and fixed), plus:

- ``train.max_steps`` set to the step where the trial's validation loss was best (stop there);
- ``data.split_file`` pointing at the study's saved split, so the final run validates on the same clips;
- ``study_name`` ``<study>-final`` (the final run's files go to ``<output_dir>/<study>-final/``);
- ``provenance``: study and its id, trial number, validation loss, date, dataset, split and base model
  fingerprints (``xtts-tune train`` refuses a split or dataset that differs from the study's).

``xtts-tune train --config FILE`` runs it (:mod:`xtts_tune.training.final`). This module never imports torch
or coqui: exporting reads the study only.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

import optuna
import yaml

from xtts_tune import __version__
from xtts_tune.analysis.evidence.holdout import describe_test_comparison
from xtts_tune.analysis.ranking.recommend import recommend
from xtts_tune.analysis.ranking.verdicts import trial_verdicts
from xtts_tune.analysis.records import is_complete, train_config, trial_value
from xtts_tune.config import TrainConfig
from xtts_tune.errors import UserError
from xtts_tune.io import atomic_write_json, atomic_write_text
from xtts_tune.probes.provenance import installed
from xtts_tune.record import FULL_DATA, StudyRecord, TestComparison, TrialRecord

logger = logging.getLogger(__name__)


class ExportError(UserError):
    """The study cannot be exported as asked; the message names the study and the fix."""


def _trial_config(study: optuna.Study, trial_number: int | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(train config dict, provenance) of the recommended trial or of ``trial_number``."""
    if trial_number is None:
        rec = recommend(study)
        trial = study.trials[rec.trial_number]
        reasons = rec.reasons
    else:
        matches = [t for t in study.trials if t.number == trial_number]
        if not matches or not is_complete(matches[0]):
            done = [t.number for t in study.trials if is_complete(t)]
            raise ExportError(
                f"study '{study.study_name}' has no COMPLETE trial number {trial_number}; "
                f"complete trials: {', '.join(map(str, done)) or 'none'}"
            )
        trial = matches[0]
        fraction = TrialRecord.from_trial(trial).data_fraction
        if fraction != FULL_DATA:
            raise ExportError(
                f"study '{study.study_name}': trial {trial_number} trained on {fraction:.0%} of the train clips (a "
                "cheap rung of search.fidelity); export a full-data trial, or leave out --trial for the recommended one"
            )
        reasons = [f"trial {trial_number} chosen by hand"]
    record, study_record = TrialRecord.from_trial(trial), StudyRecord.from_study(study)
    train = train_config(study, trial)
    best_step = record.best_step
    verdict = next((v for v in trial_verdicts(study) if v.number == trial.number), None)
    comparison = TestComparison.from_study(study)
    fingerprint = study_record.fingerprint or {}
    provenance = {
        "study": study.study_name,
        "trial": trial.number,
        "val_loss": trial_value(trial),
        "best_step": best_step,
        "best_epoch": record.best_epoch,
        "verdict": verdict.verdict if verdict else None,
        "reasons": list(reasons),
        "unseen_clips": describe_test_comparison(comparison, trial.number),
        "test_comparison": comparison.to_attrs() if comparison else None,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "study_uid": study_record.uid,
        "dataset_fingerprint": fingerprint.get("dataset"),
        "split_fingerprint": fingerprint.get("split"),
        "base_model_fingerprint": fingerprint.get("base_model"),
        "xtts_tune_version": __version__,
    }
    if record.probes:  # how it sounds, beside the base model and the target's own clips, and the probes' weights
        provenance["sound"] = {
            "trial": record.probes,
            "base_model": study_record.probes_base,
            "target_clips": study_record.probes_ceiling,
            "probe_weights": installed(),
        }
    if best_step:  # stop where the trial was best; 0 means the base model itself was best
        train["max_steps"] = int(best_step)
    return train, provenance


def export_best(study: optuna.Study, out: Path, *, trial_number: int | None = None, fmt: str = "yaml") -> Path:
    """Write the winning config as a study YAML (and, with ``fmt="coqui"``, coqui GPTTrainerConfig fields).

    >>> import tempfile, yaml
    >>> from xtts_tune.analysis.examples import example_study
    >>> doc = yaml.safe_load(export_best(example_study(), f"{tempfile.mkdtemp()}/best.yaml").read_text())
    >>> doc["train"]["learning_rate"], doc["train"]["max_steps"], doc["provenance"]["trial"]
    (0.0003, 40, 1)
    """
    record = StudyRecord.from_study(study)
    stored = record.config
    if not stored:
        raise ExportError(f"study '{study.study_name}' has no stored config (was it created by xtts-tune search?)")
    train, provenance = _trial_config(study, trial_number)
    known = set(TrainConfig.__dataclass_fields__)
    # relative paths in the stored config are relative to the study's project root: make them absolute so
    # the exported YAML works wherever it is written
    root = Path(record.project_root or ".").resolve()

    def absolute(path: str) -> str:
        return str(path if Path(path).is_absolute() else root / path)

    doc = {k: v for k, v in stored.items() if k != "search"}
    doc["study_name"] = f"{stored['study_name']}-final"
    output_dir = Path(absolute(stored.get("output_dir", "runs")))
    doc["output_dir"] = str(output_dir)
    study_dir = Path(record.study_dir or output_dir / stored["study_name"])
    if doc.get("base_model", "embedded") != "embedded":
        doc["base_model"] = absolute(doc["base_model"])
    doc["data"] = dict(stored.get("data") or {})
    doc["data"]["path"] = absolute(doc["data"].get("path", "."))
    doc["data"]["split_file"] = str(study_dir / "split.json")
    doc["data"]["demo_target"] = False
    doc["train"] = {k: v for k, v in train.items() if k in known}
    doc["provenance"] = provenance
    out = Path(out)
    header = (
        f"# xtts-tune export of study '{study.study_name}', trial {provenance['trial']} "
        f"(validation loss {provenance['val_loss']:.4f}).\n"
        f"# Train the final model with: xtts-tune train --config {out}\n"
    )
    atomic_write_text(out, header + yaml.safe_dump(doc, sort_keys=False))
    if fmt == "coqui":
        coqui_out = atomic_write_json(out.with_suffix(".coqui.json"), coqui_fields(doc), indent=2)
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
