"""Top-K checkpoint retention by the study's one ranking: keep those checkpoints, delete the others, leave a
note where one went."""

from __future__ import annotations

import datetime as _dt
import logging
from collections.abc import Sequence
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial

from xtts_tune.analysis.ranking.order import rank
from xtts_tune.analysis.records import guide_trial
from xtts_tune.io import atomic_write_json
from xtts_tune.record import TrialRecord

logger = logging.getLogger(__name__)


CHECKPOINT_NAME = "best_gpt.pth"


RETENTION_NAME = "retention.json"


def trial_checkpoint(trial: FrozenTrial) -> Path | None:
    """The trial's best checkpoint if it is still on disk (top-K retention deletes the others)."""
    path = TrialRecord.from_trial(trial).checkpoint_path
    if path and Path(path).is_file():
        return Path(path)
    return None


def kept_trials(study: optuna.Study, trials: Sequence[FrozenTrial], keep_top_k: int) -> set[int]:
    """The trials whose checkpoints are kept: the first ``keep_top_k`` of the study's one ranking
    (:func:`xtts_tune.analysis.ranking.order.rank`), and always the recommended trial, the runner-up and the guide's
    configuration (the unseen-clips comparison scores the winner against it)."""
    ranking = rank(study, trials=trials)
    keep = set(ranking.order()[:keep_top_k])
    keep |= {v.number for v in (ranking.winner, ranking.runner_up) if v is not None}
    guide = guide_trial(trials)
    if guide is not None:
        keep.add(guide.number)
    return keep


def apply_retention(study: optuna.Study, trials: list[FrozenTrial], trials_dir: Path, keep_top_k: int) -> list[int]:
    """Delete the best checkpoint of every finished trial outside :func:`kept_trials`; write
    ``retention.json`` in its folder. Return the numbers kept."""
    keep = kept_trials(study, trials, keep_top_k)
    for t in trials:
        if not t.state.is_finished() or t.number in keep:
            continue
        candidates = {trials_dir / f"trial-{t.number:04d}" / CHECKPOINT_NAME}
        stored = TrialRecord.from_trial(t).checkpoint_path
        if stored:
            candidates.add(Path(stored))
        for ckpt in candidates:
            if not ckpt.is_file():
                continue
            size = ckpt.stat().st_size
            ckpt.unlink()
            note = {
                "checkpoint_deleted": True,
                "checkpoint_path": str(ckpt),
                "bytes_freed": size,
                "reason": f"not among the top {keep_top_k} trials of the study's ranking (nor its recommended "
                "trial, runner-up or the guide's configuration)",
                "deleted_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            }
            atomic_write_json(ckpt.parent / RETENTION_NAME, note)
            logger.info("trial %d: deleted %s (not in the top %d)", t.number, ckpt, keep_top_k)
    return sorted(keep)
