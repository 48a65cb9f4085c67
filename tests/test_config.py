from pathlib import Path

import pytest

from xtts_tune.config import ConfigError, load_config
from xtts_tune.overrides import apply_overrides

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
    # the real-size study turns the prefix cache on, with what it needs
    assert t.prefix_cache and t.conditioning_slice == "fixed" and t.prefix_cache_dtype == "bfloat16"
    assert real.model.freeze_text_embedding and real.model.freeze_mel_embedding and real.model.freeze_conditioning


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


def test_a_folder_a_binary_file_an_empty_yaml_and_bad_yaml_are_one_line_each(tmp_path):
    (tmp_path / "studies").mkdir()
    (tmp_path / "studies" / "mine.yaml").write_text("study_name: mine\n")
    with pytest.raises(ConfigError, match=r"studies: is a folder, not a study YAML; .*--config .*studies/mine\.yaml"):
        load_config(tmp_path / "studies")
    wav = tmp_path / "clip.wav"
    wav.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\xac\x22\x56\x00")
    with pytest.raises(ConfigError, match=r"clip\.wav: not a text YAML file \(binary data at byte 5\)"):
        load_config(wav)
    empty = write(tmp_path, "# to do\n")
    with pytest.raises(ConfigError) as err:
        load_config(empty)
    assert str(err.value).startswith(f"{empty}: the study YAML is empty; set at least data.path")
    assert "base_model" in str(err.value)
    cfg = load_config(empty, ["data.path=mine", "base_model=embedded"])  # both set by overrides: fine
    assert cfg.data.path == "mine"
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "train:\n  learning_rate: [1\n"))
    assert f"{tmp_path / 'study.yaml'}:3:1: not valid YAML" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.val_count=2", "--set train.val_count=2: unknown key 'train.val_count'; did you mean 'data.val_count'?"),
        ("lr=1e-4", "--set lr=1e-4: unknown key 'lr'; did you mean 'learning_rate'?"),
        ("wd=0.1", "--set wd=0.1: unknown key 'wd'; did you mean 'weight_decay'?"),
        ("epochs=2", "--set epochs=2: unknown key 'epochs'; did you mean 'max_epochs'?"),
        ("learning_rate=abc", "--set learning_rate=abc: 'train.learning_rate' must be of type float, got 'abc'"),
        ("augment_prob=1.5", "--set augment_prob=1.5: train.augment_prob must be in [0, 1]"),
        (
            "search.keep_topk=3",
            "--set search.keep_topk=3: unknown key 'search.keep_topk'; did you mean 'search.keep_top_k'?",
        ),
        ("search.space={a: [}", "--set search.space={a: [}: the value is not valid YAML"),
    ],
)
def test_set_mistakes_name_the_override_not_the_yaml_file(tmp_path, override, message):
    path = write(tmp_path, "data: {path: data/mine}\nbase_model: embedded\n")
    with pytest.raises(ConfigError) as err:
        load_config(path, [override])
    assert str(err.value).startswith(message) and str(path) not in str(err.value)


def test_common_aliases_are_suggested_in_the_yaml_too(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown key 'train\.lr'; did you mean 'train\.learning_rate'\?"):
        load_config(write(tmp_path, "train: {lr: 1.0e-4}\n"))
    with pytest.raises(ConfigError, match=r"unknown key 'train\.epochs'; did you mean 'train\.max_epochs'\?"):
        load_config(write(tmp_path, "train: {epochs: 2}\n"))


def test_the_config_modules_import_in_one_direction():
    """schema <- overrides <- config: neither the schema nor the overrides reader imports the module that puts
    them together, so there is no import circle (each module, first in a fresh interpreter, imports alone)."""
    import ast
    import subprocess
    import sys

    def imports(name: str) -> set[str]:
        tree = ast.parse((ROOT / "xtts_tune" / f"{name}.py").read_text())
        return {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}

    assert not {"xtts_tune.config", "xtts_tune.overrides"} & imports("schema")
    assert "xtts_tune.config" not in imports("overrides")
    for name in ("schema", "overrides", "config"):
        subprocess.run([sys.executable, "-c", f"import xtts_tune.{name}"], cwd=ROOT, check=True)
