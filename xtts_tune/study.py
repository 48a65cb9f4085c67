"""The study: an Optuna search over the trial's knobs, pruned on validation loss, stored in a database.

``run_search(cfg, n_trials=N)`` runs N trials of one worker on the study named ``cfg.study_name`` in an
SQLAlchemy storage (default ``sqlite:///<project>/studies/<study_name>.db``). Running it again continues the
same study; several workers (processes, or machines sharing a PostgreSQL/MySQL URL) may run it at the same
time on one storage and cooperate: **each worker runs its own N trials**, so two workers with
``--trials 10`` add 20 trials to the study.

The ``search`` section of the study YAML (every key optional)::

    search:
      space:                                   # any TrainConfig key; the defaults are the four below
        freeze_depth: {low: 0, high: 4}        # int range (high defaults to the model's layer count)
        learning_rate: {low: 1.0e-5, high: 3.0e-3, log: true}
        weight_decay: {low: 0.0, high: 0.2}
        augment_prob: {low: 0.0, high: 0.5}
        max_epochs: 3                          # a scalar fixes the knob for every trial
        grad_accum_steps: {choices: [1, 2, 4]} # a categorical knob
      sampler: {seed: 0, n_startup_trials: 5}  # TPESampler(multivariate=True) arguments
      pruner: {type: median, n_startup_trials: 5, n_warmup_steps: 20}
                                               # median | percentile | successive_halving | hyperband | none,
                                               # with their Optuna arguments; ``patience: k`` wraps it in a
                                               # PatientPruner
      enqueue: [{learning_rate: 1.0e-4, freeze_depth: 3}]   # configs to try first (after the guide's)
      enqueue_guide: true                      # trial 0 is the guide's recommended config, clamped
      keep_top_k: 3                            # best checkpoints kept for the top K trials only
      heartbeat_interval: 30                   # seconds between a running trial's heartbeats
      grace_period: 90                         # a trial without a heartbeat for this long is FAILED ...
      max_retry: 2                             # ... and re-run up to this many times

Per trial the study stores params, intermediate values (validation loss at every evaluation step) and as
user attributes the curve, best step/epoch/loss, steps spent and planned, stop reason, trainable share,
wall time, checkpoint path, seed, the full train config and the diagnosis; the dashboard gets a Markdown
note and the curve JSON as an artifact. The objective is the trial's *best* validation loss. A pruned
trial's Optuna value is its last reported loss (Optuna's rule); its ``best_val_loss`` attribute is what the
study ranks by.

Crash safety: trials record heartbeats; a trial whose worker died (SIGKILL, power loss) is marked FAILED by
the next worker and its params run again. Ctrl-C marks the running trial FAILED (user attribute
``interrupted``), queues its params to run again, and returns the summary. Checkpoints are written
atomically by the trial.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import datetime as _dt
import difflib
import hashlib
import inspect
import json
import logging
import math
import os
import shutil
import sqlite3
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState

from xtts_tune.config import ConfigError, StudyConfig, TrainConfig, _coerce, _unknown_key
from xtts_tune.diagnosis import DiagnosisThresholds, diagnose

logger = logging.getLogger(__name__)

__all__ = [
    "GUIDE_CONFIG",
    "ParamSpec",
    "PrunerSettings",
    "SearchSettings",
    "SearchSpace",
    "SearchSummary",
    "StorageError",
    "StudyMismatchError",
    "StudyNotFoundError",
    "TrialRow",
    "dashboard_command",
    "default_storage",
    "diagnosis_thresholds",
    "load_study",
    "open_storage",
    "run_search",
    "trial_checkpoint",
]

ProgressFn = Callable[[dict], None]

TRIALS_DIR = "trials"
ARTIFACTS_DIR = "artifacts"
CHECKPOINT_NAME = "best_gpt.pth"
RETENTION_NAME = "retention.json"

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

SEARCH_KEYS = (
    "space",
    "sampler",
    "pruner",
    "enqueue",
    "enqueue_guide",
    "keep_top_k",
    "heartbeat_interval",
    "grace_period",
    "max_retry",
)

SAMPLER_KEYS = {
    "seed": int,
    "n_startup_trials": int,
    "n_ei_candidates": int,
    "multivariate": bool,
    "group": bool,
    "constant_liar": bool,
    "consider_endpoints": bool,
    "consider_magic_clip": bool,
    "prior_weight": float,
}

PRUNERS: dict[str, Callable[..., optuna.pruners.BasePruner]] = {
    "median": optuna.pruners.MedianPruner,
    "percentile": optuna.pruners.PercentilePruner,
    "successive_halving": optuna.pruners.SuccessiveHalvingPruner,
    "hyperband": optuna.pruners.HyperbandPruner,
    "none": optuna.pruners.NopPruner,
}


class StudyMismatchError(ValueError):
    """The stored study was run on another dataset, split or base model than the one given now."""


class StorageError(ValueError):
    """The study storage URL cannot be opened (bad URL, missing driver, unreachable server)."""


class StudyNotFoundError(StorageError):
    """No study of that name in the storage."""


# --- the search space -------------------------------------------------------------------------------------


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

    def resolved(self, num_layers: int, where: str) -> "SearchSpace":
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
        if fd is not None:
            values = list(fd.choices) if fd.kind == "categorical" else [fd.low, fd.high]
            bad = [v for v in values if not 0 <= v <= num_layers]
            if bad:
                raise ConfigError(
                    f"{where}: search.space.freeze_depth must lie within 0..{num_layers} (the base model's GPT "
                    f"layers), got {bad[0]}"
                )
        if "freeze_depth" in self.fixed and not 0 <= self.fixed["freeze_depth"] <= num_layers:
            raise ConfigError(
                f"{where}: search.space.freeze_depth is {self.fixed['freeze_depth']} but the base model has "
                f"{num_layers} GPT layers; use 0..{num_layers}"
            )
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


@dataclass
class PrunerSettings:
    type: str = "median"
    kwargs: dict[str, Any] = field(default_factory=dict)
    patience: int | None = None
    min_delta: float = 0.0

    def build(self) -> optuna.pruners.BasePruner:
        pruner = PRUNERS[self.type](**self.kwargs)
        if self.patience is not None:
            with _quiet_experimental():
                pruner = optuna.pruners.PatientPruner(pruner, patience=self.patience, min_delta=self.min_delta)
        return pruner


@dataclass
class SearchSettings:
    """The validated ``search`` section of a study config."""

    space: SearchSpace
    sampler: dict[str, Any] = field(default_factory=dict)
    pruner: PrunerSettings = field(default_factory=PrunerSettings)
    enqueue: list[dict[str, Any]] = field(default_factory=list)
    enqueue_guide: bool = True
    keep_top_k: int = 3
    heartbeat_interval: int = 30
    grace_period: int = 90
    max_retry: int | None = 2

    @classmethod
    def from_config(cls, cfg: StudyConfig) -> "SearchSettings":
        where = cfg.source
        raw = cfg.search or {}
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: 'search' must be a mapping, got {type(raw).__name__}")
        for key in raw:
            if key not in SEARCH_KEYS:
                raise _unknown_key(str(key), list(SEARCH_KEYS), where, "search")
        space = _parse_space(raw.get("space"), cfg.train, where)
        settings = cls(space=space)
        settings.sampler = _parse_sampler(raw.get("sampler"), cfg, where)
        settings.pruner = _parse_pruner(raw.get("pruner"), cfg.train, where)
        settings.enqueue_guide = _coerce(raw.get("enqueue_guide", True), bool, "search.enqueue_guide", where)
        settings.keep_top_k = _coerce(raw.get("keep_top_k", 3), int, "search.keep_top_k", where)
        settings.heartbeat_interval = _coerce(raw.get("heartbeat_interval", 30), int, "search.heartbeat_interval", where)
        settings.grace_period = _coerce(raw.get("grace_period", 90), int, "search.grace_period", where)
        max_retry = raw.get("max_retry", 2)
        settings.max_retry = None if max_retry is None else _coerce(max_retry, int, "search.max_retry", where)
        if settings.keep_top_k < 0:
            raise ConfigError(f"{where}: search.keep_top_k must be >= 0, got {settings.keep_top_k}")
        if settings.heartbeat_interval < 1:
            raise ConfigError(f"{where}: search.heartbeat_interval must be >= 1 second, got {settings.heartbeat_interval}")
        if settings.grace_period <= settings.heartbeat_interval:
            raise ConfigError(
                f"{where}: search.grace_period ({settings.grace_period}) must be longer than "
                f"search.heartbeat_interval ({settings.heartbeat_interval})"
            )
        if settings.max_retry is not None and settings.max_retry < 0:
            raise ConfigError(f"{where}: search.max_retry must be >= 0 (or null for no limit), got {settings.max_retry}")
        settings.enqueue = _parse_enqueue(raw.get("enqueue"), space, where)
        return settings

    def resolve(self, num_layers: int, where: str) -> None:
        """Check the space and the enqueued configs against the loaded base model (its layer count)."""
        self.space = self.space.resolved(num_layers, where)
        for i, params in enumerate(self.enqueue):
            for key, value in params.items():
                spec = self.space.params[key]
                if not spec.contains(value):
                    raise ConfigError(
                        f"{where}: search.enqueue[{i}].{key} = {value!r} is outside the space ({spec.describe()})"
                    )

    def make_sampler(self) -> optuna.samplers.BaseSampler:
        kwargs = {"multivariate": True, "n_startup_trials": 5, "seed": 0, **self.sampler}
        with _quiet_experimental():
            return _TrialSeededTPESampler(**kwargs)

    def make_pruner(self) -> optuna.pruners.BasePruner:
        return self.pruner.build()


def diagnosis_thresholds(cfg: StudyConfig) -> DiagnosisThresholds:
    """The ``diagnosis`` section as :class:`DiagnosisThresholds`, validated (ConfigError on mistakes)."""
    where = cfg.source
    raw = cfg.diagnosis or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: 'diagnosis' must be a mapping, got {type(raw).__name__}")
    names = [f.name for f in dataclasses.fields(DiagnosisThresholds)]
    kwargs = {}
    for key, value in raw.items():
        if key not in names:
            raise _unknown_key(str(key), names, where, "diagnosis")
        kwargs[key] = _coerce(value, float, f"diagnosis.{key}", where)
    thresholds = DiagnosisThresholds(**kwargs)
    try:
        thresholds.validate()
    except ValueError as exc:
        raise ConfigError(f"{where}: diagnosis.{exc}") from None
    return thresholds


def _train_fields() -> dict[str, Any]:
    hints = get_type_hints(TrainConfig)
    return {f.name: hints[f.name] for f in dataclasses.fields(TrainConfig)}


def _parse_space(raw: Any, train: TrainConfig, where: str) -> SearchSpace:
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
            raise _unknown_key(key, list(fields), where, "search.space")
        typ = fields[key]
        full = f"search.space.{key}"
        if not isinstance(value, dict):
            fixed[key] = _coerce(value, typ, full, where)
            _check_train_value(train, key, fixed[key], where, full)
            continue
        spec = _parse_param(key, value, typ, where, full)
        values = list(spec.choices) if spec.kind == "categorical" else [v for v in (spec.low, spec.high) if v is not None]
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
        coerced = tuple(_coerce(c, typ, full, where) for c in choices)
        if len(set(coerced)) != len(coerced):
            raise ConfigError(f"{where}: {full}.choices has duplicates: {list(choices)}")
        return ParamSpec(key, "categorical", choices=coerced)
    for k in value:
        if k not in ("low", "high", "log", "step"):
            raise _unknown_key(str(k), ["low", "high", "log", "step", "choices"], where, full)
    if typ not in (int, float):
        kind = getattr(typ, "__name__", str(typ))
        raise ConfigError(
            f"{where}: {full} is a {kind}; search it with {{choices: [...]}} or fix it with a scalar value"
        )
    if "low" not in value:
        raise ConfigError(f"{where}: {full} needs 'low' and 'high' (or 'choices', or a scalar to fix it)")
    if "high" not in value and key != "freeze_depth":
        raise ConfigError(f"{where}: {full} needs 'high' (low is {value['low']})")
    low = _coerce(value["low"], typ, f"{full}.low", where)
    high = _coerce(value["high"], typ, f"{full}.high", where) if "high" in value and value["high"] is not None else None
    log = _coerce(value.get("log", False), bool, f"{full}.log", where)
    step = value.get("step")
    if step is not None:
        step = _coerce(step, typ, f"{full}.step", where)
        if step <= 0:
            raise ConfigError(f"{where}: {full}.step must be > 0, got {step}")
        if log:
            raise ConfigError(f"{where}: {full}: 'step' and 'log: true' cannot be combined (Optuna does not support it)")
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


def _parse_sampler(raw: Any, cfg: StudyConfig, where: str) -> dict[str, Any]:
    raw = raw or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: search.sampler must be a mapping, got {type(raw).__name__}")
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in SAMPLER_KEYS:
            raise _unknown_key(str(key), list(SAMPLER_KEYS), where, "search.sampler")
        out[key] = _coerce(value, SAMPLER_KEYS[key], f"search.sampler.{key}", where)
    if out.get("n_startup_trials", 5) < 0:
        raise ConfigError(f"{where}: search.sampler.n_startup_trials must be >= 0")
    return out


def _parse_pruner(raw: Any, train: TrainConfig, where: str) -> PrunerSettings:
    if raw is None:
        # patient by default: never prune before the second evaluation after training starts
        return PrunerSettings("median", {"n_startup_trials": 5, "n_warmup_steps": 2 * train.eval_every})
    if isinstance(raw, str):
        raw = {"type": raw}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: search.pruner must be a mapping like {{type: median, ...}}")
    raw = dict(raw)
    kind = str(raw.pop("type", "median")).lower()
    if kind not in PRUNERS:
        close = difflib.get_close_matches(kind, list(PRUNERS), n=1, cutoff=0.5)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise ConfigError(f"{where}: search.pruner.type '{kind}' is not one of {', '.join(PRUNERS)}{hint}")
    patience = raw.pop("patience", None)
    min_delta = raw.pop("min_delta", 0.0)
    params = inspect.signature(PRUNERS[kind]).parameters
    valid = [p for p in params if p not in ("self", "wrapped_pruner")]
    for key in raw:
        if key not in valid:
            raise _unknown_key(str(key), valid + ["type", "patience", "min_delta"], where, "search.pruner")
    missing = [p.name for p in params.values() if p.default is inspect.Parameter.empty and p.name not in raw]
    if missing:
        raise ConfigError(f"{where}: search.pruner type '{kind}' needs {', '.join(missing)}")
    settings = PrunerSettings(
        kind,
        raw,
        None if patience is None else _coerce(patience, int, "search.pruner.patience", where),
        _coerce(min_delta, float, "search.pruner.min_delta", where),
    )
    try:
        settings.build()
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: search.pruner: {exc}") from None
    return settings


def _parse_enqueue(raw: Any, space: SearchSpace, where: str) -> list[dict[str, Any]]:
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
                raise _unknown_key(key, list(space.params), where, f"search.enqueue[{i}]")
            typ = fields[key]
            v = _coerce(value, typ, f"search.enqueue[{i}].{key}", where)
            high_unknown = spec.kind != "categorical" and spec.high is None
            if not high_unknown and not spec.contains(v):
                raise ConfigError(f"{where}: search.enqueue[{i}].{key} = {v!r} is outside the space ({spec.describe()})")
            params[key] = v
        out.append(params)
    return out


class _TrialSeededTPESampler(optuna.samplers.TPESampler):
    """TPESampler whose random state is re-seeded from (seed, trial number) at the start of each trial.

    With one seed for the whole sampler, two workers started together would propose the same random startup
    configs; seeding per trial number keeps a study reproducible and gives every worker different draws.
    """

    def __init__(self, *, seed: int | None = None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self._base_seed = seed

    def before_trial(self, study, trial) -> None:
        super().before_trial(study, trial)
        if self._base_seed is None:
            return
        derived = int(np.random.SeedSequence([self._base_seed, trial.number]).generate_state(1)[0])
        for holder in (self, getattr(self, "_random_sampler", None)):
            rng = getattr(holder, "_rng", None)
            if rng is not None and hasattr(rng, "rng"):
                rng.rng.seed(derived)


@contextlib.contextmanager
def _quiet_experimental():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


# --- storage ---------------------------------------------------------------------------------------------


def default_storage(cfg: StudyConfig) -> str:
    """``sqlite:///<project>/studies/<study_name>.db`` (an absolute path)."""
    path = (Path(cfg.root) / "studies" / f"{cfg.study_name}.db").resolve()
    return f"sqlite:///{path}"


