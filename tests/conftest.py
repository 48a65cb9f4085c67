"""Shared fixtures: the demo target voice (generated once per session) and the embedded tiny base."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest
import torch

from xtts_tune.config import DataConfig, ModelConfig, StudyConfig, TrainConfig


@pytest.fixture(scope="session")
def demo_target(tmp_path_factory) -> Path:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (sudo apt-get install -y espeak-ng)")
    from xtts_tune.data.demo import ensure_demo_target

    return ensure_demo_target(tmp_path_factory.mktemp("demo") / "target")


@pytest.fixture(scope="session")
def tiny_base():
    from xtts_tune.model.base import embedded_base_path, load_base

    return load_base(embedded_base_path())


@pytest.fixture
def fresh_base(tiny_base):
    """The session's base with its GPT weights restored after the test."""
    state = copy.deepcopy(tiny_base.gpt.state_dict())
    yield tiny_base
    tiny_base.gpt.load_state_dict(state)
    for p in tiny_base.gpt.parameters():
        p.requires_grad_(True)


def demo_subset(demo_target: Path, folder: Path, n: int = 60) -> Path:
    """A dataset folder holding copies of the demo target's first ``n`` clips (tests may break it freely)."""
    (folder / "wavs").mkdir(parents=True)
    lines = (demo_target / "metadata.csv").read_text().splitlines()[:n]
    for line in lines:
        cid = line.split("|")[0]
        shutil.copy(demo_target / "wavs" / f"{cid}.wav", folder / "wavs" / f"{cid}.wav")
    (folder / "metadata.csv").write_text("\n".join(lines) + "\n")
    return folder


def small_config(data_path: Path, out: Path, **train) -> StudyConfig:
    """A short trial on the demo target (seconds on a CPU)."""
    defaults = dict(
        freeze_depth=2,
        learning_rate=3e-4,
        batch_size=8,
        max_epochs=1,
        max_steps=4,
        eval_every=2,
        patience=5,
        augment_prob=0.0,
        seed=0,
    )
    defaults.update(train)
    return StudyConfig(
        study_name="test",
        output_dir=str(out),
        data=DataConfig(path=str(data_path), val_fraction=0.2),
        model=ModelConfig(freeze_conditioning=True),
        train=TrainConfig(**defaults),
    )


@pytest.fixture
def make_config():
    return small_config


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
