"""``data.exclude`` (issue 30): the excluded clips are in no part of the split, and changing them on a begun
study is a drift refused with one line. On the real CC0 speaker's committed clips."""

from __future__ import annotations

from pathlib import Path

import pytest

from xtts_tune.config import DataConfig, StudyConfig
from xtts_tune.errors import UserError
from xtts_tune.search.definition import check_definition, study_definition
from xtts_tune.search.fingerprint import expected_fingerprint
from xtts_tune.search.space import parse_space
from xtts_tune.training.prepare import prepare_data

KATHLEEN = Path(__file__).resolve().parents[1] / "corpora" / "real-voice-kathleen"


def kathleen_cfg(tmp_path: Path, **data) -> StudyConfig:
    return StudyConfig(
        study_name="ex",
        output_dir=str(tmp_path / "runs"),
        data=DataConfig(
            path=str(KATHLEEN), formatter="coqui", metadata="metadata_coqui.csv", val_count=10, test_count=10, **data
        ),
        root=str(tmp_path),
    )


def test_excluded_clips_are_in_no_part_of_the_split(tmp_path, tiny_base):
    (tmp_path / "flagged.txt").write_text("# check-data\narctic_a0001\narctic_a0050\n\narctic_a0099\n")
    cfg = kathleen_cfg(tmp_path, exclude="flagged.txt")
    data = prepare_data(cfg, tiny_base)
    dropped = {"arctic_a0001", "arctic_a0050", "arctic_a0099"}
    parts = data.split.train + data.split.val + data.split.test
    assert len(parts) == 97 and not dropped & set(parts) and not dropped & set(data.clips)
    assert len(data.split.val) == 10 and len(data.split.test) == 10
    # what a search computes before writing anything is the same split
    assert expected_fingerprint(cfg, tiny_base.fingerprint)["split"] == data.split.fingerprint
    # the dataset is what is on disk: excluding clips does not change it (the exclusions are a drift)
    assert expected_fingerprint(kathleen_cfg(tmp_path), tiny_base.fingerprint)["dataset"] == data.fingerprint


def test_an_unknown_id_or_a_missing_file_is_one_line_naming_it(tmp_path, tiny_base):
    with pytest.raises(UserError) as err:
        prepare_data(kathleen_cfg(tmp_path, exclude="nope.txt"), tiny_base)
    assert str(err.value).startswith(str(tmp_path / "nope.txt")) and "\n" not in str(err.value)
    (tmp_path / "bad.txt").write_text("arctic_a0001\narctic_z9999\n")
    with pytest.raises(UserError, match=r"bad.txt: data.exclude names 1 clip id\(s\) .*\(arctic_z9999\)"):
        prepare_data(kathleen_cfg(tmp_path, exclude="bad.txt"), tiny_base)
    assert not (tmp_path / "runs").exists()  # refused before the split or a cache is written


def test_changing_the_exclusions_of_a_begun_study_is_a_drift(tmp_path):
    space = parse_space({"learning_rate": {"low": 1e-5, "high": 1e-3, "log": True}}, StudyConfig().train, "s.yaml")
    stored = study_definition(kathleen_cfg(tmp_path, exclude=["arctic_a0001"]), space)
    same = study_definition(kathleen_cfg(tmp_path, exclude=["arctic_a0001"]), space)
    check_definition("ex", "sqlite:///ex.db", stored, same, StudyConfig())  # unchanged: goes on
    (tmp_path / "more.txt").write_text("arctic_a0001\narctic_a0002\n")
    now = study_definition(kathleen_cfg(tmp_path, exclude="more.txt"), space)
    with pytest.raises(UserError) as err:
        check_definition("ex", "sqlite:///ex.db", stored, now, StudyConfig())
    assert type(err.value).__name__ == "StudyDriftError" and "\n" not in str(err.value)
    assert "data.exclude changed (stored 1 clips excluded, now 2 clips excluded (+arctic_a0002))" in str(err.value)
    # a study recorded before data.exclude existed has no such key: not a drift
    old = {k: v for k, v in stored.items() if k != "data"}
    check_definition("ex", "sqlite:///ex.db", old, now, StudyConfig())


def test_the_key_takes_a_list_or_a_path_from_yaml_and_set(tmp_path):
    from xtts_tune.schema import config_from_dict

    assert config_from_dict({"data": {"exclude": ["a", "b"]}}).data.exclude == ["a", "b"]
    assert config_from_dict({"data": {"exclude": "flagged.txt"}}).data.exclude == "flagged.txt"
    assert config_from_dict({"data": {"exclude": "[a, b]"}}).data.exclude == ["a", "b"]  # --set data.exclude=[a,b]
