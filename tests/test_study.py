"""Tests for the Optuna study (xtts_tune.search).

Fast unit tests check the ``search``/``diagnosis`` YAML validation, the guide config's clamping, storage
errors and checkpoint retention. The ``slow`` tests run real (tiny) studies on the demo target voice:
pruning, resume, fingerprint mismatch, a SIGKILLed worker, two workers on one SQLite file, Ctrl-C, top-K
retention and a real optuna-dashboard server.

``XTTS_TUNE_TEST_BASE`` may point the slow tests at another base folder (default: the embedded tiny base).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from xtts_tune.analysis.curve.thresholds import thresholds_from_section
from xtts_tune.config import ConfigError, config_from_dict
from xtts_tune.record import TrialRecord
from xtts_tune.search.dashboard import dashboard_command
from xtts_tune.search.fingerprint import StudyMismatchError
from xtts_tune.search.retention import (
    CHECKPOINT_NAME,
    RETENTION_NAME,
    apply_retention,
    kept_trials,
)
from xtts_tune.search.runner import run_search
from xtts_tune.search.settings import SearchSettings
from xtts_tune.search.storage import (
    StorageError,
    StudyNotFoundError,
    default_storage,
    load_study,
    open_storage,
)
from xtts_tune.search.summary import SearchSummary, TrialRow, summarize
from xtts_tune.terminal import render_summary

BASE_MODEL = os.environ.get("XTTS_TUNE_TEST_BASE", "embedded")
SOURCE = "studies/test.yaml"
LAYERS = 4  # the tiny base's GPT layers (checked in the slow tests)

SPACE = {
    "freeze_depth": {"low": 0, "high": 4},
    "learning_rate": {"low": 1.0e-6, "high": 3.0e-3, "log": True},
    "weight_decay": {"low": 0.0, "high": 0.2},
    "augment_prob": {"low": 0.0, "high": 0.5},
}


def cfg_for(search: dict | None = None, diagnosis: dict | None = None, **top):
    raw = {"study_name": "t", **top, "search": search or {}, "diagnosis": diagnosis or {}}
    cfg = config_from_dict(raw, source=SOURCE, root="/nonexistent-root")
    cfg.validate()
    return cfg


# ------------------------------------------------------------------------------------- unit tests (fast)


def test_default_space_covers_the_four_knobs_and_the_guide_is_clamped_into_it():
    settings = SearchSettings.from_config(cfg_for())
    settings.resolve(LAYERS, SOURCE)
    space = settings.space.params
    assert list(space) == ["freeze_depth", "learning_rate", "weight_decay", "augment_prob"]
    assert (space["freeze_depth"].low, space["freeze_depth"].high) == (0, LAYERS)
    assert space["learning_rate"].log
    guide = settings.space.guide_params(LAYERS, cfg_for().train)
    # the guide: train the last two blocks, lr 5e-7 (below the default range: clamped up), wd 0.1, aug 0.3
    assert guide == {"freeze_depth": 2, "learning_rate": 1e-5, "weight_decay": 0.1, "augment_prob": 0.3}
    assert settings.keep_top_k == 3 and settings.heartbeat_interval == 30 and settings.grace_period == 90
    assert settings.pruner.type == "none"  # the search bench's choice: early stopping takes the savings


def test_guide_clamping_to_ranges_steps_and_choices():
    search = {
        "space": {
            "freeze_depth": {"low": 0, "high": 4, "step": 3},  # grid 0, 3: the guide's 2 becomes 3
            "learning_rate": {"low": 1.0e-4, "high": 1.0e-3, "log": True},
            "weight_decay": {"low": 0.15, "high": 0.2},
            "augment_prob": {"choices": [0.0, 0.5]},  # nearest to 0.3
            "grad_accum_steps": {"choices": [1, 2]},  # not in the guide: the train section's value
            "max_epochs": 2,  # fixed
        }
    }
    cfg = cfg_for(search, train={"grad_accum_steps": 2})
    settings = SearchSettings.from_config(cfg)
    settings.resolve(LAYERS, SOURCE)
    guide = settings.space.guide_params(LAYERS, cfg.train)
    assert guide == {
        "freeze_depth": 3,
        "learning_rate": 1e-4,
        "weight_decay": 0.15,
        "augment_prob": 0.5,
        "grad_accum_steps": 2,
    }
    assert settings.space.fixed == {"max_epochs": 2}
    train = settings.space.train_config(cfg.train, guide)
    assert (train.max_epochs, train.freeze_depth, train.augment_prob) == (2, 3, 0.5)
    # a narrow freeze-depth range below the guide's depth
    narrow = SearchSettings.from_config(cfg_for({"space": {"freeze_depth": {"low": 0, "high": 1}}}))
    narrow.resolve(LAYERS, SOURCE)
    assert narrow.space.guide_params(LAYERS, cfg.train) == {"freeze_depth": 1}


@pytest.mark.parametrize(
    "search, message",
    [
        ({"space": {"learnin_rate": {"low": 1e-5, "high": 1e-3}}}, "did you mean 'search.space.learning_rate'"),
        ({"space": {"learning_rate": {"low": 1e-3, "high": 1e-4}}}, "low (0.001) must be less than high (0.0001)"),
        ({"space": {"weight_decay": {"low": 0.1, "high": 0.1}}}, "must be less than high"),
        ({"space": {"learning_rate": {"low": 0.0, "high": 1e-3, "log": True}}}, "a log range needs low > 0"),
        ({"space": {"weight_decay": {"low": 0.0, "hgh": 0.2}}}, "did you mean 'search.space.weight_decay.high'"),
        ({"space": {"weight_decay": {"low": 0.0}}}, "needs 'high'"),
        ({"space": {"augment_prob": {"low": 0.0, "high": 1.5}}}, "train.augment_prob must be in [0, 1]"),
        ({"space": {"learning_rate": {"low": 1e-4, "high": 1e-3, "log": True, "step": 1e-4}}}, "cannot be combined"),
        ({"space": {"freeze_depth": {"low": 0.5, "high": 3}}}, "'search.space.freeze_depth.low' must be of type int"),
        ({"space": {"noise_level_range": {"low": 0.0, "high": 0.1}}}, "can only be fixed"),
        ({"space": {"precision": {"low": 0, "high": 1}}}, "search it with {choices: [...]}"),
        ({"space": {"precision": {"choices": ["fp32", "fp64"]}}}, "train.precision must be fp32, bf16 or fp16"),
        ({"space": {"batch_size": {"choices": []}}}, "must be a non-empty list"),
        ({"space": {"batch_size": "big"}}, "'search.space.batch_size' must be of type int"),
        ({"sampler": {"seeed": 1}}, "did you mean 'search.sampler.seed'"),
        ({"sampler": {"type": "cmaes"}}, "search.sampler.type 'cmaes' is not one of tpe, gp"),
        ({"sampler": {"type": "gp", "multivariate": True}}, "search.sampler.multivariate is a TPE setting"),
        ({"sampler": {"deterministic_objective": True}}, "is a GP setting; add 'type: gp'"),
        ({"pruner": {"type": "medain"}}, "did you mean 'median'"),
        ({"pruner": {"type": "median", "n_warmup": 3}}, "did you mean 'search.pruner.n_warmup_steps'"),
        ({"pruner": {"type": "percentile"}}, "type 'percentile' needs percentile"),
        ({"pruner": {"type": "percentile", "percentile": 150}}, "search.pruner:"),
        ({"keep_topk": 2}, "did you mean 'search.keep_top_k'"),
        ({"keep_top_k": -1}, "search.keep_top_k must be >= 0"),
        ({"heartbeat_interval": 10, "grace_period": 5}, "must be longer than search.heartbeat_interval"),
        ({"enqueue": [{"learning_rate": 1.0}]}, "search.enqueue[0].learning_rate = 1.0 is outside the space"),
        ({"enqueue": [{"batch_size": 4}]}, "'batch_size' is not searched"),
        ({"enqueue": [{"learnig_rate": 1e-4}]}, "did you mean 'search.enqueue[0].learning_rate'"),
        ({"enqueue": {"learning_rate": 1e-4}}, "search.enqueue must be a list"),
    ],
)
def test_search_section_mistakes_are_config_errors_naming_file_and_key(search, message):
    with pytest.raises(ConfigError) as err:
        SearchSettings.from_config(cfg_for(search))
    assert str(err.value).startswith(SOURCE)
    assert message in str(err.value)


@pytest.mark.parametrize(
    "pruner, kind",
    [
        (None, optuna.pruners.NopPruner),
        ({"type": "median", "n_startup_trials": 3, "n_warmup_steps": 10}, optuna.pruners.MedianPruner),
        ({"type": "percentile", "percentile": 25.0}, optuna.pruners.PercentilePruner),
        (
            {"type": "successive_halving", "min_resource": 2, "reduction_factor": 3},
            optuna.pruners.SuccessiveHalvingPruner,
        ),
        ({"type": "hyperband", "min_resource": 2, "max_resource": 40}, optuna.pruners.HyperbandPruner),
        ({"type": "none"}, optuna.pruners.NopPruner),
        ("none", optuna.pruners.NopPruner),
        ({"type": "median", "patience": 2}, optuna.pruners.PatientPruner),
    ],
)
def test_pruner_types_and_arguments(pruner, kind):
    search = {} if pruner is None else {"pruner": pruner}
    assert isinstance(SearchSettings.from_config(cfg_for(search)).make_pruner(), kind)


def test_sampler_is_multivariate_tpe_and_reproducible_per_trial_number():
    settings = SearchSettings.from_config(cfg_for({"sampler": {"seed": 7, "n_startup_trials": 2}}))
    settings.resolve(LAYERS, SOURCE)

    def proposals(n):
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(sampler=settings.make_sampler())
        out = []
        for _ in range(n):
            trial = study.ask()
            params = settings.space.suggest(trial)
            study.tell(trial, params["learning_rate"] * 1000 + params["freeze_depth"])
            out.append(params)
        return out

    sampler = settings.make_sampler()
    assert isinstance(sampler, optuna.samplers.TPESampler) and sampler._multivariate
    first, again = proposals(4), proposals(4)
    assert first == again  # same seed, same trial numbers: same configs (random startup and TPE)
    assert len({tuple(p.items()) for p in first}) == 4


def test_the_gp_sampler_and_the_spread_start_are_settings_and_the_real_size_template_takes_the_default():
    gp = SearchSettings.from_config(cfg_for({"sampler": {"type": "gp", "seed": 3, "n_startup_trials": 4}}))
    sampler = gp.make_sampler()
    assert isinstance(sampler, optuna.samplers.GPSampler) and sampler._n_startup_trials == 4
    spread = SearchSettings.from_config(
        cfg_for({"sampler": {"spread_start": True}, "enqueue": [{"learning_rate": 1e-4}]})
    )
    spread.resolve(LAYERS, SOURCE)
    queue = spread.start_queue(LAYERS, spread.space.train_config(config_from_dict({}).train, {}))
    guide = spread.space.guide_params(LAYERS, config_from_dict({}).train)
    # the default space's learning rates 1e-5..3e-3: 2.5 decades, two cells; three depths: 0, 2, 4
    assert [attrs["enqueued"] for _, attrs in queue] == ["guide"] + ["spread"] * 6 + ["config"]
    spread_params = [p for p, _ in queue[1:7]]
    assert [(p["learning_rate"], p["freeze_depth"]) for p in spread_params] == [
        (4.16e-5, 0),
        (7.21e-4, 2),
        (4.16e-5, 4),
        (7.21e-4, 0),
        (4.16e-5, 2),
        (7.21e-4, 4),
    ]
    assert all(
        {k: v for k, v in p.items() if k not in ("learning_rate", "freeze_depth")}
        == {k: v for k, v in guide.items() if k not in ("learning_rate", "freeze_depth")}
        for p in spread_params
    )
    template = SearchSettings.from_config(
        config_from_dict(
            yaml.safe_load((Path(__file__).parents[1] / "studies" / "xtts_v2_small_dataset.yaml").read_text())
        )
    )
    assert {**template.sampler_options, "seed": 0} == {
        **SearchSettings.from_config(cfg_for({})).sampler_options,
        "seed": 0,
    }


def test_freeze_depth_bounds_are_checked_against_the_base_models_layers():
    for search, message in [
        (
            {"space": {"freeze_depth": {"low": 0, "high": 6}}},
            "freeze_depth is 6 but the base model has 4 GPT layers; use 0..4",
        ),
        ({"space": {"freeze_depth": {"choices": [1, 5]}}}, "is 5 but the base model has 4 GPT layers; use 0..4"),
        ({"space": {"freeze_depth": 7}}, "has 4 GPT layers"),
        ({"enqueue": [{"freeze_depth": 6}]}, "search.enqueue[0].freeze_depth = 6 is outside the space"),
    ]:
        settings = SearchSettings.from_config(cfg_for(search))  # fine until the base is known
        with pytest.raises(ConfigError, match=r"^studies/test\.yaml: ") as err:
            settings.resolve(LAYERS, SOURCE)
        assert message in str(err.value)


def test_diagnosis_section_is_validated():
    assert (
        thresholds_from_section(cfg_for(diagnosis={"overfit_rise_rel": 0.05}).diagnosis, SOURCE).overfit_rise_rel
        == 0.05
    )
    with pytest.raises(ConfigError, match="did you mean 'diagnosis.overfit_rise_rel'"):
        thresholds_from_section(cfg_for(diagnosis={"overfit_rise_rell": 0.05}).diagnosis, SOURCE)
    with pytest.raises(ConfigError, match="diagnosis.spike_factor must be greater than 1"):
        thresholds_from_section(cfg_for(diagnosis={"spike_factor": 0.5}).diagnosis, SOURCE)


def test_storage_errors_name_the_url_and_hide_passwords(tmp_path):
    with pytest.raises(StorageError, match="nosuchdialect://x"):
        open_storage("nosuchdialect://x")
    (tmp_path / "file").write_text("not a folder")
    bad = f"sqlite:///{tmp_path / 'file' / 'study.db'}"
    with pytest.raises(StorageError) as err:
        open_storage(bad)
    assert bad in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(StorageError) as err:
        open_storage("postgresql://user:secret@127.0.0.1:1/db")
    assert "secret" not in str(err.value) and "127.0.0.1:1/db" in str(err.value)
    with pytest.raises(StudyNotFoundError, match="no study database"):
        load_study("demo", f"sqlite:///{tmp_path / 'missing.db'}")


def test_sqlite_storage_uses_wal_and_missing_studies_are_named(tmp_path):
    url = f"sqlite:///{tmp_path / 'sub' / 's.db'}"
    storage = open_storage(url, heartbeat_interval=5, grace_period=10)
    assert storage.get_heartbeat_interval() == 5
    with sqlite3.connect(tmp_path / "sub" / "s.db") as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    optuna.create_study(study_name="other", storage=storage)
    with pytest.raises(StudyNotFoundError, match="no study named 'demo' .* studies there: other"):
        load_study("demo", url)


def test_default_storage_and_dashboard_command(tmp_path):
    cfg = config_from_dict({"study_name": "demo"}, root=tmp_path)
    url = default_storage(cfg)
    assert url == f"sqlite:///{tmp_path.resolve() / 'studies' / 'demo.db'}"
    argv = dashboard_command(url, port=8123, artifact_dir=tmp_path)
    assert Path(argv[0]).name == "optuna-dashboard"
    assert argv[1:] == [url, "--host", "127.0.0.1", "--port", "8123", "--artifact-dir", str(tmp_path)]
    assert "--artifact-dir" not in dashboard_command(url)  # no database yet: nothing to look up


def test_retention_follows_the_ranking_and_never_deletes_the_recommended_runner_up_or_guide(tmp_path):
    """The unstable trial has the lowest validation loss; value order would keep it and delete the
    recommendation's runner-up. The study's one ranking keeps the recommended trial, the runner-up and the
    guide's configuration (the unseen-clips comparison needs it) even with keep_top_k 1."""
    from xtts_tune.analysis.examples import example_study

    study = example_study()
    for t in study.trials:
        folder = tmp_path / f"trial-{t.number:04d}"
        folder.mkdir()
        (folder / CHECKPOINT_NAME).write_bytes(b"x" * 10)
    assert apply_retention(study, study.trials, tmp_path, keep_top_k=1) == [0, 1]
    kept = sorted(int(p.parent.name[-4:]) for p in tmp_path.glob(f"*/{CHECKPOINT_NAME}"))
    assert kept == [0, 1]
    note = json.loads((tmp_path / "trial-0002" / RETENTION_NAME).read_text())
    assert note["checkpoint_deleted"] is True and note["bytes_freed"] == 10
    summary = summarize(study, "sqlite:///x.db", tmp_path)
    assert summary.best_number == 1  # the summary's best is the recommendation: one ranking
    assert summary.passed_over.startswith("trial 2 (3.0000) was unstable")
    assert "passed over: trial 2 (3.0000) was unstable" in render_summary(summary)


