"""What optuna-dashboard shows: per trial a Markdown note (verdict, reasons, numbers, the curve), the curve as
a picture and as JSON (artifacts); per study a note with the recommendation and the unseen-clips comparison.

Where each attribute is stored (the long ones as system attributes, which the dashboard does not cut) is
:mod:`xtts_tune.record`'s business."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import optuna

from xtts_tune.analysis.evidence.holdout import describe_test_comparison
from xtts_tune.analysis.ranking.forgetting import forgetting_line
from xtts_tune.analysis.ranking.forgetting_ear import ear_line
from xtts_tune.analysis.ranking.sound import describe_probes
from xtts_tune.analysis.records import stop_reason_words
from xtts_tune.analysis.rungs import rungs_line
from xtts_tune.analysis.study_analysis import analyze
from xtts_tune.io import atomic_path, fmt
from xtts_tune.record import ForgettingSet, TestComparison, TrialRecord, write_trial
from xtts_tune.search.settings import quiet_experimental

logger = logging.getLogger(__name__)


def trial_note(number: int, state: str, record: TrialRecord, params: dict[str, Any]) -> str:
    """The Markdown note the dashboard shows for a trial: verdict, reasons, numbers and the curve."""
    diag = record.diagnosis or {}
    title = f"{state} at step {record.steps}" if state == "PRUNED" else state
    lines = [f"## Trial {number} · {title}", ""]
    if diag:
        lines.append(f"**Verdict: {diag.get('verdict')}**")
        lines += [f"- {r}" for r in diag.get("reasons", [])]
    else:
        lines.append("**Verdict: not enough evaluations to diagnose**")
    best = record.best_val_loss
    lines += [
        "",
        "| | |",
        "|---|---|",
        f"| best validation loss | {best:.4f} at step {record.best_step} (epoch {record.best_epoch}) |"
        if best is not None
        else "| best validation loss | - |",
        f"| optimizer steps | {record.steps} of {record.planned_steps} planned "
        f"({stop_reason_words(record.stop_reason)}) |",
        f"| trainable parameters | {record.trainable_params or 0:,} of {record.total_params or 0:,} "
        f"({100 * (record.trainable_share or 0):.1f}%) |",
        f"| wall time | {record.wall_seconds or 0:.1f} s |",
        f"| seed | {record.seed} |",
        f"| params | {', '.join(f'{k}={fmt(v)}' for k, v in params.items())} |",
        "",
        *(
            [f"Listening samples: {len(record.samples)} wavs (this trial's artifacts; the report plays them)", ""]
            if record.samples
            else []
        ),
        *([f"By ear: {describe_probes(record.probes)}", ""] if record.probes else []),
        "### Curve",
        "",
        "| step | epoch | train loss | val loss | mel CE | text CE |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    curve = record.curve or []
    shown = _subsample(len(curve), 40, record.best_step, curve)
    for i in shown:
        r = curve[i]
        mark = " ★" if r.get("step") == record.best_step else ""
        lines.append(
            f"| {r.get('step')}{mark} | {_num(r.get('epoch'), 2)} | {_num(r.get('train_loss'))} | "
            f"{_num(r.get('val_loss'))} | {_num(r.get('val_loss_mel_ce'))} | {_num(r.get('val_loss_text_ce'))} |"
        )
    if len(shown) < len(curve):
        lines.append(f"\n({len(shown)} of {len(curve)} evaluations shown; the full curve is the trial's artifact)")
    return "\n".join(lines)


def _subsample(n: int, most: int, best_step: Any, curve: list[dict]) -> list[int]:
    if n <= most:
        return list(range(n))
    idx = {round(i * (n - 1) / (most - 1)) for i in range(most)}
    idx |= {i for i, r in enumerate(curve) if r.get("step") == best_step}
    return sorted(idx)


def _num(x: Any, digits: int = 4) -> str:
    return f"{x:.{digits}f}" if isinstance(x, (int, float)) and not isinstance(x, bool) else "-"


def save_note_and_artifact(trial: optuna.Trial, note: str, curve_path: Path, artifact_dir: Path) -> None:
    """Save the trial's dashboard note and upload its curve as a picture (PNG) and as JSON.

    The dashboard extras never lose a trial: a failure here is logged as a warning and the trial goes on.
    """
    try:
        from optuna_dashboard import save_note

        save_note(trial, note)
    except Exception as exc:
        logger.warning("trial %d: could not save the dashboard note (%s)", trial.number, exc)
    png = curve_path.with_suffix(".png")
    try:
        curve_png(json.loads(curve_path.read_text())["curve"], png, title=f"trial {trial.number}")
    except Exception as exc:
        logger.warning("trial %d: could not draw the curve (%s)", trial.number, exc)
    ids = dict(
        curve_png_artifact_id=upload_file(trial, png, artifact_dir, "image/png"),
        curve_artifact_id=upload_file(trial, curve_path, artifact_dir, "application/json"),
    )
    write_trial(trial, **{name: value for name, value in ids.items() if value is not None})


def upload_file(trial: optuna.Trial, path: Path, artifact_dir: Path, mimetype: str) -> str | None:
    """Upload a file as the trial's dashboard artifact; its id, or None (missing file, or a failure, which is
    logged: the dashboard extras never lose a trial)."""
    if not path.is_file():
        return None
    try:
        from optuna.artifacts import FileSystemArtifactStore, upload_artifact

        with quiet_experimental():
            return upload_artifact(
                artifact_store=FileSystemArtifactStore(str(artifact_dir)),
                file_path=str(path),
                study_or_trial=trial,
                mimetype=mimetype,
            )
    except Exception as exc:
        logger.warning("trial %d: could not upload %s to the dashboard (%s)", trial.number, path.name, exc)
        return None


def curve_png(curve: list[dict], path: Path, *, title: str = "") -> Path:
    """A small picture of a curve (validation and train loss by step), drawn with matplotlib (coqui's own
    dependency; Plotly needs a browser engine to write a PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
    steps = [r["step"] for r in curve]
    ax.plot(steps, [r.get("val_loss") for r in curve], "o-", color="#d62728", label="validation")
    train = [(r["step"], r["train_loss"]) for r in curve if r.get("train_loss") is not None]
    if train:
        ax.plot(*zip(*train), "s--", color="#1f77b4", label="train (mean since last eval)")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path


def study_note(study: optuna.Study) -> str:
    """The study's Markdown note: the recommendation with its reasons and next steps, the unseen-clips
    comparison, and the verdict counts."""
    analysis = analyze(study)
    rec = analysis.recommendation
    counts = ", ".join(f"{n} {v}" for v, n in analysis.verdict_counts().items()) or "none yet"
    lines = [f"# {study.study_name}", ""]
    if rec is None:
        lines += ["**No recommendation yet.**", "", analysis.no_recommendation or ""]
    else:
        params = ", ".join(f"{k}={fmt(v, 3)}" for k, v in rec.params.items())
        forgotten = forgetting_line(analysis.verdicts, ForgettingSet.from_study(study))
        by_ear = ear_line(analysis.verdicts)
        lines += [
            f"**Recommended: trial {rec.trial_number}** ({rec.verdict}), validation loss {rec.val_loss:.4f}, "
            f"stop at step {rec.stop_step}: {params}",
            "",
            f"**Unseen clips:** {describe_test_comparison(TestComparison.from_study(study), rec.trial_number)}",
            "",
            *([f"**Forgetting:** {forgotten.split(': ', 1)[1]}", ""] if forgotten else []),
            *([f"**Forgetting by ear:** {by_ear.split(': ', 1)[1]}", ""] if by_ear else []),
            "### Why",
            *[f"- {r}" for r in rec.reasons],
            "",
            "### Next",
            *[f"- `{s}`" if s.startswith("xtts-tune") else f"- {s}" for s in rec.next_steps],
        ]
    lines += ["", f"Verdicts: {counts}."]
    rungs = rungs_line(study.get_trials(deepcopy=False))
    if rungs:
        lines += ["", f"{rungs[0].upper()}{rungs[1:]}."]
    return "\n".join(lines)


def save_study_note(study: optuna.Study) -> None:
    """Write :func:`study_note` to the dashboard (a failure is logged: it never loses a study)."""
    try:
        from optuna_dashboard import save_note

        save_note(study, study_note(study))
    except Exception as exc:
        logger.warning("study %s: could not save the dashboard note (%s)", study.study_name, exc)
