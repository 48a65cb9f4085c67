"""Tests for the multi-fidelity search (``search.fidelity``, :mod:`xtts_tune.search.fidelity`, issue 29).

Fast: the section's validation (one line naming the file and the fix), how many trials each rung plans, the
promotion rule on an in-memory study (the rung's best by validation loss among the ranking's candidates,
never one already above, never a rejected one), the ranking's full-data rule, a re-run keeps its rung, and
export refuses a cheap trial. Slow: a real multi-rung study on the demo voice, end to end.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.trial import TrialState

from xtts_tune.analysis.ranking.order import rank, why_passed_over
from xtts_tune.analysis.records import guide_trial
from xtts_tune.analysis.rungs import rungs_line
from xtts_tune.config import ConfigError, StudyConfig, config_from_dict, load_config
from xtts_tune.export import ExportError, export_best
from xtts_tune.record import TrialRecord, write_study
from xtts_tune.search.fidelity import FidelitySettings, promotion_attrs, promotions
from xtts_tune.search.outcome import requeue_interrupted
from xtts_tune.search.settings import SearchSettings

ROOT = Path(__file__).resolve().parents[1]
SOURCE = "studies/rungs.yaml"
DISTRIBUTIONS = {"freeze_depth": IntDistribution(0, 4), "learning_rate": FloatDistribution(1e-5, 1e-2, log=True)}


@pytest.mark.parametrize(
    "fidelity, message",
    [
        ([0.25, 1.0], "search.fidelity must be a mapping like {rungs: [0.25, 1.0], promote: 3}"),
        ({"rung": [0.25, 1.0]}, "unknown key 'search.fidelity.rung'; did you mean 'search.fidelity.rungs'?"),
        ({"rungs": [1.0]}, "search.fidelity.rungs must list at least two shares"),
        ({"rungs": [0.25, 1.5]}, "search.fidelity.rungs: 1.5 is not a share of the train split in (0, 1]"),
        ({"rungs": [0.0, 1.0]}, "search.fidelity.rungs: 0 is not a share"),
        ({"rungs": [0.5, 0.25, 1.0]}, "search.fidelity.rungs must rise and end at 1.0"),
        ({"rungs": [0.25, 0.5]}, "must rise and end at 1.0 (the full train split, where trials are ranked)"),
        ({"rungs": [0.25, "a lot"]}, "search.fidelity.rungs"),
        ({"rungs": [0.25, 1.0], "promote": 0}, "search.fidelity.promote must be >= 1"),
    ],
)
def test_search_fidelity_mistakes_are_one_line_config_errors_naming_the_file(fidelity, message):
    cfg = config_from_dict({"search": {"fidelity": fidelity}}, source=SOURCE)
    with pytest.raises(ConfigError) as err:
        SearchSettings.from_config(cfg)
    text = str(err.value)
    assert text.startswith(SOURCE) and message in text and "\n" not in text


def test_search_fidelity_is_off_unless_set_and_parses_its_rungs():
    assert SearchSettings.from_config(StudyConfig()).fidelity is None
    cfg = config_from_dict({"search": {"fidelity": {"rungs": [0.125, 0.5, 1], "promote": 2}}}, source=SOURCE)
    assert SearchSettings.from_config(cfg).fidelity == FidelitySettings((0.125, 0.5, 1.0), 2)


def test_a_rung_plans_the_top_third_then_promote_at_full_data():
    three = FidelitySettings((0.125, 0.5, 1.0), promote=3)
    assert three.planned(20) == [20, 7, 3]
    assert three.planned(6) == [6, 3, 3]  # a third of 6 is 2: at least promote move up
    assert three.planned(2) == [2, 2, 2]  # never more than ran below
    two = FidelitySettings((0.25, 1.0), promote=3)
    assert two.planned(20) == [20, 3] and math.isclose(two.cost(20) / 20, 0.4)  # the measured 40 % (docs/search.md)


def _add(study, number_params, value, *, fidelity=None, verdict="healthy", promoted_from=None, enqueued=None):
    depth, lr = number_params
    losses = [6.0, 5.0, value + 0.1, value]
    curve = [{"step": 2 * k, "epoch": k, "val_loss": v} for k, v in enumerate(losses)]
    user, system = TrialRecord(
        curve=curve,
        best_val_loss=value,
        best_step=6,
        steps=6,
        planned_steps=6,
        diagnosis={"verdict": verdict, "reasons": [verdict]},
        verdict=verdict,
        trainable_share=0.1,
        fidelity=fidelity,
        promoted_from=promoted_from,
        enqueued=enqueued,
    ).split_attrs()
    study.add_trial(
        optuna.trial.create_trial(
            value=value,
            params={"freeze_depth": depth, "learning_rate": lr},
            distributions=DISTRIBUTIONS,
            user_attrs=user,
            system_attrs=system,
        )
    )
    return study.trials[-1]


def _cheap_study():
    """Six trials on 25 %: the lowest loss is unstable (never promoted), trial 2 already ran at 100 %."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize")
    write_study(study, config=StudyConfig().to_dict())
    for i, (value, verdict) in enumerate(
        [
            (3.9, "healthy"),
            (3.0, "unstable"),
            (3.4, "healthy"),
            (3.5, "overfitting"),
            (3.6, "healthy"),
            (4.4, "healthy"),
        ]
    ):
        _add(
            study, (i % 5, 1e-4 * (i + 1)), value, fidelity=0.25, verdict=verdict, enqueued="guide" if i == 0 else None
        )
    _add(study, (2, 3e-4), 3.1, fidelity=1.0, promoted_from=2)
    return study


