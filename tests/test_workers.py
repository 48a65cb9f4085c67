"""Workers started at the same instant on one SQLite study: each queued trial is claimed by exactly one.

SQLite has no row locks and pysqlite reads outside a transaction, so before the claim held the database's
lock file two workers popping one WAITING trial together both ran it (and the second one's ``tell`` failed).
The first test races plain Optuna workers on our storage (hundreds of claims in seconds: it failed every
time without the lock); the second is the user's drill, four ``xtts-tune search`` processes started at once.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest
import yaml

from tests.conftest import demo_subset
from xtts_tune.search.storage import load_study, open_storage

ROOT = Path(__file__).resolve().parents[1]

CLAIMER = r"""
import json, sys, time
import optuna
optuna.logging.set_verbosity(optuna.logging.WARNING)
from xtts_tune.search.storage import open_storage
url, at, n = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
study = optuna.load_study(study_name="race", storage=open_storage(url))
ran = []
def objective(trial):
    ran.append(trial.suggest_int("x", 0, 10_000))
    return 0.0
time.sleep(max(0.0, at - time.time()))  # after the imports: every worker claims at the same moment
study.optimize(objective, n_trials=n)
print(json.dumps(ran))
"""


@pytest.mark.slow
def test_four_workers_claiming_queued_trials_at_once_never_share_one(tmp_path):
    url = f"sqlite:///{tmp_path / 'race.db'}"
    study = optuna.create_study(study_name="race", storage=open_storage(url))
    for x in range(160):
        study.enqueue_trial({"x": x})
    at = time.time() + 15
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIMER, url, str(at), "40"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err[-3000:]  # a double claim ends in UpdateFinishedTrialError at the 2nd tell
    ran = [x for out, _ in results for x in json.loads(out)]
    assert sorted(ran) == list(range(160))  # every queued config ran, none twice
    trials = optuna.load_study(study_name="race", storage=url).get_trials()
    assert len(trials) == 160 and all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)


@pytest.mark.slow
def test_four_search_workers_started_at_once_run_each_queued_config_once(demo_target, tmp_path):
    """The drill: four ``xtts-tune search`` processes started together (no stagger) on a study whose first
    trials are queued (the guide's config and four from the YAML): no config runs twice, no trial is lost."""
    data = demo_subset(demo_target, tmp_path / "data", n=16)
    doc = yaml.safe_load((ROOT / "studies" / "demo.yaml").read_text())
    doc["data"].update(path=str(data), demo_target=False, val_count=4, train_count=8)
    doc["output_dir"] = "runs"
    doc["train"].update(
        max_steps=1,
        eval_every=1,
        max_epochs=1,
        augment_prob=0.0,
        augment_variants=1,
        eval_at_start=False,
        num_threads=1,
    )
    queued = [{"learning_rate": lr, "freeze_depth": 2} for lr in (1e-4, 2e-4, 4e-4, 8e-4)]
    doc["search"].update(enqueue=queued, pruner={"type": "none"})
    (tmp_path / "studies").mkdir()
    config = tmp_path / "studies" / "demo.yaml"
    config.write_text(yaml.safe_dump(doc))
    url = f"sqlite:///{tmp_path / 'studies' / 'demo.db'}"
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "xtts_tune.cli", "search", "--config", str(config), "--trials", "2", "--no-report"],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = [p.communicate(timeout=900) for p in procs]
    for p, (out, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, (out[-2000:], err[-3000:])
    trials = load_study("demo", url).get_trials()
    assert [t.number for t in trials] == list(range(8))  # 4 workers x 2 trials, none lost, none extra
    assert all(t.state.name == "COMPLETE" for t in trials), [(t.number, t.state.name) for t in trials]
    pids = Counter(t.user_attrs["worker"]["pid"] for t in trials)
    assert sorted(pids.values()) == [2, 2, 2, 2]  # each worker ran its own two trials
    configs = Counter(tuple(sorted(t.params.items())) for t in trials)
    assert max(configs.values()) == 1, configs  # no configuration ran twice
    enqueued = Counter(t.user_attrs.get("enqueued") for t in trials)
    assert enqueued["guide"] == 1 and enqueued["config"] == 4  # each queued trial ran, once
    ran = {(t.params["learning_rate"], t.params["freeze_depth"]) for t in trials}
    assert {(q["learning_rate"], q["freeze_depth"]) for q in queued} <= ran