def test_summary_renders_a_table_and_next_steps():
    rows = [
        TrialRow(0, "COMPLETE", {"learning_rate": 1e-5, "freeze_depth": 2}, 4.5, 6, 6, "healthy", True),
        TrialRow(1, "PRUNED", {"learning_rate": 3e-3, "freeze_depth": 0}, 4.9, 2, 6, "overfitting", False),
        TrialRow(2, "FAIL", {}, None, None, None, None, False),
    ]
    s = SearchSummary("demo", "sqlite:///x.db", rows, 0, 4.5, rows[0].params, 8, 12, 2048, "runs/demo/trials")
    text = render_summary(s)
    assert "   0* COMPLETE" in text and "PRUNED" in text and "overfitting" in text
    assert "8/12 optimizer steps (33% saved" in text
    # without a YAML the next steps name the study and its storage, so they work from any folder
    assert "xtts-tune report --study demo --storage 'sqlite:///x.db'" in text
    assert "xtts-tune export --study demo --storage 'sqlite:///x.db'" in text
    s.config_path = "/somewhere/studies/demo.yaml"
    assert "xtts-tune dashboard --config /somewhere/studies/demo.yaml      #" in render_summary(s)
    assert s.to_dict()["compute_saved"] == pytest.approx(1 / 3)
    assert "near-ties" not in render_summary(s)
    s.noise, s.near_ties = 0.01, [3, 5]
    assert "  near-ties (within 1.0% of the lowest validation loss, the seed noise measured on a real hour): 3, 5" in (
        render_summary(s)
    )