def test_promotions_are_the_rungs_best_by_validation_loss_less_those_already_above():
    study = _cheap_study()
    fidelity = FidelitySettings((0.25, 1.0), promote=3)
    chosen = promotions(study, study.get_trials(), fidelity, 0)
    # the top 3 candidates at 25 % are 2 (3.4), 3 (3.5, overfitting competes), 4 (3.6); 1 (3.0) is unstable;
    # 2 already ran at 100 % and still holds its place: only 3 and 4 move up, not 0 (3.9)
    assert [t.number for t in chosen] == [3, 4]
    for t in chosen:
        study.enqueue_trial(t.params, user_attrs=promotion_attrs(t, 1.0))
    assert promotions(study, study.get_trials(), fidelity, 0) == []  # queued ones count as above
    waiting = [TrialRecord.from_trial(t) for t in study.get_trials(states=(TrialState.WAITING,))]
    assert [(r.fidelity, r.promoted_from) for r in waiting] == [(1.0, 3), (1.0, 4)]


def test_the_same_params_never_run_twice_on_a_rung():
    study = _cheap_study()
    _add(study, (3, 4e-4), 3.55, fidelity=1.0)  # trial 3's params, already on 100 % (another worker's)
    chosen = promotions(study, study.get_trials(), FidelitySettings((0.25, 1.0), promote=3), 0)
    assert [t.number for t in chosen] == [4]


def test_only_full_data_trials_are_ranked_recommended_and_the_guide():
    study = _cheap_study()
    _add(study, (4, 5e-4), 3.3, fidelity=None)  # a trial from before the rungs: full data
    ranking = rank(study)
    assert [v.number for v in ranking.candidates] == [6, 7]
    assert all(v.fidelity == 1.0 for v in ranking.candidates)
    assert ranking.passed_over == []  # trial 1 (3.0) is on 25 %: not a lower full-data loss
    cheap = rank(study, fidelity=0.25)
    assert cheap.winner.number == 2 and {v.fidelity for v in cheap.candidates} == {0.25}
    sentence = why_passed_over(cheap.winner, ranking.winner)
    assert sentence.startswith("trial 2 (3.4000) trained on 25% of the clips")
    assert guide_trial(study.get_trials()) is None  # the guide's recipe ran only on 25 %
    assert rungs_line(study.get_trials()) == (
        "rungs: 6 trials on 25 % of the train clips (36 steps), 2 on 100 % (12 steps); only those on 100 % are ranked"
    )


