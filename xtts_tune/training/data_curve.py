"""The data curve: would more data help? One training per data fraction, every one scored on the same test split.

``xtts-tune data-curve --config BEST.yaml`` runs :func:`run_data_curve`: the config (an exported one, or any
study YAML) is trained on nested subsets of its train split (:func:`xtts_tune.data.split.nested_train_subset`,
the one definition of a data fraction: 25 % holds every clip of 12.5 %), by default 12.5, 25, 50 and 100 %.
Validation and test clips are the same for every fraction; each run's best checkpoint (by validation, as a
trial keeps it) is scored on the test split, which no run has seen.

Every fraction gets the same optimizer steps, the full data's budget (``train.max_steps`` when set, else
``train.max_epochs`` epochs of the whole train split): a smaller subset is not also trained less, it is seen
for more epochs, and early stopping (``train.patience``) ends it when it overfits. So the curve measures the
data, not the compute.

The results go to ``<study_dir>/data-curve/curve.json`` (atomically, after each fraction), with what they
were measured on (the base, the dataset, the split and the train settings); a rerun skips the fractions
already there, so a killed run resumes, and a rerun with other settings is refused with one line. The fit
and its sentence are :mod:`xtts_tune.analysis.data_curve` (no torch).

>>> import tempfile
>>> from xtts_tune.config import load_config
>>> cfg = load_config("studies/demo.yaml", [f"output_dir={tempfile.mkdtemp()}", "max_steps=2", "eval_every=1"])
>>> doc = run_data_curve(cfg, fractions=[0.5, 1.0])
>>> [(p["fraction"], p["train_clips"], p["steps"]) for p in doc["points"]]
[(0.5, 4, 2), (1.0, 8, 2)]
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from pathlib import Path

from xtts_tune.config import StudyConfig, load_config
from xtts_tune.errors import UserError
from xtts_tune.io import ProgressFn, atomic_write_json, json_safe

DEFAULT_FRACTIONS = (0.125, 0.25, 0.5, 1.0)
CURVE_FILE = "curve.json"


class DataCurveError(UserError):
    """The data curve cannot run as asked (no test split, bad fractions, results of other settings)."""


def curve_folder(cfg: StudyConfig) -> Path:
    """Where a config's data curve goes: ``<study_dir>/data-curve`` (``curve.json``, one run folder per fraction)."""
    return cfg.study_dir / "data-curve"


def check_fractions(fractions: Sequence[float]) -> list[float]:
    """The fractions sorted, each in (0, 1], no repeats; else one line naming the fix.

    >>> check_fractions([1, 0.25, 0.5])
    [0.25, 0.5, 1.0]
    """
    out = sorted({float(f) for f in fractions})
    bad = [f for f in out if not 0 < f <= 1]
    if bad or not out:
        raise DataCurveError(f"--fractions {bad or 'none'}: every fraction must be in (0, 1], e.g. 0.125 0.25 0.5 1")
    return out


def steps_per_epoch(n_clips: int, train) -> int:
    """Optimizer steps in one epoch of ``n_clips`` (as the trial loop counts them)."""
    return max(1, math.ceil(math.ceil(n_clips / train.batch_size) / train.grad_accum_steps))


def step_budget(train, n_train: int) -> int:
    """The full data's optimizer steps, which every fraction gets: ``max_steps`` when set, else the epochs'."""
    return train.max_steps or steps_per_epoch(n_train, train) * train.max_epochs


