"""The command line as a user runs it: real subprocesses, real output."""

import subprocess
import sys
from pathlib import Path

import yaml

from xtts_tune.record import write_study

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args, cwd=None, timeout=600):
    return subprocess.run(
        [sys.executable, "-m", "xtts_tune.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def study_yaml(tmp_path: Path, data: Path, **train) -> Path:
    doc = yaml.safe_load((ROOT / "studies" / "demo.yaml").read_text())
    doc["data"].update(path=str(data), demo_target=False)
    doc["output_dir"] = str(tmp_path / "runs")
    doc["train"].update(max_steps=2, eval_every=1, **train)
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_trial_command_prints_share_evaluations_and_paths(demo_target, tmp_path):
    config = study_yaml(tmp_path, demo_target)
    out = run_cli(
        "trial",
        "--config",
        str(config),
        "--set",
        "learning_rate=3e-4",
        "--set",
        "freeze_depth=2",
        "--run-dir",
        str(tmp_path / "trial"),
    )
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "trainable " in text and "%)" in text
    assert text.count("eval  step") == 3  # step 0, 1, 2
    assert f"best checkpoint: {tmp_path / 'trial' / 'best_gpt.pth'}" in text
    assert f"curve (JSON):    {tmp_path / 'trial' / 'curve.json'}" in text
    assert (tmp_path / "trial" / "best_gpt.pth").is_file()
    assert "Traceback" not in out.stderr


def test_user_mistakes_are_one_line_errors_without_traceback(demo_target, tmp_path):
    config = study_yaml(tmp_path, demo_target)
    bad = run_cli("trial", "--config", str(config), "--set", "learning_rat=1e-4")
    assert bad.returncode == 2 and "did you mean 'learning_rate'" in bad.stderr and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    deep = run_cli("trial", "--config", str(config), "--set", "freeze_depth=9")
    assert deep.returncode == 2 and "freeze_depth is 9" in deep.stderr and "0..4" in deep.stderr
    missing = run_cli("trial", "--config", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2 and "nope.yaml: config file not found" in missing.stderr
    base = run_cli("trial", "--config", str(config), "--set", f"base_model={tmp_path}")
    assert base.returncode == 2 and "missing config.json" in base.stderr
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").rglob("*.pth"))


def test_export_of_a_missing_trial_is_a_one_line_error(tmp_path):
    import optuna

    url = f"sqlite:///{tmp_path / 's.db'}"
    study = optuna.create_study(study_name="s", storage=url)
    write_study(study, config={"study_name": "s"})
    study.add_trial(optuna.trial.create_trial(value=1.0))
    out = run_cli("export", "--study", "s", "--storage", url, "--trial", "5", "--out", str(tmp_path / "b.yaml"))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip() == "error: study 's' has no COMPLETE trial number 5; complete trials: 0"
    assert not (tmp_path / "b.yaml").exists()


def test_search_next_steps_work_when_copied_from_another_folder(demo_target, tmp_path):
    """The YAML lives outside any studies/ folder; the printed next steps run as printed from elsewhere, and
    report and export write exactly where the search wrote them."""
    elsewhere = tmp_path / "my" / "voices"
    elsewhere.mkdir(parents=True)
    config = study_yaml(elsewhere, demo_target)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    out = run_cli("search", "--config", str(config), "--trials", "1", cwd=tmp_path / "a")
    assert out.returncode == 0, out.stderr
    # the cost block before the first trial, and the measured time and ETA after it (search.preflight)
    assert out.stdout.index("cost: 150 clips") < out.stdout.index("— trial 0")
    assert (
        "cost: disk about " in out.stdout and "time: this trial " in out.stdout and "0 of 1 trials left" in out.stdout
    )
    report_line = next(line for line in out.stdout.splitlines() if line.startswith("report: "))
    searched = Path(report_line.split(": ", 1)[1])
    assert searched == elsewhere / "studies" / "demo-report.html" and searched.is_file()
    steps = [line.strip() for line in out.stdout.splitlines() if line.strip().startswith("xtts-tune ")]
    assert any(" report " in s for s in steps) and any(" export " in s for s in steps)
    searched.unlink()
    for step in steps:
        if " report " in step or " export " in step:
            args = step.split()[1:]
            again = run_cli(*args, cwd=tmp_path / "b")
            assert again.returncode == 0, (step, again.stderr)
    assert searched.is_file() and (elsewhere / "studies" / "demo-best.yaml").is_file()
    assert not (tmp_path / "b" / "studies").exists()
    lost = run_cli("report", "--study", "demo", cwd=tmp_path / "b")
    assert lost.returncode == 2 and "pass --config PATH/TO/demo.yaml" in lost.stderr


def test_a_mistyped_config_is_named_before_torch_or_coqui_load(tmp_path):
    """A user mistake costs under a second, not the 7-9 s of importing torch, transformers and coqui first."""
    heavy = ("torch", "transformers", "TTS", "sklearn")
    code = (
        "import sys\nfrom xtts_tune import cli\n"
        "for command in ('search', 'trial', 'train'):\n"
        "    rc = cli.main([command, '--config', sys.argv[1]])\n"
        f"    print(command, rc, *sorted(m for m in {heavy!r} if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "missing.yaml")], capture_output=True, text=True, timeout=120
    )
    assert out.stdout.splitlines() == ["search 2", "trial 2", "train 2"], out.stdout + out.stderr
    assert out.stderr.count("missing.yaml: config file not found") == 3
