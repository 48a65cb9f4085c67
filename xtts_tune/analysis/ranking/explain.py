"""The recommendation's reasons and next steps, in plain sentences (no judgment is made here)."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Mapping, Sequence

from optuna.trial import FrozenTrial, TrialState

from xtts_tune.analysis.curve.thresholds import DiagnosisThresholds
from xtts_tune.analysis.evidence.confirmations import Confirmation
from xtts_tune.analysis.ranking.forgetting import forgets_less, percent
from xtts_tune.analysis.ranking.verdicts import REJECTED, UNKNOWN, TrialVerdict
from xtts_tune.io import as_int
from xtts_tune.record import TrialRecord, optuna_enqueued


def confirmed_first_sentence(
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
    runs = ", ".join(f"seed {r['seed']}: {r['best_val_loss']:.4f}" for r in conf.runs if r["best_val_loss"] is not None)
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


def confirmed_next_steps(
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


def nothing_complete(name: str, verdicts: Sequence[TrialVerdict]) -> str:
    states = Counter(v.state.lower() for v in verdicts)
    seen = ", ".join(f"{n} {s}" for s, n in sorted(states.items())) or "no trials"
    return (
        f"study {name!r} has no completed trial to recommend yet ({seen}); "
        f"run more trials: xtts-tune search --study {name}"
    )


def all_rejected(name: str, ranked: Sequence[TrialVerdict], trend: list[str]) -> str:
    counts = Counter(v.verdict for v in ranked)
    parts = ", ".join(f"{counts[k]} {k}" for k in sorted(counts))
    message = (
        f"study {name!r}: none of its {len(ranked)} completed trials can be recommended, "
        f"because every one is unstable or inconclusive ({parts})."
    )
    if trend:
        message += " " + " ".join(trend)
    return message


def reasons(
    best: TrialVerdict,
    trial: FrozenTrial,
    ranked: Sequence[TrialVerdict],
    eligible: Sequence[TrialVerdict],
    close: Sequence[TrialVerdict],
    noise: float,
    trials: Sequence[FrozenTrial],
    thresholds: DiagnosisThresholds,
    train: Mapping | None = None,
) -> list[str]:
    """``eligible``: the ranking's candidates, winner first; ``close``: its near-ties."""
    lowest = min(eligible, key=lambda v: (v.value, v.number))
    if lowest.number != best.number and forgot_more(lowest, best):
        first = (
            f"Trial {best.number} (validation loss {best.value:.4f}) is within the {noise:.0%} seed noise of the "
            f"lowest, trial {lowest.number} ({lowest.value:.4f}), which forgot more of what the base knew (loss on "
            f"other voices {percent(lowest.forgetting.change)} against {percent(best.forgetting.change)}, beyond "
            "the noise)."
        )
    elif lowest.number != best.number:
        first = (
            f"Trial {best.number} (validation loss {best.value:.4f}) is within the {noise:.0%} seed noise of the "
            f"lowest, trial {lowest.number} ({lowest.value:.4f}), and trains fewer of the model's parameters "
            f"({_share(best)} against {_share(lowest)}): the guide prefers freezing more on a small dataset."
        )
    elif len(ranked) == 1:
        first = f"Trial {best.number} (validation loss {best.value:.4f}) is the study's only completed trial."
    elif len(eligible) == 1:
        first = (
            f"Trial {best.number} (validation loss {best.value:.4f}) is the only one of the "
            f"{len(ranked)} completed trials that was not {excluded_kinds(ranked)}."
        )
    else:
        first = (
            f"Trial {best.number} has the lowest validation loss ({best.value:.4f}) of the "
            f"{len(eligible)} completed trials that were not {excluded_kinds(ranked)} "
            f"(out of {len(ranked)} completed)."
        )
    reasons = [first]
    reasons.append(verdict_sentence(best))
    reasons.extend(skipped_sentences(best, ranked))
    reasons.extend(comparison_sentences(best, eligible, ranked, trials))
    if close:
        set_aside = [v for v in close if forgot_more(v, best)]
        forgetting_rider = (
            f" of those that did not forget more than it (set aside: trial {', '.join(str(v.number) for v in set_aside)})"
            if set_aside
            else ""
        )
        listed = ", ".join(f"trial {v.number} ({v.value:.4f}, trains {_share(v)})" for v in close)
        reasons.append(
            f"Near-tie: {plural(len(close), 'candidate')} within the {noise:.0%} seed noise: {listed}; one seed "
            f"cannot tell them apart, so trial {best.number} is preferred for training the fewest parameters "
            f"({_share(best)}){forgetting_rider}; xtts-tune confirm decides with more seeds."
        )
    reasons.append(stop_sentence(best, train))
    share = share_sentence(trial, best, thresholds.max_trainable_share)
    if share:
        reasons.append(share)
    return reasons


