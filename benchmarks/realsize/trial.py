"""Real size, whole trial: what a user's real-size trial costs, measured through the command they run.

The bare-step figures (:mod:`benchmarks.realsize.bench`) time one optimizer step of the released XTTS v2 GPT.
A user runs more: ``xtts-tune trial`` loads the base folder, validates the clips, computes their features
with the real-size DVAE, trains, evaluates and writes the checkpoint; ``xtts-tune train`` then writes the
final XTTS folder. This module builds a released-layout folder at the released size with random weights
(:func:`xtts_tune.model.released.build_released_folder`: 30 layers, dim 1024, the real-size DVAE and HiFi-GAN
decoder; no weights can be downloaded here), takes a few demo clips, and runs both commands in child
processes. It reports the trial's peak memory (resident set on CPU, ``max_memory_allocated`` on CUDA, as the
trial records it), the checkpoint's size against the whole GPT's, and how many copies of the GPT the final
run folder holds.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
import yaml

from benchmarks.realsize.model import ARCH_FILE, read_architecture

CLIPS = 8
"""Demo clips in the dataset (2 validation); enough for the path, few enough for a CPU."""


def _gpt_bytes(model_pth: Path) -> int:
    state = torch.load(model_pth, map_location="cpu", weights_only=True, mmap=True)
    state = state.get("model", state)
    return sum(t.numel() * t.element_size() for k, t in state.items() if k.startswith("gpt."))


def _dataset(work: Path, clips: int) -> Path:
    from xtts_tune.data.demo import ensure_demo_target

    full = ensure_demo_target(work / "demo-target")
    out = work / "data"
    (out / "wavs").mkdir(parents=True, exist_ok=True)
    lines = (full / "metadata.csv").read_text().splitlines()[:clips]
    for line in lines:
        name = line.split("|")[0] + ".wav"
        shutil.copy(full / "wavs" / name, out / "wavs" / name)
    (out / "metadata.csv").write_text("\n".join(lines) + "\n")
    return out


def _cli(*args: str) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, "-m", "xtts_tune.cli", *args], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"xtts-tune {args[0]} failed: {out.stderr.strip()[-2000:]}")
    return out


def whole_trial_figures(
    work: Path,
    *,
    freeze_depth: int = 28,
    layers: int | None = None,
    device: str = "auto",
    arch_path: Path = ARCH_FILE,
    clips: int = CLIPS,
) -> dict[str, Any]:
    """Build the real-size folder in ``work``, run ``xtts-tune trial`` and ``xtts-tune train`` on it."""
    from xtts_tune.model.released import build_released_folder

    arch = read_architecture(arch_path).model_args
    started = time.perf_counter()
    base = build_released_folder(
        work / "base",
        layers=layers or arch["gpt_layers"],
        model_channels=arch["gpt_n_model_channels"],
        heads=arch["gpt_n_heads"],
        decoder=True,
        speakers=False,
        released_dvae=True,
    )
    build_seconds = time.perf_counter() - started
    data = _dataset(work, clips)
    doc = yaml.safe_load((Path(__file__).resolve().parents[2] / "studies" / "demo.yaml").read_text())
    doc.update(study_name="real-size", base_model=str(base), output_dir=str(work / "runs"))
    doc["data"].update(path=str(data), demo_target=False, val_count=2, test_fraction=0)
    cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    doc["train"].update(
        freeze_depth=freeze_depth,
        batch_size=1,
        grad_accum_steps=1,
        max_steps=2,
        eval_every=1,
        augment_prob=0.0,
        device=device,
        precision="bf16" if cuda else "fp32",
    )
    config = work / "real-size.yaml"
    config.write_text(yaml.safe_dump(doc))
    t = time.perf_counter()
    _cli("trial", "--config", str(config), "--run-dir", str(work / "trial"))
    trial_seconds = time.perf_counter() - t
    summary = json.loads((work / "trial" / "curve.json").read_text())["summary"]
    # train validates on the split the trial saved, as on an exported study's
    doc["data"]["split_file"] = str(work / "runs" / "real-size" / "split.json")
    config.write_text(yaml.safe_dump(doc))
    _cli("train", "--config", str(config))
    final = work / "runs" / "real-size"
    gpt = _gpt_bytes(base / "model.pth")
    stored = (final / "best_gpt.pth").stat().st_size + _gpt_bytes(final / "model" / "model.pth")
    return {
        "freeze_depth": freeze_depth,
        "device": "cuda" if cuda else "cpu",
        "trainable_params": summary["trainable_params"],
        "total_params": summary["total_params"],
        "peak_memory_bytes": summary["peak_memory_bytes"],
        "trial_seconds": trial_seconds,
        "build_seconds": build_seconds,
        "checkpoint_bytes": (work / "trial" / "best_gpt.pth").stat().st_size,
        "gpt_bytes": gpt,
        "model_pth_bytes": (base / "model.pth").stat().st_size,
        "final_gpt_copies": stored / gpt,
    }


def format_rows(trial: dict[str, Any], bare_peak: int | None) -> str:
    """The whole-trial rows of ``make bench-real-size``, each with its target."""
    gib = 1024**3
    rows = [
        (
            "whole trial peak memory (xtts-tune trial: load, features, 2 steps, 3 evaluations, checkpoint)",
            f"{trial['peak_memory_bytes'] / gib:.2f} GiB ({trial['device']})",
            "",
        ),
    ]
    if bare_peak:
        rows.append(
            (
                "  / the bare step's peak at the same depth",
                f"{trial['peak_memory_bytes'] / bare_peak:.2f}x ({bare_peak / gib:.2f} GiB)",
                "<= 1.3x",
            )
        )
    rows += [
        (
            f"trial checkpoint at freeze {trial['freeze_depth']} / the whole GPT",
            f"{trial['checkpoint_bytes'] / 1e6:.0f} MB / {trial['gpt_bytes'] / 1e6:.0f} MB = "
            f"{trial['checkpoint_bytes'] / trial['gpt_bytes']:.1%}",
            "<= 12%",
        ),
        (
            "copies of the GPT in the final run folder (best_gpt.pth + model/model.pth)",
            f"{trial['final_gpt_copies']:.2f}",
            "< 2 (the GPT once, plus what trained)",
        ),
        ("trial wall time (child process, incl. loading)", f"{trial['trial_seconds']:.0f} s", ""),
    ]
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{a.ljust(width)}  {b}  {c}".rstrip() for a, b, c in rows)