def _redact(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not even parseable: show it as given
        return url


def _sqlite_path(url: str) -> Path | None:
    """The database file of a file-backed SQLite URL, else None."""
    if not url.startswith("sqlite"):
        return None
    try:
        from sqlalchemy.engine import make_url

        database = make_url(url).database
    except Exception:
        return None
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


@contextlib.contextmanager
def _storage_lock(url: str) -> Iterator[None]:
    """An exclusive file lock next to an SQLite database, or a PostgreSQL advisory lock on a PostgreSQL one
    (serialises table and study creation between workers, local or on other machines)."""
    path = _sqlite_path(url)
    if path is None:
        with _postgresql_lock(url):
            yield
        return
    import fcntl

    lock = path.with_name(path.name + "-lock")
    with open(lock, "a+") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


_PG_LOCK_KEY = 0x7874_7473_7475_6E65  # "xtts-tune": one advisory lock per database


@contextlib.contextmanager
def _postgresql_lock(url: str) -> Iterator[None]:
    """Hold a session-level ``pg_advisory_lock`` for a PostgreSQL URL (nothing for other databases).
    Without it, workers opening a fresh database at once race in Optuna's CREATE TABLE and fail."""
    import sqlalchemy
    from sqlalchemy.engine import make_url

    try:
        backend = make_url(url).get_backend_name()
    except Exception:  # not a URL: open_storage reports it
        backend = None
    if backend != "postgresql":
        yield
        return
    from sqlalchemy.pool import NullPool

    engine = sqlalchemy.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as con:  # closing the connection releases the lock whatever happens
            con.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": _PG_LOCK_KEY})
            yield
    finally:
        engine.dispose()


def open_storage(
    url: str,
    *,
    heartbeat_interval: int | None = None,
    grace_period: int | None = None,
    max_retry: int | None = 2,
) -> optuna.storages.RDBStorage:
    """Open an SQLAlchemy storage URL as Optuna RDBStorage; SQLite gets WAL and a 60 s busy timeout.

    With ``heartbeat_interval`` set, running trials record heartbeats and a trial whose worker died is
    marked FAILED after ``grace_period`` seconds and queued again (up to ``max_retry`` times).
    Raises :class:`StorageError` naming the URL when it cannot be opened.
    """
    shown = _redact(url)
    engine_kwargs: dict[str, Any] = {}
    db = _sqlite_path(url)
    try:
        if db is not None:
            engine_kwargs["connect_args"] = {"timeout": 60}
            db.parent.mkdir(parents=True, exist_ok=True)
        kwargs: dict[str, Any] = {}
        if heartbeat_interval:
            kwargs = {
                "heartbeat_interval": heartbeat_interval,
                "grace_period": grace_period,
                "heartbeat_stale_trial_callback": _retry_callback(max_retry),
            }
        with _storage_lock(url):
            if db is not None:
                con = sqlite3.connect(str(db), timeout=60)
                try:
                    con.execute("PRAGMA journal_mode=WAL")
                finally:
                    con.close()
            with _quiet_experimental():
                storage = optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, **kwargs)
    except StorageError:
        raise
    except Exception as exc:  # sqlalchemy ArgumentError/OperationalError, ImportError for a driver, OSError...
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise StorageError(f"cannot open the study storage {shown}: {type(exc).__name__}: {first[:200]}") from None
    return storage


