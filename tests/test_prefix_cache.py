"""The prefix cache: the same losses and gradients as coqui's uncached path, refused with one line where it
cannot hold, never running the frozen blocks once filled, and kept between runs."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from tests.conftest import small_config
from tests.test_cli import run_cli, study_yaml
from xtts_tune.config import ConfigError, ModelConfig, StudyConfig, TrainConfig
from xtts_tune.data.features import collate, fixed_slice_rng
from xtts_tune.model.freezing import apply_freezing
from xtts_tune.model.prefix import gpt_losses
from xtts_tune.training.loop import run_trial
from xtts_tune.training.prefix_cache import PrefixCache, prefix_key
from xtts_tune.training.prepare import prepare_data

FROZEN_INPUTS = ModelConfig(freeze_conditioning=True, freeze_text_embedding=True, freeze_mel_embedding=True)


def cache_config(data, out, *, prefix_cache=True, dtype="float32", **train) -> StudyConfig:
    cfg = small_config(
        data, out, conditioning_slice="fixed", prefix_cache=prefix_cache, prefix_cache_dtype=dtype, **train
    )
    return dataclasses.replace(cfg, model=FROZEN_INPUTS)


@pytest.fixture
def no_dropout(fresh_base):
    """The tiny base without dropout, so the cached and uncached paths draw nothing at random."""
    drops = [m for m in fresh_base.gpt.modules() if isinstance(m, torch.nn.Dropout)]
    kept = [m.p for m in drops]
    assert drops, "the GPT has dropout modules"
    for m in drops:
        m.p = 0.0
    yield fresh_base
    for m, p in zip(drops, kept):
        m.p = p


def training_batch(base, data, cfg, ids, variants):
    t = cfg.train
    feats = [
        data.features.get(c, v, seed=t.seed, level_range=tuple(t.noise_level_range)) for c, v in zip(ids, variants)
    ]
    rngs = [fixed_slice_rng(t.seed, c, v) for c, v in zip(ids, variants)]
    return collate(feats, args=base.trainer.args, silence=data.features.silence_frame(), rng=rngs, is_eval=False)


@pytest.mark.parametrize("depth", [1, 3])
def test_cached_step_gives_coquis_losses_and_gradients(no_dropout, demo_target, tmp_path, depth):
    base, gpt = no_dropout, no_dropout.gpt
    cfg = cache_config(demo_target, tmp_path, freeze_depth=depth, augment_prob=0.5)
    data = prepare_data(cfg, base)
    ids = list(data.split.train[:4])  # clips of different text and audio lengths: the batch is padded
    variants = [None, 0, None, 2]
    apply_freezing(gpt, depth, cfg.model)
    gpt.train()
    trainable = [p for p in gpt.parameters() if p.requires_grad]

    def losses_and_grads(compute):
        batch = training_batch(base, data, cfg, ids, variants)
        losses = compute(batch)
        losses["loss"].backward()
        grads = [p.grad.clone() for p in trainable]
        gpt.zero_grad(set_to_none=True)
        return {k: float(v.detach()) for k, v in losses.items()}, grads

    reference, ref_grads = losses_and_grads(lambda b: base.trainer.train_step(b, None)[1])
    cache = PrefixCache(None, base_fingerprint=base.fingerprint, dtype="float32", precision="fp32")
    keys = [
        prefix_key(data.features.key(c, v, seed=0, level_range=(0.001, 0.01)), False, (0, 1))
        for c, v in zip(ids, variants)
    ]

    def cached(batch):
        return gpt_losses(gpt, base.trainer.args, batch, prefix=(depth, cache.hidden(gpt, depth, keys, batch)))

    first, first_grads = losses_and_grads(cached)  # captures
    again, again_grads = losses_and_grads(cached)  # from the cache
    assert cache.misses == 4 and cache.hits == 4
    for got, grads in ((first, first_grads), (again, again_grads)):
        for k in ("loss", "loss_mel_ce", "loss_text_ce"):
            assert got[k] == pytest.approx(reference[k], rel=1e-5, abs=1e-6), k
        for g, r in zip(grads, ref_grads):
            torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-6)
    half = PrefixCache(None, base_fingerprint=base.fingerprint, dtype="float16", precision="fp32")
    batch = training_batch(base, data, cfg, ids, variants)
    stored = gpt_losses(gpt, base.trainer.args, batch, prefix=(depth, half.hidden(gpt, depth, keys, batch)))
    assert float(stored["loss"].detach()) == pytest.approx(reference["loss"], rel=1e-4)  # fp16 storage: measured 1e-6


def test_trial_with_cache_has_the_uncached_curve_and_skips_frozen_blocks(no_dropout, demo_target, tmp_path):
    base = no_dropout
    common = dict(freeze_depth=3, max_steps=4, eval_every=1, augment_prob=0.5, learning_rate=1e-3, batch_size=4)
    plain_cfg = cache_config(demo_target, tmp_path / "a", prefix_cache=False, **common)
    plain = run_trial(plain_cfg, base=base, data=prepare_data(plain_cfg, base))
    cfg = cache_config(demo_target, tmp_path / "b", **common)
    data = prepare_data(cfg, base)
    cached = run_trial(cfg, base=base, data=data)
    assert len(cached.curve) == len(plain.curve) == 5
    for a, b in zip(plain.curve, cached.curve):
        assert b["val_loss"] == pytest.approx(a["val_loss"], rel=1e-5)
        assert (b["train_loss"] is None) == (a["train_loss"] is None)
        if a["train_loss"] is not None:
            assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-5)
    # a second trial of the same depth finds every clip cached: the frozen blocks and the conditioning
    # encoder never run
    calls = []
    hooks = [
        m.register_forward_hook(lambda *_: calls.append(1))
        for m in [*base.gpt.gpt.h[:3], base.gpt.conditioning_encoder]
    ]
    misses = data.prefix_cache.misses
    try:
        run_trial(
            dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, learning_rate=3e-4)), base=base, data=data
        )
    finally:
        for h in hooks:
            h.remove()
    assert calls == [] and data.prefix_cache.misses == misses and data.prefix_cache.hits > 0


def test_cache_is_kept_on_disk_per_depth_and_reused_by_a_new_run(fresh_base, demo_target, tmp_path):
    cfg = cache_config(demo_target, tmp_path, dtype="float16", freeze_depth=2)
    first = prepare_data(cfg, fresh_base)
    run_trial(cfg, base=fresh_base, data=first)
    shards = list((cfg.study_dir / "cache").glob("prefix-*-d2-fp32-float16/part-*.safetensors"))
    assert len(shards) == 1 and first.prefix_cache.misses > 0
    again = prepare_data(cfg, fresh_base)  # a new process: a fresh PreparedData
    run_trial(cfg, base=fresh_base, data=again)
    assert again.prefix_cache.misses == 0 and again.prefix_cache.hits > 0
    assert len(list(shards[0].parent.glob("part-*.safetensors"))) == 1  # nothing new to write
    deeper = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, freeze_depth=3))
    run_trial(deeper, base=fresh_base, data=again)
    assert list((cfg.study_dir / "cache").glob("prefix-*-d3-fp32-float16/part-*.safetensors"))


def test_cache_conditions_are_refused_with_one_line(demo_target, tmp_path):
    with pytest.raises(ConfigError, match="prefix_cache needs train.conditioning_slice: fixed"):
        StudyConfig(model=FROZEN_INPUTS, train=TrainConfig(prefix_cache=True)).validate()
    with pytest.raises(ConfigError, match="model.freeze_text_embedding and model.freeze_mel_embedding true"):
        StudyConfig(train=TrainConfig(prefix_cache=True, conditioning_slice="fixed")).validate()
    StudyConfig(model=FROZEN_INPUTS, train=TrainConfig(prefix_cache=True, conditioning_slice="fixed")).validate()
    config = study_yaml(tmp_path, demo_target)
    out = run_cli(
        "trial", "--config", str(config), "--set", "train.prefix_cache=true", "--set", "train.conditioning_slice=fixed"
    )
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines() == [
        f"error: {config}: train.prefix_cache needs model.freeze_conditioning, model.freeze_text_embedding and "
        "model.freeze_mel_embedding true (what feeds the frozen blocks must not train); set them or turn "
        "prefix_cache off"
    ]
    assert not (tmp_path / "runs").exists()


def test_only_the_depth_in_use_stays_in_memory(tmp_path):
    cache = PrefixCache(tmp_path, base_fingerprint="abc", dtype="float16", precision="fp32")
    for depth in (1, 2, 3, 4):
        for i in range(3):
            cache.put(depth, f"clip-{i}", torch.ones(10, 8))
        assert cache.nbytes() == cache.nbytes(depth) == 3 * 10 * 8 * 2
    again = cache.lookup(1, ["clip-0", "clip-2"])  # a revisit reads depth 1 back from its shards
    assert all(p is not None for p in again) and cache.nbytes() == cache.nbytes(1)
