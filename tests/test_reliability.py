"""The bad-input and fault drill of issue 12, as a user meets it: real commands, real files, real signals.

Every user mistake and every fault a user can fix ends in one ``error:`` line and exit status 2, without a
traceback and without changing anything already written; Ctrl-C prints the summary and one line; stopping
``xtts-tune dashboard`` stops its optuna-dashboard child; ``xtts-tune train`` runs on the study's split or
not at all. Tests that need a tiny or read-only file system mount a tmpfs and are skipped without root.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.conftest import demo_subset
from xtts_tune.config import ConfigError
from xtts_tune.data.clips import DataError
from xtts_tune.record import write_study

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args, cwd=None, timeout=600, env=None):
    return subprocess.run(
        [sys.executable, "-m", "xtts_tune.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=None if env is None else {**os.environ, **env},
    )


def one_error_line(out: subprocess.CompletedProcess) -> str:
    """The command's only stderr line (after warnings), checked to be an ``error:`` line with exit status 2."""
    assert out.returncode == 2, (out.returncode, out.stderr[-3000:])
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    lines = [line for line in out.stderr.splitlines() if not line.startswith("WARNING ")]
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    return lines[0]


def project(tmp_path: Path, data: Path, **train) -> Path:
    """A study YAML in ``<tmp_path>/studies`` on ``data`` (short trials); returns its path."""
    doc = yaml.safe_load((ROOT / "studies" / "demo.yaml").read_text())
    doc["data"].update(path=str(data), demo_target=False, val_count=8)
    doc["output_dir"] = "runs/demo"
    doc["search"]["forgetting"] = False  # measured in test_forgetting
    doc["train"].update({"max_steps": 2, "eval_every": 1, "max_epochs": 1, "augment_variants": 1, **train})
    (tmp_path / "studies").mkdir(exist_ok=True)
    path = tmp_path / "studies" / "demo.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def written(tmp_path: Path, data: Path) -> set[str]:
    return {str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if data not in p.parents and p != data}


def mount_tmpfs(folder: Path, options: str) -> None:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    folder.mkdir(parents=True, exist_ok=True)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)]).returncode != 0:
        pytest.skip("mount -t tmpfs is not allowed here")


# --- one line, exit 2, nothing written ------------------------------------------------------------------


def damage_duplicate(data: Path) -> None:
    meta = data / "metadata.csv"
    lines = meta.read_text().splitlines()
    lines[5] = lines[3]
    meta.write_text("\n".join(lines) + "\n")


def damage_latin1(data: Path) -> None:
    meta = data / "metadata.csv"
    lines = meta.read_text().splitlines()
    lines[6] = lines[6].replace("e", "\u00e9", 1)
    meta.write_bytes(("\n".join(lines) + "\n").encode("cp1252"))


@pytest.mark.parametrize(
    "case, damage, args, expected",
    [
        ("duplicate clip ids", damage_duplicate, [], "metadata.csv: clip ids are not unique: target_0004 (lines 4, 6)"),
        ("non-UTF-8 metadata", damage_latin1, [], "metadata.csv:7: not UTF-8 (byte 0xe9 at byte"),
        ("no wavs folder", lambda d: shutil.rmtree(d / "wavs"), [], "wavs: audio folder not found"),
        ("unknown language", None, ["--set", "language=xx"], "data.language 'xx' cannot be used"),
        (
            "freeze depth beyond the base",
            None,
            ["--set", "freeze_depth=99"],
            "train.freeze_depth is 99 but the base model has 4 GPT layers; use 0..4",
        ),
        (
            "search space beyond the base",
            None,
            ["--set", "search.space={freeze_depth: {low: 0, high: 9}}"],
            "search.space.freeze_depth is 9 but the base model has 4 GPT layers",
        ),
        (
            "override in the wrong section",
            None,
            ["--set", "train.val_count=2"],
            "error: --set train.val_count=2: unknown key 'train.val_count'; did you mean 'data.val_count'?",
        ),
        ("alias", None, ["--set", "lr=1e-4"], "error: --set lr=1e-4: unknown key 'lr'; did you mean 'learning_rate'?"),
    ],
)
def test_search_mistakes_are_one_line_and_write_nothing(demo_target, tmp_path, case, damage, args, expected):
    data = demo_subset(demo_target, tmp_path / "data")
    if damage is not None:
        damage(data)
    config = project(tmp_path, data)
    before = written(tmp_path, data)
    line = one_error_line(run_cli("search", "--config", str(config), "--trials", "1", *args))
    assert expected in line, line
    assert written(tmp_path, data) == before  # no database, no split, no cache, no trial