# ------------------------------------------------------------------------------------- end to end (slow)


def study_raw(name: str, target: Path, out: Path, **search) -> dict:
    return {
        "study_name": name,
        "base_model": BASE_MODEL,
        "output_dir": str(out),
        "data": {"path": str(target), "val_count": 8},
        "model": {"freeze_conditioning": True},
        "train": {"batch_size": 8, "max_steps": 4, "eval_every": 2, "max_epochs": 1, "augment_variants": 1},
        "search": {"space": SPACE, "sampler": {"seed": 0}, "forgetting": False, **search},  # test_forgetting's
    }


def make_cfg(raw: dict, root: Path):
    cfg = config_from_dict(raw, source=str(root / "study.yaml"), root=root)
    cfg.validate()
    return cfg


def clone_output(src: Path, dst: Path) -> None:
    """Reuse the split and the feature cache of an earlier study's folder (same data and base) in another
    study's folder: no recomputation."""
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src / "split.json", dst / "split.json")
    shutil.copytree(src / "cache", dst / "cache")


def copy_db(src_url: str, dst: Path) -> str:
    src = sqlite3.connect(src_url.removeprefix("sqlite:///"))
    out = sqlite3.connect(dst)
    src.backup(out)
    src.close()
    out.close()
    return f"sqlite:///{dst}"


