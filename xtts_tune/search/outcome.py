"""What a trial leaves in the study when it ends: its record (:func:`trial_record`, the search bench's replayed
trials get the same), and, when Ctrl-C or a full disk stopped it, its params queued to run again
(:func:`requeue_interrupted`).
"""

from __future__ import annotations

import dataclasses
import logging

import optuna
from optuna.trial import TrialState

from xtts_tune.analysis.curve.diagnosis import diagnose
from xtts_tune.analysis.ranking.verdicts import REJECTED, curve_verdict
from xtts_tune.config import TrainConfig
from xtts_tune.io import finite, json_safe
from xtts_tune.record import TrialRecord, retry_attrs

logger = logging.getLogger(__name__)


def trial_record(result, train: TrainConfig, thresholds) -> TrialRecord:
    """The record a finished trial gets (``result``: its :class:`~xtts_tune.training.result.TrialResult`): the
    curve, best step and loss, steps spent and planned, stop reason, trainable share, the train config, the
    diagnosis and verdict under ``thresholds``, and whether the ranking rejects that verdict (the sampler's
    constraint). The search bench's replayed trials get it the same way.
    """
    try:
        diagnosis = diagnose(result.curve, thresholds=thresholds, trainable_share=result.params.share).to_dict()
    except ValueError as exc:
        logger.info("no diagnosis: %s", exc)
        diagnosis = None
    # the dashboard's short verdict: this trial's own (too few evaluations is inconclusive)
    verdict = curve_verdict(result.curve, thresholds=thresholds, trainable_share=result.params.share)
    return TrialRecord(
        curve=json_safe(result.curve),
        best_step=result.best_step,
        best_epoch=finite(result.best_epoch),
        best_val_loss=finite(result.best_val_loss),
        steps=result.steps,
        planned_steps=result.planned_steps,
        stop_reason=result.stop_reason,
        trainable_share=result.params.share,
        trainable_params=result.params.trainable,
        total_params=result.params.total,
        wall_seconds=round(result.wall_seconds, 3),
        compute_seconds=round(result.compute_seconds, 3),
        checkpoint_path=str(result.checkpoint_path) if result.checkpoint_path else None,
        curve_path=str(result.curve_path),
        seed=train.seed,
        train_config=json_safe(dataclasses.asdict(train)),
        diagnosis=diagnosis,
        verdict=verdict.verdict if diagnosis else None,
        rejected=1.0 if diagnosis and verdict.verdict in REJECTED else 0.0,  # the ranking's rejection
    )


def requeue_interrupted(study: optuna.Study, number: int) -> None:
    """Queue the params of a trial stopped by Ctrl-C so the next run tries them again."""
    for t in study.get_trials(deepcopy=False):
        if t.number == number and t.state == TrialState.FAIL and TrialRecord.from_trial(t).interrupted:
            if not t.params:
                return
            user_attrs, system_attrs = retry_attrs(number, TrialRecord.from_trial(t).fidelity)
            study.add_trial(
                optuna.trial.create_trial(
                    state=TrialState.WAITING,
                    params=t.params,
                    distributions=t.distributions,
                    user_attrs=user_attrs,
                    system_attrs=system_attrs,
                )
            )
            logger.info("trial %d was interrupted; its params are queued to run again", number)
            return
