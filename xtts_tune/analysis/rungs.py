"""A multi-fidelity study's rungs in words (``search.fidelity``): how many trials ran on each share of the
train split and the optimizer steps they spent, for the search summary, the report and the dashboard's note.

>>> import optuna
>>> from xtts_tune.record import TrialRecord
>>> study = optuna.create_study()
>>> for share, steps in [(0.25, 4), (0.25, 4), (0.25, 3), (1.0, 16)]:
...     user, system = TrialRecord(fidelity=share, steps=steps).split_attrs()
...     study.add_trial(optuna.trial.create_trial(value=3.0, user_attrs=user, system_attrs=system))
>>> rungs_line(study.trials)
'rungs: 3 trials on 25 % of the train clips (11 steps), 1 on 100 % (16 steps); only those on 100 % are ranked'
>>> rungs_line(study.trials[3:]) is None   # a study without rungs
True
"""

from __future__ import annotations

from collections.abc import Sequence

from optuna.trial import FrozenTrial

from xtts_tune.analysis.records import FINISHED
from xtts_tune.record import FULL_DATA, TrialRecord


def rung_counts(trials: Sequence[FrozenTrial]) -> dict[float, tuple[int, int]]:
    """``{share: (finished trials, optimizer steps)}`` over the finished trials, lowest share first."""
    out: dict[float, tuple[int, int]] = {}
    for t in trials:
        if t.state.name not in FINISHED:
            continue
        record = TrialRecord.from_trial(t)
        n, steps = out.get(record.data_fraction, (0, 0))
        out[record.data_fraction] = (n + 1, steps + (record.steps or 0))
    return dict(sorted(out.items()))


def rungs_line(trials: Sequence[FrozenTrial]) -> str | None:
    """One line on the rungs, or None when every trial trained on all the clips (no ``search.fidelity``)."""
    counts = rung_counts(trials)
    if set(counts) <= {FULL_DATA}:
        return None
    parts = []
    for i, (share, (n, steps)) in enumerate(counts.items()):
        what = f"{n} trial{'s' if n != 1 else ''} on" if i == 0 else f"{n} on"
        where = " of the train clips" if i == 0 else ""
        parts.append(f"{what} {100 * share:g} %{where} ({steps:,} steps)")
    if FULL_DATA not in counts:
        return f"rungs: {', '.join(parts)}; none on 100 % yet, so nothing is ranked"
    return f"rungs: {', '.join(parts)}; only those on 100 % are ranked"
