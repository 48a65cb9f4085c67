"""Study-level analysis: every trial's verdict, what drives the loss and the overfitting, the
compute that pruning saved, and the recommended configuration.

Everything here reads an :class:`optuna.Study` as the study runner stores it (see
``xtts_tune.study``): trial params, value (best validation loss), intermediate values, and the
user attributes ``curve``, ``best_step``, ``best_epoch``, ``steps``, ``planned_steps``,
``trainable_share``, ``train_config`` and ``diagnosis``; the study's ``config`` user attribute
supplies the diagnosis thresholds. Any of them may be missing (failed or running trials).

Rules of the recommendation (:func:`recommend`):

- Candidates are COMPLETE trials with a finite value; the lowest value wins, except that a trial
  whose verdict is ``overfitting`` or ``unstable`` is never picked, even when it is the lowest.
- Candidates within ``noise`` (relative, default :data:`DEFAULT_SEED_NOISE`, 1 %) of the winner
  cannot be told apart from one seed: the next steps then suggest ``xtts-tune confirm``.
- When the study's ``confirmations`` user attribute (written by ``xtts-tune confirm``, see
  :mod:`xtts_tune.confirm`) holds runs of candidates with other seeds, the confirmed candidates are
  ranked by their *mean* best validation loss over the original run and the confirmation runs. An
  unconfirmed candidate competes (by its one value) only if its value is below every confirmed
  candidate's original value (e.g. a trial added after ``confirm`` ran); otherwise a confirmed
  candidate already beat it on one seed. A confirmed candidate with a confirmation run that gave no
  finite validation loss is not recommended (it is unstable under another seed).
- When more than half (:data:`MAJORITY`) of the diagnosed finished trials overfit, the next
  steps say to lower the learning-rate range or freeze more layers; when more than half
  underfit, to raise it or unfreeze more layers (the guide's troubleshooting).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from collections.abc import Sequence
import dataclasses
from dataclasses import dataclass
from dataclasses import field
import logging
import math
import numbers
import statistics
from typing import Any

import optuna
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution
from optuna.importance import FanovaImportanceEvaluator
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from xtts_tune.config import TrainConfig
from xtts_tune.diagnosis import DiagnosisThresholds
from xtts_tune.diagnosis import diagnose


__all__ = [
    "DEFAULT_SEED_NOISE",
    "MAJORITY",
    "UNKNOWN",
    "VERDICTS",
    "BandRate",
    "CONFIRMATIONS",
    "ComputeSaved",
    "Confirmation",
    "NoRecommendationError",
    "OverfittingRates",
    "Recommendation",
    "StudyAnalysis",
    "TrialVerdict",
    "analyze",
    "compute_saved",
    "knob_value",
    "learning_rate_band",
    "overfitting_rates",
    "parameter_importances",
    "recommend",
    "study_confirmations",
    "study_thresholds",
    "trial_verdicts",
]

logger = logging.getLogger(__name__)

VERDICTS = ("healthy", "overfitting", "underfitting", "unstable")
"""The verdicts of :func:`xtts_tune.diagnosis.diagnose`."""
UNKNOWN = "unknown"
"""The verdict of a trial without a diagnosable curve (failed early, or still running)."""
REJECTED = frozenset({"overfitting", "unstable"})
"""Verdicts that are never recommended."""
DEFAULT_SEED_NOISE = 0.01
"""Relative difference in validation loss below which two trials are within seed noise."""
MAJORITY = 0.5
"""Share of finished trials above which an overfitting/underfitting trend gets advice."""
CONFIRMATIONS = "confirmations"
"""Study user attribute of ``xtts-tune confirm``: ``{"<trial number>": [{"seed", "best_val_loss",
"best_step", ...}, ...]}``, the trial's runs with other seeds."""
FINISHED = ("COMPLETE", "PRUNED")
FREEZE_DEPTH = "freeze_depth"
LEARNING_RATE = "learning_rate"
_TRAIN_FIELDS = frozenset(f.name for f in dataclasses.fields(TrainConfig))


# --- results ----------------------------------------------------------------------------------------


@dataclass
class TrialVerdict:
    """One trial's verdict, from its stored diagnosis or by diagnosing its stored curve.

    ``source`` is ``"stored"`` (the study's diagnosis), ``"recomputed"`` (diagnosed here from
    the ``curve`` attribute) or ``"none"`` (no curve: the verdict is :data:`UNKNOWN`).
    """

    number: int
    state: str
    value: float | None
    params: dict[str, Any]
    verdict: str
    reasons: list[str]
    best_step: int | None = None
    best_epoch: float | None = None
    overfit_onset_step: int | None = None
    trainable_share: float | None = None
    source: str = "none"

    def to_dict(self) -> dict[str, Any]:
        return _json_safe(dataclasses.asdict(self))


@dataclass
class BandRate:
    """How many diagnosed finished trials fell in a band, and how many of them overfit."""

    trials: int = 0
    overfitting: int = 0

    @property
    def rate(self) -> float:
        return self.overfitting / self.trials if self.trials else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"trials": self.trials, "overfitting": self.overfitting, "rate": self.rate}


