"""Score the recommended trial and the guide's recipe on the test split, which selection never saw
(:func:`score_on_test`), or every trial whose checkpoint is kept (:func:`score_kept_on_test`).

Runs at the end of a search (and of ``xtts-tune confirm``) with the base model and data already loaded: each
trial's checkpoint (its trained tensors) is put on the base and evaluated on the test clips exactly as
trials evaluate validation clips. Retention always keeps both checkpoints
(:func:`xtts_tune.search.retention.kept_trials`).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import optuna

from xtts_tune.analysis.ranking.order import rank
from xtts_tune.analysis.records import guide_trial
from xtts_tune.record import TestComparison, write_study, write_test_comparison
from xtts_tune.search.ears import sound_on_test
from xtts_tune.search.retention import trial_checkpoint

logger = logging.getLogger(__name__)


def score_on_test(study: optuna.Study, cfg, base, data, *, plan=None) -> TestComparison | None:
    """Store and return the comparison (``None`` while there is no recommendation). With a sample ``plan``
    (a base with a decoder), the three also speak test texts and the probes score them
    (:func:`xtts_tune.search.ears.sound_on_test`)."""
    from xtts_tune.model.checkpoint import load_trained_tensors
    from xtts_tune.training.evaluation import validation_loss

    trials = study.get_trials(deepcopy=False)
    winner = rank(study, trials=trials).winner
    if winner is None:
        return None
    test = list(data.split.test)
    if not test:
        result = TestComparison(
            clips=0, winner=winner.number, note="no test split (data.test_fraction: 0): nothing selection never saw"
        )
        write_test_comparison(study, result)
        return result

    def tensors_of(number: int | None):
        trial = next((t for t in trials if t.number == number), None)
        path = trial_checkpoint(trial) if trial is not None else None
        return None if path is None else load_trained_tensors(path, base_fingerprint=base.fingerprint)

    def loss_of(number: int | None) -> float | None:
        tensors = tensors_of(number)
        if tensors is None:
            return None
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
    if plan is not None:
        models = {"winner": tensors_of(winner.number), "base": None}
        if guide is not None and guide.number != winner.number and tensors_of(guide.number) is not None:
            models["guide"] = tensors_of(guide.number)
        texts = [data.clips[c].text for c in sorted(test)]
        sound = sound_on_test(plan, texts, models, cfg.study_dir / "test-samples")
        result = dataclasses.replace(result, sound=sound)
    write_test_comparison(study, result)
    return result


def score_kept_on_test(study: optuna.Study, cfg, base, data, *, store: bool = True) -> list[dict[str, Any]]:
    """Every finished trial whose checkpoint is still on disk, scored on the test split: one row per trial,
    ready for a report table, in the study's ranking order (candidates first):
    ``{"number", "state", "verdict", "rising_at_end", "overfit_onset_step", "best_step", "val_loss",
    "test_loss", "recommended"}`` (``test_loss`` is ``None`` for a trial whose checkpoint retention deleted).
    With ``store``, the rows are kept in the study's record (``test_scores``).

    Keep every checkpoint (``--set search.keep_top_k=N`` with N at least the number of trials) to score them
    all; :mod:`xtts_tune.analysis.evidence.flag_effect` reads the rows.
    """
    from xtts_tune.model.checkpoint import load_trained_tensors
    from xtts_tune.training.evaluation import validation_loss

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
        rows.append(
            {
                "number": number,
                "state": v.state,
                "verdict": v.verdict,
                "rising_at_end": v.rising_at_end,
                "overfit_onset_step": v.overfit_onset_step,
                "best_step": v.best_step,
                "val_loss": v.value,
                "test_loss": loss,
                "recommended": ranking.winner is not None and number == ranking.winner.number,
            }
        )
    if store:
        write_study(study, test_scores=rows)
    return rows
