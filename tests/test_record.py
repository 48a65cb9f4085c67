"""The study record owns every stored attribute: one definition of each key, one reader, one writer.

These tests hold that nothing outside ``xtts_tune/record/`` reads or writes Optuna's attribute dicts, that
every field survives a round trip through a real storage where it belongs (long ones as system attributes,
which the dashboard does not cut), and that a malformed or legacy study reads without a crash.
"""

import dataclasses
import re
from pathlib import Path

import optuna
import pytest

from xtts_tune.record import (
    LONG_ATTR_PREFIX,
    SampleEntry,
    StudyRecord,
    TestComparison,
    TrialRecord,
    read_confirmations,
    write_confirmation_run,
    write_study,
    write_test_comparison,
    write_trial,
)

PACKAGE = Path(__file__).resolve().parents[1] / "xtts_tune"
RECORD = PACKAGE / "record"

# reading or writing an attribute dict directly, anywhere but the record package
ACCESS = re.compile(
    r"\.(user_attrs|system_attrs)\s*(\.get\(|\[|\.items\(|\.keys\()"
    r"|\bset_user_attr\(|\bset_system_attr\(|\bset_trial_(user|system)_attr\(|\bget_study_user_attrs\("
    r"|\bget_trial_(user|system)_attrs\("
)
# keys that only ever name a stored attribute (generic names such as "steps" are also ordinary dict keys of
# curves and bench rows, so they are held by ACCESS above instead)
# ("uid", "test_comparison" and "xtts_tune_version" are also keys of the export's provenance and the study
# folder's claim file, which are not study attributes)
DISTINCTIVE = [
    "enqueued",
    "listening_samples",
    "confirmations",
    "xtts_tune:",
    "retry_of",
    "fixed_params",
    "failed_trial",
    "retry_history",
    "curve_png_artifact_id",
    "curve_artifact_id",
    "table_params",
    "definition",
    "fingerprint",
]
KEY_CONSTANT = re.compile(r"^[A-Z_]*(_ATTR|_ATTRS|_ATTR_PREFIX)\s*=", re.M)


def _outside_record():
    return [p for p in PACKAGE.rglob("*.py") if RECORD not in p.parents]


def test_no_attribute_dict_is_touched_outside_the_record_package():
    found = [
        f"{p.relative_to(PACKAGE)}:{t[: m.start()].count(chr(10)) + 1}: {m.group(0)}"
        for p in _outside_record()
        for t in [p.read_text()]
        for m in ACCESS.finditer(t)
    ]
    assert found == []


def test_stored_key_literals_and_key_constants_live_only_in_the_record_package():
    found = []
    for p in _outside_record():
        text = p.read_text()
        found += [f"{p.relative_to(PACKAGE)}: {m.group(0)}" for m in KEY_CONSTANT.finditer(text)]
        for key in DISTINCTIVE:
            for m in re.finditer(rf"[\"']{re.escape(key)}[\"']", text):
                found.append(f"{p.relative_to(PACKAGE)}:{text[: m.start()].count(chr(10)) + 1}: {m.group(0)}")
    assert found == []
    # and the record package does define each of them
    record_text = "".join(p.read_text() for p in RECORD.glob("*.py"))
    fields = {f.name for f in dataclasses.fields(TrialRecord)} | {f.name for f in dataclasses.fields(StudyRecord)}
    for key in DISTINCTIVE:
        assert key in fields or key in record_text, key


def _every_trial_field() -> TrialRecord:
    values = {
        "int": 7,
        "float": 0.25,
        "str": "x",
        "dict": {"a": 1},
        "bool": True,
        "records": [{"step": 0, "val_loss": 5.0}, {"step": 2, "val_loss": 4.5}],
        "samples": [SampleEntry("hello", "/tmp/s.wav", "art-1")],
    }
    return TrialRecord(**{f.name: values[f.metadata["kind"]] for f in dataclasses.fields(TrialRecord)})