def test_config_mistakes_are_one_line(tmp_path):
    (tmp_path / "studies").mkdir()
    (tmp_path / "studies" / "empty.yaml").write_text("# nothing yet\n")
    (tmp_path / "clip.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt ")
    assert "is a folder, not a study YAML" in one_error_line(run_cli("search", "--config", str(tmp_path / "studies")))
    assert "not a text YAML file" in one_error_line(run_cli("trial", "--config", str(tmp_path / "clip.wav")))
    line = one_error_line(run_cli("search", "--config", str(tmp_path / "studies" / "empty.yaml")))
    assert "the study YAML is empty; set at least data.path" in line and "base_model" in line
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["clip.wav", "empty.yaml", "studies"]


def test_a_read_only_database_is_named(demo_target, tmp_path):
    import optuna

    folder = tmp_path / "ro"
    folder.mkdir()
    optuna.create_study(study_name="demo", storage=f"sqlite:///{folder / 'demo.db'}")
    if os.geteuid() == 0:  # root writes through file modes: make the file system read-only instead
        saved = (folder / "demo.db").read_bytes()
        mount_tmpfs(folder, "size=4m")
        (folder / "demo.db").write_bytes(saved)
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
    else:
        (folder / "demo.db").chmod(0o444)
        folder.chmod(0o555)
    try:
        config = project(tmp_path, demo_target)
        line = one_error_line(
            run_cli("search", "--config", str(config), "--storage", f"sqlite:///{folder / 'demo.db'}")
        )
        assert line == (
            f"error: {folder / 'demo.db'}: database is read-only; make it writable (chmod u+w, or a "
            "writable mount), or copy it somewhere writable and pass --storage sqlite:///COPY"
        )
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", str(folder)])
        else:
            folder.chmod(0o755)


def test_a_full_disk_is_one_line_and_leaves_no_temporary_file(demo_target, tmp_path):
    from xtts_tune.errors import DiskFullError
    from xtts_tune.io import atomic_write_text

    full = tmp_path / "full"
    mount_tmpfs(full, "size=400k")
    try:
        kept = full / "kept.json"
        atomic_write_text(kept, "{}")
        with pytest.raises(DiskFullError, match=r"kept\.json: disk full, no space left on the device"):
            atomic_write_text(kept, "x" * 1_000_000)
        assert kept.read_text() == "{}" and sorted(p.name for p in full.iterdir()) == ["kept.json"]
        # a real search whose feature cache and checkpoints do not fit: the preflight refuses before writing
        config = project(tmp_path, demo_target)
        search = ("search", "--config", str(config), "--set", f"output_dir={full}", "--trials", "1")
        line = one_error_line(run_cli(*search))
        assert "but only" in line and "are free; lower search.keep_top_k, or set output_dir" in line, line
        assert sorted(p.name for p in full.iterdir()) == ["kept.json"]
        # past a preflight told the disk has room (the disk fills from elsewhere mid-run): still one line
        from xtts_tune.search.preflight import FREE_DISK_ENV

        line = one_error_line(run_cli(*search, env={FREE_DISK_ENV: str(10**12)}))
        assert "disk full, no space left on the device" in line
        assert not [p for p in full.rglob("*") if p.name.endswith(".tmp")]
    finally:
        subprocess.run(["umount", str(full)])


