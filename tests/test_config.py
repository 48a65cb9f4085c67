from pathlib import Path

import pytest

from xtts_tune.config import ConfigError, apply_overrides, load_config

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "study.yaml"
    path.write_text(text)
    return path


def test_shipped_configs_load_with_the_guides_values():
    demo = load_config(ROOT / "studies" / "demo.yaml")
    assert demo.base_model == "embedded" and demo.data.demo_target
    assert demo.data_path == ROOT / "data" / "demo" / "target"
    real = load_config(ROOT / "studies" / "xtts_v2_small_dataset.yaml")
    t = real.train
    assert (t.batch_size, t.grad_accum_steps, t.learning_rate, t.weight_decay) == (1, 16, 5e-7, 0.1)
    assert (t.grad_clip_norm, t.max_epochs, t.patience, t.min_delta, t.freeze_depth) == (0.5, 2, 1, 0.01, 28)


def test_misspelled_key_names_file_key_and_closest(tmp_path):
    path = write(tmp_path, "train:\n  learning_rat: 1.0e-4\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    msg = str(err.value)
    assert str(path) in msg and "train.learning_rat" in msg and "did you mean 'train.learning_rate'" in msg


def test_unknown_section_and_top_level_key(tmp_path):
    with pytest.raises(ConfigError, match="unknown key 'trian'.*did you mean 'train'"):
        load_config(write(tmp_path, "trian: {}\n"))


def test_bad_types_and_values_are_rejected(tmp_path):
    with pytest.raises(ConfigError, match="'train.batch_size' must be of type int"):
        load_config(write(tmp_path, "train: {batch_size: eight}\n"))
    with pytest.raises(ConfigError, match="augment_prob must be in"):
        load_config(write(tmp_path, "train: {augment_prob: 1.5}\n"))
    with pytest.raises(ConfigError, match="data.train_count must be >= 0"):
        load_config(write(tmp_path, "data: {train_count: -1}\n"))
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "train: [\n"))
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_set_overrides_bare_and_dotted(tmp_path):
    path = write(tmp_path, "train: {learning_rate: 1.0e-4}\n")
    cfg = load_config(path, ["learning_rate=3e-4", "freeze_depth=2", "data.val_count=10", "search.keep_top_k=5"])
    assert cfg.train.learning_rate == pytest.approx(3e-4)
    assert cfg.train.freeze_depth == 2 and cfg.data.val_count == 10 and cfg.search["keep_top_k"] == 5
    with pytest.raises(ConfigError, match="did you mean 'learning_rate'"):
        apply_overrides({}, ["learning_rat=1"])
    with pytest.raises(ConfigError, match="expected key=value"):
        apply_overrides({}, ["learning_rate"])


def test_relative_paths_resolve_against_the_project_of_studies(tmp_path):
    (tmp_path / "studies").mkdir()
    path = tmp_path / "studies" / "x.yaml"
    path.write_text("data: {path: data/mine}\noutput_dir: runs/x\n")
    cfg = load_config(path)
    assert cfg.data_path == tmp_path / "data" / "mine"
    assert cfg.output_path == tmp_path / "runs" / "x"