@dataclass
class OverfittingRates:
    """Overfitting rate by freeze-depth value and by learning-rate decade (``"1e-5–1e-4"``)."""

    by_freeze_depth: dict[int, BandRate] = field(default_factory=dict)
    by_learning_rate: dict[str, BandRate] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "by_freeze_depth": {str(k): v.to_dict() for k, v in self.by_freeze_depth.items()},
            "by_learning_rate": {k: v.to_dict() for k, v in self.by_learning_rate.items()},
        }


@dataclass
class ComputeSaved:
    """Optimizer steps spent by finished trials against the steps full runs would have spent."""

    trials: int
    steps: int
    planned_steps: int

    @property
    def saved_steps(self) -> int:
        return max(0, self.planned_steps - self.steps)

    @property
    def saved_fraction(self) -> float:
        return self.saved_steps / self.planned_steps if self.planned_steps else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "trials": self.trials,
            "steps": self.steps,
            "planned_steps": self.planned_steps,
            "saved_steps": self.saved_steps,
            "saved_fraction": self.saved_fraction,
        }


@dataclass
class Recommendation:
    """The recommended trial: its settings, where to stop, and why, in plain sentences."""

    study_name: str
    trial_number: int
    params: dict[str, Any]
    train_config: dict[str, Any]
    stop_step: int | None
    stop_epoch: float | None
    val_loss: float
    verdict: str
    reasons: list[str]
    next_steps: list[str]
    within_noise: list[int] = field(default_factory=list)
    """Other candidates whose validation loss is within ``noise`` of this one."""
    noise: float = DEFAULT_SEED_NOISE
    mean_val_loss: float | None = None
    """Mean best validation loss over the original and confirmation runs (when confirmed)."""
    std_val_loss: float | None = None
    """Sample standard deviation of those runs (when confirmed)."""
    n_seeds: int = 1
    """Runs behind ``mean_val_loss`` (1: ranked by the original run's ``val_loss`` alone)."""

    def to_dict(self) -> dict[str, Any]:
        return _json_safe(dataclasses.asdict(self))


@dataclass
class Confirmation:
    """A candidate's best validation losses over its original run and its confirmation runs.

    ``runs`` are the stored confirmation entries (other seeds), sorted by seed, each with ``seed``,
    ``best_val_loss`` (``None`` when the run gave no finite loss) and ``best_step``.
    """

    number: int
    original: float
    original_seed: int | None
    runs: list[dict[str, Any]]

    @property
    def values(self) -> list[float]:
        """The original value, then each confirmation run's finite best validation loss."""
        return [self.original] + [r["best_val_loss"] for r in self.runs if r["best_val_loss"] is not None]

    @property
    def failed_seeds(self) -> list[int]:
        """Seeds whose confirmation run gave no finite validation loss."""
        return [r["seed"] for r in self.runs if r["best_val_loss"] is None]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        """Mean best validation loss over the runs (``inf`` when a run gave no finite loss)."""
        return math.inf if self.failed_seeds else statistics.fmean(self.values)

    @property
    def std(self) -> float:
        """Sample standard deviation over the runs (0 for a single run)."""
        values = self.values
        return statistics.stdev(values) if len(values) > 1 else 0.0

    def describe(self) -> str:
        """``"3.0412 ± 0.0105 over 4 seeds"``."""
        return f"{self.mean:.4f} ± {self.std:.4f} over {self.n} seeds"

    def to_dict(self) -> dict[str, Any]:
        return _json_safe({
            "number": self.number,
            "original": self.original,
            "original_seed": self.original_seed,
            "runs": self.runs,
            "mean": self.mean,
            "std": self.std,
            "n": self.n,
        })


class NoRecommendationError(ValueError):
    """No trial qualifies for a recommendation; the message says why and what to do."""


@dataclass
class StudyAnalysis:
    """Everything :mod:`xtts_tune.report` shows, computed from one read of the study."""

    study_name: str
    verdicts: list[TrialVerdict]
    importances: dict[str, float]
    rates: OverfittingRates
    compute: ComputeSaved
    recommendation: Recommendation | None
    no_recommendation: str | None
    """The :class:`NoRecommendationError` message when there is no recommendation."""

    def verdict_counts(self) -> dict[str, int]:
        counts = Counter(v.verdict for v in self.verdicts if v.state in FINISHED)
        return {k: counts[k] for k in (*VERDICTS, UNKNOWN) if counts[k]}

    def to_dict(self) -> dict[str, Any]:
        return {
            "study_name": self.study_name,
            "verdicts": [v.to_dict() for v in self.verdicts],
            "verdict_counts": self.verdict_counts(),
            "importances": dict(self.importances),
            "rates": self.rates.to_dict(),
            "compute": self.compute.to_dict(),
            "recommendation": self.recommendation.to_dict() if self.recommendation else None,
            "no_recommendation": self.no_recommendation,
        }


# --- public API -------------------------------------------------------------------------------------


def study_thresholds(study: optuna.Study) -> DiagnosisThresholds:
    """The diagnosis thresholds of the study's stored config (the defaults for missing keys)."""
    config = study.user_attrs.get("config")
    section = config.get("diagnosis") if isinstance(config, Mapping) else None
    if not isinstance(section, Mapping):
        return DiagnosisThresholds()
    known = {f.name for f in dataclasses.fields(DiagnosisThresholds)}
    unknown = sorted(set(section) - known)
    if unknown:
        logger.warning("ignoring unknown diagnosis keys in the study config: %s", unknown)
    thresholds = DiagnosisThresholds(**{k: v for k, v in section.items() if k in known})
    thresholds.validate()
    return thresholds