def _retry_callback(max_retry: int | None):
    with _quiet_experimental():
        cls = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None) or optuna.storages.RetryFailedTrialCallback
        return cls(max_retry=max_retry)


def load_study(study_name: str, storage: str | optuna.storages.BaseStorage) -> optuna.Study:
    """Load an existing study for the report or export (no heartbeats; nothing is written)."""
    if isinstance(storage, str):
        db = _sqlite_path(storage)
        if db is not None and not db.is_file():
            raise StudyNotFoundError(f"no study database at {db} (from {_redact(storage)}); run the search first")
        url, storage = storage, open_storage(storage)
    else:
        url = str(getattr(storage, "url", storage))
    try:
        return optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
        there = f"; studies there: {', '.join(names)}" if names else "; it holds no studies"
        raise StudyNotFoundError(f"no study named '{study_name}' in {_redact(url)}{there}") from None


def dashboard_command(
    storage_url: str, host: str = "127.0.0.1", port: int = 8080, *, artifact_dir: str | Path | None = None
) -> list[str]:
    """The ``optuna-dashboard`` argv for a storage; ``--artifact-dir`` is the study's artifact folder
    (looked up in the storage's studies when not given) so the dashboard shows each trial's curve file."""
    exe = Path(sys.executable).parent / "optuna-dashboard"
    argv = [str(exe) if exe.exists() else "optuna-dashboard", storage_url, "--host", host, "--port", str(port)]
    if artifact_dir is None:
        artifact_dir = _artifact_dir_from_storage(storage_url)
    if artifact_dir is not None:
        argv += ["--artifact-dir", str(artifact_dir)]
    return argv