def forgot_more(v: TrialVerdict, best: TrialVerdict) -> bool:
    """Whether ``v`` forgot more than ``best`` beyond the noise (both scored on the forgetting set)."""
    return v.forgetting is not None and best.forgetting is not None and forgets_less(best.forgetting, v.forgetting)


def excluded_kinds(ranked: Sequence[TrialVerdict]) -> str:
    """The verdicts that excluded trials here (:data:`~xtts_tune.analysis.ranking.verdicts.REJECTED`), in words: an
    inconclusive trial is never called unstable; ``unstable or inconclusive`` when none was excluded.

    >>> from types import SimpleNamespace as T
    >>> excluded_kinds([T(verdict="healthy"), T(verdict="inconclusive")])
    'inconclusive'
    """
    kinds = [k for k in sorted(REJECTED, reverse=True) if any(v.verdict == k for v in ranked)]
    if any(getattr(v, "sound", None) is not None and v.sound.sounds_worse for v in ranked):
        kinds.append("sounding worse than the base model")
    return " or ".join(kinds or sorted(REJECTED, reverse=True))


def verdict_sentence(best: TrialVerdict) -> str:
    if best.verdict == UNKNOWN:
        return "Its curve has no verdict (none was recorded), so check its curve in the report."
    detail = f": {best.reasons[0]}" if best.reasons else ""
    return f"Its verdict is {best.verdict}{detail}."


def skipped_sentences(best: TrialVerdict, ranked: Sequence[TrialVerdict]) -> list[str]:
    lower = [v for v in ranked if v.value < best.value and v.verdict in REJECTED]
    sentences = [
        f"Trial {v.number} had a lower validation loss ({v.value:.4f}) but was not chosen because it was {v.verdict}."
        for v in lower[:3]
    ]
    if len(lower) > 3:
        sentences.append(f"{len(lower) - 3} more trials with lower losses were skipped for the same reasons.")
    return sentences


def comparison_sentences(
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
        f"by {diff(runner.value, best.value)}."
    ]
    start = enqueued_start(trials)
    if start is not None and start.number not in (best.number, runner.number):
        match = [v for v in ranked if v.number == start.number]
        if match:
            what = (
                "the guide's recommended configuration"
                if TrialRecord.from_trial(start).enqueued_by_guide
                else "the enqueued starting configuration"
            )
            sentences.append(
                f"It beat trial {start.number}, {what} ({match[0].value:.4f}), by {diff(match[0].value, best.value)}."
            )
    if len(ranked) >= 3:
        median = statistics.median(v.value for v in ranked)
        sentences.append(f"It beat the median completed trial ({median:.4f}) by {diff(median, best.value)}.")
    return sentences


def enqueued_start(trials: Sequence[FrozenTrial]) -> FrozenTrial | None:
    """The guide's enqueued config (the study marks it ``enqueued: guide``), else the first enqueued."""
    complete = [t for t in sorted(trials, key=lambda t: t.number) if t.state == TrialState.COMPLETE]
    for t in complete:
        if TrialRecord.from_trial(t).enqueued_by_guide:
            return t
    for t in complete:
        if TrialRecord.from_trial(t).enqueued or optuna_enqueued(t):
            return t
    return None


