"""Score the recommended trial and the guide's recipe on the test split, which selection never saw
(:func:`score_on_test`), or every trial whose checkpoint is kept (:func:`score_kept_on_test`).

Runs at the end of a search (and of ``xtts-tune confirm``) with the base model and data already loaded: each
trial's checkpoint (its trained tensors) is put on the base and evaluated on the test clips exactly as
trials evaluate validation clips. Retention always keeps both checkpoints
(:func:`xtts_tune.search.retention.kept_trials`).
"""

from __future__ import annotations

import logging
from typing import Any

import optuna

from xtts_tune.analysis.holdout import TEST_COMPARISON
from xtts_tune.analysis.ranking import rank
from xtts_tune.analysis.records import guide_trial
from xtts_tune.search.retention import trial_checkpoint

logger = logging.getLogger(__name__)


def score_on_test(study: optuna.Study, cfg, base, data) -> dict[str, Any] | None:
    """Store and return the comparison (``None`` while there is no recommendation)."""
    from xtts_tune.model.checkpoint import load_trained_tensors
    from xtts_tune.training.loop import validation_loss

    trials = study.get_trials(deepcopy=False)
    winner = rank(study, trials=trials).winner
    if winner is None:
        return None
    test = list(data.split.test)
    if not test:
        result: dict[str, Any] = {"clips": 0, "winner": winner.number,
                                  "note": "no test split (data.test_fraction: 0): nothing selection never saw"}
        study.set_user_attr(TEST_COMPARISON, result)
        return result

    def loss_of(number: int | None) -> float | None:
        trial = next((t for t in trials if t.number == number), None)
        path = trial_checkpoint(trial) if trial is not None else None
        if path is None:
            return None
        tensors = load_trained_tensors(path, base_fingerprint=base.fingerprint)
        return validation_loss(cfg, base=base, data=data, state=tensors, clips=test)["loss"]

    guide = guide_trial(trials)
    result = {
        "clips": len(test),
        "winner": winner.number,
        "winner_loss": loss_of(winner.number),
        "winner_val_loss": winner.value,
        "guide": guide.number if guide is not None else None,
        "guide_loss": loss_of(guide.number) if guide is not None else None,
        "base_loss": validation_loss(cfg, base=base, data=data, clips=test)["loss"],
    }
    if result["winner_loss"] is None:
        logger.warning("trial %d has no checkpoint to score on the test clips", winner.number)
        return None
    study.set_user_attr(TEST_COMPARISON, result)
    return result


TEST_SCORES_ATTR = "test_scores"
"""Study user attribute: :func:`score_kept_on_test`'s rows (the last time it ran)."""


def score_kept_on_test(study: optuna.Study, cfg, base, data, *, store: bool = True) -> list[dict[str, Any]]:
    """Every finished trial whose checkpoint is still on disk, scored on the test split: one row per trial,
    ready for a report table, in the study's ranking order (candidates first):
    ``{"number", "state", "verdict", "rising_at_end", "overfit_onset_step", "best_step", "val_loss",
    "test_loss", "recommended"}`` (``test_loss`` is ``None`` for a trial whose checkpoint retention deleted).
    With ``store``, the rows are kept in the study's :data:`TEST_SCORES_ATTR` attribute.

    Keep every checkpoint (``--set search.keep_top_k=N`` with N at least the number of trials) to score them
    all; :mod:`xtts_tune.analysis.flag_effect` reads the rows.
    """
    from xtts_tune.model.checkpoint import load_trained_tensors
    from xtts_tune.training.loop import validation_loss

    trials = study.get_trials(deepcopy=False)
    by_number = {t.number: t for t in trials}
    ranking = rank(study, trials=trials)
    test = list(data.split.test)
    rows = []
    for number in ranking.order():
        v = next(x for x in ranking.verdicts if x.number == number)
        path = trial_checkpoint(by_number[number])
        loss = None
        if path is not None and test:
            tensors = load_trained_tensors(path, base_fingerprint=base.fingerprint)
            loss = validation_loss(cfg, base=base, data=data, state=tensors, clips=test)["loss"]
        rows.append({"number": number, "state": v.state, "verdict": v.verdict, "rising_at_end": v.rising_at_end,
                     "overfit_onset_step": v.overfit_onset_step, "best_step": v.best_step, "val_loss": v.value,
                     "test_loss": loss, "recommended": ranking.winner is not None and number == ranking.winner.number})
    if store:
        study.set_user_attr(TEST_SCORES_ATTR, rows)
    return rows
