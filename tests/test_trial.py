import json
import math

import pytest
import torch

from xtts_tune.model.checkpoint import (
    CheckpointError,
    full_gpt_state,
    load_trained_tensors,
)
from xtts_tune.training.early_stopping import EarlyStopping
from xtts_tune.training.loop import run_trial


def _feed(stopper, values):
    for i, v in enumerate(values):
        if stopper.update(v, i):
            return i
    return None


def test_early_stopping_guide_bad_configuration():
    stopper = EarlyStopping(patience=1, min_delta=0.01)
    stopped_at = _feed(stopper, [3.412, 3.427, 3.607])
    assert stopped_at == 1 and stopper.best_index == 0 and stopper.best == 3.412


def test_early_stopping_guide_good_configuration():
    stopper = EarlyStopping(patience=1, min_delta=0.01)
    stopped_at = _feed(stopper, [3.412, 3.350, 3.380])
    assert stopped_at == 2 and stopper.best_index == 1 and stopper.best == 3.350


def test_min_delta_is_absolute():
    # 3.412 -> 3.405 is better, but by less than 0.01: it is kept as best yet counts against patience
    stopper = EarlyStopping(patience=1, min_delta=0.01)
    assert _feed(stopper, [3.412, 3.405]) == 1 and stopper.best_index == 1
    # a relative reading (1 % of 3.412 = 0.034) would stop on -0.02; the absolute one does not
    stopper = EarlyStopping(patience=1, min_delta=0.01)
    assert _feed(stopper, [3.412, 3.392]) is None
    assert _feed(EarlyStopping(patience=2, min_delta=0.0), [1.0, float("nan"), float("nan")]) == 2


def test_frozen_parameters_are_bit_identical_and_trainable_ones_learn(fresh_base, demo_target, tmp_path, make_config):
    gpt = fresh_base.gpt
    before = {n: p.detach().clone() for n, p in gpt.named_parameters()}
    cfg = make_config(demo_target, tmp_path / "run", freeze_depth=3, max_steps=3, eval_every=3)
    grads = {}
    hooks = [p.register_hook(lambda g, n=n: grads.setdefault(n, g)) for n, p in gpt.named_parameters()]
    try:
        result = run_trial(cfg, base=fresh_base, run_dir=tmp_path / "run")
    finally:
        for h in hooks:
            h.remove()
    trained = load_trained_tensors(result.checkpoint_path, base_fingerprint=fresh_base.fingerprint)
    # the checkpoint is sized by what trains: exactly the trainable tensors
    assert set(trained) == {
        n
        for n, p in gpt.named_parameters()
        if not n.startswith(("gpt.h.0.", "gpt.h.1.", "gpt.h.2.", "conditioning_encoder.", "conditioning_perceiver."))
    }
    after = full_gpt_state(before, trained)
    frozen_prefixes = ("gpt.h.0.", "gpt.h.1.", "gpt.h.2.", "conditioning_encoder.", "conditioning_perceiver.")
    changed = {n for n in before if not torch.equal(before[n], after[n])}
    frozen = {n for n in before if n.startswith(frozen_prefixes)}
    assert not changed & frozen
    assert not frozen & set(grads)  # frozen parameters never received a gradient
    assert any(n.startswith("gpt.h.3.") for n in changed) and "mel_head.weight" in changed
    expected_trainable = sum(p.numel() for n, p in gpt.named_parameters() if n not in frozen)
    assert result.params.trainable == expected_trainable
    saved = json.loads(result.curve_path.read_text())
    assert saved["summary"]["trainable_params"] == expected_trainable


def test_same_seed_same_curve_and_checkpoint_loads_in_coqui(fresh_base, demo_target, tmp_path, make_config):
    cfg = make_config(demo_target, tmp_path / "a", augment_prob=0.5, max_steps=4, eval_every=2)
    a = run_trial(cfg, base=fresh_base, run_dir=tmp_path / "a")
    b = run_trial(cfg, base=fresh_base, run_dir=tmp_path / "b")
    keys = ("step", "train_loss", "val_loss", "val_loss_mel_ce", "val_loss_text_ce", "grad_norm")
    assert [[r[k] for k in keys] for r in a.curve] == [[r[k] for k in keys] for r in b.curve]
    assert [r["step"] for r in a.curve] == [0, 2, 4]
    other = make_config(demo_target, tmp_path / "c", augment_prob=0.5, max_steps=4, eval_every=2, seed=1)
    c = run_trial(other, base=fresh_base, run_dir=tmp_path / "c")
    assert [r["train_loss"] for r in c.curve] != [r["train_loss"] for r in a.curve]
    # the best checkpoint holds what trained; rebuilt against the base it loads strictly into the GPT
    trained = load_trained_tensors(a.checkpoint_path, base_fingerprint=fresh_base.fingerprint)
    state = full_gpt_state(fresh_base.gpt.state_dict(), trained)
    assert fresh_base.gpt.load_state_dict(state, strict=True)
    with pytest.raises(CheckpointError, match="best_gpt.pth: trained from another base model"):
        load_trained_tensors(a.checkpoint_path, base_fingerprint="another-base")


