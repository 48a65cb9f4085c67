"""One verdict everywhere: the dashboard's trial notes and ``verdict`` attributes carry the study-level verdict
(:func:`xtts_tune.analysis.ranking.verdicts.verdicts_of`: inconclusive, under-trained), the one the summary, the report
and the export show.

- When a trial ends, its ``verdict`` user attribute is its study-level verdict against the trials finished so
  far (:func:`verdict_at_end`).
- When the search ends, :func:`sync_verdicts` rewrites every finished trial's dashboard note whose verdict
  changed since (a later trial can make an earlier one under-trained), and stores the study-level verdicts in the
  study record's ``verdicts``. Optuna refuses to change a finished trial's user attributes, so a
  trial's own ``verdict`` attribute keeps the value it had when it ended; the note says which verdict holds.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from xtts_tune.analysis.curve.thresholds import DiagnosisThresholds, study_thresholds
from xtts_tune.analysis.ranking.verdicts import TrialVerdict, verdicts_of
from xtts_tune.analysis.records import FINISHED
from xtts_tune.record import TrialRecord, write_study
from xtts_tune.search.notes import trial_note

logger = logging.getLogger(__name__)


def verdict_at_end(trials: Sequence[FrozenTrial], me: FrozenTrial, thresholds: DiagnosisThresholds) -> str | None:
    """``me``'s study-level verdict among ``trials`` (the others finished so far, and ``me`` as it will be
    stored), or ``None`` when it has no curve to judge."""
    verdicts = verdicts_of([*[t for t in trials if t.number != me.number], me], thresholds)
    mine = next((v for v in verdicts if v.number == me.number), None)
    return None if mine is None or mine.verdict == "unknown" else mine.verdict


def note_at_end(
    number: int,
    state: str,
    record: TrialRecord,
    params: dict,
    others: Sequence[FrozenTrial],
    me: FrozenTrial,
    thresholds: DiagnosisThresholds,
) -> str:
    """The dashboard note of a trial that just ended (``me``, as it will be stored), with its study-level
    verdict among ``others``."""
    verdicts = verdicts_of([*[t for t in others if t.number != number], me], thresholds)
    mine = [v for v in verdicts if v.number == number]
    if mine and mine[0].verdict != "unknown" and record.diagnosis:
        record = dataclasses.replace(record, diagnosis=study_level_diagnosis(me, mine[0]))
    return trial_note(number, state, record, params)


def note_of_finished(trial: FrozenTrial, v: TrialVerdict) -> str:
    """A finished trial's dashboard note with its study-level verdict ``v``."""
    record = dataclasses.replace(TrialRecord.from_trial(trial), diagnosis=study_level_diagnosis(trial, v))
    return trial_note(trial.number, trial.state.name, record, trial.params)


def sync_verdicts(study: optuna.Study, note_of=note_of_finished) -> dict[int, str]:
    """Rewrite the dashboard note of every finished trial whose stored verdict differs from its study-level
    one (``note_of(trial, verdict)`` builds the note), store the record's ``verdicts``, return the changed ones.
    A failure to write a note is logged: it never loses a study."""
    trials = study.get_trials(deepcopy=False)
    verdicts = verdicts_of(trials, study_thresholds(study))
    by_number = {t.number: t for t in trials}
    write_study(study, verdicts={str(v.number): v.verdict for v in verdicts if v.state in FINISHED})
    changed = {}
    for v in verdicts:
        trial = by_number[v.number]
        if v.state not in FINISHED or v.verdict == "unknown" or _stored_verdict(trial) == v.verdict:
            continue
        changed[v.number] = v.verdict
        try:
            from optuna_dashboard import save_note

            # save_note reads only these three of a live trial; a finished trial has no public handle on them
            handle = SimpleNamespace(storage=study._storage, study=study, _trial_id=trial._trial_id)
            save_note(handle, note_of(trial, v))
        except Exception as exc:
            logger.warning("trial %d: could not rewrite the dashboard note (%s)", v.number, exc)
    return changed


def study_level_diagnosis(trial: FrozenTrial, v: TrialVerdict) -> dict[str, Any]:
    """The trial's stored diagnosis with the study-level verdict and reasons (what its note shows)."""
    diagnosis = dict(TrialRecord.from_trial(trial).diagnosis or {})
    own = diagnosis.get("verdict")
    reasons = list(v.reasons)
    if own and own != v.verdict:
        reasons.append(
            f"(its own curve alone said {own}; the study-level verdict compares it with the other trials; "
            f"its 'verdict' attribute keeps the value it had when it ended)"
        )
    diagnosis.update(verdict=v.verdict, reasons=reasons)
    return diagnosis


def _stored_verdict(trial: FrozenTrial) -> Any:
    return TrialRecord.from_trial(trial).verdict