def test_every_trial_field_round_trips_through_a_real_storage(tmp_path):
    study = optuna.create_study(storage=f"sqlite:///{tmp_path}/r.db", study_name="r")
    trial = study.ask()
    written = _every_trial_field()
    write_trial(trial, **written.to_attrs())
    study.tell(trial, 1.0)
    frozen = optuna.load_study(study_name="r", storage=f"sqlite:///{tmp_path}/r.db").trials[0]
    assert TrialRecord.from_trial(frozen) == written
    # the long ones live as system attributes (the dashboard cuts user attributes at 1,024 characters)
    assert {"curve", "train_config", "diagnosis"}.isdisjoint(frozen.user_attrs)
    assert {LONG_ATTR_PREFIX + k for k in ("curve", "train_config", "diagnosis")} <= set(frozen.system_attrs)


def test_split_attrs_is_the_storage_layout_write_trial_makes(tmp_path):
    study = optuna.create_study()
    trial = study.ask()
    written = _every_trial_field()
    write_trial(trial, **written.to_attrs())
    study.tell(trial, 1.0)
    user, system = written.split_attrs()
    assert study.trials[0].user_attrs == user
    assert {k: v for k, v in study.trials[0].system_attrs.items() if k.startswith(LONG_ATTR_PREFIX)} == system


def test_malformed_and_legacy_attributes_read_without_a_crash():
    rec = TrialRecord.from_attrs(
        {
            "steps": "12",
            "best_val_loss": float("nan"),
            "best_step": True,
            "curve": "not a list",
            "samples": [{"text": "no path"}, 3],
            "interrupted": "yes",
            "worker": ["host"],
        }
    )
    assert rec == TrialRecord()
    # studies made before the long attributes moved keep them as user attributes
    legacy = TrialRecord.from_attrs({"curve": [{"step": 0, "val_loss": 5.0}], "train_config": {"seed": 1}})
    assert legacy.curve == [{"step": 0, "val_loss": 5.0}] and legacy.train_config == {"seed": 1}
    assert StudyRecord.from_attrs({"uid": 5, "config": "x", "fingerprint": {"dataset": "d"}}) == StudyRecord(
        fingerprint={"dataset": "d"}
    )
    assert TestComparison.parse({"clips": 10, "winner_loss": None}) is None
    assert TestComparison.parse("garbage") is None


def test_an_unknown_key_is_refused_at_the_writer():
    study = optuna.create_study()
    trial = study.ask()
    with pytest.raises(KeyError, match="not a stored trial attribute"):
        write_trial(trial, best_loss=1.0)
    with pytest.raises(KeyError, match="not a stored study attribute"):
        write_study(study, fingerprints={})


def test_study_record_comparison_and_confirmations_round_trip(tmp_path):
    url = f"sqlite:///{tmp_path}/s.db"
    study = optuna.create_study(storage=url, study_name="s")
    by_kind = {"dict": {"k": 1}, "list": [{"k": 1}]}
    record = StudyRecord(**{f.name: by_kind.get(f.metadata["kind"], f.name) for f in dataclasses.fields(StudyRecord)})
    write_study(study, **record.to_attrs())
    comparison = TestComparison(
        clips=12, winner=3, winner_loss=3.1, winner_val_loss=3.0, guide=0, guide_loss=3.9, base_loss=4.2
    )
    write_test_comparison(study, comparison)
    write_confirmation_run(study, 3, {"seed": 2, "best_val_loss": 3.2, "best_step": 8})
    write_confirmation_run(study, 3, {"seed": 1, "best_val_loss": float("inf"), "best_step": 6})
    write_confirmation_run(study, 3, {"seed": 2, "best_val_loss": 3.3, "best_step": 9})  # replaces seed 2
    loaded = optuna.load_study(study_name="s", storage=url)
    assert StudyRecord.from_study(loaded) == record
    assert TestComparison.from_study(loaded) == comparison
    assert read_confirmations(loaded) == {
        3: [{"seed": 1, "best_val_loss": None, "best_step": 6}, {"seed": 2, "best_val_loss": 3.3, "best_step": 9}]
    }
