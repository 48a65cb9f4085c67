"""The one ranking of a study's trials: who is recommended, who is runner-up, which checkpoints are kept.

The search summary, checkpoint retention, the report, the dashboard's study note and the export all call
:func:`rank`, so they can never name different "best" trials.

Rules:

- **Candidates** are complete trials (COMPLETE, or pruned at their planned last step) with a finite value
  whose verdict is not unstable or inconclusive, and that do not *sound worse* than the base model
  (:mod:`xtts_tune.analysis.ranking.sound`: clearly less intelligible, or babbling past the end of the text). An
  overfitting trial competes: early stopping kept its best checkpoint, before the rise, and on unseen clips
  excluding such trials never improved the pick (docs/verdicts.md); the recommendation then warns and names
  the step to stop at.
- **Full data only.** Only trials trained on the whole train split are candidates; a cheap rung of
  ``search.fidelity`` is ranked apart (``fidelity=``), only to choose what moves up (:mod:`xtts_tune.search.fidelity`).
- **Near-ties.** Candidates within ``noise`` (relative) of the lowest validation loss cannot be told apart
  by one seed. Among them the one whose speaker similarity beats every other's by more than its own noise
  wins (by ear, when the base has a decoder); otherwise those that forget more than the least-forgetting
  one beyond the noise drop out (loss on other voices: :mod:`xtts_tune.analysis.ranking.forgetting`), and
  the one that trains the smallest share of the parameters (the guide's rule: freeze as much as works on a
  small dataset), then the lower loss, wins among the rest.
- The **order** is the winner, then every other candidate by validation loss; after the candidates, every
  other finished trial by validation loss (what retention keeps after the candidates).

>>> from xtts_tune.analysis.examples import example_study
>>> ranking = rank(example_study())
>>> ranking.winner.number, ranking.runner_up.number, [v.number for v in ranking.passed_over]
(1, 0, [2])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import optuna
from optuna.trial import FrozenTrial

from xtts_tune.analysis.curve.thresholds import DiagnosisThresholds, study_thresholds
from xtts_tune.analysis.ranking.forgetting import forgets_less, forgetting_tiebreak, percent
from xtts_tune.analysis.ranking.sound import similarity_tiebreak
from xtts_tune.analysis.ranking.verdicts import REJECTED, TrialVerdict, verdicts_of
from xtts_tune.analysis.records import FINISHED, study_trials
from xtts_tune.record import FULL_DATA, StudyRecord

DEFAULT_SEED_NOISE = 0.01
"""Relative difference in validation loss below which two trials are within seed noise. Measured on the real
hour (``make bench-valnoise``, docs/search.md): two seeds of one configuration differ by 0.2-2.0 % (RMS 1.0 %),
while which 100-300 clips validate adds only 0.2-0.4 % to a difference, so the band is the seed noise and
does not shrink with more validation clips."""


@dataclass
class Ranking:
    """The study's trials in recommendation order (see the module docstring)."""

    verdicts: list[TrialVerdict]
    candidates: list[TrialVerdict]
    """Eligible trials, winner first."""
    ties: list[TrialVerdict] = field(default_factory=list)
    """Candidates within the seed noise of the lowest loss, other than the winner."""
    passed_over: list[TrialVerdict] = field(default_factory=list)
    """Finished trials with a lower loss than the winner's that are not it (why: their verdict, state or a
    near-tie lost on trainable share)."""
    noise: float = DEFAULT_SEED_NOISE
    tiebreak: str | None = None
    """Why the winner won a near-tie by ear (higher speaker similarity beyond the noise), or which near-ties
    forgot more beyond the noise and were set aside, when that decided."""

    @property
    def winner(self) -> TrialVerdict | None:
        return self.candidates[0] if self.candidates else None

    @property
    def runner_up(self) -> TrialVerdict | None:
        return self.candidates[1] if len(self.candidates) > 1 else None

    def order(self) -> list[int]:
        """Trial numbers: the candidates in order, then the other finished trials by validation loss."""
        chosen = {v.number for v in self.candidates}
        rest = sorted(
            (v for v in self.verdicts if v.number not in chosen and v.state in FINISHED and v.value is not None),
            key=lambda v: (v.value, v.number),
        )
        return [v.number for v in self.candidates] + [v.number for v in rest]