def snapshot(url: str, name: str) -> dict:
    study = load_study(name, url)
    trials = [
        (t.number, t.state.name, t.values, t.params, t.intermediate_values, t.user_attrs, t.system_attrs)
        for t in study.get_trials()
    ]
    storage = study._storage
    return {
        "trials": trials,
        "user_attrs": study.user_attrs,
        "system_attrs": storage.get_study_system_attrs(study._study_id),
    }


WORKER = r"""
import json, sys
from xtts_tune.config import load_config
from xtts_tune.search.runner import run_search

cfg = load_config(sys.argv[1])
def progress(event):
    if event["event"] in ("trial_start", "trial_end"):
        print(json.dumps({"event": event["event"], "number": event["number"]}), flush=True)
summary = run_search(cfg, n_trials=int(sys.argv[3]), storage=sys.argv[2], progress=progress)
print(json.dumps({"event": "done", "trials_run": summary.trials_run, "interrupted": summary.interrupted}), flush=True)
"""


def spawn_worker(raw: dict, folder: Path, url: str, n_trials: int, tag: str) -> subprocess.Popen:
    path = folder / f"{tag}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, str(path), url, str(n_trials)],
        stdout=subprocess.PIPE,
        stderr=open(folder / f"{tag}.stderr", "w"),
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )


