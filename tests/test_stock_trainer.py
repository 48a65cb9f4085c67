"""The benchmark's baseline: the same fine-tune through coqui's stock Trainer.fit()."""

import logging
import math

import pytest
import torch

from benchmarks.stock_trainer import run_stock_trainer
from xtts_tune.training.evaluation import validation_loss
from xtts_tune.training.loop import run_trial
from xtts_tune.training.prepare import prepare_data

pytestmark = pytest.mark.slow


def test_stock_trainer_runs_the_same_fine_tune_and_learns_like_ours(fresh_base, demo_target, tmp_path, make_config):
    cfg = make_config(
        demo_target,
        tmp_path / "out",
        max_steps=0,
        max_epochs=1,
        eval_every=10**6,
        eval_at_start=False,
        learning_rate=3e-4,
        freeze_depth=2,
    )
    data = prepare_data(cfg, fresh_base)
    before = {k: v.clone() for k, v in fresh_base.gpt.state_dict().items()}
    handlers = list(logging.getLogger("trainer").handlers)

    stock = run_stock_trainer(cfg, base=fresh_base, data=data, output_dir=tmp_path / "stock")

    steps_per_epoch = math.ceil(len(data.split.train) / cfg.train.batch_size)
    assert stock.steps == steps_per_epoch and stock.micro_batches == steps_per_epoch
    assert len(stock.train_losses) == steps_per_epoch  # eval batches are not counted as training
    assert len(stock.eval_losses) == 1 and math.isfinite(stock.eval_losses[0])
    assert stock.wall_seconds > 0 and stock.steps_per_second > 0
    # the base model is left exactly as it was, all trainable again, and coqui's logger as we found it
    after = fresh_base.gpt.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.requires_grad for p in fresh_base.gpt.parameters())
    assert logging.getLogger("trainer").handlers == handlers

    ours = run_trial(cfg, base=fresh_base, data=data, run_dir=tmp_path / "ours")
    assert ours.steps == stock.steps
    base_val = run_trial(  # the base model's validation loss: stop at the evaluation before the first step
        make_config(demo_target, tmp_path / "out", eval_at_start=True),
        base=fresh_base,
        data=data,
        run_dir=tmp_path / "base",
        callback=lambda record: True,
    ).best_val_loss
    # the bench measures stock-trained weights with validation_loss: the same figure a trial records
    assert validation_loss(cfg, base=fresh_base, data=data)["loss"] == pytest.approx(base_val, rel=1e-6)
    # both learned, and land close to each other (they differ only in clip order and conditioning slices)
    assert stock.eval_losses[0] < base_val - 0.2 and ours.best_val_loss < base_val - 0.2
    assert abs(stock.eval_losses[0] - ours.best_val_loss) < 0.15
