"""The search-strategy bench (``make bench-search``): a tiny table recorded for real, searches replayed on it and
on constructed tables whose outcome is known, and the printed rows."""

from __future__ import annotations

import dataclasses
import math
import random
import statistics
from pathlib import Path

import optuna
import pytest

from benchmarks.search.bench import overall, print_rows, strategy_rows
from benchmarks.search.record import record_table
from benchmarks.search.replay import (
    STRATEGIES,
    Replay,
    replay_curve,
    replay_search,
)
from benchmarks.search.table import (
    SearchTable,
    TableConfig,
    TableMismatchError,
    grid_params,
    grid_values,
    load_table,
)
from xtts_tune.analysis.ranking.order import rank
from xtts_tune.config import StudyConfig, TrainConfig, load_config
from xtts_tune.record import TrialRecord
from xtts_tune.search.settings import SearchSettings

ROOT = Path(__file__).resolve().parents[1]
GOOD = {"freeze_depth": 2, "learning_rate": 1e-3, "weight_decay": 0.05, "augment_prob": 0.125}
HIGH = {"freeze_depth": 0, "learning_rate": 1e-2, "weight_decay": 0.05, "augment_prob": 0.125}


@pytest.fixture(scope="module")
def tiny(tiny_base, demo_target, tmp_path_factory):
    """Two configurations and the guide's recipe, 8 steps each (5 evaluations), recorded for real and reloaded."""
    cfg = load_config(ROOT / "studies" / "demo.yaml", [f"data.path={demo_target}", "max_steps=8"])
    table = record_table(cfg, work_dir=tmp_path_factory.mktemp("work"), params=[GOOD, HIGH], base=tiny_base)
    path = table.save(tmp_path_factory.mktemp("table") / "table.json")
    return cfg, load_table(path), path


def test_a_recorded_table_holds_each_configuration_to_its_last_step_and_is_checked(tiny):
    cfg, table, path = tiny
    assert [c.params for c in table.configs[:2]] == [GOOD, HIGH]
    guide = table.guide
    assert guide is table.configs[2] and guide.params == {
        "freeze_depth": 2,
        "learning_rate": 1e-5,
        "weight_decay": 0.1,
        "augment_prob": 0.3,
    }
    for c in table.configs:  # early stopping off, no pruning: every curve reaches the planned last step
        assert [r["step"] for r in c.curve] == [0, 2, 4, 6, 8] and c.planned_steps == 8 == c.steps
        assert all(math.isfinite(r["val_loss"]) and "train_loss" in r for r in c.curve)
    assert table.configs[1].trainable_params > table.configs[0].trainable_params == guide.trainable_params
    assert table.meta["commit"] and table.meta["threads"] == 1 and table.study == "studies/demo.yaml"
    replay = Replay.of(table, cfg)
    table.check(dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, patience=1)), replay.settings.space, path)
    other = load_config(ROOT / "studies" / "demo.yaml", [f"data.path={cfg.data.path}", "max_steps=6"])
    with pytest.raises(TableMismatchError, match="train.max_steps"):
        table.check(other, replay.settings.space, path)


def test_replayed_trials_report_the_recorded_curve_and_spend_its_steps(tiny):
    cfg, table, _ = tiny
    # the replay applies the study's patience and min_delta: with these, early stopping fires on these curves
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, patience=1, min_delta=0.5))
    replay = Replay.of(table, cfg)
    stops = set()
    for strategy in ("tpe+median", "random+sh"):
        for seed in (0, 1):
            run = replay_search(replay, strategy, seed, 6)
            trials = run.study.get_trials(deepcopy=False)
            assert len(trials) == 6 and trials[0].params == table.guide.params
            assert run.steps == [t.user_attrs["steps"] for t in trials]
            for t in trials:
                entry = next(c for c in table.configs if c.params == t.user_attrs["table_params"])
                steps = t.user_attrs["steps"]
                recorded = {r["step"]: r["val_loss"] for r in entry.curve if r["step"] <= steps}
                assert t.intermediate_values == pytest.approx(recorded)  # every evaluation up to the stop, no more
                assert steps == max(t.intermediate_values)
                stops.add(t.user_attrs["stop_reason"])
                if t.user_attrs["stop_reason"] == "early_stopped":  # patience 1: the first evaluation that failed
                    losses = [r["val_loss"] for r in entry.curve]  # to improve on the best by min_delta
                    first = next(i for i in range(1, len(losses)) if losses[i] >= min(losses[:i]) - cfg.train.min_delta)
                    assert steps == entry.curve[first]["step"]
            for n in range(1, 7):  # the best after n trials is rank()'s winner of those n trials
                winner = rank(run.study, trials=trials[:n], thresholds=replay.thresholds).winner
                assert run.winners[n - 1] == (winner.value if winner else None)
            assert run.best_at(20) == run.winners[-1]
    assert "early_stopped" in stops
    guide = replay_search(replay, "guide", 0, 60)
    assert guide.steps == [replay_curve(table.guide, cfg.train).steps] == [2] and len(guide.study.trials) == 1