def study_confirmations(study: optuna.Study) -> dict[int, list[dict[str, Any]]]:
    """The study's ``confirmations`` attribute as ``{trial number: [run, ...]}``, runs sorted by seed.

    Each run is ``{"seed": int, "best_val_loss": float | None, "best_step": int | None}`` plus any
    other stored keys; a non-finite loss becomes ``None``. Malformed entries are skipped with a warning.
    """
    raw = study.user_attrs.get(CONFIRMATIONS)
    if not isinstance(raw, Mapping):
        return {}
    out: dict[int, list[dict[str, Any]]] = {}
    for key, entries in raw.items():
        number = _int(int(key)) if isinstance(key, str) and key.strip().isdigit() else _int(key)
        if number is None or not isinstance(entries, list):
            logger.warning("ignoring malformed confirmations of %r in study %r", key, study.study_name)
            continue
        runs: dict[int, dict[str, Any]] = {}
        for entry in entries:
            seed = _int(entry.get("seed")) if isinstance(entry, Mapping) else None
            if seed is None:
                logger.warning("ignoring a confirmation of trial %d without a seed: %r", number, entry)
                continue
            runs[seed] = {
                **entry,
                "seed": seed,
                "best_val_loss": _float(entry.get("best_val_loss")),
                "best_step": _int(entry.get("best_step")),
            }
        if runs:
            out[number] = [runs[s] for s in sorted(runs)]
    return out


def trial_verdicts(study: optuna.Study) -> list[TrialVerdict]:
    """Every trial's verdict and reasons, in trial-number order (all states)."""
    return _verdicts(_trials(study), study_thresholds(study))


def parameter_importances(study: optuna.Study) -> dict[str, float]:
    """Optuna's fANOVA importances (seeded) of the parameters that varied, summing to 1.

    Returns ``{}`` with fewer than two COMPLETE trials or when no parameter varied.
    """
    return _importances(study, _trials(study))


def overfitting_rates(study: optuna.Study) -> OverfittingRates:
    """Overfitting rate of the diagnosed finished trials by freeze depth and learning-rate decade."""
    trials = _trials(study)
    return _rates(trials, _verdicts(trials, study_thresholds(study)))


def compute_saved(study: optuna.Study) -> ComputeSaved:
    """Steps spent by the finished trials against the steps full runs would have taken."""
    return _compute(_trials(study))


def recommend(study: optuna.Study, *, noise: float | None = None) -> Recommendation:
    """The best COMPLETE trial whose verdict is not overfitting or unstable, with reasons.

    Args:
        study: The study.
        noise: Relative seed noise in validation loss (default :data:`DEFAULT_SEED_NOISE`);
            candidates closer than this to the winner trigger the ``confirm`` suggestion.

    Raises:
        NoRecommendationError: No COMPLETE trial, or every one overfits or is unstable.
        ValueError: ``noise`` is negative or not finite.
    """
    trials = _trials(study)
    thresholds = study_thresholds(study)
    verdicts = _verdicts(trials, thresholds)
    return _recommend(study, trials, verdicts, _noise(noise), thresholds)


def analyze(
    study: optuna.Study,
    *,
    noise: float | None = None,
    trials: Sequence[FrozenTrial] | None = None,
) -> StudyAnalysis:
    """All of the above from one read of the study; a missing recommendation is not an error.

    ``trials`` is a snapshot of ``study.get_trials()`` to analyse instead of reading the study
    again (so that a caller's other views of a running study agree with the analysis).
    """
    _check_direction(study)
    trials = list(study.get_trials(deepcopy=False) if trials is None else trials)
    thresholds = study_thresholds(study)
    verdicts = _verdicts(trials, thresholds)
    noise = _noise(noise)
    try:
        recommendation = _recommend(study, trials, verdicts, noise, thresholds)
        reason = None
    except NoRecommendationError as e:
        recommendation, reason = None, str(e)
    return StudyAnalysis(
        study_name=study.study_name,
        verdicts=verdicts,
        importances=_importances(study, trials),
        rates=_rates(trials, verdicts),
        compute=_compute(trials),
        recommendation=recommendation,
        no_recommendation=reason,
    )


def learning_rate_band(learning_rate: float) -> str:
    """The decade a learning rate falls in, e.g. ``3e-5`` → ``"1e-5–1e-4"``."""
    low = math.floor(round(math.log10(learning_rate), 9))
    return f"1e{low}–1e{low + 1}"


# --- verdicts ---------------------------------------------------------------------------------------


def _trials(study: optuna.Study) -> list[FrozenTrial]:
    _check_direction(study)
    return study.get_trials(deepcopy=False)


def _check_direction(study: optuna.Study) -> None:
    if len(study.directions) != 1 or study.direction != optuna.study.StudyDirection.MINIMIZE:
        raise ValueError(
            f"study {study.study_name!r} must minimise one objective (the validation loss)"
        )


def _verdicts(trials: Sequence[FrozenTrial], thresholds: DiagnosisThresholds) -> list[TrialVerdict]:
    return [_verdict_of(t, thresholds) for t in sorted(trials, key=lambda t: t.number)]