def test_export_refuses_a_cheap_trial(tmp_path):
    study = _cheap_study()
    with pytest.raises(ExportError, match=r"trial 2 trained on 25% of the train clips .* leave out --trial"):
        export_best(study, tmp_path / "best.yaml", trial_number=2)
    assert not (tmp_path / "best.yaml").exists()


def test_an_interrupted_trial_runs_again_on_its_own_rung():
    study = _cheap_study()
    user, _ = TrialRecord(interrupted=True, fidelity=1.0, promoted_from=3).split_attrs()
    study.add_trial(
        optuna.trial.create_trial(
            state=TrialState.FAIL,
            params={"freeze_depth": 3, "learning_rate": 4e-4},
            distributions=DISTRIBUTIONS,
            user_attrs=user,
        )
    )
    failed = study.trials[-1].number
    requeue_interrupted(study, failed)
    again = TrialRecord.from_trial(study.get_trials(states=(TrialState.WAITING,))[0])
    assert (again.retry_of, again.fidelity) == (failed, 1.0)


@pytest.mark.slow
def test_a_multi_rung_search_promotes_the_cheap_rungs_best_to_the_full_split(tiny_base, demo_target, tmp_path):
    from xtts_tune.search.notes import study_note
    from xtts_tune.search.runner import run_search

    cfg = load_config(
        ROOT / "studies" / "demo.yaml",
        [
            f"data.path={demo_target}",
            f"output_dir={tmp_path}",
            "train_count=16",
            "val_count=4",
            "max_epochs=3",
            "eval_every=2",
            "patience=10",
            "augment_prob=0",
        ],
    )
    search = {
        **cfg.search,
        "pruner": {"type": "none"},
        "samples": 0,
        "forgetting": False,
        "fidelity": {"rungs": [0.25, 1.0], "promote": 2},
    }
    cfg = dataclasses.replace(cfg, search=search)
    url = f"sqlite:///{tmp_path / 'rungs.db'}"
    events = []
    summary = run_search(cfg, n_trials=3, storage=url, base=tiny_base, progress=events.append)
    study = optuna.load_study(study_name="demo", storage=url)
    trials = study.get_trials()
    records = {t.number: TrialRecord.from_trial(t) for t in trials}
    assert [records[t.number].fidelity for t in trials] == [0.25, 0.25, 0.25, 1.0, 1.0]

    split = json.loads((cfg.study_dir / "split.json").read_text())
    batch, epochs = cfg.train.batch_size, cfg.train.max_epochs
    full_steps = math.ceil(len(split["train"]) / batch) * epochs  # planned steps tell how many clips trained
    cheap_steps = math.ceil(round(0.25 * len(split["train"])) / batch) * epochs
    assert len(split["train"]) == 16
    assert [records[t.number].planned_steps for t in trials] == [cheap_steps] * 3 + [full_steps] * 2

    cheap = [t for t in trials if records[t.number].fidelity == 0.25 and not records[t.number].rejected]
    best_two = sorted(cheap, key=lambda t: (records[t.number].best_val_loss, t.number))[:2]
    promoted = trials[3:]
    assert [records[t.number].promoted_from for t in promoted] == [t.number for t in best_two]
    assert [t.params for t in promoted] == [t.params for t in best_two]

    winner = rank(study).winner
    assert winner.number in (3, 4) and summary.best_number == winner.number
    assert summary.test_comparison is not None and summary.test_comparison.winner == winner.number
    assert summary.rungs.startswith("rungs: 3 trials on 25 % of the train clips") and "2 on 100 %" in summary.rungs
    assert "Rungs: 3 trials on 25 %" in study_note(study)
    starts = [e for e in events if e["event"] == "trial_start"]
    assert [(e["fidelity"], e["n_trials"]) for e in starts] == [(0.25, 5)] * 3 + [(1.0, 5)] * 2


def test_the_report_and_the_dashboard_note_show_the_rungs(tmp_path):
    from xtts_tune.report.page import build_report
    from xtts_tune.search.notes import study_note

    study = _cheap_study()
    line = "rungs: 6 trials on 25 % of the train clips (36 steps), 1 on 100 % (6 steps)"
    assert line in build_report(study, tmp_path / "report.html").read_text()
    assert f"R{line[1:]}" in study_note(study)