def _artifact_dir_from_storage(url: str) -> Path | None:
    db = _sqlite_path(url)
    if db is not None and not db.is_file():
        return None
    try:
        storage = open_storage(url)
        for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
            folder = summary.user_attrs.get("artifact_dir")
            if folder and Path(folder).is_dir():
                return Path(folder)
    except Exception as exc:  # the dashboard still works without artifacts
        logger.debug("no artifact folder found in %s: %s", _redact(url), exc)
    return None


# --- fingerprint -----------------------------------------------------------------------------------------


def split_fingerprint(train_ids: list[str], val_ids: list[str]) -> str:
    text = json.dumps({"train": sorted(train_ids), "val": sorted(val_ids)})
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _expected_fingerprint(cfg: StudyConfig, base_fp: str) -> dict[str, str]:
    """The fingerprint this run would record, computed without writing anything (before prepare_data)."""
    from xtts_tune.data import dataset_fingerprint, load_clips, make_split

    if cfg.data.demo_target and not cfg.data_path.exists():
        from xtts_tune.demo_data import ensure_demo_target

        logger.info("generating the demo target voice into %s", cfg.data_path)
        ensure_demo_target(cfg.data_path)
    clips = load_clips(cfg.data, Path(cfg.root))
    split_path = _split_path(cfg)
    if split_path.is_file():
        saved = json.loads(split_path.read_text())
        split_fp = split_fingerprint(saved["train"], saved["val"])
    else:
        split = make_split(sorted({c.id for c in clips}), cfg.data)
        split_fp = split_fingerprint(split.train, split.val)
    return {"dataset": dataset_fingerprint(clips), "split": split_fp, "base_model": base_fp}


def _split_path(cfg: StudyConfig) -> Path:
    """Where prepare_data reads or writes the split (``data.split_file`` or ``<output_dir>/split.json``)."""
    split_file = getattr(cfg.data, "split_file", "")
    return cfg.resolve(split_file) if split_file else cfg.output_path / "split.json"