def test_a_replayed_curve_stops_where_the_real_trial_loop_stops(tiny, tiny_base, demo_target, tmp_path):
    from xtts_tune.training.loop import run_trial
    from xtts_tune.training.prepare import prepare_data

    cfg, table, _ = tiny
    entry = table.configs[0]
    train = dataclasses.replace(cfg.train, **entry.params, patience=1, min_delta=0.5)
    real_cfg = dataclasses.replace(cfg, output_dir=str(tmp_path), train=train)
    data = prepare_data(real_cfg, tiny_base)
    cases = [
        (None, "early_stopped"),
        (lambda r: r["step"] == 4, "stopped_by_callback"),
        (lambda r: r["step"] == 8, "max_steps"),
    ]  # the loop ignores a stop asked at the planned last step
    for callback, reason in cases:
        loose = dataclasses.replace(real_cfg, train=dataclasses.replace(train, patience=100)) if callback else real_cfg
        real = run_trial(loose, base=tiny_base, data=data, run_dir=tmp_path / "trial", callback=callback)
        replayed = replay_curve(entry, loose.train, callback)
        assert (replayed.stop_reason, replayed.steps, replayed.best_step) == (
            real.stop_reason,
            real.steps,
            real.best_step,
        )
        assert replayed.stop_reason == reason
        assert [r["val_loss"] for r in replayed.curve] == pytest.approx([r["val_loss"] for r in real.curve])


def constructed(patience: int = 100, pruner: dict | None = None) -> Replay:
    """A table over the learning rate alone (4 grid points and the guide's 1e-5) with curves made up so that the
    outcome of each rule is known: the guide improves slowly, 1.3e-4 a lot, the others get worse."""
    search = {
        "space": {"learning_rate": {"low": 1e-5, "high": 1e-2, "log": True}},
        "pruner": pruner or {"type": "median", "n_startup_trials": 1, "n_warmup_steps": 2},
    }
    cfg = StudyConfig(train=TrainConfig(eval_every=2, patience=patience, min_delta=0.01), search=search)
    space = SearchSettings.from_config(cfg).space

    def curve(values):
        return [{"step": 2 * i, "epoch": i, "train_loss": 6 - i, "val_loss": v} for i, v in enumerate(values)]

    configs = []
    for params in grid_params(space, space.guide_params(4, cfg.train)):
        lr = params["learning_rate"]
        values = (
            [6.0, 5.75, 5.5, 5.25, 5.0]
            if lr == 1e-5
            else [6.0, 5.0, 4.0, 3.0, 2.0]
            if 1e-4 < lr < 2e-4
            else [6.0, 6.2, 6.4, 6.6, 6.8]
        )
        configs.append(TableConfig(params, curve(values), 8, "completed", 10, 100, guide=lr == 1e-5))
    return Replay.of(SearchTable("constructed.yaml", "constructed", 4, {}, configs), cfg)


def test_pruning_spends_fewer_steps_on_the_same_suggestions_and_the_table_best_is_the_good_curve():
    replay = constructed()
    best = replay.table_best()
    assert best.params == {"learning_rate": pytest.approx(1.33352e-4)} and best.value == 2.0
    for seed in (0, 1):
        pruned, unpruned = (replay_search(replay, s, seed, 8) for s in ("random+sh", "random"))
        # the random sampler suggests the same configurations whatever the results
        assert [t.params for t in pruned.study.trials] == [t.params for t in unpruned.study.trials]
        assert all(p <= u for p, u in zip(pruned.steps, unpruned.steps)) and unpruned.steps == [8] * 8
        cut = [t for t in pruned.study.trials if t.state == optuna.trial.TrialState.PRUNED]
        assert cut and all(t.user_attrs["steps"] == 2 == max(t.intermediate_values) for t in cut)
        assert pruned.total_steps < unpruned.total_steps
        target = best.value * 1.01
        if unpruned.steps_to(target) is not None:  # the same trial reaches it, with no more steps before
            assert pruned.steps_to(target) <= unpruned.steps_to(target)
            assert pruned.winners.index(best.value) == unpruned.winners.index(best.value)