def _verdict_of(trial: FrozenTrial, thresholds: DiagnosisThresholds) -> TrialVerdict:
    attrs = trial.user_attrs
    verdict = TrialVerdict(
        number=trial.number,
        state=trial.state.name,
        value=_value(trial),
        params=dict(trial.params),
        verdict=UNKNOWN,
        reasons=[],
        best_step=_int(attrs.get("best_step")),
        best_epoch=_float(attrs.get("best_epoch")),
        trainable_share=_float(attrs.get("trainable_share")),
    )
    stored = attrs.get("diagnosis")
    if isinstance(stored, Mapping) and stored.get("verdict") in VERDICTS:
        _apply_diagnosis(verdict, stored, "stored")
    elif isinstance(attrs.get("curve"), list):
        _rediagnose(verdict, attrs["curve"], thresholds)
    else:
        verdict.reasons = [_no_curve_reason(trial.state)]
    if verdict.best_epoch is None and verdict.best_step is not None:
        verdict.best_epoch = _epoch_at(attrs.get("curve"), verdict.best_step)
    return verdict


def _apply_diagnosis(verdict: TrialVerdict, diagnosis: Mapping[str, Any], source: str) -> None:
    verdict.verdict = str(diagnosis["verdict"])
    verdict.reasons = [str(r) for r in diagnosis.get("reasons") or []]
    verdict.overfit_onset_step = _int(diagnosis.get("overfit_onset_step"))
    if verdict.best_step is None:
        verdict.best_step = _int(diagnosis.get("best_step"))
    verdict.source = source


def _rediagnose(verdict: TrialVerdict, curve: list, thresholds: DiagnosisThresholds) -> None:
    share = verdict.trainable_share
    if share is not None and not 0 <= share <= 1:
        share = None
    try:
        diagnosis = diagnose(curve, thresholds=thresholds, trainable_share=share)
    except ValueError as e:
        running = "still running; " if verdict.state == "RUNNING" else ""
        verdict.reasons = [f"{running}its curve could not be diagnosed yet: {e}"]
        return
    _apply_diagnosis(verdict, diagnosis.to_dict(), "recomputed")
    if verdict.state == "RUNNING":
        verdict.reasons.append("provisional: the trial is still running")


def _no_curve_reason(state: TrialState) -> str:
    if state == TrialState.RUNNING:
        return "still running; no learning curve recorded yet"
    if state == TrialState.FAIL:
        return "failed before a learning curve was recorded"
    return "no learning curve was recorded"


def _epoch_at(curve: Any, step: int) -> float | None:
    if not isinstance(curve, list):
        return None
    for record in curve:
        if isinstance(record, Mapping) and record.get("step") == step:
            return _float(record.get("epoch"))
    return None


# --- importances, rates, compute --------------------------------------------------------------------