def _check_fingerprint(study_name: str, url: str, stored: dict | None, current: dict, cfg: StudyConfig) -> None:
    if not stored:
        return
    changed = [k for k in ("dataset", "split", "base_model") if stored.get(k) != current.get(k)]
    if not changed:
        return
    what = {
        "dataset": f"dataset {cfg.data_path}",
        "split": f"train/validation split ({_split_path(cfg)})",
        "base_model": f"base model {cfg.base_model}",
    }
    details = "; ".join(f"{what[k]} changed (stored {stored.get(k)}, now {current.get(k)})" for k in changed)
    raise StudyMismatchError(
        f"study '{study_name}' in {_redact(url)} was run on other data: {details}. Nothing was changed. "
        f"To continue this study, restore the original {', '.join(k.replace('_', ' ') for k in changed)}; "
        f"to start a new study on this data, set a new study_name (and output_dir) in {cfg.source} "
        f"or pass another --storage."
    )


def _tool_version() -> str:
    try:
        from importlib.metadata import version

        return version("xtts-tune")
    except Exception:
        return "unknown"


# --- results ---------------------------------------------------------------------------------------------


@dataclass
class TrialRow:
    number: int
    state: str
    params: dict[str, Any]
    best_val_loss: float | None
    steps: int | None
    planned_steps: int | None
    verdict: str | None
    checkpoint: bool = False


@dataclass
class SearchSummary:
    study_name: str
    storage: str
    rows: list[TrialRow]
    best_number: int | None
    best_value: float | None
    best_params: dict[str, Any]
    total_steps: int
    planned_steps: int
    disk_bytes: int
    trials_dir: str
    interrupted: bool = False
    trials_run: list[int] = field(default_factory=list)
    keep_top_k: int = 3
    default_storage: bool = True

    @property
    def compute_saved(self) -> float:
        """Share of the planned optimizer steps not spent (pruning and early stopping)."""
        return 1.0 - self.total_steps / self.planned_steps if self.planned_steps else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["compute_saved"] = self.compute_saved
        return d

    def render(self) -> str:
        lines = [f"study '{self.study_name}' ({_redact(self.storage)}): {len(self.rows)} trial(s)"]
        header = f"{'#':>4}  {'state':<8}  {'best val':>9}  {'steps':>11}  {'verdict':<12}  ckpt  params"
        lines += [header, "-" * len(header)]
        for r in self.rows:
            val = f"{r.best_val_loss:.4f}" if r.best_val_loss is not None else "-"
            steps = f"{r.steps}/{r.planned_steps}" if r.steps is not None else "-"
            params = "  ".join(f"{k}={_fmt(v)}" for k, v in r.params.items())
            mark = "*" if r.number == self.best_number else " "
            lines.append(
                f"{r.number:>4}{mark} {r.state:<8}  {val:>9}  {steps:>11}  {(r.verdict or '-'):<12}  "
                f"{'yes' if r.checkpoint else '-':<4}  {params}"
            )
        if self.best_number is not None:
            params = ", ".join(f"{k}={_fmt(v)}" for k, v in self.best_params.items())
            lines.append(f"best: trial {self.best_number}, validation loss {self.best_value:.4f} ({params})")
        if self.planned_steps:
            lines.append(
                f"compute: {self.total_steps}/{self.planned_steps} optimizer steps "
                f"({100 * self.compute_saved:.0f}% saved by pruning and early stopping)"
            )
        lines.append(
            f"disk: {_human_bytes(self.disk_bytes)} in {self.trials_dir} "
            f"(best checkpoints kept for the top {self.keep_top_k} trials)"
        )
        if self.interrupted:
            lines.append(
                "interrupted: the running trial was marked FAILED and queued again; run the same command to continue"
            )
        storage_arg = "" if self.default_storage else f" --storage '{_redact(self.storage)}'"
        make_arg = "" if self.default_storage else f" STORAGE='{_redact(self.storage)}'"
        lines += [
            "next steps:",
            f"  make dashboard STUDY={self.study_name}{make_arg}      # optuna-dashboard on http://127.0.0.1:8080",
            f"  xtts-tune report --study {self.study_name}{storage_arg}",
            f"  xtts-tune export --study {self.study_name}{storage_arg}",
        ]
        return "\n".join(lines)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def _human_bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def _finite(x: Any) -> float | None:
    if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x):
        return float(x)
    return None


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def trial_checkpoint(trial: FrozenTrial) -> Path | None:
    """The trial's best checkpoint if it is still on disk (top-K retention deletes the others)."""
    path = trial.user_attrs.get("checkpoint_path")
    if path and Path(path).is_file():
        return Path(path)
    return None


def _rank_value(t: FrozenTrial) -> float | None:
    if t.state not in (TrialState.COMPLETE, TrialState.PRUNED):
        return None
    return _finite(t.user_attrs.get("best_val_loss", t.value))


def _disk_usage(folder: Path) -> int:
    total = 0
    if folder.is_dir():
        for p in folder.rglob("*"):
            with contextlib.suppress(OSError):
                if p.is_file():
                    total += p.stat().st_size
    return total


# --- retention -------------------------------------------------------------------------------------------