def _trials_or_none(url: str, name: str) -> list:
    try:
        return load_study(name, url).get_trials(deepcopy=False)
    except Exception:  # not created yet
        return []


def worker_events(proc: subprocess.Popen, timeout: float) -> list[dict]:
    out, _ = proc.communicate(timeout=timeout)
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def target(demo_target):  # conftest's session-wide demo voice
    return demo_target


@pytest.fixture(scope="module")
def base(request):
    """The embedded tiny base (conftest's session-wide one), or XTTS_TUNE_TEST_BASE's. run_search leaves
    its weights as they were."""
    if BASE_MODEL == "embedded":
        loaded = request.getfixturevalue("tiny_base")
    else:
        from xtts_tune.model.base import load_base, resolve_base_path

        loaded = load_base(resolve_base_path(BASE_MODEL))
    assert loaded.num_layers == LAYERS
    return loaded


@pytest.fixture(scope="module")
def demo(tmp_path_factory, target, base):
    """A 3-trial study with pruning: trial 0 the guide's config, then a strong config (high lr, nothing
    frozen) and a hopeless one (lr 1e-6, every block frozen) that the median pruner stops at step 2."""
    root = tmp_path_factory.mktemp("study")
    raw = study_raw(
        "demo",
        target,
        root / "out",
        pruner={"type": "median", "n_startup_trials": 2, "n_warmup_steps": 1},
        enqueue=[{"learning_rate": 3.0e-3, "freeze_depth": 0}, {"learning_rate": 1.0e-6, "freeze_depth": 4}],
        keep_top_k=2,
    )
    cfg = make_cfg(raw, root)
    url = f"sqlite:///{root / 'demo.db'}"
    events: list[dict] = []
    t0 = time.perf_counter()
    summary = run_search(cfg, n_trials=3, storage=url, progress=events.append, base=base)
    return SimpleNamespace(
        root=root, raw=raw, cfg=cfg, url=url, summary=summary, events=events, seconds=time.perf_counter() - t0
    )