def test_the_guide_alone_spends_its_early_stopped_curve_and_the_median_pruner_cuts_the_bad_curves():
    guide = replay_search(constructed(patience=1), "guide", 0, 60)
    assert guide.steps == [8] and guide.best_at(20) == 5.0 and guide.steps_to(2.02) is None
    flat = constructed(patience=2)
    flat.table.guide.curve = [dict(r, val_loss=6.0) for r in flat.table.guide.curve]
    guide = replay_search(flat, "guide", 0, 60)  # two evaluations without improvement: stops at step 4
    assert guide.steps == [4] and guide.study.trials[0].user_attrs["stop_reason"] == "early_stopped"
    again = [replay_search(constructed(), "tpe+hyperband", 0, 15).steps for _ in range(2)]  # brackets by study name
    assert again[0] == again[1] and min(again[0]) < 8
    run = replay_search(constructed(), "tpe+median", 3, 10)
    bad = [
        t for t in run.study.trials if TrialRecord.from_trial(t).curve[-1]["val_loss"] > 6.0 or t.state.name == "PRUNED"
    ]
    assert bad and all(t.state.name == "PRUNED" and t.user_attrs["steps"] == 2 for t in bad)


def test_the_bench_pruners_are_the_studys_own_or_wait_for_its_warm_up():
    replay = Replay.of(
        load_table(ROOT / "benchmarks" / "search-table-demo.json"), load_config(ROOT / "studies" / "demo.yaml")
    )
    assert replay.pruner("median") is replay.settings.pruner
    assert replay.pruner("successive_halving").kwargs == {"min_resource": 6, "reduction_factor": 3}
    assert replay.pruner("hyperband").kwargs == {"min_resource": 6, "max_resource": 32, "reduction_factor": 3}
    assert type(replay.pruner("none").build()).__name__ == "NopPruner"


def test_a_suggestion_snaps_to_each_knobs_nearest_grid_value():
    space = SearchSettings.from_config(load_config(ROOT / "studies" / "demo.yaml")).space
    guide = space.guide_params(4, TrainConfig())
    configs = [TableConfig(p, [], 0, "completed", 1, 2, guide=p == guide) for p in grid_params(space, guide)]
    table = SearchTable("s.yaml", "s", 4, {}, configs)
    assert len(configs) == 5 * 4 * 2 * 2 + 1 and table.nearest(dict(guide), space).guide
    rng = random.Random(0)
    for _ in range(200):
        params = {
            "freeze_depth": rng.randint(0, 4),
            "learning_rate": 10 ** rng.uniform(-5, -2),
            "weight_decay": rng.uniform(0, 0.2),
            "augment_prob": rng.uniform(0, 0.5),
        }
        expected = {}
        for name, value in params.items():
            spec = space.params[name]
            values = grid_values(spec, {"learning_rate": 4, "weight_decay": 2, "augment_prob": 2}.get(name, 0))
            expected[name] = min(values, key=lambda v: abs(math.log(v / value)) if spec.log else abs(v - value))
        assert table.nearest(params, space).params == expected


def test_the_rows_give_the_steps_the_best_at_20_and_the_share_of_random_searchs_steps(capsys):
    replay = constructed()
    target = replay.table_best().value * 1.01
    runs = {
        key: [replay_search(replay, key, seed, 30, target=target, at_least=20) for seed in (0, 1)]
        for key in ("tpe+sh", "random", "guide")
    }
    rows = {row.key: row for row in strategy_rows(runs, target)}
    assert rows["random"].ratios == [1.0, 1.0] and rows["random"].steps == [r.steps_to(target) for r in runs["random"]]
    assert rows["tpe+sh"].ratios == [s / r.steps_to(target) for s, r in zip(rows["tpe+sh"].steps, runs["random"])]
    assert rows["guide"].steps == [None, None] and rows["guide"].best_at == [5.0, 5.0]
    assert all(len(run.winners) >= 20 for run in runs["tpe+sh"])  # run on to 20 trials for the best at 20
    assert rows["random"].share == 1.0 and rows["guide"].share == math.inf
    assert rows["tpe+sh"].share == statistics.median(rows["tpe+sh"].steps) / statistics.median(rows["random"].steps)
    assert rows["random"].meets(rows["random"]) and not rows["guide"].meets(rows["random"])  # never within 1 %
    print_rows(list(rows.values()), seeds=2)
    out = capsys.readouterr().out
    for key in runs:
        assert f"| {STRATEGIES[key].label}" in out
    assert "| never | never / never | not met |" in out and "| 100 % | 100 % / 100 % | the baseline |" in out
    verdicts = overall({"a": list(rows.values()), "b": list(rows.values())})
    assert verdicts["random"] == (False, 1.0) and verdicts["guide"] == (False, math.inf)  # random: not ≤ 60 % anywhere


