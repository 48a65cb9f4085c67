"""``xtts-tune train`` after a SIGKILL: the same command continues, the curve goes on where it stopped, and the
result is an uninterrupted run's (on a CPU, within float tolerance)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from tests.conftest import demo_subset
from xtts_tune.data.split import split_fingerprint
from xtts_tune.training.resume import RESUME_FILE


def final_yaml(folder: Path, data: Path, split: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "split.json").write_text(json.dumps(split))
    doc = {
        "study_name": "demo-final",
        "base_model": "embedded",
        "output_dir": str(folder / "runs"),
        "data": {"path": str(data), "split_file": str(folder / "split.json")},
        "model": {"freeze_conditioning": True},
        # 3 steps per epoch, 4 epochs; noise augmentation and random conditioning slices use both RNGs
        "train": {
            "batch_size": 4,
            "max_epochs": 4,
            "eval_every": 2,
            "patience": 100,
            "learning_rate": 1e-3,
            "freeze_depth": 2,
            "augment_prob": 0.5,
            "augment_variants": 1,
            "num_threads": 1,
            "seed": 3,
        },
        "provenance": {"study": "demo", "split_fingerprint": split_fingerprint(split["train"], split["val"])},
    }
    path = folder / "best.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def train(config: Path, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "xtts_tune.cli", "train", "--config", str(config), "--resume-every", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def comparable(curve: list[dict]) -> list[tuple]:
    return [(r["step"], r["epoch"], -1.0 if r["train_loss"] is None else r["train_loss"], r["val_loss"]) for r in curve]


@pytest.mark.slow
def test_train_killed_mid_run_resumes_to_the_uninterrupted_result(demo_target, tmp_path):
    data = demo_subset(demo_target, tmp_path / "data", 16)
    ids = sorted(line.split("|")[0] for line in (data / "metadata.csv").read_text().splitlines())
    split = {"seed": 0, "train": ids[4:], "val": ids[:4]}
    whole_cfg, killed_cfg = final_yaml(tmp_path / "whole", data, split), final_yaml(tmp_path / "killed", data, split)
    whole = train(whole_cfg)
    run = tmp_path / "killed" / "runs" / "demo-final"
    proc = train(killed_cfg)
    deadline = time.monotonic() + 600
    while True:  # kill it once a state past step 4 is saved, well before its 12 steps
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "no resumable state was saved"
        try:
            saved = torch.load(run / RESUME_FILE, weights_only=True)["step"]
        except (FileNotFoundError, EOFError, RuntimeError):
            saved = 0
        if saved >= 4:
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    curve_at_kill = json.loads((run / "curve.json").read_text())["curve"]
    assert 4 <= curve_at_kill[-1]["step"] < 12 and not (run / "model").exists()

    out, err = train(killed_cfg).communicate(timeout=900)  # the same command again
    assert "resuming from step" in out, (out[-2000:], err[-3000:])
    wout, werr = whole.communicate(timeout=900)
    assert whole.returncode == 0, werr[-3000:]
    assert not (run / RESUME_FILE).exists()  # removed once the run ended

    resumed = json.loads((run / "curve.json").read_text())["curve"]
    uninterrupted = json.loads((tmp_path / "whole" / "runs" / "demo-final" / "curve.json").read_text())["curve"]
    steps = [r["step"] for r in resumed]
    assert steps == sorted(set(steps)) and steps[-1] == 12  # continuous: every evaluation once, up to the end
    assert comparable(resumed[: len(curve_at_kill)]) == comparable(curve_at_kill)
    for a, b in zip(comparable(resumed), comparable(uninterrupted), strict=True):
        assert a[:2] == b[:2] and a[2:] == pytest.approx(b[2:], rel=1e-5, abs=1e-6)
    mine = torch.load(run / "best_gpt.pth", weights_only=True)["tensors"]
    theirs = torch.load(tmp_path / "whole" / "runs" / "demo-final" / "best_gpt.pth", weights_only=True)["tensors"]
    assert mine.keys() == theirs.keys()
    for name in mine:
        torch.testing.assert_close(mine[name], theirs[name], rtol=1e-5, atol=1e-6)
    assert (run / "model" / "model.pth").is_file()
