"""A small in-memory study with hand-made learning curves, for examples and tests (no training, no disk).

>>> study = example_study()
>>> [TrialRecord.from_trial(t).enqueued for t in study.trials]
['guide', None, None]
"""

from __future__ import annotations

import optuna
from optuna.distributions import FloatDistribution, IntDistribution

from xtts_tune.config import StudyConfig
from xtts_tune.record import TrialRecord, write_study

EXAMPLE_CURVES = {
    # (freeze_depth, learning_rate): validation losses every 10 steps; train loss falls 0.3 per evaluation
    (2, 5e-5): [4.0, 3.9, 3.85, 3.82, 3.80],  # the guide's configuration: learns slowly
    (2, 3e-4): [4.0, 3.5, 3.2, 3.1, 3.05],  # healthy, and the best
    (0, 3e-3): [4.0, 3.0, 3.2, 4.9, 3.8],  # unstable: a spike (x1.53) at step 30
}


def example_study(name: str = "example") -> optuna.Study:
    """An in-memory study of three COMPLETE trials as the search stores them (params, value, curve, steps,
    train config; the study's config), the first enqueued as the guide's configuration."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=name, direction="minimize")
    cfg = StudyConfig(study_name=name)
    write_study(study, config=cfg.to_dict())
    distributions = {"freeze_depth": IntDistribution(0, 4), "learning_rate": FloatDistribution(1e-5, 1e-2, log=True)}
    for i, ((depth, lr), losses) in enumerate(EXAMPLE_CURVES.items()):
        curve = [
            {"step": 10 * k, "epoch": k / 2, "train_loss": None if k == 0 else 4.2 - 0.3 * k, "val_loss": v}
            for k, v in enumerate(losses)
        ]
        best = min(range(len(losses)), key=losses.__getitem__)
        user_attrs, system_attrs = TrialRecord(
            curve=curve,
            best_step=10 * best,
            best_epoch=best / 2,
            best_val_loss=losses[best],
            steps=10 * (len(losses) - 1),
            planned_steps=10 * (len(losses) - 1),
            stop_reason="completed",
            trainable_share=0.05 if depth else 0.9,
            seed=0,
            train_config={**cfg.to_dict()["train"], "freeze_depth": depth, "learning_rate": lr},
            enqueued="guide" if i == 0 else None,
        ).split_attrs()
        study.add_trial(
            optuna.trial.create_trial(
                params={"freeze_depth": depth, "learning_rate": lr},
                distributions=distributions,
                value=losses[best],
                user_attrs=user_attrs,
                system_attrs=system_attrs,
                intermediate_values={10 * k: v for k, v in enumerate(losses)},
            )
        )
    return study
