"""What a fine-tune forgot, judged: a trial's loss on clips that are not the target voice against the base
model's (measured by :mod:`xtts_tune.search.forgetting`, stored as :class:`~xtts_tune.record.TrialRecord`'s
``forget_loss_change`` and ``forget_loss_se``). No torch here.

**The noise**, defined once (:func:`forgetting_noise`): :data:`FORGET_SIGMAS` standard errors of the change,
and never less than :data:`FORGET_MARGIN`. The standard error (:func:`change_se`) is the clips' (from their
paired differences with the base, so a set of many clips measures one run finely) and the seeds' together:
another seed moves a large change by several points, so that part grows with the change (:data:`SEED_SPREAD`). A trial *forgets beyond the noise* when its loss on other voices rose by more
than that; one trial *forgets less* than another when their changes differ by more than the noise of the
difference.

**Near-ties** (:func:`forgetting_tiebreak`, called by :mod:`xtts_tune.analysis.ranking.order`): among the
trials within the seed noise of the lowest validation loss, those that forget more than the one that forgets
least, beyond the noise, drop out; the guide's rule (fewest trained parameters) picks among the rest. It
comes before that rule because the rule is the guide's proxy for the same risk (freeze more, so less of what
the base knew can move): where forgetting was measured, the measurement decides. It comes after the
similarity tie-break (:mod:`xtts_tune.analysis.ranking.sound`), which is about the voice the user asked for.

>>> f = Forgetting(change=0.041, se=0.004)
>>> f.beyond_noise, f.describe()
(True, '+4.1 % (noise ±1.1 %)')
>>> Forgetting(change=0.45, se=0.01).describe()  # at a large change, the seeds dominate
'+45.0 % (noise ±8.3 %)'
>>> Forgetting(change=0.003, se=0.001).beyond_noise
False
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from xtts_tune.analysis.ranking.forgetting_ear import ear_reasons
from xtts_tune.record import ForgettingSet, TrialRecord

FORGET_SIGMAS = 2.0
"""How many standard errors of the change a rise must exceed to count."""

FORGET_MARGIN = 0.01
"""The least change that counts (relative), however finely the clips measured one run."""

SEED_SPREAD = 0.09
"""A change's seed-to-seed standard deviation, as a share of the change: one configuration (lr 1e-3, freeze 2)
over 3 seeds moved +48.6/+45.9/+40.8 % on the demo (sd 8.8 % of the mean) and +74.7/+77.9/+80.1 % on the CC0
speaker (3.5 %); the larger is taken (docs/forgetting.md). The clips' standard error measures one run only."""


def change_se(change: float, se: float) -> float:
    """The standard error of one run's change: the clips' (``se``) and the seeds' (:data:`SEED_SPREAD`)."""
    return math.hypot(se, SEED_SPREAD * abs(change))


def forgetting_noise(se: float) -> float:
    """The noise of a change (or of a difference of changes) with standard error ``se``.

    >>> forgetting_noise(0.001), forgetting_noise(0.02)
    (0.01, 0.04)
    """
    return max(FORGET_MARGIN, FORGET_SIGMAS * se)


@dataclass(frozen=True)
class Forgetting:
    """One trial's loss on other voices against the base model's (relative change and its standard error)."""

    change: float
    se: float
    seed_se: float | None = None
    """The seeds' standard error where several seeds were scored (``xtts-tune confirm``); None: one run, whose
    seed part is :data:`SEED_SPREAD` of the change."""
    seeds: int = 1

    @property
    def total_se(self) -> float:
        """The clips' and the seeds' standard error together (:func:`change_se`)."""
        if self.seed_se is not None:
            return math.hypot(self.se, self.seed_se)
        return change_se(self.change, self.se)

    @property
    def noise(self) -> float:
        return forgetting_noise(self.total_se)

    @property
    def beyond_noise(self) -> bool:
        """It forgot: its loss on other voices rose by more than the noise."""
        return self.change > self.noise

    def describe(self) -> str:
        """``"+4.1 % (noise ±1.1 %)"``; a mean over seeds says how many."""
        over = f", mean of {self.seeds} seeds" if self.seeds > 1 else ""
        return f"{percent(self.change)} (noise ±{100 * self.noise:.1f} %{over})"


def pooled_forgetting(changes: Sequence[tuple[float, float]]) -> Forgetting | None:
    """One candidate's forgetting over several seeds (``(change, clips' se)`` per run, the original first): the
    mean change; the seeds' standard error is their spread over √n, never under :data:`SEED_SPREAD`'s over √n
    (a spread of 2-4 runs is itself rough).

    >>> f = pooled_forgetting([(0.486, 0.011), (0.459, 0.011), (0.408, 0.011)])
    >>> round(f.change, 3), f.seeds, f.describe()
    (0.451, 3, '+45.1 % (noise ±4.9 %, mean of 3 seeds)')
    """
    if not changes:
        return None
    values = [c for c, _ in changes]
    n = len(values)
    mean = statistics.fmean(values)
    spread = max(statistics.stdev(values) if n > 1 else 0.0, SEED_SPREAD * abs(mean))
    clips = math.sqrt(statistics.fmean(se * se for _, se in changes) / n)
    return Forgetting(mean, clips, seed_se=spread / math.sqrt(n), seeds=n)