def _sampler_kwargs(sampler) -> tuple:
    """A sampler's class and every plain setting it holds (its seeds, startup, multivariate, group, ...)."""
    plain = (int, float, bool, str, tuple, type(None))
    return type(sampler), {k: v for k, v in vars(sampler).items() if isinstance(v, plain)}


def _queued(study: optuna.Study) -> list[tuple[dict, str | None]]:
    return [(t.params or t.system_attrs.get("fixed_params"), t.user_attrs.get("enqueued")) for t in study.trials]


@pytest.mark.slow
def test_the_replayed_default_search_samples_and_starts_as_run_search_does(
    tiny_base, demo_target, tmp_path, monkeypatch
):
    from benchmarks.search.bench import DEFAULT
    from xtts_tune.search.runner import run_search
    from xtts_tune.search.settings import CONSTRAINT

    cfg = load_config(
        ROOT / "studies" / "demo.yaml",
        [f"data.path={demo_target}", f"output_dir={tmp_path}", "max_steps=4", "search.forgetting=false"],
    )
    built = []
    create = optuna.create_study
    with monkeypatch.context() as patch:
        patch.setattr(optuna, "create_study", lambda **kw: built.append(create(**kw)) or built[-1])
        run_search(cfg, n_trials=1, storage=f"sqlite:///{tmp_path / 'demo.db'}", base=tiny_base)
    real = built[0]
    replay = Replay.of(load_table(ROOT / "benchmarks" / "search-table-demo.json"), cfg)
    seed = replay.settings.sampler_options["seed"]
    assert replay.settings_for(DEFAULT).sampler_options == SearchSettings.from_config(cfg).sampler_options
    assert _sampler_kwargs(replay.sampler(DEFAULT, seed)) == _sampler_kwargs(real.sampler)
    replayed = replay.study(
        replay.sampler(DEFAULT, seed), replay.pruner("none"), settings=replay.settings_for(DEFAULT, seed)
    )
    assert (
        _queued(replayed)
        == _queued(optuna.load_study(study_name="demo", storage=real._storage))[: len(replayed.trials)]
    )
    assert _queued(replayed)[0][1] == "guide"
    ran = real.trials[0]  # the guide's recipe, run for real: the constraint the default feeds the sampler
    constrained = replay.settings_for(DEFAULT).sampler_options["constraints"]
    assert ran.constraints == ({CONSTRAINT: TrialRecord.from_trial(ran).rejected} if constrained else {})


@pytest.mark.slow
def test_run_search_stores_the_rankings_rejection_as_the_trials_violated_constraint(tiny_base, demo_target, tmp_path):
    from xtts_tune.analysis.ranking.verdicts import REJECTED
    from xtts_tune.search.runner import run_search
    from xtts_tune.search.settings import CONSTRAINT

    cfg = load_config(
        ROOT / "studies" / "demo.yaml",
        [f"data.path={demo_target}", f"output_dir={tmp_path}", "max_steps=4", "search.forgetting=false"],
    )
    # the median pruner stops the hopeless config (every block frozen, lr 1e-6) at step 2: two evaluations are
    # too few to judge (inconclusive), which the ranking rejects whatever the loss
    search = {
        **cfg.search,
        "space": {**cfg.search["space"], "learning_rate": {"low": 1e-6, "high": 1e-2, "log": True}},
        "sampler": {"seed": 0, "constraints": True, "spread_start": False},
        "pruner": {"type": "median", "n_startup_trials": 2, "n_warmup_steps": 1},
        "enqueue": [{"learning_rate": 3e-3, "freeze_depth": 0}, {"learning_rate": 1e-6, "freeze_depth": 4}],
    }
    cfg = dataclasses.replace(cfg, search=search)
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    run_search(cfg, n_trials=3, storage=url, base=tiny_base)
    study = optuna.load_study(study_name="demo", storage=url)
    verdicts = {v.number: v.verdict for v in rank(study).verdicts}
    trials = study.get_trials(deepcopy=False)
    assert trials[2].state == optuna.trial.TrialState.PRUNED and verdicts[2] == "inconclusive"
    for t in trials:
        violated = 1.0 if verdicts[t.number] in REJECTED else 0.0
        assert TrialRecord.from_trial(t).rejected == violated and t.constraints == {CONSTRAINT: violated}
    assert {TrialRecord.from_trial(t).rejected for t in trials} == {0.0, 1.0}  # a feasible trial and a violated one
