"""Score the recommended trial and the guide's recipe on the test split, which selection never saw.

Runs at the end of a search (and of ``xtts-tune confirm``) with the base model and data already loaded: each
trial's checkpoint (its trained tensors) is put on the base and evaluated on the test clips exactly as
trials evaluate validation clips. Retention always keeps both checkpoints
(:func:`xtts_tune.search.retention.kept_trials`).
"""

from __future__ import annotations

import logging

import optuna

from xtts_tune.analysis.ranking import rank
from xtts_tune.analysis.records import guide_trial
from xtts_tune.record import TestComparison, write_test_comparison
from xtts_tune.search.retention import trial_checkpoint

logger = logging.getLogger(__name__)


def score_on_test(study: optuna.Study, cfg, base, data) -> TestComparison | None:
    """Store and return the comparison (``None`` while there is no recommendation)."""
    from xtts_tune.model.checkpoint import load_trained_tensors
    from xtts_tune.training.loop import validation_loss

    trials = study.get_trials(deepcopy=False)
    winner = rank(study, trials=trials).winner
    if winner is None:
        return None
    test = list(data.split.test)
    if not test:
        result = TestComparison(clips=0, winner=winner.number,
                                note="no test split (data.test_fraction: 0): nothing selection never saw")
        write_test_comparison(study, result)
        return result

    def loss_of(number: int | None) -> float | None:
        trial = next((t for t in trials if t.number == number), None)
        path = trial_checkpoint(trial) if trial is not None else None
        if path is None:
            return None
        tensors = load_trained_tensors(path, base_fingerprint=base.fingerprint)
        return validation_loss(cfg, base=base, data=data, state=tensors, clips=test)["loss"]

    guide = guide_trial(trials)
    result = TestComparison(
        clips=len(test),
        winner=winner.number,
        winner_loss=loss_of(winner.number),
        winner_val_loss=winner.value,
        guide=guide.number if guide is not None else None,
        guide_loss=loss_of(guide.number) if guide is not None else None,
        base_loss=validation_loss(cfg, base=base, data=data, clips=test)["loss"],
    )
    if result.winner_loss is None:
        logger.warning("trial %d has no checkpoint to score on the test clips", winner.number)
        return None
    write_test_comparison(study, result)
    return result
