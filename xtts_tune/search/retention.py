"""Top-K checkpoint retention: keep the best checkpoints, delete the others, leave a note where one went."""

from __future__ import annotations

import datetime as _dt
import logging
from pathlib import Path

from optuna.trial import FrozenTrial, TrialState

from xtts_tune.io import atomic_write_json, finite

logger = logging.getLogger(__name__)


CHECKPOINT_NAME = "best_gpt.pth"


RETENTION_NAME = "retention.json"


def trial_checkpoint(trial: FrozenTrial) -> Path | None:
    """The trial's best checkpoint if it is still on disk (top-K retention deletes the others)."""
    path = trial.user_attrs.get("checkpoint_path")
    if path and Path(path).is_file():
        return Path(path)
    return None


def rank_value(t: FrozenTrial) -> float | None:
    if t.state not in (TrialState.COMPLETE, TrialState.PRUNED):
        return None
    return finite(t.user_attrs.get("best_val_loss", t.value))


def apply_retention(trials: list[FrozenTrial], trials_dir: Path, keep_top_k: int) -> list[int]:
    """Delete the best checkpoint of every finished trial outside the top ``keep_top_k`` (by best validation
    loss, COMPLETE or PRUNED); write ``retention.json`` in its folder. Return the numbers kept."""
    ranked = sorted(
        ((v, t.number) for t in trials if (v := rank_value(t)) is not None),
        key=lambda x: (x[0], x[1]),
    )
    keep = {n for _, n in ranked[:keep_top_k]}
    for t in trials:
        if not t.state.is_finished() or t.number in keep:
            continue
        candidates = {trials_dir / f"trial-{t.number:04d}" / CHECKPOINT_NAME}
        if t.user_attrs.get("checkpoint_path"):
            candidates.add(Path(t.user_attrs["checkpoint_path"]))
        for ckpt in candidates:
            if not ckpt.is_file():
                continue
            size = ckpt.stat().st_size
            ckpt.unlink()
            note = {
                "checkpoint_deleted": True,
                "checkpoint_path": str(ckpt),
                "bytes_freed": size,
                "reason": f"not among the top {keep_top_k} trials by best validation loss",
                "deleted_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            }
            atomic_write_json(note, ckpt.parent / RETENTION_NAME)
            logger.info("trial %d: deleted %s (not in the top %d)", t.number, ckpt, keep_top_k)
    return sorted(keep)