def run_data_curve(
    config: StudyConfig | str | Path,
    *,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    overrides: Sequence[str] | None = None,
    out_dir: str | Path | None = None,
    progress: ProgressFn | None = None,
) -> dict:
    """Train ``config`` at each data fraction, score each on the test split; return the results document
    (``{"setup", "points": [{"fraction", "train_clips", "test_loss", "best_val_loss", ...}]}``), which is
    also written to ``<out_dir or curve_folder(cfg)>/curve.json`` after every fraction.

    ``progress`` gets the trials' own events, plus ``{"event": "data_curve", "stage": "start" | "done",
    "fraction", "index", "total", "train_clips", "planned_steps"}`` with, when done, ``test_loss``,
    ``seconds`` and ``eta_s`` (the fractions left at this session's mean time per fraction)."""
    from xtts_tune.model.base import load_study_base
    from xtts_tune.training.prepare import prepare_data

    cfg = config if isinstance(config, StudyConfig) else load_config(Path(config), list(overrides or []))
    wanted = check_fractions(fractions)
    folder = Path(out_dir) if out_dir is not None else curve_folder(cfg)
    base = load_study_base(cfg)
    data = prepare_data(cfg, base)
    if len(data.split.test) == 0:
        raise DataCurveError(
            f"{cfg.source}: the data curve scores every fraction on the test split, and this config has none; "
            "set data.test_count (e.g. 20) or data.test_fraction"
        )
    budget = step_budget(cfg.train, len(data.split.train))
    setup = json_safe(
        {
            "config": str(cfg.source),
            "base": base.fingerprint,
            "dataset": data.fingerprint,
            "split": data.split.fingerprint,
            "train_clips": len(data.split.train),
            "test_clips": len(data.split.test),
            "step_budget": budget,
            "train": dataclasses.asdict(cfg.train),
        }
    )
    path = folder / CURVE_FILE
    doc = _load_or_start(path, setup)
    done = {p["fraction"] for p in doc["points"]}
    todo = [f for f in wanted if f not in done]
    spent: list[float] = []
    for i, fraction in enumerate(todo):
        point = _run_fraction(cfg, base, data, fraction, budget, folder, i, len(todo), progress)
        spent.append(point["seconds"])
        doc["points"] = sorted([*doc["points"], point], key=lambda p: p["fraction"])
        atomic_write_json(path, doc)
        if progress:
            eta = sum(spent) / len(spent) * (len(todo) - i - 1)
            progress(
                {"event": "data_curve", "stage": "done", "index": i + 1, "total": len(todo), **point, "eta_s": eta}
            )
    return doc


def _load_or_start(path: Path, setup: dict) -> dict:
    import json

    if not path.is_file():
        return {"setup": setup, "points": []}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataCurveError(f"{path}: unreadable ({exc}); delete it to measure the curve again") from None
    old = doc.get("setup", {})
    changed = sorted(k for k in setup if k != "config" and old.get(k) != setup[k])
    if changed:
        raise DataCurveError(
            f"{path}: measured with other settings ({', '.join(changed)} differ); delete it, or pass another "
            "--out, to measure this config's curve"
        )
    return doc


def _run_fraction(cfg, base, data, fraction, budget, folder, index, total, progress) -> dict:
    from xtts_tune.data.split import nested_train_subset
    from xtts_tune.model.checkpoint import load_trained_tensors
    from xtts_tune.training.evaluation import validation_loss
    from xtts_tune.training.loop import run_trial

    sub = nested_train_subset(data.split, fraction)
    part = dataclasses.replace(data, split=sub)
    epochs = math.ceil(budget / steps_per_epoch(len(sub.train), cfg.train))
    train = dataclasses.replace(cfg.train, max_steps=budget, max_epochs=epochs, save_checkpoint=True)
    run_cfg = dataclasses.replace(cfg, train=train)
    if progress:
        progress(
            {
                "event": "data_curve",
                "stage": "start",
                "fraction": fraction,
                "index": index + 1,
                "total": total,
                "train_clips": len(sub.train),
                "planned_steps": budget,
            }
        )
    started = time.perf_counter()
    result = run_trial(run_cfg, base=base, data=part, run_dir=folder / f"fraction-{fraction:g}", progress=progress)
    state = None  # no checkpoint: the base model itself was best
    if result.checkpoint_path is not None and result.checkpoint_path.is_file():
        state = load_trained_tensors(result.checkpoint_path, base_fingerprint=base.fingerprint)
    test = validation_loss(run_cfg, base=base, data=part, state=state, clips=list(data.split.test))
    if state is not None:
        result.checkpoint_path.unlink()  # the curve needs its loss, not its weights (kept: curve.json)
    return {
        "fraction": fraction,
        "train_clips": len(sub.train),
        "test_loss": test["loss"],
        "best_val_loss": result.best_val_loss,
        "best_step": result.best_step,
        "steps": result.steps,
        "stop_reason": result.stop_reason,
        "seconds": round(time.perf_counter() - started, 2),
    }