def rank(
    study: optuna.Study,
    *,
    noise: float = DEFAULT_SEED_NOISE,
    trials: Sequence[FrozenTrial] | None = None,
    thresholds: DiagnosisThresholds | None = None,
    fidelity: float = FULL_DATA,
) -> Ranking:
    """Rank the study's trials (``trials``: a snapshot to use instead of reading the study again) that trained
    on ``fidelity`` of the train split (:attr:`TrialVerdict.fidelity`; full data unless a rung is asked for)."""
    trials = study_trials(study) if trials is None else list(trials)
    base_probes = StudyRecord.from_study(study).probes_base
    verdicts = verdicts_of(trials, thresholds or study_thresholds(study), base_probes=base_probes)
    return rank_verdicts(verdicts, noise, fidelity)


def rank_verdicts(
    verdicts: Sequence[TrialVerdict], noise: float = DEFAULT_SEED_NOISE, fidelity: float = FULL_DATA
) -> Ranking:
    """:func:`rank` on verdicts already computed."""
    eligible = sorted(
        (
            v
            for v in verdicts
            if v.complete
            and v.fidelity == fidelity
            and v.value is not None
            and v.verdict not in REJECTED
            and not (v.sound is not None and v.sound.sounds_worse)
        ),
        key=lambda v: (v.value, v.number),
    )
    if not eligible:
        return Ranking(list(verdicts), [], noise=noise)
    lowest = eligible[0].value
    pool = [v for v in eligible if v.value - lowest <= noise * abs(lowest)]
    by_ear = similarity_tiebreak(pool, {v.number: v.sound for v in pool if v.sound is not None})
    if by_ear is not None:
        winner, tiebreak = by_ear
    else:  # measured forgetting first, then the guide's proxy for it (the ranking.forgetting docstring says why)
        rest, tiebreak = forgetting_tiebreak(pool)
        winner = min(rest, key=lambda v: (_share(v), v.value, v.number))
    candidates = [winner] + [v for v in eligible if v is not winner]
    ties = [v for v in pool if v is not winner]
    passed = sorted(
        (
            v
            for v in verdicts
            if v is not winner
            and v.state in FINISHED
            and v.value is not None
            and v.value < winner.value
            and v.fidelity == fidelity
        ),
        key=lambda v: (v.value, v.number),
    )
    return Ranking(list(verdicts), candidates, ties, passed, noise, tiebreak)


def why_passed_over(v: TrialVerdict, winner: TrialVerdict) -> str:
    """One sentence: why a trial with a lower validation loss than the winner is not recommended."""
    if v.fidelity != winner.fidelity:
        return f"trial {v.number} ({v.value:.4f}) trained on {v.fidelity:.0%} of the clips, a cheap rung of search.fidelity"
    if v.verdict in REJECTED:
        return f"trial {v.number} ({v.value:.4f}) was {v.verdict}: {v.reasons[0] if v.reasons else ''}".rstrip(": ")
    if v.sound is not None and v.sound.sounds_worse:
        return f"trial {v.number} ({v.value:.4f}) sounds worse: {v.sound.reasons[0]}"
    if not v.complete:
        return f"trial {v.number} ({v.value:.4f}) was pruned before the end of its budget"
    if (
        v.sound is not None
        and winner.sound is not None
        and v.sound.similarity is not None
        and (winner.sound.similarity or 0) > v.sound.similarity
    ):
        return (
            f"trial {v.number} ({v.value:.4f}) is within the seed noise of trial {winner.number} "
            f"({winner.value:.4f}), which sounds more like the target (speaker similarity "
            f"{winner.sound.similarity:.2f} vs {v.sound.similarity:.2f})"
        )
    if v.forgetting is not None and winner.forgetting is not None and forgets_less(winner.forgetting, v.forgetting):
        return (
            f"trial {v.number} ({v.value:.4f}) is within the seed noise of trial {winner.number} ({winner.value:.4f}) "
            f"and forgot more of what the base knew (loss on other voices {percent(v.forgetting.change)} against "
            f"{percent(winner.forgetting.change)}, beyond the noise)"
        )
    return (
        f"trial {v.number} ({v.value:.4f}) is within the seed noise of trial {winner.number} ({winner.value:.4f}) "
        f"and trains more of the model ({_share(v):.1%} against {_share(winner):.1%}); the guide prefers fewer"
    )


def _share(v: TrialVerdict) -> float:
    return v.trainable_share if v.trainable_share is not None else 1.0
