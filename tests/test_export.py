"""search → report → export → train, end to end on the demo voice."""

import shutil

import pytest
import yaml

from xtts_tune.config import load_config
from xtts_tune.export import coqui_fields, export_best
from xtts_tune.model.base import load_base
from xtts_tune.record import TrialRecord
from xtts_tune.report.page import build_report
from xtts_tune.search.runner import run_search
from xtts_tune.search.storage import load_study
from xtts_tune.training.final import run_final_training

pytestmark = pytest.mark.slow


def test_exported_config_trains_the_final_model_and_reproduces_the_trial(demo_target, tmp_path):
    (tmp_path / "studies").mkdir()
    raw = {
        "study_name": "roundtrip",
        "base_model": "embedded",
        "output_dir": "runs/roundtrip",
        "data": {"path": str(demo_target), "val_count": 12},
        "train": {
            "batch_size": 8,
            "max_steps": 6,
            "eval_every": 2,
            "max_epochs": 1,
            "augment_prob": 0.3,
            "augment_variants": 2,
            "patience": 10,
        },
        "search": {
            "space": {
                "learning_rate": {"low": 1.0e-4, "high": 1.0e-3, "log": True},
                "freeze_depth": {"low": 1, "high": 3},
            },
            "sampler": {"seed": 0},
            "pruner": {"type": "none"},
            "enqueue_guide": False,
            "forgetting": False,
        },
    }
    config = tmp_path / "studies" / "roundtrip.yaml"
    config.write_text(yaml.safe_dump(raw))
    cfg = load_config(config)
    summary = run_search(cfg, n_trials=2)
    study = load_study("roundtrip", summary.storage)
    report = build_report(study, tmp_path / "report.html")
    assert report.stat().st_size > 1e6

    out = export_best(study, tmp_path / "elsewhere" / "best.yaml", fmt="coqui")
    exported = load_config(out)  # written outside studies/: every path in it must be absolute
    trial = study.trials[exported.provenance["trial"]]
    assert exported.provenance["study"] == "roundtrip" and exported.provenance["val_loss"] == trial.value
    assert exported.provenance["dataset_fingerprint"] == study.user_attrs["fingerprint"]["dataset"]
    for key, value in trial.params.items():
        assert getattr(exported.train, key) == value
    assert exported.train.max_steps == trial.user_attrs["best_step"]
    assert coqui_fields(yaml.safe_load(out.read_text()))["GPTTrainerConfig"]["lr"] == trial.params["learning_rate"]
    assert out.with_suffix(".coqui.json").is_file()

    final = run_final_training(out)
    result = final.trial
    original = [r for r in TrialRecord.from_trial(trial).curve if r["step"] <= exported.train.max_steps]
    assert [r["step"] for r in result.curve] == [r["step"] for r in original]
    for mine, theirs in zip(result.curve, original):
        assert mine["val_loss"] == pytest.approx(theirs["val_loss"], rel=1e-4)
    assert result.best_val_loss == pytest.approx(trial.value, rel=1e-4)

    # the final folder is a complete XTTS folder that loads like any base
    folder = final.model_dir
    assert folder == result.checkpoint_path.parent / "model"
    final = load_base(folder)
    shutil.rmtree(tmp_path / "runs", ignore_errors=True)
    assert final.num_layers == 4