def test_augmentation_never_touches_validation_clips(fresh_base, demo_target, tmp_path, make_config, monkeypatch):
    from xtts_tune.training.prepare import prepare_data

    cfg = make_config(demo_target, tmp_path / "run", augment_prob=1.0, max_steps=2, eval_every=1)
    data = prepare_data(cfg, fresh_base)
    calls = []
    original = data.features.get
    monkeypatch.setattr(
        data.features,
        "get",
        lambda cid, variant=None, **kw: calls.append((cid, variant)) or original(cid, variant, **kw),
    )
    run_trial(cfg, base=fresh_base, data=data, run_dir=tmp_path / "run")
    val = set(data.split.val)
    assert {v for c, v in calls if c in val} == {None}
    assert all(v is not None for c, v in calls if c not in val)  # augment_prob 1.0: every training draw is noisy


def test_callback_can_stop_and_nan_batches_are_skipped(fresh_base, demo_target, tmp_path, make_config, monkeypatch):
    seen = []
    cfg = make_config(demo_target, tmp_path / "run", max_steps=6, eval_every=2)
    original = fresh_base.trainer.train_step
    calls = {"n": 0}

    def flaky(batch, criterion):
        calls["n"] += fresh_base.gpt.training
        out, losses = original(batch, criterion)
        if calls["n"] == 1:  # what coqui's masking approach gives when every mel target is masked
            losses = dict(losses, loss=losses["loss"] * float("nan"))
        return out, losses

    monkeypatch.setattr(fresh_base.trainer, "train_step", flaky)
    result = run_trial(
        cfg, base=fresh_base, run_dir=tmp_path / "run", callback=lambda rec: seen.append(rec) or rec["step"] >= 2
    )
    assert result.stop_reason == "stopped_by_callback" and result.steps == 2
    assert [r["step"] for r in seen] == [0, 2]
    assert result.skipped_batches == 1
    assert all(math.isfinite(r["val_loss"]) for r in result.curve)
    assert all(torch.isfinite(p).all() for p in fresh_base.gpt.parameters())


def test_a_prune_at_the_planned_last_step_leaves_the_trial_complete(fresh_base, demo_target, tmp_path, make_config):
    """Successive halving fires at its rungs, the last step included: a trial that ran its whole budget is
    complete, whatever the pruner says there."""
    cfg = make_config(demo_target, tmp_path / "run", max_steps=4, eval_every=2)
    result = run_trial(cfg, base=fresh_base, run_dir=tmp_path / "run", callback=lambda rec: rec["step"] >= 4)
    assert result.stop_reason == "max_steps" and result.steps == result.planned_steps == 4  # its whole budget
    early = run_trial(cfg, base=fresh_base, run_dir=tmp_path / "early", callback=lambda rec: rec["step"] >= 2)
    assert early.stop_reason == "stopped_by_callback" and early.steps == 2


def _coqui_val_loss(base, data, cfg):
    """The validation loss through GPTTrainer.eval_step itself, batch by batch, as coqui computes it."""
    from xtts_tune.data.features import collate

    gpt = base.gpt
    gpt.eval()
    total, n = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(data.split.val), cfg.train.batch_size):
            ids = data.split.val[i : i + cfg.train.batch_size]
            batch = collate(
                [data.features.get(c) for c in ids],
                args=base.trainer.args,
                silence=data.features.silence_frame(),
                rng=None,
                is_eval=True,
            )
            _, losses = base.trainer.eval_step(batch, None)
            total += float(losses["loss"]) * len(ids)
            n += len(ids)
    return total / n


@pytest.mark.parametrize("freeze_conditioning", [True, False])
def test_cached_validation_conditioning_gives_coqui_eval_loss(
    fresh_base, demo_target, tmp_path, make_config, freeze_conditioning
):
    from xtts_tune.training.prepare import prepare_data

    cfg = make_config(demo_target, tmp_path / "out", max_steps=2, eval_every=1, eval_at_start=True)
    cfg.model.freeze_conditioning = freeze_conditioning
    data = prepare_data(cfg, fresh_base)
    reference = _coqui_val_loss(fresh_base, data, cfg)
    state = {k: v.clone() for k, v in fresh_base.gpt.state_dict().items()}

    first = run_trial(cfg, base=fresh_base, data=data, run_dir=tmp_path / "a")
    # the cache is filled only when the conditioning is frozen (else it changes with training)
    assert bool(data.style_cache) is freeze_conditioning
    second = run_trial(cfg, base=fresh_base, data=data, run_dir=tmp_path / "b")
    assert first.curve[0]["val_loss"] == pytest.approx(reference, rel=1e-5)
    assert [r["val_loss"] for r in second.curve] == pytest.approx([r["val_loss"] for r in first.curve], rel=1e-6)
    # after training steps, the cached path still equals coqui's eval_step on the trained weights
    trained = load_trained_tensors(first.checkpoint_path, base_fingerprint=None) if first.checkpoint_path else None
    if trained is not None:
        fresh_base.gpt.load_state_dict(full_gpt_state(state, trained))
        best = min(r["val_loss"] for r in first.curve)
        assert _coqui_val_loss(fresh_base, data, cfg) == pytest.approx(best, rel=1e-5)
        fresh_base.gpt.load_state_dict(state)