@pytest.mark.slow
def test_ctrl_c_prints_the_summary_and_one_line(demo_target, tmp_path):
    config = project(tmp_path, demo_target, max_steps=40, max_epochs=40)  # long enough to be interrupted
    proc = subprocess.Popen(
        [sys.executable, "-m", "xtts_tune.cli", "search", "--config", str(config), "--trials", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # as from a terminal: a shell's background job (`make test &`, nohup) inherits SIGINT ignored, and Python
        # then leaves it ignored, so the Ctrl-C would never arrive (seen: the search ran on and exited 0)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 300
    while not list((tmp_path / "runs").rglob("curve.json")):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err[-4000:]
    assert err.strip().splitlines() == [
        "interrupted (Ctrl-C): everything finished is stored; run the same command to continue"
    ]
    assert "study 'demo'" in out and "interrupted: the running trial was marked FAILED" in out


# --- the dashboard's child ------------------------------------------------------------------------------


def test_stopping_the_dashboard_stops_its_child(tmp_path):
    import optuna

    url = f"sqlite:///{tmp_path / 's.db'}"
    optuna.create_study(study_name="s", storage=url)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "xtts_tune.cli", "dashboard", "--study", "s", "--storage", url, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    children: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=2)
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "the dashboard never served"
                time.sleep(0.3)
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        assert children
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 128 + signal.SIGTERM
        assert not [c for c in children if Path(f"/proc/{c}").exists()]
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=2)
    finally:
        for child in children:
            if Path(f"/proc/{child}").exists():
                os.kill(int(child), signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()


# --- train runs on the study's split ---------------------------------------------------------------------


def exported(tmp_path: Path, data: Path, split: dict | None, **provenance) -> Path:
    from xtts_tune.data.split import split_fingerprint

    doc = {
        "study_name": "demo-final",
        "base_model": "embedded",
        "output_dir": str(tmp_path / "runs"),
        "data": {"path": str(data)},
        "train": {"max_steps": 1},
        "provenance": {"study": "demo", **provenance},
    }
    if split is not None:
        (tmp_path / "split.json").write_text(json.dumps(split))
        doc["data"]["split_file"] = str(tmp_path / "split.json")
        doc["provenance"].setdefault("split_fingerprint", split_fingerprint(split["train"], split["val"]))
    path = tmp_path / "best.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_train_refuses_a_missing_or_other_split_and_a_changed_dataset(demo_target, tmp_path):
    from xtts_tune.training.final import run_final_training

    data = demo_subset(demo_target, tmp_path / "data", 20)
    ids = sorted(line.split("|")[0] for line in (data / "metadata.csv").read_text().splitlines())
    split = {"seed": 0, "train": ids[4:], "val": ids[:4]}
    with pytest.raises(ConfigError, match=r"best\.yaml: data\.split_file is not set"):
        run_final_training(exported(tmp_path, data, None))
    config = exported(tmp_path, data, split)
    (tmp_path / "split.json").unlink()
    with pytest.raises(DataError, match=r"split\.json: data\.split_file not found"):
        run_final_training(config)
    assert not (tmp_path / "split.json").exists()  # not replaced by a new split
    config = exported(
        tmp_path, data, {"seed": 0, "train": ids[:16], "val": ids[16:]}, split_fingerprint="0123456789abcdef"
    )
    with pytest.raises(DataError, match=r"split\.json: not the split study 'demo' used"):
        run_final_training(config)
    config = exported(tmp_path, data, split, dataset_fingerprint="0123456789abcdef")
    with pytest.raises(DataError, match=r"the dataset changed since study 'demo'"):
        run_final_training(config)
    assert not (tmp_path / "runs").exists()
    line = one_error_line(run_cli("train", "--config", str(config)))
    assert "the dataset changed since study 'demo'" in line


def test_report_and_export_never_replace_another_studys_file(tmp_path):
    """Two studies named 'demo' in two storages: the second never overwrites the first one's YAML or report,
    even when the path is given with --out (``make export`` does that)."""
    import optuna

    urls = {}
    for name, uid in (("a", "aaaa1111"), ("b", "bbbb2222")):
        urls[name] = f"sqlite:///{tmp_path / name}.db"
        study = optuna.create_study(study_name="demo", storage=urls[name])
        write_study(study, config={"study_name": "demo"}, uid=uid)
        study.add_trial(optuna.trial.create_trial(value=1.0))
    best, report = tmp_path / "demo-best.yaml", tmp_path / "demo-report.html"
    for command, out in (("export", best), ("report", report)):
        extra = ["--trial", "0"] if command == "export" else []
        first = run_cli(command, "--study", "demo", "--storage", urls["a"], "--out", str(out), *extra)
        assert first.returncode == 0, first.stderr
        kept = out.read_bytes()
        line = one_error_line(run_cli(command, "--study", "demo", "--storage", urls["b"], "--out", str(out), *extra))
        assert f"{out} is the " in line and "of another study named 'demo' (id aaaa1111), not of this one" in line
        assert out.read_bytes() == kept
