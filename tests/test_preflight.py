"""The cost block before a search (search.preflight) on real clips, its disk refusal, and the ETA."""

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile

from xtts_tune.config import load_config
from xtts_tune.search.preflight import FREE_DISK_ENV, DiskSpaceError, estimate_cost, eta_event, trial_eta
from xtts_tune.search.settings import SearchSettings

ROOT = Path(__file__).resolve().parents[1]
KATHLEEN = ROOT / "corpora" / "real-voice-kathleen"


def _cost(tmp_path, *overrides):
    from xtts_tune.model.base import load_study_base

    cfg = load_config(ROOT / "studies" / "kathleen.yaml", [f"output_dir={tmp_path}", *overrides])
    base = load_study_base(cfg)
    settings = SearchSettings.from_config(cfg)
    settings.resolve(base.num_layers, cfg.source)
    return cfg, base, estimate_cost(cfg, base, settings)


def test_the_cost_block_counts_the_real_clips_and_matches_the_real_feature_cache(tmp_path):
    from xtts_tune.training.prepare import prepare_data

    cfg, base, cost = _cost(tmp_path)
    seconds = sum(soundfile.info(str(p)).duration for p in (KATHLEEN / "wavs").glob("*.flac"))
    assert cost.clips == 100 and cost.hours == pytest.approx(seconds / 3600, rel=1e-6)
    assert (cost.train, cost.val, cost.test) == (8, 20, 20)  # the template's train_count 8
    assert list(cost.disk) == ["feature cache", "checkpoints", "final model"]  # no prefix cache in the template
    assert not list(tmp_path.iterdir())  # the estimate writes nothing
    data = prepare_data(cfg, base)  # the real store, every entry the search computes (train variants too)
    t = cfg.train
    for clip in data.split.train:
        data.features.get(clip)
        for v in range(t.augment_variants):
            data.features.get(clip, v, seed=t.seed, level_range=t.noise_level_range)
    for clip in [*data.split.val, *data.split.test]:
        data.features.get(clip)
    data.features.save()
    assert cost.disk["feature cache"] == pytest.approx(data.features.shards.disk_bytes(), rel=0.03)
    assert cost.vram_bytes is None and cost.ram_bytes > 1e9


def test_the_prefix_cache_is_counted_per_depth_of_the_space(tmp_path):
    on = [
        "train.prefix_cache=true",
        "train.conditioning_slice=fixed",
        "model.freeze_text_embedding=true",
        "model.freeze_mel_embedding=true",
    ]
    *_, cost = _cost(tmp_path, *on)
    depths = [k for k in cost.disk if k.startswith("prefix")]
    assert depths == [f"prefix cache depth {d}" for d in (1, 2, 3, 4)]  # the space's 0..4 (0 caches nothing)
    assert len({cost.disk[k] for k in depths}) == 1 and cost.disk[depths[0]] > 0


def test_a_search_that_would_not_fit_the_disk_is_refused_with_one_line(tmp_path):
    *_, cost = _cost(tmp_path)
    cost.free_bytes = cost.disk_bytes - 1
    with pytest.raises(DiskSpaceError, match="are free; .*output_dir"):
        cost.check()
    cost.free_bytes = cost.disk_bytes
    cost.check()


def test_the_cli_refuses_a_full_disk_before_writing_anything(tmp_path):
    env = {**os.environ, FREE_DISK_ENV: "1000"}
    out = subprocess.run(
        [sys.executable, "-m", "xtts_tune.cli", "search", "--config", str(ROOT / "studies" / "kathleen.yaml"),
         "--set", f"output_dir={tmp_path / 'runs'}", "--storage", f"sqlite:///{tmp_path / 's.db'}"],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-2000:]
    lines = [line for line in out.stderr.splitlines() if not line.startswith("WARNING ")]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "1000 B are free" in lines[0], lines
    assert "output_dir" in lines[0] and "cost: 100 clips" in out.stdout
    assert not (tmp_path / "runs").exists() and not (tmp_path / "s.db").exists()


def test_the_eta_is_the_mean_trial_time_times_the_trials_left():
    assert trial_eta([10.0, 20.0, 30.0], done=3, n_trials=5) == 40.0
    assert trial_eta([10.0], done=5, n_trials=5) == 0.0
    durations: list[float] = []
    start = dt.datetime(2026, 1, 1, 12, 0, 0)
    first = eta_event(durations, 1, started_at=start, finished_at=start + dt.timedelta(seconds=30), n_trials=4)
    assert first["trial_seconds"] == 30.0 and first["eta_seconds"] == 90.0
    second = eta_event(durations, 2, started_at=start, finished_at=start + dt.timedelta(seconds=50), n_trials=4)
    assert second["mean_seconds"] == 40.0 and second["eta_seconds"] == 80.0 and durations == [30.0, 50.0]
