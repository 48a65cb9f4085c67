"""Recording the search bench's table: real trials of a grid of configurations, each to its last step.

Each configuration runs through :func:`xtts_tune.training.loop.run_trial` exactly as a search trial does
(one loaded base and one prepared data set shared by every trial, as the search shares them), with three
differences that leave the curve itself unchanged: early stopping is off (a patience longer than the run),
nothing prunes it, and no checkpoint is written. Early stopping and pruning only decide where a trial ends,
never the losses it reports up to there, so the replay applies the study's own patience and pruners to the
full curves. The split and the feature cache go to a work folder of the bench's own (the split is drawn
from ``data.split_seed``, so it is the study's).

>>> import tempfile
>>> from xtts_tune.config import load_config
>>> tmp = tempfile.mkdtemp()
>>> cfg = load_config("studies/demo.yaml", ["max_steps=2"])
>>> table = record_table(cfg, work_dir=tmp, params=[{"freeze_depth": 4, "learning_rate": 1e-3,
...                      "weight_decay": 0.1, "augment_prob": 0.0}])
>>> [c.params["freeze_depth"] for c in table.configs], [r["step"] for r in table.configs[-1].curve]
([4, 2], [0, 2])
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import os
import platform
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.search.table import (
    SearchTable,
    TableConfig,
    grid_params,
    table_key,
)
from xtts_tune.config import StudyConfig
from xtts_tune.search.settings import SearchSettings

NO_EARLY_STOP = 10**9
"""The recording's patience: longer than any run, so every configuration reaches its planned last step."""


def record_table(
    cfg: StudyConfig,
    *,
    work_dir: str | Path,
    params: list[dict[str, Any]] | None = None,
    points: dict[str, int] | None = None,
    progress: Callable[[dict], None] | None = None,
    base=None,
) -> SearchTable:
    """Train every configuration of the grid (``points`` per knob, see
    :func:`~benchmarks.search.table.grid_params`; or the configurations ``params``), then the guide's
    recipe, and return their curves as a table. The study's files are never touched: the split, the feature
    cache and the trials' curve files go under ``work_dir``. ``base`` (a loaded base) may be passed to reuse
    it; it is left with the weights it had.

    ``progress`` gets ``{"event": "config", "index", "total", "params", "seconds", "best_val_loss"}`` after
    each configuration.
    """
    import torch

    from xtts_tune.model.base import load_study_base
    from xtts_tune.training.loop import run_trial
    from xtts_tune.training.prepare import prepare_data

    started = time.perf_counter()
    where = provenance(Path(cfg.root))  # the code that runs is the code at the start
    cfg = dataclasses.replace(cfg, output_dir=str(Path(work_dir).resolve()))
    cfg.validate()
    settings = SearchSettings.from_config(cfg)
    base = load_study_base(cfg, base)
    settings.resolve(base.num_layers, cfg.source)
    space = settings.space
    guide = space.guide_params(base.num_layers, cfg.train) if settings.enqueue_guide else {}
    todo = [*params, guide] if params is not None else grid_params(space, guide, points)
    data = prepare_data(cfg, base)
    configs: list[TableConfig] = []
    for index, p in enumerate(todo):
        train = space.train_config(cfg.train, p, cfg.source)
        train = dataclasses.replace(train, patience=NO_EARLY_STOP, save_checkpoint=False)
        run_dir = cfg.study_dir / "table" / f"config-{index:04d}"
        t = time.perf_counter()
        result = run_trial(dataclasses.replace(cfg, train=train), base=base, data=data, run_dir=run_dir)
        configs.append(
            TableConfig(
                params=dict(p),
                curve=result.curve,
                planned_steps=result.planned_steps,
                stop_reason=result.stop_reason,
                trainable_params=result.params.trainable,
                total_params=result.params.total,
                seconds=round(time.perf_counter() - t, 3),
                guide=bool(guide) and p == guide,
            )
        )
        if progress is not None:
            progress(
                {
                    "event": "config",
                    "index": index + 1,
                    "total": len(todo),
                    "params": dict(p),
                    "seconds": configs[-1].seconds,
                    "best_val_loss": result.best_val_loss,
                }
            )
    meta = {
        **where,
        "device": str(next(base.gpt.parameters()).device),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "seconds": round(time.perf_counter() - started, 1),
    }
    return SearchTable(
        study=_relative(cfg.source, cfg.root),
        study_name=cfg.study_name,
        num_layers=base.num_layers,
        key=table_key(cfg, space),
        configs=configs,
        meta=meta,
    )


def provenance(root: Path) -> dict[str, Any]:
    """The commit (and whether the working tree had changes), the machine and the date of a measurement.

    >>> sorted(provenance(Path(".")))
    ['commit', 'date', 'dirty', 'machine']
    """

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], check=False, cwd=root, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    status = git("status", "--porcelain", "--untracked-files=no")
    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "dirty": bool(status) if status is not None else None,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.system()} {platform.release()}",
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }


def _relative(path: str, root: str) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path(root).resolve()))
    except ValueError:
        return str(path)