def stop_sentence(best: TrialVerdict, train: Mapping | None = None) -> str:
    if best.best_step is None:
        return "Its best step was not recorded; train it with early stopping on the validation loss."
    epoch = f" (epoch {best.best_epoch:.2f})" if best.best_epoch is not None else ""
    if best.still_improving:
        return (
            f"It was still improving at its last evaluation, step {best.best_step}{epoch}: that is where its "
            f"budget ended, not where it stopped learning. {longer_advice(best, train)}"
        )
    sentence = f"Stop training at step {best.best_step}{epoch}, where its validation loss was lowest"
    if best.verdict == "overfitting" and best.overfit_onset_step is not None:
        sentence += (
            f"; its validation loss rose after it, from step {best.overfit_onset_step} on (overfitting): "
            "the checkpoint kept is from before the rise, so train the final model with early stopping "
            "on the validation loss (train.patience) and keep its best checkpoint"
        )
    elif best.rising_at_end:
        sentence += (
            "; its last evaluation rose above it (1 evaluation, not enough to call a trend): train the "
            "final model with early stopping and keep its best checkpoint"
        )
    return sentence + "."


def longer_advice(best: TrialVerdict, train: Mapping | None) -> str:
    """Concrete numbers for training a still-improving trial longer (early stopping guards the rest)."""
    epochs = as_int((train or {}).get("max_epochs"))
    more = f"max_epochs {epochs} → {2 * epochs}, " if epochs else ""
    return (
        f"More steps may help: try {more}max_steps {2 * best.best_step} "
        f"(xtts-tune train --config ... --set max_steps={2 * best.best_step}); early stopping keeps the best point."
    )


def _share(v: TrialVerdict) -> str:
    return "?" if v.trainable_share is None else f"{v.trainable_share:.1%}"


def share_sentence(trial: FrozenTrial, best: TrialVerdict, limit: float) -> str | None:
    share = best.trainable_share
    if share is None:
        return None
    record = TrialRecord.from_trial(trial)
    trainable, total = record.trainable_params, record.total_params
    counts = f" ({trainable:,} of {total:,})" if trainable is not None and total else ""
    if share > limit:
        return (
            f"It trains {share:.1%} of the model's parameters{counts}, above the guide's "
            f"{limit:.0%}; freezing more layers would be safer on a small dataset."
        )
    return f"It trains {share:.1%} of the model's parameters{counts}, under the guide's {limit:.0%}."


def next_steps(
    name: str,
    close: Sequence[TrialVerdict],
    trend: list[str],
    verdicts: Sequence[TrialVerdict],
    winner_number: int | None = None,
    storage: str | None = None,
) -> list[str]:
    """``storage``: the study's URL when it is not in the project's default database (the export command
    keeps it)."""
    steps: list[str] = []
    if close:
        top = max(3, len(close) + 1)
        steps.append(
            f"Confirm with other seeds: xtts-tune confirm --study {name} --top {top} --seeds 3 "
            "(re-runs the top candidates with new seeds and recommends by the mean)."
        )
    steps.extend(trend)
    winner = next((v for v in verdicts if v.number == winner_number), None)
    if winner is not None and winner.still_improving and winner.best_step:
        steps.append(
            f"Trial {winner.number} was still improving when its budget ended: train longer, e.g. "
            f"xtts-tune train --config studies/{name}-best.yaml --set max_steps={2 * winner.best_step}, "
            "or raise train.max_epochs in the study and search again."
        )
    running = sum(v.state == "RUNNING" for v in verdicts)
    if running:
        steps.append(f"{plural(running, 'trial')} still running; rebuild the report when the study ends.")
    where = f" --storage '{storage}'" if storage else ""
    steps.append(f"Export it: xtts-tune export --study {name}{where} --out studies/{name}-best.yaml")
    return steps


def diff(worse: float, better: float) -> str:
    delta = worse - better
    relative = f" ({delta / abs(worse):.1%})" if worse else ""
    return f"{delta:.4f}{relative}"


def plural(n: int, noun: str) -> str:
    verb = "is" if n == 1 else "are"
    return f"{n} {noun}{'' if n == 1 else 's'} {verb}"
