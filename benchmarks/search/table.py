"""The search bench's table of measured learning curves: a grid of configurations, recorded once, reused.

``make bench-search`` compares search strategies by replaying searches on a table instead of training: each
configuration of a grid over the searched knobs was trained once, to its planned last step, and its whole
validation curve stored (:mod:`benchmarks.search.record` records it). A replayed trial snaps the
sampler's suggestion to the grid (:meth:`SearchTable.nearest`) and replays that configuration's curve
(:mod:`benchmarks.search.replay`).

The grid takes, for each searched knob, the centres of equal cells of its range (on a log scale for a log
knob), every value of a small int range, or every choice; plus the guide's recipe (trial 0 of every search)
as its own configuration.

>>> from xtts_tune.config import load_config
>>> from xtts_tune.search.settings import SearchSettings
>>> space = SearchSettings.from_config(load_config("studies/demo.yaml")).space
>>> [f"{v:.2g}" for v in grid_values(space.params["learning_rate"], 4)]
['2.4e-05', '0.00013', '0.00075', '0.0042']
>>> grid_values(space.params["freeze_depth"], 0), grid_values(space.params["weight_decay"], 2)
([0, 1, 2, 3, 4], [0.05, 0.15])
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xtts_tune.config import StudyConfig
from xtts_tune.errors import UserError
from xtts_tune.io import atomic_write_json, json_safe
from xtts_tune.search.definition import study_definition
from xtts_tune.search.space import ParamSpec, SearchSpace

GRID_POINTS: dict[str, int] = {"freeze_depth": 0, "learning_rate": 4, "weight_decay": 2, "augment_prob": 2}
"""Grid values per searched knob (0: every value of an int range); a knob not named here gets 3."""

REPLAYED_TRAIN_KEYS = ("patience", "min_delta")
"""Train keys the replay applies to the recorded curves: changing them needs no new table."""

TABLE_VERSION = 1


class TableMismatchError(UserError):
    """The table was recorded for another study definition or dataset than the study's YAML now gives."""


def grid_values(spec: ParamSpec, n: int) -> list[Any]:
    """``n`` values of one searched knob: the centres of ``n`` equal cells of its range (log cells for a log
    knob, rounded for an int knob), every value of an int range when ``n`` is 0 or covers it, or the choices."""
    if spec.kind == "categorical":
        return list(spec.choices)
    low, high = spec.low, spec.high
    if spec.kind == "int":
        step = int(spec.step or 1)
        every = list(range(int(low), int(high) + 1, step))
        if n <= 0 or n >= len(every):
            return every
        return sorted({every[min(len(every) - 1, int((i + 0.5) * len(every) / n))] for i in range(n)})
    n = max(n, 1)
    if spec.log:
        a, b = math.log(low), math.log(high)
        return [float(f"{math.exp(a + (b - a) * (i + 0.5) / n):.6g}") for i in range(n)]
    return [float(f"{low + (high - low) * (i + 0.5) / n:.6g}") for i in range(n)]


def grid_params(space: SearchSpace, guide: dict[str, Any], points: dict[str, int] | None = None) -> list[dict]:
    """Every configuration of the grid over ``space`` (:func:`grid_values` per knob), then ``guide`` (the
    guide's recipe) unless the grid already holds it."""
    points = GRID_POINTS if points is None else points
    names = list(space.params)
    axes = [grid_values(space.params[name], points.get(name, 3)) for name in names]
    configs = [dict(zip(names, values)) for values in itertools.product(*axes)]
    if guide and guide not in configs:
        configs.append(dict(guide))
    return configs


def table_key(cfg: StudyConfig, space: SearchSpace) -> dict[str, Any]:
    """What a table's curves depend on: the study's definition (:func:`study_definition`, less the keys the
    replay applies) and the data section. A table recorded under another key is refused."""
    definition = study_definition(cfg, space)
    definition["train"] = {k: v for k, v in definition["train"].items() if k not in REPLAYED_TRAIN_KEYS}
    data = {k: v for k, v in dataclasses.asdict(cfg.data).items() if k != "demo_target"}
    return json_safe({**definition, "data": data})


@dataclass
class TableConfig:
    """One recorded configuration: its params and its whole curve (the trial loop's evaluation records)."""

    params: dict[str, Any]
    curve: list[dict]
    planned_steps: int
    stop_reason: str
    """The full run's stop reason: ``completed`` (or ``max_steps``)."""
    trainable_params: int
    total_params: int
    seconds: float = 0.0
    guide: bool = False

    @property
    def steps(self) -> int:
        return int(self.curve[-1]["step"]) if self.curve else 0


@dataclass
class SearchTable:
    """The measured curves of a grid of configurations for one study (see the module docstring)."""

    study: str
    """The study YAML the table was recorded from (relative to the project root)."""
    study_name: str
    num_layers: int
    key: dict[str, Any]
    configs: list[TableConfig]
    meta: dict[str, Any] = field(default_factory=dict)
    """Where and when it was recorded: commit, machine, torch, threads, date, seconds."""

    @property
    def guide(self) -> TableConfig | None:
        return next((c for c in self.configs if c.guide), None)

    def nearest(self, params: dict[str, Any], space: SearchSpace) -> TableConfig:
        """The recorded configuration a suggestion replays: the one with exactly these params (the guide's,
        which the search enqueues), else the nearest grid configuration, each knob scaled to its range (on a
        log scale for a log knob; a choice is 0 or 1 away). On the full grid that snaps each knob to its
        nearest recorded value (the lower on a tie).

        >>> from xtts_tune.config import load_config
        >>> from xtts_tune.search.settings import SearchSettings
        >>> space = SearchSettings.from_config(load_config("studies/demo.yaml")).space
        >>> table = SearchTable("s.yaml", "s", 4, {}, [
        ...     TableConfig({"learning_rate": lr}, [], 0, "completed", 1, 2) for lr in (1e-5, 1e-4, 1e-3)])
        >>> table.nearest({"learning_rate": 4e-4}, space).params, table.nearest({"learning_rate": 2e-4}, space).params
        ({'learning_rate': 0.001}, {'learning_rate': 0.0001})
        """
        for config in self.configs:
            if config.params == params:
                return config
        grid = [c for c in self.configs if not c.guide] or self.configs
        return min(grid, key=lambda c: (_distance(c.params, params, space), _frozen(c.params)))

    def to_dict(self) -> dict[str, Any]:
        return json_safe({"version": TABLE_VERSION, **dataclasses.asdict(self)})

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> SearchTable:
        configs = [TableConfig(**c) for c in raw["configs"]]
        return cls(raw["study"], raw["study_name"], int(raw["num_layers"]), raw["key"], configs, raw.get("meta", {}))

    def save(self, path: str | Path) -> Path:
        """Write the table as JSON, atomically."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return atomic_write_json(path, self.to_dict())

    def check(self, cfg: StudyConfig, space: SearchSpace, path: str | Path) -> None:
        """Refuse a table recorded for another study definition or dataset than ``cfg``'s. Only the settings
        the table recorded are compared (a setting the project gained later is not)."""
        now, stored = _flat(table_key(cfg, space)), _flat(self.key)
        changed = [k for k, v in stored.items() if now.get(k, _MISSING) != v]
        if changed:
            raise TableMismatchError(
                f"{path} was recorded with other settings than {cfg.source} gives now ({', '.join(changed)}); "
                f"record it again with: make bench-search RECORD=1"
            )


def table_path(cfg: StudyConfig) -> Path:
    """Where the table of a study is kept: ``benchmarks/search-table-<study_name>.json`` in the project."""
    return Path(cfg.root) / "benchmarks" / f"search-table-{cfg.study_name}.json"


def load_table(path: str | Path) -> SearchTable:
    """Read a table written by :meth:`SearchTable.save`.

    >>> table = load_table("benchmarks/search-table-demo.json")
    >>> table.study, len(table.configs), table.guide.params
    ('studies/demo.yaml', 81, {'freeze_depth': 2, 'learning_rate': 1e-05, 'weight_decay': 0.1, 'augment_prob': 0.3})
    """
    try:
        raw = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UserError(f"{path} does not exist; record it with: make bench-search RECORD=1") from None
    if raw.get("version") != TABLE_VERSION:
        raise UserError(f"{path} is a table of another version; record it again with: make bench-search RECORD=1")
    return SearchTable.from_dict(raw)


_MISSING = object()


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        return {k: v for key, sub in value.items() for k, v in _flat(sub, f"{prefix}{key}.").items()}
    return {prefix.rstrip("."): value}


def _frozen(params: dict[str, Any]) -> tuple:
    return tuple(sorted(params.items()))


def _distance(a: dict[str, Any], b: dict[str, Any], space: SearchSpace) -> float:
    total = 0.0
    for name, value in a.items():
        spec, other = space.params.get(name), b.get(name)
        if spec is None or spec.kind == "categorical" or not isinstance(other, (int, float)):
            total += 0.0 if value == other else 1.0
            continue
        scale = math.log if spec.log else float
        total += ((scale(value) - scale(other)) / ((scale(spec.high) - scale(spec.low)) or 1.0)) ** 2
    return total