@pytest.mark.slow
def test_demo_study_with_pruning_finishes(demo):
    study = load_study("demo", demo.url)
    trials = [t for t in study.get_trials() if t.number < 3]
    assert [t.number for t in trials] == [0, 1, 2]
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    assert trials[2].state == TrialState.PRUNED  # lr 1e-6 with every block frozen: far above the median
    assert trials[2].user_attrs["steps"] < trials[2].user_attrs["planned_steps"]
    eval_steps = {0, 2, 4}
    for t in trials:
        curve = TrialRecord.from_trial(t).curve
        assert "curve" not in t.user_attrs  # long attributes are system attributes: the dashboard cuts user ones
        steps = [r["step"] for r in curve]
        # intermediate values are the validation losses at the evaluation steps
        assert set(t.intermediate_values) == set(steps) <= eval_steps
        assert all(t.intermediate_values[r["step"]] == pytest.approx(r["val_loss"]) for r in curve)
        best = min(r["val_loss"] for r in curve)
        assert t.user_attrs["best_val_loss"] == pytest.approx(best)
        if t.state == TrialState.COMPLETE:
            assert t.value == pytest.approx(best)  # the objective is the best, not the last, loss
        a = t.user_attrs
        for key in (
            "best_step",
            "best_epoch",
            "trainable_share",
            "trainable_params",
            "total_params",
            "wall_seconds",
            "checkpoint_path",
            "seed",
            "stop_reason",
            "verdict",
        ):
            assert key in a, key
        assert all(len(json.dumps(v)) < 1024 for v in a.values())  # nothing the dashboard would cut
        assert TrialRecord.from_trial(t).train_config["learning_rate"] == pytest.approx(t.params["learning_rate"])
        assert TrialRecord.from_trial(t).diagnosis["verdict"] in ("healthy", "overfitting", "underfitting", "unstable")
        assert Path(a["run_dir"]).name == f"trial-{t.number:04d}"
    # trial 0 is the guide's config clamped to the space (lr 5e-7 -> 1e-6; last two of 4 blocks trained)
    assert trials[0].params == {"freeze_depth": 2, "learning_rate": 1e-6, "weight_decay": 0.1, "augment_prob": 0.3}
    assert trials[0].user_attrs["enqueued"] == "guide"
    # study attributes
    attrs = study.user_attrs
    assert set(attrs["fingerprint"]) == {"dataset", "split", "base_model"}
    assert attrs["config"]["study_name"] == "demo" and attrs["xtts_tune_version"]
    # summary and progress events
    s = demo.summary
    assert [r.number for r in s.rows] == [0, 1, 2] and not s.interrupted and s.trials_run == [0, 1, 2]
    assert s.best_number == 1 and s.total_steps < s.planned_steps and s.disk_bytes > 0
    kinds = [e["event"] for e in demo.events]
    assert kinds.count("trial_start") == 3 and kinds.count("trial_end") == 3
    start = next(e for e in demo.events if e["event"] == "trial_start")
    assert start["number"] == 0 and start["n_trials"] == 3 and start["params"] == trials[0].params
    assert any(e["event"] == "eval" and e["number"] == 1 for e in demo.events)
    end = [e for e in demo.events if e["event"] == "trial_end"][-1]
    assert end["state"] == "PRUNED" and end["best_so_far"] == pytest.approx(s.best_value)
    assert f"xtts-tune report --config {s.config_path}" in render_summary(s) or s.config_path is None
    print(f"3-trial demo study: {demo.seconds:.1f} s")


