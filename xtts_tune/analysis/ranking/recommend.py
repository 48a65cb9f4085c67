"""The recommended trial: the rules that pick it (see the package docstring) and its reasons."""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from xtts_tune.analysis.curve.thresholds import DiagnosisThresholds, study_thresholds
from xtts_tune.analysis.evidence.confirmations import Confirmation, candidate_confirmations
from xtts_tune.analysis.location import non_default_storage
from xtts_tune.analysis.ranking import explain
from xtts_tune.analysis.ranking.advice import trend_advice
from xtts_tune.analysis.ranking.forgetting import forgetting_reasons
from xtts_tune.analysis.ranking.order import DEFAULT_SEED_NOISE, rank_verdicts
from xtts_tune.analysis.ranking.sound import sound_sentence
from xtts_tune.analysis.ranking.verdicts import TrialVerdict, verdicts_of
from xtts_tune.analysis.records import study_trials, train_config
from xtts_tune.errors import UserError
from xtts_tune.io import json_safe
from xtts_tune.record import FULL_DATA, ForgettingSet, StudyRecord


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
        return json_safe(dataclasses.asdict(self))


class NoRecommendationError(UserError):
    """No trial qualifies for a recommendation; the message says why and what to do."""


def recommend(study: optuna.Study, *, noise: float | None = None) -> Recommendation:
    """The best COMPLETE trial whose verdict is not overfitting or unstable, with reasons.

    Args:
        study: The study.
        noise: Relative seed noise in validation loss (default :data:`DEFAULT_SEED_NOISE`);
            candidates closer than this to the winner trigger the ``confirm`` suggestion.

    Raises:
        NoRecommendationError: No COMPLETE trial, or every one overfits or is unstable.
        ValueError: ``noise`` is negative or not finite.

    >>> from xtts_tune.analysis.examples import example_study
    >>> rec = recommend(example_study())
    >>> rec.trial_number, rec.verdict, rec.stop_step
    (1, 'healthy', 40)
    """
    trials = study_trials(study)
    thresholds = study_thresholds(study)
    verdicts = verdicts_of(trials, thresholds, base_probes=StudyRecord.from_study(study).probes_base)
    return best_recommendation(study, trials, verdicts, seed_noise(noise), thresholds)


def seed_noise(noise: float | None) -> float:
    if noise is None:
        return DEFAULT_SEED_NOISE
    if isinstance(noise, bool) or not isinstance(noise, numbers.Real) or not 0 <= noise < math.inf:
        raise ValueError(f"noise must be a non-negative relative difference, got {noise!r}")
    return float(noise)


def best_recommendation(
    study: optuna.Study,
    trials: Sequence[FrozenTrial],
    verdicts: Sequence[TrialVerdict],
    noise: float,
    thresholds: DiagnosisThresholds,
) -> Recommendation:
    name = study.study_name
    by_number = {t.number: t for t in trials}
    full = (v for v in verdicts if v.complete and v.value is not None and v.fidelity == FULL_DATA)
    ranked = sorted(full, key=lambda v: (v.value, v.number))
    trend = trend_advice(verdicts, trials)
    if not ranked:
        raise NoRecommendationError(explain.nothing_complete(name, verdicts))
    ranking = rank_verdicts(verdicts, noise)
    if not ranking.candidates:
        raise NoRecommendationError(explain.all_rejected(name, ranked, trend))

    eligible = sorted(ranking.candidates, key=lambda v: (v.value, v.number))
    confirmations = candidate_confirmations(study, by_number, eligible)
    if confirmations:
        return _recommend_confirmed(
            study, by_number, ranked, eligible, confirmations, noise, thresholds, trend, verdicts
        )

    best = ranking.winner
    trial = by_number[best.number]
    close = ranking.ties
    reasons = explain.reasons(
        best, trial, ranked, ranking.candidates, close, noise, trials, thresholds, train_config(study, trial)
    )
    reasons += sound_reasons(study, best, ranking.tiebreak)
    reasons += forgetting_reasons(best, ranking.candidates, ForgettingSet.from_study(study))
    steps = explain.next_steps(name, close, trend, verdicts, best.number, non_default_storage(study))
    return _recommendation(study, trial, best, reasons, steps, close, noise)


def sound_reasons(study: optuna.Study, best: TrialVerdict, tiebreak: str | None) -> list[str]:
    """How the recommended trial sounds (beside the base and the target's clips), its divergence warning,
    and the near-tie it won by ear (empty without probe figures)."""
    record = StudyRecord.from_study(study)
    out = [tiebreak] if tiebreak else []
    sentence = sound_sentence(best.sound, record.probes_base, record.probes_ceiling)
    if sentence:
        out.append(sentence)
    if best.sound is not None and best.sound.diverges:
        out += [r[0].upper() + r[1:] + "." for r in best.sound.reasons]
    return out


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
        train_config=train_config(study, trial),
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
            v
            for v in eligible
            if v.number != best.number and v.number not in failed and score(v) - target <= noise * abs(target)
        ),
        key=lambda v: (score(v), v.number),
    )
    trial = by_number[best.number]
    conf = good.get(best.number)
    for v in eligible:  # a confirmed candidate's forgetting: the mean over its seeds (search.confirm scores them)
        if v.number in good:
            v.forgetting = good[v.number].forgetting(v.forgetting)

    reasons = [explain.confirmed_first_sentence(best, conf, good, bool(failed))]
    leader = eligible[0]
    if leader.number != best.number and leader.number in good:
        lc = good[leader.number]
        reasons.append(
            f"Trial {leader.number} had the lowest single-run validation loss ({leader.value:.4f}) but its "
            f"mean is {lc.describe()}, {explain.diff(lc.mean, target)} worse than trial {best.number}'s."
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
            f"{explain.diff(c.mean, target)} worse."
        )
    for number, c in sorted(failed.items()):
        seeds = ", ".join(str(s) for s in c.failed_seeds)
        reasons.append(
            f"Trial {number} (original run {c.original:.4f}) was not chosen because its run with seed "
            f"{seeds} gave no finite validation loss: it is unstable with another seed."
        )
    reasons.append(explain.verdict_sentence(best))
    reasons.extend(explain.skipped_sentences(best, ranked))
    if close:
        listed = ", ".join(
            f"trial {v.number} ({good[v.number].describe()})"
            if v.number in good
            else f"trial {v.number} ({v.value:.4f}, one seed)"
            for v in close
        )
        what = "mean" if conf else "value"
        reasons.append(
            f"{explain.plural(len(close), 'candidate')} within the {noise:.0%} seed noise of its {what}: {listed}."
        )
    reasons.append(explain.stop_sentence(best))
    if conf:
        steps = [f"{r['best_step']} (seed {r['seed']})" for r in conf.runs if r["best_step"] is not None]
        if steps:
            reasons.append(f"Its confirmation runs were best at step {', '.join(steps)}.")
    share = explain.share_sentence(trial, best, thresholds.max_trainable_share)
    if share:
        reasons.append(share)
    reasons += forgetting_reasons(best, eligible, ForgettingSet.from_study(study))

    steps = explain.confirmed_next_steps(name, best, close, eligible, confirmations)
    steps.extend(explain.next_steps(name, [], trend, verdicts, storage=non_default_storage(study)))
    return _recommendation(study, trial, best, reasons, steps, close, noise, conf)