def judge_forgetting(record: TrialRecord) -> Forgetting | None:
    """A trial's forgetting from its record (None when it was not scored)."""
    if record.forget_loss_change is None:
        return None
    return Forgetting(record.forget_loss_change, record.forget_loss_se or 0.0)


def forgets_less(a: Forgetting, b: Forgetting) -> bool:
    """Whether ``a`` forgets less than ``b`` beyond the noise of their difference.

    >>> forgets_less(Forgetting(0.00, 0.002), Forgetting(0.05, 0.002)), forgets_less(Forgetting(0.00, 0.002), Forgetting(0.008, 0.002))
    (True, False)
    """
    return b.change - a.change > forgetting_noise(math.hypot(a.total_se, b.total_se))


def forgetting_tiebreak(pool: Sequence[Any]) -> tuple[list[Any], str | None]:
    """The near-tied verdicts (``.forgetting``: a :class:`Forgetting` or None) left once those that forget
    more than the least-forgetting one, beyond the noise, are dropped, and the sentence that names the
    dropped ones (None when none was: trials without figures always stay)."""
    judged = [v for v in pool if getattr(v, "forgetting", None) is not None]
    if len(judged) < 2:
        return list(pool), None
    least = min(judged, key=lambda v: (v.forgetting.change, v.number))
    dropped = [v for v in judged if forgets_less(least.forgetting, v.forgetting)]
    if not dropped:
        return list(pool), None
    listed = ", ".join(f"trial {v.number} {percent(v.forgetting.change)}" for v in dropped)
    sentence = (
        f"Among trials within the seed noise of the lowest loss, {listed} forgot more of what the base knew than "
        f"trial {least.number} ({percent(least.forgetting.change)} loss on other voices against the base "
        "model's, beyond the noise), so they were set aside before the guide's fewest-parameters rule."
    )
    return [v for v in pool if v not in dropped], sentence


def forgetting_reasons(best: Any, candidates: Sequence[Any], fset: ForgettingSet | None) -> list[str]:
    """The recommendation's sentences: how much the winner forgot, and every other candidate that forgets
    beyond the noise, by name, by loss and then by ear (:func:`~xtts_tune.analysis.ranking.forgetting_ear.ear_reasons`;
    empty when nothing was scored)."""
    return _loss_reasons(best, candidates, fset) + ear_reasons(best, candidates)


def _loss_reasons(best: Any, candidates: Sequence[Any], fset: ForgettingSet | None) -> list[str]:
    if fset is None or best.forgetting is None:
        return []
    f = best.forgetting
    base = f", base model {fset.base_loss:.4f}" if fset.base_loss is not None else ""
    what = (
        "beyond the noise: it forgot some of what the base knew (freeze more layers or lower the learning "
        "rate if other voices and languages matter)"
        if f.beyond_noise
        else "within the noise"
    )
    out = [f"Forgetting: its loss on other voices ({fset.source}{base}) changed {f.describe()}: {what}."]
    others = [v for v in candidates if v is not best and v.forgetting is not None and v.forgetting.beyond_noise]
    if others:
        listed = ", ".join(f"trial {v.number} {v.forgetting.describe()}" for v in others)
        out.append(f"Other candidates that forget beyond the noise (loss on other voices): {listed}.")
    return out


def forgetting_line(verdicts: Sequence[Any], fset: ForgettingSet | None, *, hint: bool = False) -> str | None:
    """One line for the summary and the dashboard: every scored trial's change, the forgetting ones marked;
    ``hint``: a line saying how to measure it when nothing was scored (a base other than the embedded one).

    >>> from types import SimpleNamespace as V
    >>> fset = ForgettingSet(source="the demo base voice's 45 held-out clips", clips=45, base_loss=3.1)
    >>> print(forgetting_line([V(number=2, forgetting=Forgetting(0.041, 0.004)), V(number=0, forgetting=Forgetting(0.001, 0.001))], fset))
    forgetting: loss on other voices (the demo base voice's 45 held-out clips, base model 3.1000) against the base: trial 2 +4.1 % (beyond the noise ±1.1 %), trial 0 +0.1 %
    """
    scored = [v for v in verdicts if getattr(v, "forgetting", None) is not None]
    if fset is None or not scored:
        if hint and fset is None:
            return "forgetting: not measured; set data.forgetting_path to a folder of other voices to measure it"
        return None
    parts = []
    for v in scored:
        f = v.forgetting
        mark = f" (beyond the noise ±{100 * f.noise:.1f} %)" if f.beyond_noise else ""
        parts.append(f"trial {v.number} {percent(f.change)}{mark}")
    base = f", base model {fset.base_loss:.4f}" if fset.base_loss is not None else ""
    return f"forgetting: loss on other voices ({fset.source}{base}) against the base: " + ", ".join(parts)


def percent(change: float) -> str:
    """``+4.1 %`` / ``−0.3 %``."""
    sign = "+" if change >= 0 else "−"
    return f"{sign}{100 * abs(change):.1f} %"
