"""The validated ``search`` section: space, sampler (seeded TPE), pruner, enqueued configs, retention and
heartbeat settings. See :mod:`xtts_tune.search` for the YAML.

>>> from xtts_tune.config import StudyConfig
>>> settings = SearchSettings.from_config(StudyConfig(search={"pruner": "successive_halving"}))
>>> type(settings.make_pruner()).__name__, sorted(settings.space.params)
('SuccessiveHalvingPruner', ['augment_prob', 'freeze_depth', 'learning_rate', 'weight_decay'])
"""

from __future__ import annotations

import contextlib
import difflib
import inspect
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna

from xtts_tune.config import (
    SEARCH_KEYS,
    ConfigError,
    StudyConfig,
    TrainConfig,
    coerce,
    unknown_key,
)
from xtts_tune.record import enqueue_attrs
from xtts_tune.search.fidelity import FidelitySettings
from xtts_tune.search.space import SearchSpace, parse_enqueue, parse_space

SAMPLER_TYPES = ("tpe", "gp")
"""``search.sampler.type``: Optuna's TPESampler or GPSampler (Gaussian process), both seeded per trial number."""

SAMPLER_KEYS = {
    "type": str,
    "constraints": bool,
    "spread_start": bool,
    "seed": int,
    "n_startup_trials": int,
    "n_ei_candidates": int,
    "multivariate": bool,
    "group": bool,
    "constant_liar": bool,
    "consider_endpoints": bool,
    "consider_magic_clip": bool,
    "prior_weight": float,
    "deterministic_objective": bool,
}
GP_KEYS = ("type", "constraints", "spread_start", "seed", "n_startup_trials", "deterministic_objective")
"""The sampler keys a ``type: gp`` sampler takes (the others are TPE's)."""

DEFAULT_SAMPLER: dict[str, Any] = {
    "type": "tpe",
    "multivariate": True,
    "n_startup_trials": 5,
    # Optuna's default is 24: TPE then takes the best of 24 draws from its "good" model, and on the search bench's
    # three tables it locked onto one near-best configuration; 8 explores more (docs/search.md, 50 seeds a table)
    "n_ei_candidates": 8,
    "seed": 0,
    "constraints": True,
    "spread_start": False,
}
"""The sampler a study gets for every key its YAML leaves out (chosen on ``make bench-search``'s three tables;
docs/search.md): ``constraints`` feeds it the ranking's rejection
(:attr:`xtts_tune.record.TrialRecord.rejected`), ``spread_start`` queues :meth:`SearchSpace.spread_params`
after the guide's recipe."""

CONSTRAINT = "rejected"
"""The name of the trial's Optuna constraint (``Trial.set_constraint``: > 0 is violated), which TPE and GP
read, so that a configuration the ranking would never pick does not pull the sampler towards it."""


PRUNERS: dict[str, Callable[..., optuna.pruners.BasePruner]] = {
    "median": optuna.pruners.MedianPruner,
    "percentile": optuna.pruners.PercentilePruner,
    "successive_halving": optuna.pruners.SuccessiveHalvingPruner,
    "hyperband": optuna.pruners.HyperbandPruner,
    "none": optuna.pruners.NopPruner,
}