def _complete(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    return [t for t in trials if t.state == TrialState.COMPLETE and _value(t) is not None]


def _importances(study: optuna.Study, trials: Sequence[FrozenTrial]) -> dict[str, float]:
    complete = _complete(trials)
    if len(complete) < 2:
        return {}
    common = set.intersection(*(set(t.params) for t in complete))
    varying = sorted(p for p in common if len({repr(t.params[p]) for t in complete}) > 1)
    if not varying:
        return {}
    try:
        importances = optuna.importance.get_param_importances(
            study, evaluator=FanovaImportanceEvaluator(seed=0), params=varying
        )
    except (RuntimeError, ValueError) as e:
        logger.warning("parameter importances are not available: %s", e)
        return {}
    return {k: float(v) for k, v in importances.items()}


def knob_value(trial: FrozenTrial, name: str) -> Any:
    """A trial's searched param ``name``, or else its fixed value from the trial's train config."""
    if name in trial.params:
        return trial.params[name]
    config = trial.user_attrs.get("train_config")
    return config.get(name) if isinstance(config, Mapping) else None


def _rates(trials: Sequence[FrozenTrial], verdicts: Sequence[TrialVerdict]) -> OverfittingRates:
    by_number = {t.number: t for t in trials}
    depth_rates: dict[int, BandRate] = {}
    lr_rates: dict[tuple[int, str], BandRate] = {}
    for v in verdicts:
        if v.state not in FINISHED or v.verdict not in VERDICTS:
            continue
        trial = by_number[v.number]
        overfit = v.verdict == "overfitting"
        depth = _int(knob_value(trial, FREEZE_DEPTH))
        if depth is not None:
            _count(depth_rates.setdefault(depth, BandRate()), overfit)
        lr = _float(knob_value(trial, LEARNING_RATE))
        if lr is not None and lr > 0:
            key = (math.floor(round(math.log10(lr), 9)), learning_rate_band(lr))
            _count(lr_rates.setdefault(key, BandRate()), overfit)
    return OverfittingRates(
        by_freeze_depth=dict(sorted(depth_rates.items())),
        by_learning_rate={label: rate for (_, label), rate in sorted(lr_rates.items())},
    )


def _count(rate: BandRate, overfit: bool) -> None:
    rate.trials += 1
    rate.overfitting += int(overfit)


def _compute(trials: Sequence[FrozenTrial]) -> ComputeSaved:
    n = steps = planned = 0
    for t in trials:
        spent = _int(t.user_attrs.get("steps"))
        full = _int(t.user_attrs.get("planned_steps"))
        if t.state.name not in FINISHED or spent is None or full is None:
            continue
        n, steps, planned = n + 1, steps + spent, planned + max(full, spent)
    return ComputeSaved(trials=n, steps=steps, planned_steps=planned)


# --- recommendation ---------------------------------------------------------------------------------


def _noise(noise: float | None) -> float:
    if noise is None:
        return DEFAULT_SEED_NOISE
    if isinstance(noise, bool) or not isinstance(noise, numbers.Real) or not 0 <= noise < math.inf:
        raise ValueError(f"noise must be a non-negative relative difference, got {noise!r}")
    return float(noise)


def _recommend(
    study: optuna.Study,
    trials: Sequence[FrozenTrial],
    verdicts: Sequence[TrialVerdict],
    noise: float,
    thresholds: DiagnosisThresholds,
) -> Recommendation:
    name = study.study_name
    by_number = {t.number: t for t in trials}
    ranked = sorted(
        (v for v in verdicts if v.state == "COMPLETE" and v.value is not None),
        key=lambda v: (v.value, v.number),
    )
    trend = _trend_advice(verdicts, trials)
    if not ranked:
        raise NoRecommendationError(_nothing_complete(name, verdicts))
    eligible = [v for v in ranked if v.verdict not in REJECTED]
    if not eligible:
        raise NoRecommendationError(_all_rejected(name, ranked, trend))

    confirmations = _candidate_confirmations(study, by_number, eligible)
    if confirmations:
        return _recommend_confirmed(
            study, by_number, ranked, eligible, confirmations, noise, thresholds, trend, verdicts
        )

    best = eligible[0]
    trial = by_number[best.number]
    close = [v for v in eligible[1:] if v.value - best.value <= noise * abs(best.value)]
    reasons = _reasons(best, trial, ranked, eligible, close, noise, trials, thresholds)
    steps = _next_steps(name, close, trend, verdicts)
    return _recommendation(study, trial, best, reasons, steps, close, noise)


def _recommendation(
    study: optuna.Study,
    trial: FrozenTrial,
    best: TrialVerdict,
    reasons: list[str],
    next_steps: list[str],
    close: Sequence[TrialVerdict],
    noise: float,
    confirmation: Confirmation | None = None,
) -> Recommendation:
    return Recommendation(
        study_name=study.study_name,
        trial_number=best.number,
        params=dict(trial.params),
        train_config=_train_config(study, trial),
        stop_step=best.best_step,
        stop_epoch=best.best_epoch,
        val_loss=float(best.value),
        verdict=best.verdict,
        reasons=reasons,
        next_steps=next_steps,
        within_noise=[v.number for v in close],
        noise=noise,
        mean_val_loss=confirmation.mean if confirmation else None,
        std_val_loss=confirmation.std if confirmation else None,
        n_seeds=confirmation.n if confirmation else 1,
    )


def _candidate_confirmations(
    study: optuna.Study, by_number: Mapping[int, FrozenTrial], eligible: Sequence[TrialVerdict]
) -> dict[int, Confirmation]:
    """The stored confirmation runs of the eligible candidates (none: rank by one run as before)."""
    stored = study_confirmations(study)
    out = {}
    for v in eligible:
        if v.number in stored:
            trial = by_number[v.number]
            seed = _int(trial.user_attrs.get("seed"))
            if seed is None:
                seed = _int(_train_config(study, trial).get("seed"))
            runs = [r for r in stored[v.number] if r["seed"] != seed]  # the original run counts once
            if runs:
                out[v.number] = Confirmation(v.number, float(v.value), seed, runs)
    return out


def _recommend_confirmed(
    study: optuna.Study,
    by_number: Mapping[int, FrozenTrial],
    ranked: Sequence[TrialVerdict],
    eligible: Sequence[TrialVerdict],
    confirmations: Mapping[int, Confirmation],
    noise: float,
    thresholds: DiagnosisThresholds,
    trend: list[str],
    verdicts: Sequence[TrialVerdict],
) -> Recommendation:
    """The recommendation when candidates were re-run with other seeds: rank them by the mean."""
    name = study.study_name
    good = {n: c for n, c in confirmations.items() if not c.failed_seeds}
    failed = {n: c for n, c in confirmations.items() if c.failed_seeds}
    if good:
        # an unconfirmed candidate competes only if no confirmed one beat it on one seed already
        lowest = min(v.value for v in eligible if v.number in confirmations)
        pool = [v for v in eligible if v.number in good or (v.number not in confirmations and v.value < lowest)]
    else:
        pool = [v for v in eligible if v.number not in failed]
    if not pool:
        listed = ", ".join(f"trial {n} (seed {c.failed_seeds[0]})" for n, c in sorted(failed.items()))
        raise NoRecommendationError(
            f"study {name!r}: every candidate that could be recommended gave no finite validation loss "
            f"with another seed ({listed}); it is unstable: lower the learning rate or add warm-up steps."
        )

    def score(v: TrialVerdict) -> float:
        return good[v.number].mean if v.number in good else v.value

    best = min(pool, key=lambda v: (score(v), v.value, v.number))
    target = score(best)
    close = sorted(
        (
            v for v in eligible
            if v.number != best.number and v.number not in failed and score(v) - target <= noise * abs(target)
        ),
        key=lambda v: (score(v), v.number),
    )
    trial = by_number[best.number]
    conf = good.get(best.number)

    reasons = [_confirmed_first_sentence(best, conf, good, bool(failed))]
    leader = eligible[0]
    if leader.number != best.number and leader.number in good:
        lc = good[leader.number]
        reasons.append(
            f"Trial {leader.number} had the lowest single-run validation loss ({leader.value:.4f}) but its "
            f"mean is {lc.describe()}, {_diff(lc.mean, target)} worse than trial {best.number}'s."
        )
    elif leader.number != best.number and leader.number not in confirmations:
        reasons.append(
            f"Trial {leader.number} had the lowest single-run validation loss ({leader.value:.4f}) but was "
            f"not confirmed with other seeds, and trial {best.number}'s mean ({target:.4f}) is lower."
        )
    for number, c in sorted(good.items(), key=lambda item: (item[1].mean, item[0])):
        if number in (best.number, leader.number):
            continue
        reasons.append(
            f"Trial {number} was confirmed too: {c.describe()} (original run {c.original:.4f}), "
            f"{_diff(c.mean, target)} worse."
        )
    for number, c in sorted(failed.items()):
        seeds = ", ".join(str(s) for s in c.failed_seeds)
        reasons.append(
            f"Trial {number} (original run {c.original:.4f}) was not chosen because its run with seed "
            f"{seeds} gave no finite validation loss: it is unstable with another seed."
        )
    reasons.append(_verdict_sentence(best))
    reasons.extend(_skipped_sentences(best, ranked))
    if close:
        listed = ", ".join(
            f"trial {v.number} ({good[v.number].describe()})" if v.number in good else f"trial {v.number} "
            f"({v.value:.4f}, one seed)"
            for v in close
        )
        what = "mean" if conf else "value"
        reasons.append(
            f"{_plural(len(close), 'candidate')} within the {noise:.0%} seed noise of its {what}: {listed}."
        )
    reasons.append(_stop_sentence(best))
    if conf:
        steps = [f"{r['best_step']} (seed {r['seed']})" for r in conf.runs if r["best_step"] is not None]
        if steps:
            reasons.append(f"Its confirmation runs were best at step {', '.join(steps)}.")
    share = _share_sentence(trial, best, thresholds.max_trainable_share)
    if share:
        reasons.append(share)

    steps = _confirmed_next_steps(name, best, close, eligible, confirmations)
    steps.extend(_next_steps(name, [], trend, verdicts))
    return _recommendation(study, trial, best, reasons, steps, close, noise, conf)


def _confirmed_first_sentence(
    best: TrialVerdict,
    conf: Confirmation | None,
    good: Mapping[int, Confirmation],
    any_failed: bool,
) -> str:
    if conf is None:
        if good:
            return (
                f"Trial {best.number} (validation loss {best.value:.4f}, one seed) has a lower validation "
                f"loss than the original run of every candidate confirmed with other seeds, and a lower "
                f"one than their means; it has not been confirmed with other seeds itself."
            )
        return (
            f"Trial {best.number} has the lowest validation loss ({best.value:.4f}, one seed) of the "
            f"candidates whose confirmation runs did not fail."
        )
    runs = ", ".join(
        f"seed {r['seed']}: {r['best_val_loss']:.4f}" for r in conf.runs if r["best_val_loss"] is not None
    )
    seed = f" with seed {conf.original_seed}" if conf.original_seed is not None else ""
    detail = f"(original run {conf.original:.4f}{seed}; {runs})"
    if len(good) > 1:
        return (
            f"Trial {best.number} has the lowest mean best validation loss of the {len(good)} candidates "
            f"confirmed with other seeds: {conf.describe()} {detail}."
        )
    only = (
        "the only confirmed candidate whose runs with other seeds all gave a finite loss"
        if any_failed
        else "the only candidate confirmed with other seeds"
    )
    return f"Trial {best.number} has a mean best validation loss of {conf.describe()} {detail}; it is {only}."


def _confirmed_next_steps(
    name: str,
    best: TrialVerdict,
    close: Sequence[TrialVerdict],
    eligible: Sequence[TrialVerdict],
    confirmations: Mapping[int, Confirmation],
) -> list[str]:
    rank = {v.number: i + 1 for i, v in enumerate(eligible)}
    seeds = max((len(c.runs) for c in confirmations.values()), default=0) or 3
    unconfirmed = [v.number for v in (best, *close) if v.number not in confirmations]
    if unconfirmed:
        top = max(rank[n] for n in unconfirmed)
        listed = ", ".join(str(n) for n in unconfirmed)
        return [
            f"Confirm with other seeds: xtts-tune confirm --study {name} --top {top} --seeds {seeds} "
            f"(trial {listed} {'is' if len(unconfirmed) == 1 else 'are'} not confirmed yet; "
            "runs already stored are skipped)."
        ]
    if close:
        top = max(rank[v.number] for v in (best, *close))
        return [
            f"Their means are within the seed noise; tell them apart with more seeds: xtts-tune confirm "
            f"--study {name} --top {top} --seeds {seeds + 2} (runs already stored are skipped)."
        ]
    return []


def _nothing_complete(name: str, verdicts: Sequence[TrialVerdict]) -> str:
    states = Counter(v.state.lower() for v in verdicts)
    seen = ", ".join(f"{n} {s}" for s, n in sorted(states.items())) or "no trials"
    return (
        f"study {name!r} has no completed trial to recommend yet ({seen}); "
        f"run more trials: xtts-tune search --study {name}"
    )


def _all_rejected(name: str, ranked: Sequence[TrialVerdict], trend: list[str]) -> str:
    counts = Counter(v.verdict for v in ranked)
    parts = ", ".join(f"{counts[k]} {k}" for k in sorted(counts))
    message = (
        f"study {name!r}: none of its {len(ranked)} completed trials can be recommended, "
        f"because every one is overfitting or unstable ({parts})."
    )
    if trend:
        message += " " + " ".join(trend)
    return message


def _reasons(
    best: TrialVerdict,
    trial: FrozenTrial,
    ranked: Sequence[TrialVerdict],
    eligible: Sequence[TrialVerdict],
    close: Sequence[TrialVerdict],
    noise: float,
    trials: Sequence[FrozenTrial],
    thresholds: DiagnosisThresholds,
) -> list[str]:
    if len(ranked) == 1:
        first = f"Trial {best.number} (validation loss {best.value:.4f}) is the study's only completed trial."
    elif len(eligible) == 1:
        first = (
            f"Trial {best.number} (validation loss {best.value:.4f}) is the only one of the "
            f"{len(ranked)} completed trials that neither overfit nor was unstable."
        )
    else:
        first = (
            f"Trial {best.number} has the lowest validation loss ({best.value:.4f}) of the "
            f"{len(eligible)} completed trials that neither overfit nor were unstable "
            f"(out of {len(ranked)} completed)."
        )
    reasons = [first]
    reasons.append(_verdict_sentence(best))
    reasons.extend(_skipped_sentences(best, ranked))
    reasons.extend(_comparison_sentences(best, eligible, ranked, trials))
    if close:
        listed = ", ".join(f"trial {v.number} ({v.value:.4f})" for v in close)
        reasons.append(
            f"{_plural(len(close), 'candidate')} within the {noise:.0%} seed noise of it: "
            f"{listed}; one seed cannot tell them apart."
        )
    reasons.append(_stop_sentence(best))
    share = _share_sentence(trial, best, thresholds.max_trainable_share)
    if share:
        reasons.append(share)
    return reasons


def _verdict_sentence(best: TrialVerdict) -> str:
    if best.verdict == UNKNOWN:
        return "Its curve has no verdict (none was recorded), so check its curve in the report."
    detail = f": {best.reasons[0]}" if best.reasons else ""
    return f"Its verdict is {best.verdict}{detail}."


def _skipped_sentences(best: TrialVerdict, ranked: Sequence[TrialVerdict]) -> list[str]:
    lower = [v for v in ranked if v.value < best.value and v.verdict in REJECTED]
    sentences = [
        f"Trial {v.number} had a lower validation loss ({v.value:.4f}) but was not chosen "
        f"because it was {v.verdict}."
        for v in lower[:3]
    ]
    if len(lower) > 3:
        sentences.append(f"{len(lower) - 3} more trials with lower losses were skipped for the same reasons.")
    return sentences


def _comparison_sentences(
    best: TrialVerdict,
    eligible: Sequence[TrialVerdict],
    ranked: Sequence[TrialVerdict],
    trials: Sequence[FrozenTrial],
) -> list[str]:
    if len(eligible) < 2:
        return []
    runner = eligible[1]
    sentences = [
        f"It beat the runner-up, trial {runner.number} ({runner.verdict}, {runner.value:.4f}), "
        f"by {_diff(runner.value, best.value)}."
    ]
    start = _enqueued_start(trials)
    if start is not None and start.number not in (best.number, runner.number):
        match = [v for v in ranked if v.number == start.number]
        if match:
            what = (
                "the guide's recommended configuration"
                if start.user_attrs.get("enqueued") == "guide"
                else "the enqueued starting configuration"
            )
            sentences.append(
                f"It beat trial {start.number}, {what} ({match[0].value:.4f}), "
                f"by {_diff(match[0].value, best.value)}."
            )
    if len(ranked) >= 3:
        median = statistics.median(v.value for v in ranked)
        sentences.append(
            f"It beat the median completed trial ({median:.4f}) by {_diff(median, best.value)}."
        )
    return sentences


def _enqueued_start(trials: Sequence[FrozenTrial]) -> FrozenTrial | None:
    """The guide's enqueued config (the study marks it ``enqueued: guide``), else the first enqueued."""
    complete = [t for t in sorted(trials, key=lambda t: t.number) if t.state == TrialState.COMPLETE]
    for t in complete:
        if t.user_attrs.get("enqueued") == "guide":
            return t
    for t in complete:
        if t.user_attrs.get("enqueued") or t.system_attrs.get("fixed_params"):
            return t
    return None


def _stop_sentence(best: TrialVerdict) -> str:
    if best.best_step is None:
        return "Its best step was not recorded; train it with early stopping on the validation loss."
    epoch = f" (epoch {best.best_epoch:.2f})" if best.best_epoch is not None else ""
    sentence = f"Stop training at step {best.best_step}{epoch}, where its validation loss was lowest"
    if best.overfit_onset_step is not None:
        sentence += f"; from step {best.overfit_onset_step} it rose beyond the tolerance"
    return sentence + "."


def _share_sentence(trial: FrozenTrial, best: TrialVerdict, limit: float) -> str | None:
    share = best.trainable_share
    if share is None:
        return None
    trainable = _int(trial.user_attrs.get("trainable_params"))
    total = _int(trial.user_attrs.get("total_params"))
    counts = f" ({trainable:,} of {total:,})" if trainable is not None and total else ""
    if share > limit:
        return (
            f"It trains {share:.1%} of the model's parameters{counts}, above the guide's "
            f"{limit:.0%}; freezing more layers would be safer on a small dataset."
        )
    return f"It trains {share:.1%} of the model's parameters{counts}, under the guide's {limit:.0%}."


def _next_steps(
    name: str,
    close: Sequence[TrialVerdict],
    trend: list[str],
    verdicts: Sequence[TrialVerdict],
) -> list[str]:
    steps: list[str] = []
    if close:
        top = max(3, len(close) + 1)
        steps.append(
            f"Confirm with other seeds: xtts-tune confirm --study {name} --top {top} --seeds 3 "
            "(re-runs the top candidates with new seeds and recommends by the mean)."
        )
    steps.extend(trend)
    running = sum(v.state == "RUNNING" for v in verdicts)
    if running:
        steps.append(
            f"{_plural(running, 'trial')} still running; rebuild the report when the study ends."
        )
    steps.append(f"Export it: xtts-tune export --study {name} --out studies/{name}-best.yaml")
    return steps


def _trend_advice(verdicts: Sequence[TrialVerdict], trials: Sequence[FrozenTrial]) -> list[str]:
    diagnosed = [v for v in verdicts if v.state in FINISHED and v.verdict in VERDICTS]
    if not diagnosed:
        return []
    counts = Counter(v.verdict for v in diagnosed)
    n = len(diagnosed)
    lr = _space(trials, LEARNING_RATE)
    depth = _space(trials, FREEZE_DEPTH)
    advice = []
    if counts["overfitting"] / n > MAJORITY:
        advice.append(
            f"{counts['overfitting']} of {n} finished trials ({counts['overfitting'] / n:.0%}) overfit: "
            f"lower the learning-rate range{_lr_hint(lr, 0.1)} or freeze more layers "
            f"(raise freeze_depth low bound{_depth_hint(depth, raise_low=True)})."
        )
    if counts["underfitting"] / n > MAJORITY:
        advice.append(
            f"{counts['underfitting']} of {n} finished trials ({counts['underfitting'] / n:.0%}) "
            f"underfit: raise the learning-rate range{_lr_hint(lr, 10.0)} or unfreeze more layers "
            f"(lower freeze_depth high bound{_depth_hint(depth, raise_low=False)}); "
            "also check the dataset's quality."
        )
    if counts["unstable"] / n > MAJORITY:
        advice.append(
            f"{counts['unstable']} of {n} finished trials ({counts['unstable'] / n:.0%}) are "
            f"unstable: lower the learning-rate range's upper bound{_lr_hint(lr, None)} or add warm-up steps."
        )
    return advice


def _space(trials: Sequence[FrozenTrial], name: str) -> tuple[float, float] | None:
    for t in sorted(trials, key=lambda t: t.number, reverse=True):
        dist = t.distributions.get(name)
        if isinstance(dist, (FloatDistribution, IntDistribution)):
            return dist.low, dist.high
    return None


def _lr_hint(space: tuple[float, float] | None, factor: float | None) -> str:
    if space is None:
        return ""
    low, high = space
    if factor is None:
        return f" (now {high:.0e})"
    return f" (now {low:.0e}–{high:.0e}; try {low * factor:.0e}–{high * factor:.0e})"


def _depth_hint(space: tuple[float, float] | None, *, raise_low: bool) -> str:
    if space is None:
        return ""
    low, high = int(space[0]), int(space[1])
    middle = (low + high + 1) // 2
    if raise_low:
        return f" from {low} to about {middle}" if middle > low else f" (now {low})"
    return f" from {high} to about {middle}" if middle < high else f" (now {high})"


def _train_config(study: optuna.Study, trial: FrozenTrial) -> dict[str, Any]:
    config = trial.user_attrs.get("train_config")
    if not isinstance(config, Mapping):
        study_config = study.user_attrs.get("config")
        config = study_config.get("train") if isinstance(study_config, Mapping) else None
    merged = dict(config) if isinstance(config, Mapping) else {}
    merged.update({k: v for k, v in trial.params.items() if k in _TRAIN_FIELDS})
    return merged


# --- small helpers ----------------------------------------------------------------------------------


def _value(trial: FrozenTrial) -> float | None:
    values = trial.values
    if not values or values[0] is None:
        return None
    value = float(values[0])
    return value if math.isfinite(value) else None


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    if not math.isfinite(value) or not float(value).is_integer():
        return None
    return int(value)


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    return float(value) if math.isfinite(value) else None


def _diff(worse: float, better: float) -> str:
    delta = worse - better
    relative = f" ({delta / abs(worse):.1%})" if worse else ""
    return f"{delta:.4f}{relative}"


def _plural(n: int, noun: str) -> str:
    verb = "is" if n == 1 else "are"
    return f"{n} {noun}{'' if n == 1 else 's'} {verb}"


def _json_safe(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
