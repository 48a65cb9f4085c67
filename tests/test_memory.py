"""Out of memory: the estimate before the first trial, and a trial that runs out fails alone, with one line."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
import torch
import yaml

from tests.conftest import demo_subset
from xtts_tune.config import ModelConfig, TrainConfig
from xtts_tune.record import TrialRecord
from xtts_tune.training.memory import (
    GIB,
    REAL_SIZE_PEAKS,
    estimate_peak_bytes,
    most_expensive_line,
)

ROOT = Path(__file__).resolve().parents[1]


def test_the_estimate_is_the_real_size_table_and_grows_with_batch_and_clip():
    for (depth, frozen), (_, peak) in REAL_SIZE_PEAKS.items():
        est = estimate_peak_bytes(freeze_depth=depth, embeddings_frozen=frozen, batch_size=1, longest_clip_s=11.0)
        assert est / GIB == pytest.approx(peak, abs=0.01)

    def est(**kw):
        return estimate_peak_bytes(
            **{"freeze_depth": 12, "embeddings_frozen": False, "batch_size": 1, "longest_clip_s": 11.0, **kw}
        )

    assert est(batch_size=4) > est(batch_size=2) > est() > est(longest_clip_s=5.0)
    assert est(freeze_depth=0) > est() > est(freeze_depth=28) > est(freeze_depth=28, embeddings_frozen=True)
    assert 4.41 * GIB < est() < 7.89 * GIB  # between the measured depths 0 and 24


def test_the_line_names_the_most_expensive_configuration_and_the_device():
    space = {
        "freeze_depth": SimpleNamespace(kind="int", low=4, high=28),
        "batch_size": SimpleNamespace(kind="categorical", choices=(1, 2, 4)),
    }
    line = most_expensive_line(space, TrainConfig(), ModelConfig(), 11.6, 30, torch.device("cpu"))
    expected = estimate_peak_bytes(freeze_depth=4, embeddings_frozen=False, batch_size=4, longest_clip_s=11.6)
    assert line == (
        "memory: the space's most expensive configuration (freeze_depth 4, embeddings trainable, batch 4, clips up "
        f"to 11.6 s) needs about {expected / GIB:.1f} GiB (estimated from the real-size GPU table); this run has "
        "the CPU"
    )
    assert most_expensive_line(space, TrainConfig(), ModelConfig(), 11.6, 4, torch.device("cpu")) is None


def test_a_trial_out_of_memory_fails_alone_with_one_line_and_the_study_goes_on(
    demo_target, tmp_path, monkeypatch, tiny_base
):
    import xtts_tune.training.memory as memory
    from xtts_tune.config import load_config
    from xtts_tune.search.runner import run_search
    from xtts_tune.search.storage import load_study
    from xtts_tune.training.losses import TrialLosses

    data = demo_subset(demo_target, tmp_path / "data", 16)
    doc = yaml.safe_load((ROOT / "studies" / "demo.yaml").read_text())
    doc["data"].update(path=str(data), demo_target=False, val_count=4, train_count=8)
    doc["output_dir"] = str(tmp_path / "runs")
    doc["train"].update(max_steps=2, eval_every=1, max_epochs=1, augment_prob=0.0)
    doc["search"].update(pruner={"type": "none"}, forgetting=False)
    config = tmp_path / "demo.yaml"
    config.write_text(yaml.safe_dump(doc))
    before = {k: v.clone() for k, v in tiny_base.gpt.state_dict().items()}

    calls = {"train": 0, "released": 0}
    original_train, original_release = TrialLosses.train, memory.release_memory

    def train(self, ids, variants, batch):
        calls["train"] += 1
        if calls["train"] == 3:  # trial 1's first step (trial 0 took 2): CUDA runs out (raisable on a CPU)
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return original_train(self, ids, variants, batch)

    def release():
        calls["released"] += 1
        original_release()

    monkeypatch.setattr(TrialLosses, "train", train)
    monkeypatch.setattr(memory, "release_memory", release)
    events = []
    summary = run_search(
        load_config(config),
        n_trials=3,
        storage=f"sqlite:///{tmp_path / 'demo.db'}",
        progress=events.append,
        base=tiny_base,
    )
    trials = load_study("demo", summary.storage).get_trials()
    assert [t.state for t in trials] == [
        optuna.trial.TrialState.COMPLETE,
        optuna.trial.TrialState.PRUNED,
        optuna.trial.TrialState.COMPLETE,
    ]  # the study went on
    oom = trials[1]
    record = TrialRecord.from_trial(oom)
    # pruned, not FAILED, with a violated constraint: the sampler sees it and learns to avoid the region
    assert record.rejected == 1.0 and oom.constraints == {"rejected": 1.0}
    assert TrialRecord.from_trial(trials[0]).rejected == 0.0
    assert record.out_of_memory is True and record.stop_reason == "out_of_memory"
    assert not TrialRecord.from_trial(trials[0]).out_of_memory and not TrialRecord.from_trial(trials[2]).out_of_memory
    (line,) = [e["text"] for e in events if e["event"] == "message" and e.get("number") == 1]
    assert line == record.fail_reason and "\n" not in line
    assert line.startswith("out of memory at batch 4 × accumulation 1 with clips up to ")
    assert 0.5 < float(line.split("clips up to ")[1].split(" s ")[0]) < 20  # the longest training clip
    assert line.endswith(
        " s on the CPU; lower train.batch_size or max clip length (remove the longest clips), "
        "or freeze more layers (a higher freeze_depth)"
    )
    assert calls["released"] == 1
    assert math.isfinite(trials[2].user_attrs["best_val_loss"])
    after = tiny_base.gpt.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the failed trial's weights were undone
