"""Real fine-tunes of the tiny base on the demo target voice: the knobs matter the way the guide says."""

import dataclasses

import pytest

from xtts_tune.analysis.curve.diagnosis import diagnose
from xtts_tune.training.loop import run_trial

pytestmark = pytest.mark.slow


def test_sane_config_beats_the_base_and_aggressive_config_overfits(fresh_base, demo_target, tmp_path, make_config):
    sane_cfg = make_config(
        demo_target,
        tmp_path / "sane",
        freeze_depth=2,
        learning_rate=1e-4,
        weight_decay=0.1,
        max_epochs=2,
        max_steps=0,
        eval_every=5,
        patience=3,
        augment_prob=0.3,
    )
    sane = run_trial(sane_cfg, base=fresh_base, run_dir=tmp_path / "sane")
    base_val = sane.curve[0]["val_loss"]  # step 0: the base model before any update
    assert sane.curve[0]["step"] == 0
    assert sane.best_val_loss < base_val - 0.01, (base_val, sane.best_val_loss)

    # on 8 training clips (as the demo study trains) a high learning rate memorises them within a few epochs
    aggressive_cfg = make_config(
        demo_target,
        tmp_path / "aggressive",
        freeze_depth=0,
        learning_rate=3e-3,
        weight_decay=0.0,
        max_epochs=16,
        max_steps=0,
        eval_every=2,
        patience=100,
        augment_prob=0.0,
        grad_clip_norm=0.0,
        batch_size=4,
    )
    aggressive_cfg = dataclasses.replace(aggressive_cfg, data=dataclasses.replace(aggressive_cfg.data, train_count=8))
    aggressive = run_trial(aggressive_cfg, base=fresh_base, run_dir=tmp_path / "aggressive")
    curve = aggressive.curve
    best = min(range(len(curve)), key=lambda i: curve[i]["val_loss"])
    assert best < len(curve) - 1
    assert curve[-1]["val_loss"] > curve[best]["val_loss"] * 1.02  # validation rose past its minimum ...
    assert curve[-1]["train_loss"] < curve[best]["train_loss"]  # ... while train loss kept falling

    # the diagnosis tells them apart (issue: diagnosis on real demo trials)
    assert diagnose(sane.curve_path).verdict == "healthy"
    assert diagnose(aggressive.curve_path).verdict == "overfitting"
