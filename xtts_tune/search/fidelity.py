"""Successive halving over the training data (``search.fidelity``, issue 29): many trials on a nested share of
the train split, the best of them again on more of it, the best few on all of it; one study.

On the real hour, 25 % of the train clips ranked 8 configurations as the full data did (Spearman 0.98, the
full-data best in the cheap top 3: docs/search.md), so a trial's cost can be cut by the share it trains on::

    search:
      fidelity: {rungs: [0.25, 1.0], promote: 3}

How ``TRIALS`` counts: each worker runs its ``TRIALS`` trials on the first rung (the sampler's and the queued
start's, as without rungs). Then each higher rung re-runs the params of the best trials of the rung below,
by validation loss among those the ranking could pick (:func:`xtts_tune.analysis.ranking.order.rank` at that
fidelity: not unstable, inconclusive or sounding worse): the top third (at least ``promote``) at an
intermediate rung, the best ``promote`` at the last, full-data rung. ``TRIALS=20`` with ``[0.25, 1.0]`` is 20
trials at 25 % and 3 at 100 %: (20 × 0.25 + 3) / 20 = 40 % of twenty full trials. Run again, the rungs count
the whole study: a trial among a rung's best that has not yet run above it moves up, one already there does
not run twice (nor do the same params).

A trial's share is its ``fidelity`` attribute (:class:`xtts_tune.record.TrialRecord`); it trains on
:func:`xtts_tune.data.split.nested_train_subset` of the split (validation and test unchanged) for the same
epochs, and a ``train.max_steps`` limit is scaled by the share too, so its cost is the share's. Only
full-data trials are ranked, recommended, exported and scored on the unseen clips.

No correction of the promoted params for the data size: on the real hour the best configuration was the same
at 25 %, 50 % and 100 % of the clips (freeze 4, learning rate 2.2e-3), so there was no shift to correct for.

>>> fid = FidelitySettings.parse({"rungs": [0.125, 0.5, 1.0], "promote": 3}, "s.yaml")
>>> fid.planned(20)   # trials per rung
[20, 7, 3]
>>> FidelitySettings.parse({"rungs": [0.5, 0.25]}, "s.yaml")
Traceback (most recent call last):
...
xtts_tune.errors.ConfigError: s.yaml: search.fidelity.rungs must rise and end at 1.0 (the full train split, where trials are ranked), got [0.5, 0.25]; e.g. rungs: [0.25, 1.0]
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from xtts_tune.analysis.ranking.order import rank
from xtts_tune.config import ConfigError, TrainConfig, coerce, unknown_key
from xtts_tune.record import FULL_DATA, TrialRecord, write_trial

KEYS = ("rungs", "promote")
REDUCTION = 3
"""An intermediate rung keeps the top third of the rung below (successive halving's usual factor)."""
EXAMPLE = "e.g. rungs: [0.25, 1.0]"
MEASURED_CLIPS = 233
"""The first rung's clips where a cheap rung was measured to rank as the full data does (25 % of the real
hour's 932 train clips); at 25 % of the 100-clip speaker's 60 (15 clips) the full-data best was missed."""


@dataclass(frozen=True)
class FidelitySettings:
    """The validated ``search.fidelity`` section: the rungs (rising shares of the train split, ending at 1.0)
    and how many trials train on the full split."""

    rungs: tuple[float, ...]
    promote: int = 3

    @classmethod
    def parse(cls, raw: Any, where: str) -> FidelitySettings | None:
        """The section, checked once (one line naming ``where`` and the fix); None when it is left out."""
        if raw is None or raw == {}:
            return None
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: search.fidelity must be a mapping like {{rungs: [0.25, 1.0], promote: 3}}")
        for key in raw:
            if key not in KEYS:
                raise unknown_key(str(key), list(KEYS), where, "search.fidelity")
        rungs = raw.get("rungs")
        if not isinstance(rungs, list) or len(rungs) < 2:
            raise ConfigError(
                f"{where}: search.fidelity.rungs must list at least two shares of the train split, got {rungs!r}; "
                f"{EXAMPLE} (leave search.fidelity out for a search on the full data only)"
            )
        shares = tuple(coerce(r, float, "search.fidelity.rungs", where) for r in rungs)
        for share in shares:
            if not 0 < share <= 1:
                raise ConfigError(
                    f"{where}: search.fidelity.rungs: {share:g} is not a share of the train split in (0, 1]; {EXAMPLE}"
                )
        if list(shares) != sorted(set(shares)) or shares[-1] != FULL_DATA:
            raise ConfigError(
                f"{where}: search.fidelity.rungs must rise and end at 1.0 (the full train split, where trials are "
                f"ranked), got {list(shares)}; {EXAMPLE}"
            )
        promote = coerce(raw.get("promote", cls.promote), int, "search.fidelity.promote", where)
        if promote < 1:
            raise ConfigError(
                f"{where}: search.fidelity.promote must be >= 1 (trials trained on all the clips), got {promote}"
            )
        return cls(shares, promote)

    def moving_up(self, rung: int, finished: int) -> int:
        """How many of the ``finished`` trials of rung ``rung`` (0: the first) train on the next rung.

        >>> fid = FidelitySettings((0.25, 1.0), promote=3)
        >>> fid.moving_up(0, 20), fid.moving_up(0, 2)
        (3, 2)
        """
        last = rung + 1 == len(self.rungs) - 1
        wanted = self.promote if last else max(self.promote, math.ceil(finished / REDUCTION))
        return min(finished, wanted)

    def planned(self, n_trials: int) -> list[int]:
        """Trials per rung when ``n_trials`` run on the first one (a study's first run)."""
        counts = [n_trials]
        for rung in range(len(self.rungs) - 1):
            counts.append(self.moving_up(rung, counts[-1]))
        return counts

    def cost(self, n_trials: int) -> float:
        """The planned compute in full trials (``sum(count × share)``).

        >>> FidelitySettings((0.25, 1.0), promote=3).cost(20)
        8.0
        """
        return sum(n * share for n, share in zip(self.planned(n_trials), self.rungs, strict=True))


def trial_fraction(trial: optuna.Trial, fidelity: FidelitySettings | None) -> float | None:
    """The share of the train split a starting trial trains on: its stored ``fidelity`` (a promoted trial, a
    re-run), else the first rung (written on it), else None (no rungs: all the clips, nothing stored)."""
    stored = TrialRecord.from_attrs(trial.user_attrs).fidelity  # a running trial: user attributes only
    if stored is not None or fidelity is None:
        return stored
    write_trial(trial, fidelity=fidelity.rungs[0])
    return fidelity.rungs[0]


def rung_train(train: TrainConfig, fraction: float | None) -> TrainConfig:
    """``train`` for a trial on ``fraction`` of the clips: a ``max_steps`` limit scaled by it (the epochs are
    the same), so that a cheap trial costs its share of a full one, and ``eval_every`` scaled with it, so that
    it is evaluated as often as a full trial (with fewer evaluations its verdict would be inconclusive, and an
    inconclusive trial is never promoted).

    >>> rung_train(TrainConfig(max_steps=40), 0.25).max_steps, rung_train(TrainConfig(max_steps=0), 0.25).max_steps
    (10, 0)
    >>> rung_train(TrainConfig(eval_every=53), 0.25).eval_every, rung_train(TrainConfig(eval_every=53), 1.0).eval_every
    (14, 53)
    """
    if fraction is None or fraction >= FULL_DATA:
        return train
    steps = max(1, math.ceil(train.max_steps * fraction)) if train.max_steps else 0
    return dataclasses.replace(train, max_steps=steps, eval_every=max(1, math.ceil(train.eval_every * fraction)))


class RungData:
    """The study's prepared data on each rung: the same clips, features and caches, with the train split cut to
    :func:`xtts_tune.data.split.nested_train_subset` (made once per share and reused by the worker's trials)."""

    def __init__(self, data):
        self.data = data
        self._at: dict[float, Any] = {FULL_DATA: data}

    def at(self, fraction: float | None):
        fraction = FULL_DATA if fraction is None else fraction
        if fraction not in self._at:
            from xtts_tune.data.split import nested_train_subset

            self._at[fraction] = dataclasses.replace(self.data, split=nested_train_subset(self.data.split, fraction))
        return self._at[fraction]


def promotions(
    study: optuna.Study, trials: Sequence[FrozenTrial], fidelity: FidelitySettings, rung: int
) -> list[FrozenTrial]:
    """The trials of rung ``rung`` that move up to the next one now: its best :meth:`~FidelitySettings.moving_up`
    by validation loss among the ranking's candidates at its share, less those already run above it (by
    ``promoted_from``, or the same params)."""
    here, up = fidelity.rungs[rung], fidelity.rungs[rung + 1]
    records = {t.number: TrialRecord.from_trial(t) for t in trials}
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    count = fidelity.moving_up(rung, sum(records[t.number].data_fraction == here for t in finished))
    candidates = rank(study, trials=trials, fidelity=here).candidates
    best = sorted(candidates, key=lambda v: (v.value, v.number))[:count]
    above = [t for t in trials if records[t.number].fidelity == up]
    moved = {records[t.number].promoted_from for t in above}
    by_number = {t.number: t for t in trials}
    return [
        by_number[v.number]
        for v in best
        if v.number not in moved and all(t.params != by_number[v.number].params for t in above)
    ]


def promotion_attrs(source: FrozenTrial, fraction: float) -> dict[str, Any]:
    """The user attributes of ``source``'s params queued on the rung of ``fraction`` (its ``enqueued`` mark kept,
    so that a promoted guide's recipe is still the guide's)."""
    return TrialRecord(
        fidelity=fraction, promoted_from=source.number, enqueued=TrialRecord.from_trial(source).enqueued
    ).to_attrs()


def run_rungs(
    study: optuna.Study,
    fidelity: FidelitySettings,
    optimize: Callable[[int], None],
    emit: Callable[[dict], None] | None = None,
) -> list[int]:
    """After a worker's first-rung trials: each higher rung in turn, its promotions queued and run through
    ``optimize(n)`` (the search's own ``study.optimize``). Returns the numbers of the trials queued."""
    queued: list[int] = []
    for rung in range(len(fidelity.rungs) - 1):
        up = fidelity.rungs[rung + 1]
        chosen = promotions(study, study.get_trials(deepcopy=False), fidelity, rung)
        for t in chosen:
            study.enqueue_trial(t.params, user_attrs=promotion_attrs(t, up))
        queued += [t.number for t in chosen]
        waiting = [
            t
            for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
            if TrialRecord.from_trial(t).fidelity == up
        ]
        if not waiting:
            continue
        if emit is not None and chosen:
            names = ", ".join(str(t.number) for t in chosen)
            emit(
                {
                    "event": "message",
                    "text": f"rung {rung + 2} of {len(fidelity.rungs)}: trials {names} train again on {100 * up:g} % of the clips",
                }
            )
        optimize(len(waiting))
    return queued


def plan_line(fidelity: FidelitySettings, n_trials: int, train_clips: int) -> str:
    """One line before the first trial: the rungs this run plans, in trials and clips, and their cost.

    >>> print(plan_line(FidelitySettings((0.25, 1.0), 3), 20, 932))
    rungs: 20 trials on 25 % of the train clips (233), then 3 on 100 % (932): the compute of 8.0 full trials, 40 % of 20
    """
    parts = []
    for i, (n, share) in enumerate(zip(fidelity.planned(n_trials), fidelity.rungs, strict=True)):
        clips = max(1, round(share * train_clips))
        parts.append(
            f"{n} trials on {100 * share:g} % of the train clips ({clips})"
            if i == 0
            else f"{n} on {100 * share:g} % ({clips})"
        )
    cost = fidelity.cost(n_trials)
    share = f", {100 * cost / n_trials:.0f} % of {n_trials}" if n_trials else ""
    line = f"rungs: {', then '.join(parts)}: the compute of {cost:.1f} full trials{share}"
    if round(fidelity.rungs[0] * train_clips) < MEASURED_CLIPS:
        line += (
            f"; measured to rank as the full data does with {MEASURED_CLIPS} clips on the first rung, "
            "not with 15 (docs/search.md): with so few, raise the first rung"
        )
    return line
