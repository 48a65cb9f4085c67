"""What the dashboard shows for a trial: a Markdown note (verdict, reasons, numbers, the curve) and the curve
file as an artifact."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import optuna

from xtts_tune.io import fmt
from xtts_tune.search.settings import quiet_experimental

logger = logging.getLogger(__name__)


def trial_note(number: int, state: str, attrs: dict[str, Any], params: dict[str, Any]) -> str:
    """The Markdown note the dashboard shows for a trial: verdict, reasons, numbers and the curve."""
    diag = attrs.get("diagnosis") or {}
    title = f"{state} at step {attrs.get('steps')}" if state == "PRUNED" else state
    lines = [f"## Trial {number} · {title}", ""]
    if diag:
        lines.append(f"**Verdict: {diag.get('verdict')}**")
        lines += [f"- {r}" for r in diag.get("reasons", [])]
    else:
        lines.append("**Verdict: not enough evaluations to diagnose**")
    best = attrs.get("best_val_loss")
    lines += [
        "",
        "| | |",
        "|---|---|",
        f"| best validation loss | {best:.4f} at step {attrs.get('best_step')} (epoch {attrs.get('best_epoch')}) |"
        if best is not None
        else "| best validation loss | - |",
        f"| optimizer steps | {attrs.get('steps')} of {attrs.get('planned_steps')} planned "
        f"({_STOP_REASONS.get(attrs.get('stop_reason'), attrs.get('stop_reason'))}) |",
        f"| trainable parameters | {attrs.get('trainable_params'):,} of {attrs.get('total_params'):,} "
        f"({100 * (attrs.get('trainable_share') or 0):.1f}%) |",
        f"| wall time | {attrs.get('wall_seconds', 0):.1f} s |",
        f"| seed | {attrs.get('seed')} |",
        f"| params | {', '.join(f'{k}={fmt(v)}' for k, v in params.items())} |",
        "",
        *([f"Listening samples: {len(attrs['samples'])} wavs (this trial's artifacts; the report plays them)", ""]
          if attrs.get("samples") else []),
        "### Curve",
        "",
        "| step | epoch | train loss | val loss | mel CE | text CE |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    curve = attrs.get("curve") or []
    shown = _subsample(len(curve), 40, attrs.get("best_step"), curve)
    for i in shown:
        r = curve[i]
        mark = " ★" if r.get("step") == attrs.get("best_step") else ""
        lines.append(
            f"| {r.get('step')}{mark} | {_num(r.get('epoch'), 2)} | {_num(r.get('train_loss'))} | "
            f"{_num(r.get('val_loss'))} | {_num(r.get('val_loss_mel_ce'))} | {_num(r.get('val_loss_text_ce'))} |"
        )
    if len(shown) < len(curve):
        lines.append(f"\n({len(shown)} of {len(curve)} evaluations shown; the full curve is the trial's artifact)")
    return "\n".join(lines)


_STOP_REASONS = {
    "completed": "ran to the end",
    "max_steps": "reached max_steps",
    "early_stopped": "early stopping",
    "stopped_by_callback": "pruned",
}


def _subsample(n: int, most: int, best_step: Any, curve: list[dict]) -> list[int]:
    if n <= most:
        return list(range(n))
    idx = {round(i * (n - 1) / (most - 1)) for i in range(most)}
    idx |= {i for i, r in enumerate(curve) if r.get("step") == best_step}
    return sorted(idx)


def _num(x: Any, digits: int = 4) -> str:
    return f"{x:.{digits}f}" if isinstance(x, (int, float)) and not isinstance(x, bool) else "-"


def save_note_and_artifact(trial: optuna.Trial, note: str, curve_path: Path, artifact_dir: Path) -> None:
    """Save the trial's dashboard note and upload its curve file as an artifact.

    The dashboard extras never lose a trial: a failure here is logged as a warning and the trial goes on.
    """
    try:
        from optuna_dashboard import save_note

        save_note(trial, note)
    except Exception as exc:
        logger.warning("trial %d: could not save the dashboard note (%s)", trial.number, exc)
    try:
        from optuna.artifacts import FileSystemArtifactStore, upload_artifact

        with quiet_experimental():
            trial.set_user_attr(
                "curve_artifact_id",
                upload_artifact(
                    artifact_store=FileSystemArtifactStore(str(artifact_dir)),
                    file_path=str(curve_path),
                    study_or_trial=trial,
                    mimetype="application/json",
                ),
            )
    except Exception as exc:
        logger.warning("trial %d: could not upload the curve artifact (%s)", trial.number, exc)