@pytest.mark.slow
def test_top_k_checkpoints_are_kept_and_the_others_deleted(demo):
    study = load_study("demo", demo.url)
    finished = [t for t in study.get_trials() if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    ranked = sorted(finished, key=lambda t: t.user_attrs["best_val_loss"])
    trials_dir = demo.cfg.study_dir / "trials"
    for i, t in enumerate(ranked):
        folder = trials_dir / f"trial-{t.number:04d}"
        assert (folder / "curve.json").is_file()  # curves always stay
        if i < 2:
            assert (folder / CHECKPOINT_NAME).is_file()
        else:
            assert not (folder / CHECKPOINT_NAME).exists()
            assert json.loads((folder / RETENTION_NAME).read_text())["checkpoint_deleted"] is True


@pytest.mark.slow
def test_resuming_with_a_changed_dataset_fails_and_changes_nothing(demo, base, tmp_path):
    changed = tmp_path / "target"
    shutil.copytree(demo.raw["data"]["path"], changed)
    meta = changed / "metadata.csv"
    meta.write_text("".join(meta.read_text().splitlines(keepends=True)[1:]))  # one clip fewer
    raw = {**demo.raw, "data": {**demo.raw["data"], "path": str(changed)}}
    before = snapshot(demo.url, "demo")
    split_before = (demo.cfg.study_dir / "split.json").read_bytes()
    with pytest.raises(StudyMismatchError) as err:
        run_search(make_cfg(raw, demo.root), n_trials=1, storage=demo.url, base=base)
    message = str(err.value)
    assert "dataset" in message and "changed" in message and "study_name" in message
    assert demo.cfg.study_name in message and "train/validation split" not in message
    assert snapshot(demo.url, "demo") == before
    assert (demo.cfg.study_dir / "split.json").read_bytes() == split_before


@pytest.mark.slow
def test_running_again_continues_the_study(demo, base):
    from xtts_tune.doctor.run import report_path

    # the first search's summary said how to check the data; once check-data ran, the summary names its count
    assert demo.summary.data_check.startswith("data: not checked yet; `xtts-tune check-data --config")
    checked = report_path(demo.cfg)
    checked.parent.mkdir(parents=True, exist_ok=True)
    checked.write_text('{"flagged": 3, "clips": 20}')
    before = load_study("demo", demo.url).get_trials()
    try:
        summary = run_search(demo.cfg, n_trials=1, storage=demo.url, base=base)
    finally:
        checked.unlink()
    assert f"data: check-data flagged 3 of 20 clips (the list: {checked})" in render_summary(summary)
    assert summary.noise == 0.01 and "near-ties (within 1.0% of the lowest" in render_summary(summary)
    after = load_study("demo", demo.url).get_trials()
    assert len(after) == len(before) + 1
    assert summary.trials_run == [len(before)]  # numbers continue
    assert [(t.number, t.state, t.params, t.user_attrs) for t in after[: len(before)]] == [
        (t.number, t.state, t.params, t.user_attrs) for t in before
    ]
    assert after[-1].state in (TrialState.COMPLETE, TrialState.PRUNED)
    study = load_study("demo", demo.url)
    kept = kept_trials(study, study.get_trials(), 2)  # top 2 of the ranking + recommended, runner-up, guide
    assert {r.number for r in summary.rows if r.checkpoint} == kept and len(kept) <= 4
    # search.forgetting: false (study_raw): nothing scored, on the study or any trial
    assert "forgetting" not in study.user_attrs and not any("forget_loss" in t.user_attrs for t in after)


@pytest.mark.slow
def test_dashboard_serves_the_study_its_notes_and_curve_artifacts(demo):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = dashboard_command(demo.url, host="127.0.0.1", port=port)
    assert "--artifact-dir" in argv  # found through the study's user attributes
    log = open(demo.root / "dashboard.log", "w")  # noqa: SIM115 (closed in the finally, after the child exits)
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"

    def get(path: str):
        with urllib.request.urlopen(base_url + path, timeout=10) as r:
            return r.read()

    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                studies = json.loads(get("/api/studies"))["study_summaries"]
                break
            except OSError:
                assert proc.poll() is None, (demo.root / "dashboard.log").read_text()
                assert time.monotonic() < deadline, "optuna-dashboard did not start in 60 s"
                time.sleep(0.5)
        (study,) = [s for s in studies if s["study_name"] == "demo"]
        detail = json.loads(get(f"/api/studies/{study['study_id']}"))
        # the study note: the recommendation (the study's one ranking) and the unseen-clips comparison
        note = detail["note"]["body"]
        winner = load_study("demo", demo.url).user_attrs["test_comparison"]["winner"]
        assert note.startswith("# demo") and f"**Recommended: trial {winner}**" in note
        assert "**Unseen clips:** on " in note and "unseen test clips" in note
        by_number = {t["number"]: t for t in detail["trials"]}
        for number in (0, 1, 2):
            trial = by_number[number]
            body = trial["note"]["body"]
            assert body.startswith(f"## Trial {number} · ") and "**Verdict: " in body and "| step |" in body
            artifacts = {a["mimetype"]: a for a in trial["artifacts"]}
            assert set(artifacts) == {"application/json", "image/png"}
            url = f"/artifacts/{study['study_id']}/{trial['trial_id']}/"
            data = json.loads(get(url + artifacts["application/json"]["artifact_id"]))
            assert [r["step"] for r in data["curve"]] == sorted(int(v["step"]) for v in trial["intermediate_values"])
            assert get(url + artifacts["image/png"]["artifact_id"]).startswith(b"\x89PNG")
            attrs = {a["key"]: a["value"] for a in trial["user_attrs"]}
            assert attrs["verdict"] in ("healthy", "overfitting", "underfitting", "unstable", "inconclusive")
            assert "curve" not in attrs and all(len(str(v)) < 1024 for v in attrs.values())
        assert "PRUNED" in by_number[2]["note"]["body"]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def kill_a_worker_mid_trial(raw: dict, folder: Path, url: str, study_dir: Path):
    """Start a worker process, SIGKILL it once it is inside a trial (first evaluation written); return that
    trial (still RUNNING in the storage)."""
    proc = spawn_worker(raw, folder, url, 1, "killed")
    killed = None
    deadline = time.monotonic() + 180
    try:
        while killed is None:
            assert proc.poll() is None, (folder / "killed.stderr").read_text()[-3000:]
            assert time.monotonic() < deadline, "the worker never started a trial"
            running = load_study(raw["study_name"], url).get_trials(states=(TrialState.RUNNING,))
            if running and (study_dir / "trials" / f"trial-{running[0].number:04d}" / "curve.json").is_file():
                killed = running[0]
            else:
                time.sleep(0.2)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert load_study(raw["study_name"], url).get_trials()[killed.number].state == TrialState.RUNNING
    return killed


def assert_retried_once(url: str, killed, summary, before) -> None:
    trials = load_study("demo", url).get_trials()
    assert trials[killed.number].state == TrialState.FAIL
    (retry,) = [t for t in trials if t.system_attrs.get("failed_trial") == killed.number]
    assert retry.number > killed.number and retry.params == killed.params
    assert retry.state in (TrialState.COMPLETE, TrialState.PRUNED)
    assert summary.trials_run == [retry.number]
    for t in before:  # every previously finished trial is intact
        now = trials[t.number]
        assert (now.state, now.values, now.params, now.intermediate_values, now.user_attrs) == (
            t.state,
            t.values,
            t.params,
            t.intermediate_values,
            t.user_attrs,
        )


@pytest.mark.slow
def test_a_sigkilled_worker_on_another_machine_is_failed_after_the_grace_period_and_rerun(demo, base, tmp_path):
    url = copy_db(demo.url, tmp_path / "kill.db")
    out = tmp_path / "out"
    clone_output(demo.cfg.study_dir, out / "demo")
    raw = {
        **demo.raw,
        "output_dir": str(out),
        "search": {**demo.raw["search"], "heartbeat_interval": 1, "grace_period": 2},
    }
    before = [t for t in load_study("demo", url).get_trials() if t.state.is_finished()]
    killed = kill_a_worker_mid_trial(raw, tmp_path, url, out / "demo")
    worker = killed.user_attrs["worker"]
    assert worker["pid"] > 0 and worker["host"]
    # as if it had run on another machine: only its heartbeat can tell that it died
    open_storage(url).set_trial_user_attr(killed._trial_id, "worker", {**worker, "host": "another-machine"})
    before_retry = time.monotonic()
    time.sleep(4)  # past the grace period (SQLite timestamps have a 1 s resolution)
    summary = run_search(make_cfg(raw, tmp_path), n_trials=1, storage=url, base=base)
    assert time.monotonic() - before_retry > 2
    assert_retried_once(url, killed, summary, before)


@pytest.mark.slow
def test_a_restarted_search_on_the_same_machine_reruns_a_killed_trial_at_once(demo, base, tmp_path):
    """No grace period to wait for: the killed worker's process is gone, and this machine can see that."""
    url = copy_db(demo.url, tmp_path / "kill.db")
    out = tmp_path / "out"
    clone_output(demo.cfg.study_dir, out / "demo")
    raw = {**demo.raw, "output_dir": str(out), "search": {**demo.raw["search"], "grace_period": 600}}
    before = [t for t in load_study("demo", url).get_trials() if t.state.is_finished()]
    killed = kill_a_worker_mid_trial(raw, tmp_path, url, out / "demo")
    summary = run_search(make_cfg(raw, tmp_path), n_trials=1, storage=url, base=base)
    assert_retried_once(url, killed, summary, before)
    assert load_study("demo", url).get_trials()[killed.number].user_attrs["stop_reason"] == "worker process gone"


@pytest.mark.slow
def test_two_workers_share_one_sqlite_study(demo, tmp_path):
    url = f"sqlite:///{tmp_path / 'pair.db'}"
    out = tmp_path / "out"
    clone_output(demo.cfg.study_dir, out / "pair")
    raw = study_raw("pair", Path(demo.raw["data"]["path"]), out)
    raw["train"]["num_threads"] = 1  # two processes on two cores
    # the second worker starts once the first holds the queued trial 0: SQLite has no row locks, so two workers
    # popping the same queued trial at the same instant can both run it (an Optuna + SQLite limit; make search
    # WORKERS=N starts its workers the same way)
    workers = [spawn_worker(raw, tmp_path, url, 2, "w0")]
    deadline = time.monotonic() + 300
    while not (
        Path(url[len("sqlite:///") :]).is_file()
        and any(t.state != TrialState.WAITING for t in _trials_or_none(url, "pair"))
    ):
        assert workers[0].poll() is None and time.monotonic() < deadline, (tmp_path / "w0.stderr").read_text()[-3000:]
        time.sleep(0.5)
    workers.append(spawn_worker(raw, tmp_path, url, 2, "w1"))
    runs = []
    for i, proc in enumerate(workers):
        events = worker_events(proc, timeout=400)
        assert proc.returncode == 0, (tmp_path / f"w{i}.stderr").read_text()[-3000:]
        (done,) = [e for e in events if e["event"] == "done"]
        assert len(done["trials_run"]) == 2  # each worker runs its own n_trials
        runs.append(set(done["trials_run"]))
    assert not runs[0] & runs[1]
    trials = load_study("pair", url).get_trials()
    assert sorted(t.number for t in trials) == [0, 1, 2, 3] == sorted(runs[0] | runs[1])
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    assert all(TrialRecord.from_trial(t).curve for t in trials)
    assert [t.number for t in trials if t.user_attrs.get("enqueued") == "guide"] == [0]  # enqueued once
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 4  # the workers sampled different configs


@pytest.mark.slow
def test_ctrl_c_marks_the_running_trial_and_returns_the_summary(demo, base, tmp_path):
    url = f"sqlite:///{tmp_path / 'ctrlc.db'}"
    out = tmp_path / "out"
    clone_output(demo.cfg.study_dir, out / "ctrlc")
    cfg = make_cfg(study_raw("ctrlc", Path(demo.raw["data"]["path"]), out), tmp_path)

    def progress(event):
        if event["event"] == "eval" and event["step"] >= 2:
            raise KeyboardInterrupt

    summary = run_search(cfg, n_trials=3, storage=url, progress=progress, base=base)
    assert summary.interrupted and summary.trials_run == [0]
    assert "interrupted" in render_summary(summary)
    trials = load_study("ctrlc", url).get_trials()
    assert trials[0].state == TrialState.FAIL and trials[0].user_attrs["interrupted"] is True
    assert [r["step"] for r in TrialRecord.from_trial(trials[0]).curve] == [0, 2]
    (queued,) = trials[1:]  # its params are queued to run again
    assert queued.state == TrialState.WAITING and queued.params == trials[0].params
