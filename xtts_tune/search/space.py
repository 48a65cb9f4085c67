"""The search space: which ``train`` knobs are searched (ranges, choices) and which are fixed, parsed from
the ``search.space`` section, and the guide's recommended config clamped into it (trial 0).

>>> from xtts_tune.config import TrainConfig
>>> space = parse_space({"learning_rate": {"low": 1e-5, "high": 1e-3, "log": True}, "max_epochs": 2},
...                     TrainConfig(), "study.yaml")
>>> space.params["learning_rate"].describe(), space.fixed
('learning_rate in [1e-05, 0.001] log', {'max_epochs': 2})
>>> space.guide_params(4, TrainConfig())
{'learning_rate': 1e-05}
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, get_type_hints

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from xtts_tune.config import (
    ConfigError,
    TrainConfig,
    check_freeze_depth,
    coerce,
    unknown_key,
)

GUIDE_CONFIG: dict[str, Any] = {
    "freeze_depth": "layers-2",  # train the last two transformer blocks
    "learning_rate": 5e-7,
    "weight_decay": 0.1,
    "augment_prob": 0.3,
}
"""The fine-tuning guide's recommended config; enqueued (clamped to the space) as trial 0."""


DEFAULT_SPACE: dict[str, Any] = {
    "freeze_depth": {"low": 0},  # high: the base model's layer count
    "learning_rate": {"low": 1e-5, "high": 3e-3, "log": True},
    "weight_decay": {"low": 0.0, "high": 0.2},
    "augment_prob": {"low": 0.0, "high": 0.5},
}


@dataclass(frozen=True)
class ParamSpec:
    """One searched knob: an int or float range (optionally log or stepped) or a list of choices."""

    name: str
    kind: str  # "int" | "float" | "categorical"
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple = ()

    def distribution(self) -> BaseDistribution:
        if self.kind == "int":
            return IntDistribution(int(self.low), int(self.high), log=self.log, step=int(self.step or 1))
        if self.kind == "float":
            return FloatDistribution(float(self.low), float(self.high), log=self.log, step=self.step)
        return CategoricalDistribution(list(self.choices))

    def suggest(self, trial: optuna.Trial) -> Any:
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        if self.kind == "float":
            return trial.suggest_float(self.name, float(self.low), float(self.high), step=self.step, log=self.log)
        return trial.suggest_categorical(self.name, list(self.choices))

    def contains(self, value: Any) -> bool:
        if self.kind == "categorical":
            return value in self.choices
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.kind == "int" and not float(value).is_integer():
            return False
        if self.high is not None and value > self.high or value < self.low:
            return False
        if self.step:
            n = (value - self.low) / self.step
            return abs(n - round(n)) < 1e-9
        return True

    def clamp(self, value: Any) -> Any:
        """The nearest value of this knob's space to ``value`` (the guide's config is clamped with it)."""
        if self.kind == "categorical":
            if value in self.choices:
                return value
            numeric = [c for c in self.choices if isinstance(c, (int, float)) and not isinstance(c, bool)]
            if numeric and isinstance(value, (int, float)) and not isinstance(value, bool):
                return min(numeric, key=lambda c: abs(c - value))
            return self.choices[0]
        v = min(max(float(value), float(self.low)), float(self.high))
        if self.step:
            n = round((v - self.low) / self.step)
            v = self.low + n * self.step
            if v > self.high + 1e-12:
                v -= self.step
        if self.kind == "int":
            return int(round(v))
        return float(v)

    def describe(self) -> str:
        if self.kind == "categorical":
            return f"{self.name} in {list(self.choices)}"
        extra = " log" if self.log else (f" step {self.step}" if self.step else "")
        return f"{self.name} in [{self.low}, {self.high}]{extra}"