@dataclass
class PrunerSettings:
    type: str = "none"
    """No pruner unless the YAML names one: on the search bench's tables (``make bench-search``) early stopping
    took the savings and every pruner made the search worse or changed nothing (docs/benchmarks.md, search strategy)."""
    kwargs: dict[str, Any] = field(default_factory=dict)
    patience: int | None = None
    min_delta: float = 0.0

    def warmup_warning(self, eval_every: int, eval_at_start: bool = True) -> str | None:
        """One line when the pruner may cut a trial before it has ``MIN_EVALUATIONS`` evaluations (its
        verdict would be inconclusive), else ``None``.

        >>> PrunerSettings("median", {"n_warmup_steps": 6}).warmup_warning(eval_every=6)
        'search.pruner: n_warmup_steps 6 with train.eval_every 6 lets the pruner cut a trial after 2 evaluations; its curve would be inconclusive (a verdict needs 3): raise n_warmup_steps to 12 or more'
        >>> PrunerSettings("median", {"n_warmup_steps": 6}).warmup_warning(eval_every=2) is None
        True
        """
        from xtts_tune.analysis.ranking.verdicts import MIN_EVALUATIONS

        key = {
            "median": "n_warmup_steps",
            "percentile": "n_warmup_steps",
            "successive_halving": "min_resource",
            "hyperband": "min_resource",
        }.get(self.type)
        warmup = self.kwargs.get(key, 0 if key == "n_warmup_steps" else None) if key else None
        if not isinstance(warmup, int) or eval_every <= 0:
            return None  # no pruner, or "auto": not known before trials run
        start = 1 if eval_at_start else 0
        evaluations = max(1, math.ceil(warmup / eval_every)) + start
        if evaluations >= MIN_EVALUATIONS:
            return None
        needed = (MIN_EVALUATIONS - start) * eval_every
        return (
            f"search.pruner: {key} {warmup} with train.eval_every {eval_every} lets the pruner cut a trial "
            f"after {evaluations} evaluations; its curve would be inconclusive (a verdict needs "
            f"{MIN_EVALUATIONS}): raise {key} to {needed} or more"
        )

    def build(self) -> optuna.pruners.BasePruner:
        pruner = PRUNERS[self.type](**self.kwargs)
        if self.patience is not None:
            with quiet_experimental():
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
    samples: int = 3
    """Listening samples per kept trial from the validation texts (0: none); only a base with a HiFi-GAN
    decoder can make them."""
    short_samples: int = 2
    """1-3-word texts spoken after them (short texts are where fine-tunes babble past the end)."""
    sample_max_seconds: float | None = None
    """Cap on each sample's length (None: 1 s + 0.15 s per character, about twice a normal speaking rate)."""
    heartbeat_interval: int = 30
    grace_period: int = 90
    max_retry: int | None = 2
    forgetting: bool = True
    """Score every kept trial, and the base once, on the forgetting set (:mod:`xtts_tune.search.forgetting`):
    one evaluation of the set per kept trial. false: the search does not measure what trials forgot."""
    forgetting_samples: int = 2
    """Forgetting by ear (:mod:`xtts_tune.search.forgetting_ear`): sentences per other language each kept
    trial and the base speak in a voice that is not the target (0: none); only a base with a HiFi-GAN decoder."""
    fidelity: FidelitySettings | None = None
    """The rungs of a multi-fidelity search (:mod:`xtts_tune.search.fidelity`); None: every trial on all the clips."""

    @classmethod
    def from_config(cls, cfg: StudyConfig) -> SearchSettings:
        where = cfg.source
        raw = cfg.search or {}
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: 'search' must be a mapping, got {type(raw).__name__}")
        for key in raw:
            if key not in SEARCH_KEYS:
                raise unknown_key(str(key), list(SEARCH_KEYS), where, "search")
        space = parse_space(raw.get("space"), cfg.train, where)
        settings = cls(space=space)
        settings.sampler = _parse_sampler(raw.get("sampler"), cfg, where)
        settings.pruner = _parse_pruner(raw.get("pruner"), cfg.train, where)
        # the plain keys: their defaults are the dataclass fields' (written once, above)
        for key, kind in (
            ("enqueue_guide", bool),
            ("keep_top_k", int),
            ("heartbeat_interval", int),
            ("grace_period", int),
            ("max_retry", int),
            ("samples", int),
            ("short_samples", int),
            ("sample_max_seconds", float),
            ("forgetting", bool),
            ("forgetting_samples", int),
        ):
            value = raw.get(key, getattr(settings, key))
            nullable = key in ("max_retry", "sample_max_seconds")  # null: no limit, no cap
            setattr(settings, key, None if value is None and nullable else coerce(value, kind, f"search.{key}", where))
        if min(settings.samples, settings.short_samples, settings.forgetting_samples) < 0 or (
            settings.sample_max_seconds is not None and settings.sample_max_seconds <= 0
        ):
            raise ConfigError(
                f"{where}: search.samples, search.short_samples and search.forgetting_samples must be >= 0 and "
                "search.sample_max_seconds > 0"
            )
        if settings.keep_top_k < 0:
            raise ConfigError(f"{where}: search.keep_top_k must be >= 0, got {settings.keep_top_k}")
        if settings.heartbeat_interval < 1:
            raise ConfigError(
                f"{where}: search.heartbeat_interval must be >= 1 second, got {settings.heartbeat_interval}"
            )
        if settings.grace_period <= settings.heartbeat_interval:
            raise ConfigError(
                f"{where}: search.grace_period ({settings.grace_period}) must be longer than "
                f"search.heartbeat_interval ({settings.heartbeat_interval})"
            )
        if settings.max_retry is not None and settings.max_retry < 0:
            raise ConfigError(
                f"{where}: search.max_retry must be >= 0 (or null for no limit), got {settings.max_retry}"
            )
        settings.enqueue = parse_enqueue(raw.get("enqueue"), space, where)
        settings.fidelity = FidelitySettings.parse(raw.get("fidelity"), where)
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

    @property
    def sampler_options(self) -> dict[str, Any]:
        """:data:`DEFAULT_SAMPLER` with the YAML's keys (a GP sampler: only :data:`GP_KEYS`)."""
        options = {**DEFAULT_SAMPLER, **self.sampler}
        return {k: v for k, v in options.items() if options["type"] != "gp" or k in GP_KEYS}

    def make_sampler(self) -> optuna.samplers.BaseSampler:
        kwargs = self.sampler_options
        kind = kwargs.pop("type")
        kwargs.pop("spread_start")
        kwargs.pop("constraints")  # the trial's own constraint: set_constraint
        with quiet_experimental():
            return (_TrialSeededGPSampler if kind == "gp" else _TrialSeededTPESampler)(**kwargs)

    def set_constraint(self, trial: optuna.Trial, rejected: float | None) -> None:
        """Give the sampler the trial's rejection (:attr:`xtts_tune.record.TrialRecord.rejected`: 1.0 when the
        ranking would never pick it) as its :data:`CONSTRAINT` (when ``sampler.constraints`` is on). Optuna
        keeps the first value set, so call it once all judgments are in.

        >>> study = optuna.create_study()
        >>> trial = study.ask()
        >>> SearchSettings(SearchSpace({})).set_constraint(trial, 1.0)
        >>> study.tell(trial, 3.0).constraints
        {'rejected': 1.0}
        """
        if self.sampler_options["constraints"]:
            trial.set_constraint(CONSTRAINT, float(rejected or 0.0))

    def start_queue(self, num_layers: int, train: TrainConfig) -> list[tuple[dict[str, Any], dict[str, str]]]:
        """The configurations a new study runs first, each with its ``enqueued`` user attribute: the guide's
        recipe (``enqueue_guide``), then :meth:`SearchSpace.spread_params` (``sampler.spread_start``), then the
        YAML's ``enqueue`` list. The search and the search bench queue exactly these."""
        queue: list[tuple[dict[str, Any], dict[str, str]]] = []
        if self.enqueue_guide and self.space.params:
            guide = self.space.guide_params(num_layers, train)
            queue.append((guide, enqueue_attrs("guide")))
            if self.sampler_options["spread_start"]:
                queue += [(p, enqueue_attrs("spread")) for p in self.space.spread_params(guide) if p != guide]
        return queue + [(dict(p), enqueue_attrs("config")) for p in self.enqueue]

    def make_pruner(self) -> optuna.pruners.BasePruner:
        return self.pruner.build()