def apply_retention(trials: list[FrozenTrial], trials_dir: Path, keep_top_k: int) -> list[int]:
    """Delete the best checkpoint of every finished trial outside the top ``keep_top_k`` (by best validation
    loss, COMPLETE or PRUNED); write ``retention.json`` in its folder. Return the numbers kept."""
    ranked = sorted(
        ((v, t.number) for t in trials if (v := _rank_value(t)) is not None),
        key=lambda x: (x[0], x[1]),
    )
    keep = {n for _, n in ranked[:keep_top_k]}
    for t in trials:
        if not t.state.is_finished() or t.number in keep:
            continue
        candidates = {trials_dir / f"trial-{t.number:04d}" / CHECKPOINT_NAME}
        if t.user_attrs.get("checkpoint_path"):
            candidates.add(Path(t.user_attrs["checkpoint_path"]))
        for ckpt in candidates:
            if not ckpt.is_file():
                continue
            size = ckpt.stat().st_size
            ckpt.unlink()
            note = {
                "checkpoint_deleted": True,
                "checkpoint_path": str(ckpt),
                "bytes_freed": size,
                "reason": f"not among the top {keep_top_k} trials by best validation loss",
                "deleted_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            }
            (ckpt.parent / RETENTION_NAME).write_text(json.dumps(note, indent=1))
            logger.info("trial %d: deleted %s (not in the top %d)", t.number, ckpt, keep_top_k)
    return sorted(keep)


# --- notes -----------------------------------------------------------------------------------------------


def trial_note(number: int, state: str, attrs: dict[str, Any], params: dict[str, Any]) -> str:
    """The Markdown note the dashboard shows for a trial: verdict, reasons, numbers and the curve."""
    diag = attrs.get("diagnosis") or {}
    title = f"{state} at step {attrs.get('steps')}" if state == "PRUNED" else state
    lines = [f"## Trial {number} · {title}", ""]
    if diag:
        lines.append(f"**Verdict: {diag.get('verdict')}**")
        lines += [f"- {r}" for r in diag.get("reasons", [])]
    else:
        lines.append("**Verdict: not enough evaluations to diagnose**")
    best = attrs.get("best_val_loss")
    lines += [
        "",
        "| | |",
        "|---|---|",
        f"| best validation loss | {best:.4f} at step {attrs.get('best_step')} (epoch {attrs.get('best_epoch')}) |"
        if best is not None
        else "| best validation loss | - |",
        f"| optimizer steps | {attrs.get('steps')} of {attrs.get('planned_steps')} planned "
        f"({_STOP_REASONS.get(attrs.get('stop_reason'), attrs.get('stop_reason'))}) |",
        f"| trainable parameters | {attrs.get('trainable_params'):,} of {attrs.get('total_params'):,} "
        f"({100 * (attrs.get('trainable_share') or 0):.1f}%) |",
        f"| wall time | {attrs.get('wall_seconds', 0):.1f} s |",
        f"| seed | {attrs.get('seed')} |",
        f"| params | {', '.join(f'{k}={_fmt(v)}' for k, v in params.items())} |",
        "",
        "### Curve",
        "",
        "| step | epoch | train loss | val loss | mel CE | text CE |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    curve = attrs.get("curve") or []
    shown = _subsample(len(curve), 40, attrs.get("best_step"), curve)
    for i in shown:
        r = curve[i]
        mark = " ★" if r.get("step") == attrs.get("best_step") else ""
        lines.append(
            f"| {r.get('step')}{mark} | {_num(r.get('epoch'), 2)} | {_num(r.get('train_loss'))} | "
            f"{_num(r.get('val_loss'))} | {_num(r.get('val_loss_mel_ce'))} | {_num(r.get('val_loss_text_ce'))} |"
        )
    if len(shown) < len(curve):
        lines.append(f"\n({len(shown)} of {len(curve)} evaluations shown; the full curve is the trial's artifact)")
    return "\n".join(lines)


_STOP_REASONS = {
    "completed": "ran to the end",
    "max_steps": "reached max_steps",
    "early_stopped": "early stopping",
    "stopped_by_callback": "pruned",
}


def _subsample(n: int, most: int, best_step: Any, curve: list[dict]) -> list[int]:
    if n <= most:
        return list(range(n))
    idx = {round(i * (n - 1) / (most - 1)) for i in range(most)}
    idx |= {i for i, r in enumerate(curve) if r.get("step") == best_step}
    return sorted(idx)


def _num(x: Any, digits: int = 4) -> str:
    return f"{x:.{digits}f}" if isinstance(x, (int, float)) and not isinstance(x, bool) else "-"


# --- the search ------------------------------------------------------------------------------------------


class _Search:
    def __init__(self, cfg: StudyConfig, settings: SearchSettings, thresholds, base, data, progress, n_trials):
        self.cfg, self.settings, self.thresholds = cfg, settings, thresholds
        self.base, self.data = base, data
        self.progress = progress
        self.n_trials = n_trials
        self.initial_state = copy.deepcopy(base.gpt.state_dict())
        self.trials_dir = cfg.output_path / TRIALS_DIR
        self.artifact_dir = cfg.output_path / ARTIFACTS_DIR
        self.artifact_dir.mkdir(parents=True, exist_ok=True)
        self.trials_run: list[int] = []
        self.index = 0

    def emit(self, event: dict) -> None:
        if self.progress is not None:
            self.progress(event)

    def objective(self, trial: optuna.Trial) -> float:
        from xtts_tune.trial import run_trial

        self.index += 1
        self.trials_run.append(trial.number)
        params = self.settings.space.suggest(trial)
        train = self.settings.space.train_config(self.cfg.train, params, self.cfg.source)
        trial_cfg = dataclasses.replace(self.cfg, train=train)
        run_dir = self.trials_dir / f"trial-{trial.number:04d}"
        if run_dir.exists():  # left by an earlier study in the same output_dir: never mix its files in
            logger.warning("removing %s left over from an earlier study", run_dir)
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True)
        trial.set_user_attr("run_dir", str(run_dir))
        self.emit({"event": "trial_start", "number": trial.number, "index": self.index,
                   "n_trials": self.n_trials, "params": dict(params)})
        curve: list[dict] = []

        def on_eval(record: dict) -> bool:
            curve.append(dict(record))
            trial.report(float(record["val_loss"]), int(record["step"]))
            return trial.should_prune()

        def on_progress(event: dict) -> None:
            self.emit({**event, "number": trial.number})

        try:
            result = run_trial(
                trial_cfg, base=self.base, data=self.data, run_dir=run_dir, callback=on_eval,
                progress=on_progress if self.progress is not None else None, initial_state=self.initial_state,
            )
        except KeyboardInterrupt:
            trial.set_user_attr("interrupted", True)
            trial.set_user_attr("stop_reason", "interrupted")
            with contextlib.suppress(OSError, ValueError, KeyError):  # the trial writes it at every evaluation
                curve = json.loads((run_dir / "curve.json").read_text())["curve"]
            trial.set_user_attr("curve", _json_safe(curve))
            trial.set_user_attr("train_config", dataclasses.asdict(train))
            raise
        pruned = result.stop_reason == "stopped_by_callback"
        attrs = self._attrs(result, train)
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        state = "PRUNED" if pruned else "COMPLETE"
        self._note_and_artifact(trial, state, attrs, params, result.curve_path)
        if pruned:
            raise optuna.TrialPruned(f"pruned at step {result.steps} (validation loss {curve[-1]['val_loss']:.4f})")
        best = result.best_val_loss
        return float(best) if math.isfinite(best) else float("nan")

    def _attrs(self, result, train: TrainConfig) -> dict[str, Any]:
        try:
            diagnosis = diagnose(
                result.curve, thresholds=self.thresholds, trainable_share=result.params.share
            ).to_dict()
        except ValueError as exc:
            logger.info("no diagnosis: %s", exc)
            diagnosis = None
        return _json_safe({
            "curve": result.curve,
            "best_step": result.best_step,
            "best_epoch": result.best_epoch,
            "best_val_loss": _finite(result.best_val_loss),
            "steps": result.steps,
            "planned_steps": result.planned_steps,
            "stop_reason": result.stop_reason,
            "trainable_share": result.params.share,
            "trainable_params": result.params.trainable,
            "total_params": result.params.total,
            "wall_seconds": round(result.wall_seconds, 3),
            "compute_seconds": round(result.compute_seconds, 3),
            "checkpoint_path": str(result.checkpoint_path) if result.checkpoint_path else None,
            "curve_path": str(result.curve_path),
            "seed": train.seed,
            "train_config": dataclasses.asdict(train),
            "diagnosis": diagnosis,
            "verdict": diagnosis["verdict"] if diagnosis else None,
        })

    def _note_and_artifact(self, trial: optuna.Trial, state: str, attrs: dict, params: dict, curve_path: Path):
        try:
            from optuna_dashboard import save_note

            save_note(trial, trial_note(trial.number, state, attrs, params))
        except Exception as exc:  # the dashboard extras must never lose a trial
            logger.warning("trial %d: could not save the dashboard note (%s)", trial.number, exc)
        try:
            from optuna.artifacts import FileSystemArtifactStore, upload_artifact

            with _quiet_experimental():
                trial.set_user_attr(
                    "curve_artifact_id",
                    upload_artifact(
                        artifact_store=FileSystemArtifactStore(str(self.artifact_dir)),
                        file_path=str(curve_path),
                        study_or_trial=trial,
                        mimetype="application/json",
                    ),
                )
        except Exception as exc:
            logger.warning("trial %d: could not upload the curve artifact (%s)", trial.number, exc)

    def after_trial(self, study: optuna.Study, frozen: FrozenTrial) -> None:
        trials = study.get_trials(deepcopy=False)
        apply_retention(trials, self.trials_dir, self.settings.keep_top_k)
        ranked = [v for t in trials if (v := _rank_value(t)) is not None]
        self.emit({
            "event": "trial_end",
            "number": frozen.number,
            "index": self.index,
            "n_trials": self.n_trials,
            "state": frozen.state.name,
            "value": _finite(frozen.user_attrs.get("best_val_loss", frozen.value)),
            "steps": frozen.user_attrs.get("steps"),
            "planned_steps": frozen.user_attrs.get("planned_steps"),
            "verdict": frozen.user_attrs.get("verdict"),
            "best_so_far": min(ranked) if ranked else None,
        })


def _requeue_interrupted(study: optuna.Study, number: int) -> None:
    """Queue the params of a trial stopped by Ctrl-C so the next run tries them again."""
    for t in study.get_trials(deepcopy=False):
        if t.number == number and t.state == TrialState.FAIL and t.user_attrs.get("interrupted"):
            if not t.params:
                return
            study.add_trial(
                optuna.trial.create_trial(
                    state=TrialState.WAITING,
                    params=t.params,
                    distributions=t.distributions,
                    user_attrs={"retry_of": number},
                    system_attrs={"failed_trial": number, "retry_history": [number]},
                )
            )
            logger.info("trial %d was interrupted; its params are queued to run again", number)
            return


def _open_or_create_study(
    cfg: StudyConfig, url: str, storage, settings: SearchSettings, fingerprint: dict, num_layers: int
) -> optuna.Study:
    """Create the study (recording config and fingerprint, enqueuing the guide's config) or load it and
    check its fingerprint. Runs under a file lock for SQLite so local workers never race."""
    sampler, pruner = settings.make_sampler(), settings.make_pruner()
    name = cfg.study_name
    with _storage_lock(url):
        try:
            storage.get_study_id_from_name(name)
            exists = True
        except KeyError:
            exists = False
        if not exists:
            try:
                study = optuna.create_study(
                    study_name=name, storage=storage, sampler=sampler, pruner=pruner, direction="minimize"
                )
                created = True
            except optuna.exceptions.DuplicatedStudyError:  # another machine created it first
                study, created = optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner), False
        else:
            study, created = optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner), False
        if created:
            study.set_user_attr("fingerprint", fingerprint)
            study.set_user_attr("config", _json_safe(cfg.to_dict()))
            study.set_user_attr("xtts_tune_version", _tool_version())
            study.set_user_attr("artifact_dir", str((cfg.output_path / ARTIFACTS_DIR).resolve()))
            study.set_user_attr("output_dir", str(cfg.output_path.resolve()))
            study.set_user_attr("project_root", str(Path(cfg.root).resolve()))
            study.set_user_attr("created_at", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
            if settings.enqueue_guide and settings.space.params:
                study.enqueue_trial(
                    settings.space.guide_params(num_layers, cfg.train), user_attrs={"enqueued": "guide"}
                )
            for params in settings.enqueue:
                study.enqueue_trial(params, user_attrs={"enqueued": "config"}, skip_if_exists=True)
            logger.info("created study '%s' in %s", name, _redact(url))
            return study
        stored = study.user_attrs.get("fingerprint")
        deadline = time.monotonic() + 30
        while stored is None and time.monotonic() < deadline:  # its creator (elsewhere) is still writing it
            time.sleep(0.5)
            stored = study.user_attrs.get("fingerprint")
        _check_fingerprint(name, url, stored, fingerprint, cfg)
        if stored is None:
            logger.warning("study '%s' has no fingerprint; recording this run's", name)
            study.set_user_attr("fingerprint", fingerprint)
        for params in settings.enqueue:  # configs added to the YAML since the study began
            study.enqueue_trial(params, user_attrs={"enqueued": "config"}, skip_if_exists=True)
        logger.info("continuing study '%s' (%d trials so far)", name, len(study.trials))
        return study


def run_search(
    cfg: StudyConfig,
    *,
    n_trials: int,
    storage: str | None = None,
    progress: ProgressFn | None = None,
    base=None,
) -> SearchSummary:
    """Run ``n_trials`` trials of this worker on the study ``cfg.study_name``; return the study's summary.

    Loads the base model and prepares the data once and shares them between trials. ``storage`` is any
    SQLAlchemy URL (default :func:`default_storage`). Running it again continues the study; a study
    recorded on another dataset, split or base model raises :class:`StudyMismatchError` before anything is
    written. Each concurrent worker runs its own ``n_trials``. Ctrl-C returns the summary with
    ``interrupted=True``. ``base`` (a :class:`~xtts_tune.model.LoadedBase`) may be passed to reuse a loaded
    model; it is left with the weights it had.

    ``progress`` receives ``{"event": "trial_start", "number", "index", "n_trials", "params"}``, the trial's
    own events (``start``, ``step``, ``eval``) with ``"number"`` added, and ``{"event": "trial_end",
    "number", "state", "value", "steps", "planned_steps", "verdict", "best_so_far"}``.
    """
    from xtts_tune.model import load_base, resolve_base_path
    from xtts_tune.trial import pick_device, prepare_data

    if n_trials < 0:
        raise ConfigError(f"the number of trials must be >= 0, got {n_trials}")
    # Optuna prints INFO lines to stderr through its own handler; route them through logging instead
    optuna.logging.disable_default_handler()
    optuna.logging.enable_propagation()
    logging.getLogger("optuna").setLevel(logging.NOTSET)  # the application's logging level decides
    cfg.validate()
    settings = SearchSettings.from_config(cfg)
    thresholds = diagnosis_thresholds(cfg)
    url = storage or default_storage(cfg)
    rdb = open_storage(
        url,
        heartbeat_interval=settings.heartbeat_interval,
        grace_period=settings.grace_period,
        max_retry=settings.max_retry,
    )
    if base is None:
        base = load_base(resolve_base_path(cfg.base_model, Path(cfg.root)), device=pick_device(cfg.train.device))
    settings.resolve(base.num_layers, cfg.source)
    if "freeze_depth" not in settings.space.params and "freeze_depth" not in settings.space.fixed:
        if cfg.train.freeze_depth > base.num_layers:
            raise ConfigError(
                f"{cfg.source}: train.freeze_depth is {cfg.train.freeze_depth} but the base model has "
                f"{base.num_layers} GPT layers"
            )
    fingerprint = _expected_fingerprint(cfg, base.fingerprint)
    with _storage_lock(url):  # refuse a mismatched study before anything (split, cache, DB) is written
        try:
            stored = rdb.get_study_user_attrs(rdb.get_study_id_from_name(cfg.study_name)).get("fingerprint")
        except KeyError:
            stored = None
        _check_fingerprint(cfg.study_name, url, stored, fingerprint, cfg)

    data = prepare_data(cfg, base)
    fingerprint["dataset"] = data.fingerprint
    fingerprint["split"] = split_fingerprint(data.split.train, data.split.val)
    study = _open_or_create_study(cfg, url, rdb, settings, fingerprint, base.num_layers)

    search = _Search(cfg, settings, thresholds, base, data, progress, n_trials)
    interrupted = False
    try:
        with _quiet_experimental():
            study.optimize(search.objective, n_trials=n_trials, catch=(), callbacks=[search.after_trial])
    except KeyboardInterrupt:
        interrupted = True
        logger.warning("interrupted; finishing cleanly")
        if search.trials_run:
            _requeue_interrupted(study, search.trials_run[-1])
    finally:
        with contextlib.suppress(Exception):
            apply_retention(study.get_trials(deepcopy=False), search.trials_dir, settings.keep_top_k)
    return summarize(study, url, search.trials_dir, keep_top_k=settings.keep_top_k, interrupted=interrupted,
                     trials_run=search.trials_run, default=storage is None or storage == default_storage(cfg))


def summarize(
    study: optuna.Study,
    url: str,
    trials_dir: Path,
    *,
    keep_top_k: int = 3,
    interrupted: bool = False,
    trials_run: list[int] | None = None,
    default: bool = True,
) -> SearchSummary:
    """The study's table: every trial's state, params, best loss, steps and verdict; the best trial."""
    trials = study.get_trials(deepcopy=False)
    rows = []
    total = planned = 0
    best: tuple[float, FrozenTrial] | None = None
    for t in trials:
        steps, plan = t.user_attrs.get("steps"), t.user_attrs.get("planned_steps")
        if isinstance(steps, int) and isinstance(plan, int):
            total += steps
            planned += plan
        v = _rank_value(t)
        if v is not None and (best is None or v < best[0]):
            best = (v, t)
        rows.append(
            TrialRow(
                number=t.number,
                state=t.state.name,
                params=dict(t.params),
                best_val_loss=_finite(t.user_attrs.get("best_val_loss")),
                steps=steps,
                planned_steps=plan,
                verdict=t.user_attrs.get("verdict"),
                checkpoint=trial_checkpoint(t) is not None,
            )
        )
    return SearchSummary(
        study_name=study.study_name,
        storage=url,
        rows=rows,
        best_number=best[1].number if best else None,
        best_value=best[0] if best else None,
        best_params=dict(best[1].params) if best else {},
        total_steps=total,
        planned_steps=planned,
        disk_bytes=_disk_usage(trials_dir),
        trials_dir=str(trials_dir),
        interrupted=interrupted,
        trials_run=list(trials_run or []),
        keep_top_k=keep_top_k,
        default_storage=default,
    )