@dataclass
class SearchSpace:
    """Searched knobs (``params``) and knobs fixed for every trial (``fixed``); all are TrainConfig fields."""

    params: dict[str, ParamSpec]
    fixed: dict[str, Any] = field(default_factory=dict)

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        return {name: spec.suggest(trial) for name, spec in self.params.items()}

    def train_config(self, train: TrainConfig, params: dict[str, Any], where: str = "<search>") -> TrainConfig:
        """``train`` with the fixed knobs and a trial's params applied, validated."""
        out = dataclasses.replace(train, **copy.deepcopy(self.fixed), **params)
        out.validate(where)
        return out

    def resolved(self, num_layers: int, where: str) -> SearchSpace:
        """Check the space against the base model (freeze depth within 0..layers); fill a default high."""
        params = dict(self.params)
        fd = params.get("freeze_depth")
        if fd is not None and fd.kind != "categorical" and fd.high is None:
            if fd.low >= num_layers:
                raise ConfigError(
                    f"{where}: search.space.freeze_depth low is {fd.low} but the base model has {num_layers} layers"
                )
            params["freeze_depth"] = dataclasses.replace(fd, high=num_layers)
        fd = params.get("freeze_depth")
        values = [] if fd is None else list(fd.choices) if fd.kind == "categorical" else [fd.low, fd.high]
        if "freeze_depth" in self.fixed:
            values.append(self.fixed["freeze_depth"])
        for value in values:
            check_freeze_depth(value, num_layers, where, "search.space.freeze_depth")
        for name, spec in params.items():
            if spec.kind != "categorical" and (spec.low is None or spec.high is None):
                raise ConfigError(f"{where}: search.space.{name} needs both low and high")
        return SearchSpace(params, dict(self.fixed))

    def guide_params(self, num_layers: int, train: TrainConfig) -> dict[str, Any]:
        """The guide's recommended config clamped to the space (knobs the guide does not set: ``train``'s)."""
        out = {}
        for name, spec in self.params.items():
            value = GUIDE_CONFIG.get(name, getattr(train, name))
            if value == "layers-2":
                value = max(0, num_layers - 2)
            out[name] = spec.clamp(value)
        return out

    def spread_params(self, guide: dict[str, Any]) -> list[dict[str, Any]]:
        """A small space-filling start: one config per learning-rate decade (equal log cells of about a decade
        each, at their centres) x three freeze depths (the range's ends and middle), the other knobs at
        ``guide``'s values; ordered so that the first configs already cover every decade and every depth.
        Empty unless both knobs are searched ranges.

        >>> from xtts_tune.config import TrainConfig
        >>> space = parse_space({"learning_rate": {"low": 1e-5, "high": 1e-2, "log": True},
        ...                      "freeze_depth": {"low": 0, "high": 4}}, TrainConfig(), "s.yaml")
        >>> [(p["freeze_depth"], f"{p['learning_rate']:.2g}") for p in space.spread_params({})][:4]
        [(0, '3.2e-05'), (2, '0.00032'), (4, '0.0032'), (0, '0.00032')]
        """
        lr, fd = self.params.get("learning_rate"), self.params.get("freeze_depth")
        if lr is None or fd is None or lr.kind != "float" or fd.kind != "int" or fd.high is None:
            return []
        if lr.log:
            cells = max(1, round(math.log10(lr.high / lr.low)))
            rates = [lr.low * (lr.high / lr.low) ** ((i + 0.5) / cells) for i in range(cells)]
        else:
            rates = [lr.low + (lr.high - lr.low) * (i + 0.5) / 3 for i in range(3)]
        depths = sorted({int(fd.low), fd.clamp((fd.low + fd.high) / 2), int(fd.high)})
        n, m = len(rates), len(depths)
        every = math.lcm(
            n, m
        )  # k-th config: depth k mod m, rate shifted once per lcm: the first max(n, m) differ in both
        order = list(dict.fromkeys(((k + k // every) % n, k % m) for k in range(n * m)))
        order += [(i, j) for i in range(n) for j in range(m) if (i, j) not in order]
        return [
            {**guide, "learning_rate": lr.clamp(float(f"{rates[i]:.3g}")), "freeze_depth": depths[j]} for i, j in order
        ]


def _train_fields() -> dict[str, Any]:
    hints = get_type_hints(TrainConfig)
    return {f.name: hints[f.name] for f in dataclasses.fields(TrainConfig)}


def parse_space(raw: Any, train: TrainConfig, where: str) -> SearchSpace:
    if raw is None:
        raw = copy.deepcopy(DEFAULT_SPACE)
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: search.space must be a mapping of TrainConfig keys, got {type(raw).__name__}")
    fields = _train_fields()
    params: dict[str, ParamSpec] = {}
    fixed: dict[str, Any] = {}
    for key, value in raw.items():
        key = str(key)
        if key not in fields:
            raise unknown_key(key, list(fields), where, "search.space")
        typ = fields[key]
        full = f"search.space.{key}"
        if not isinstance(value, dict):
            fixed[key] = coerce(value, typ, full, where)
            _check_train_value(train, key, fixed[key], where, full)
            continue
        spec = _parse_param(key, value, typ, where, full)
        values = (
            list(spec.choices) if spec.kind == "categorical" else [v for v in (spec.low, spec.high) if v is not None]
        )
        for v in values:
            _check_train_value(train, key, v, where, full)
        params[key] = spec
    return SearchSpace(params, fixed)


def _parse_param(key: str, value: dict, typ: Any, where: str, full: str) -> ParamSpec:
    if typ not in (int, float, bool, str):
        kind = getattr(typ, "__name__", str(typ))
        raise ConfigError(f"{where}: {full} is a {kind} and can only be fixed (give a value), not searched")
    if "choices" in value:
        extra = [k for k in value if k != "choices"]
        if extra:
            raise ConfigError(f"{where}: {full}: 'choices' cannot be combined with {', '.join(map(str, extra))}")
        choices = value["choices"]
        if not isinstance(choices, list) or not choices:
            raise ConfigError(f"{where}: {full}.choices must be a non-empty list")
        coerced = tuple(coerce(c, typ, full, where) for c in choices)
        if len(set(coerced)) != len(coerced):
            raise ConfigError(f"{where}: {full}.choices has duplicates: {list(choices)}")
        return ParamSpec(key, "categorical", choices=coerced)
    for k in value:
        if k not in ("low", "high", "log", "step"):
            raise unknown_key(str(k), ["low", "high", "log", "step", "choices"], where, full)
    if typ not in (int, float):
        kind = getattr(typ, "__name__", str(typ))
        raise ConfigError(
            f"{where}: {full} is a {kind}; search it with {{choices: [...]}} or fix it with a scalar value"
        )
    if "low" not in value:
        raise ConfigError(f"{where}: {full} needs 'low' and 'high' (or 'choices', or a scalar to fix it)")
    if "high" not in value and key != "freeze_depth":
        raise ConfigError(f"{where}: {full} needs 'high' (low is {value['low']})")
    low = coerce(value["low"], typ, f"{full}.low", where)
    high = coerce(value["high"], typ, f"{full}.high", where) if "high" in value and value["high"] is not None else None
    log = coerce(value.get("log", False), bool, f"{full}.log", where)
    step = value.get("step")
    if step is not None:
        step = coerce(step, typ, f"{full}.step", where)
        if step <= 0:
            raise ConfigError(f"{where}: {full}.step must be > 0, got {step}")
        if log:
            raise ConfigError(
                f"{where}: {full}: 'step' and 'log: true' cannot be combined (Optuna does not support it)"
            )
    if high is not None and not low < high:
        raise ConfigError(
            f"{where}: {full}: low ({low}) must be less than high ({high}); use a scalar to fix the knob instead"
        )
    if log and low <= 0:
        raise ConfigError(f"{where}: {full}: a log range needs low > 0, got {low}")
    return ParamSpec(key, "int" if typ is int else "float", low=low, high=high, log=log, step=step)


def _check_train_value(train: TrainConfig, key: str, value: Any, where: str, full: str) -> None:
    try:
        dataclasses.replace(train, **{key: value}).validate(where)
    except ConfigError as exc:
        message = str(exc).split(": ", 1)[-1]
        raise ConfigError(f"{where}: {full} = {value!r} is not a valid value ({message})") from None


def parse_enqueue(raw: Any, space: SearchSpace, where: str) -> list[dict[str, Any]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: search.enqueue must be a list of {{knob: value}} mappings")
    fields = _train_fields()
    out = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict) or not entry:
            raise ConfigError(f"{where}: search.enqueue[{i}] must be a non-empty mapping of searched knobs to values")
        params = {}
        for key, value in entry.items():
            key = str(key)
            spec = space.params.get(key)
            if spec is None:
                if key in fields:
                    raise ConfigError(
                        f"{where}: search.enqueue[{i}].{key}: '{key}' is not searched (not a range or choices "
                        f"in search.space), so it cannot be enqueued"
                    )
                raise unknown_key(key, list(space.params), where, f"search.enqueue[{i}]")
            typ = fields[key]
            v = coerce(value, typ, f"search.enqueue[{i}].{key}", where)
            high_unknown = spec.kind != "categorical" and spec.high is None
            if not high_unknown and not spec.contains(v):
                raise ConfigError(
                    f"{where}: search.enqueue[{i}].{key} = {v!r} is outside the space ({spec.describe()})"
                )
            params[key] = v
        out.append(params)
    return out