def _parse_sampler(raw: Any, cfg: StudyConfig, where: str) -> dict[str, Any]:
    raw = raw or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: search.sampler must be a mapping, got {type(raw).__name__}")
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in SAMPLER_KEYS:
            raise unknown_key(str(key), list(SAMPLER_KEYS), where, "search.sampler")
        out[key] = coerce(value, SAMPLER_KEYS[key], f"search.sampler.{key}", where)
    if out.get("n_startup_trials", DEFAULT_SAMPLER["n_startup_trials"]) < 0:
        raise ConfigError(f"{where}: search.sampler.n_startup_trials must be >= 0")
    kind = out.get("type", DEFAULT_SAMPLER["type"])
    if kind not in SAMPLER_TYPES:
        raise ConfigError(f"{where}: search.sampler.type '{kind}' is not one of {', '.join(SAMPLER_TYPES)}")
    if kind == "gp":
        tpe_only = [k for k in out if k not in GP_KEYS]
        if tpe_only:
            raise ConfigError(
                f"{where}: search.sampler.{tpe_only[0]} is a TPE setting; a 'type: gp' sampler "
                f"takes {', '.join(GP_KEYS)}"
            )
    elif "deterministic_objective" in out:
        raise ConfigError(
            f"{where}: search.sampler.deterministic_objective is a GP setting; add 'type: gp' or remove it"
        )
    return out


def _parse_pruner(raw: Any, train: TrainConfig, where: str) -> PrunerSettings:
    if raw is None:
        return PrunerSettings()  # none: see PrunerSettings.type
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
            raise unknown_key(str(key), valid + ["type", "patience", "min_delta"], where, "search.pruner")
    missing = [p.name for p in params.values() if p.default is inspect.Parameter.empty and p.name not in raw]
    if missing:
        raise ConfigError(f"{where}: search.pruner type '{kind}' needs {', '.join(missing)}")
    settings = PrunerSettings(
        kind,
        raw,
        None if patience is None else coerce(patience, int, "search.pruner.patience", where),
        coerce(min_delta, float, "search.pruner.min_delta", where),
    )
    try:
        settings.build()
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: search.pruner: {exc}") from None
    return settings


class _TrialSeeded:
    """A sampler whose random state is re-seeded from (seed, trial number) at the start of each trial.

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
        for name in (None, "_random_sampler", "_independent_sampler"):  # TPE's and GP's startup samplers
            holder = self if name is None else getattr(self, name, None)
            rng = getattr(holder, "_rng", None)
            if rng is not None and hasattr(rng, "rng"):
                rng.rng.seed(derived)


class _TrialSeededTPESampler(_TrialSeeded, optuna.samplers.TPESampler):
    """Optuna's TPESampler, seeded per trial number (:class:`_TrialSeeded`)."""


class _TrialSeededGPSampler(_TrialSeeded, optuna.samplers.GPSampler):
    """Optuna's GPSampler, seeded per trial number (:class:`_TrialSeeded`)."""


@contextlib.contextmanager
def quiet_experimental():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield
