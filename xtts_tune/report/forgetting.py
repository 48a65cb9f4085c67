"""The report's forgetting section: every scored trial's loss on other voices against the base model's
(what :mod:`xtts_tune.search.forgetting` stored, judged by :mod:`xtts_tune.analysis.ranking.forgetting`).
No torch here.

>>> from xtts_tune.analysis.examples import example_study
>>> from xtts_tune.analysis.ranking.verdicts import trial_verdicts
>>> study = example_study()
>>> 'id="forgetting-note"' in forgetting_section(study, trial_verdicts(study))
True
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import optuna

from xtts_tune.analysis.ranking.forgetting import percent
from xtts_tune.analysis.ranking.verdicts import TrialVerdict
from xtts_tune.record import ForgettingSet, TrialRecord

CAPTION = (
    "The loss of each kept trial on clips that are not the target voice, against the base model's on the same "
    "clips: a rise is what the fine-tune forgot. Beyond the noise means more than twice the change's standard "
    "error over the clips and at least 1 %."
)


def forgetting_section(study: optuna.Study, verdicts: Sequence[TrialVerdict], recommended: int | None = None) -> str:
    """``<section id="forgetting">``: one row per scored trial, or a note saying why there is none."""
    fset = ForgettingSet.from_study(study)
    scored = [v for v in verdicts if v.forgetting is not None]
    if fset is None or not scored:
        note = (
            "Forgetting was not measured: a search scores its kept trials on data.forgetting_path (clips of other "
            "voices), or on the embedded base on its own voice's held-out clips."
        )
        return _card(f'<div id="forgetting-note" class="plot-note">{_e(note)}</div>')
    by_number = {t.number: TrialRecord.from_trial(t) for t in study.get_trials(deepcopy=False)}
    rows = []
    for v in sorted(scored, key=lambda v: v.forgetting.change):
        f, rec = v.forgetting, by_number.get(v.number, TrialRecord())
        mark = " (recommended)" if v.number == recommended else ""
        lr, depth = v.params.get("learning_rate"), v.params.get("freeze_depth")
        rows.append(
            f'<tr data-trial="{v.number}"><td>trial {v.number}{_e(mark)}</td>'
            f"<td>{'—' if lr is None else f'{lr:.2g}'}</td><td>{'—' if depth is None else depth}</td>"
            f"<td>{'—' if v.value is None else f'{v.value:.4f}'}</td>"
            f"<td>{'—' if rec.forget_loss is None else f'{rec.forget_loss:.4f}'}</td>"
            f"<td>{_e(percent(f.change))}</td><td>±{100 * f.noise:.1f} %</td>"
            f"<td>{'forgot' if f.beyond_noise else 'within the noise'}</td></tr>"
        )
    base = "—" if fset.base_loss is None else f"{fset.base_loss:.4f}"
    head = "".join(
        f"<th>{h}</th>"
        for h in ("trial", "learning rate", "freeze depth", "val loss", "other voices", "change", "noise", "")
    )
    caption = f"{CAPTION} Set: {fset.source} ({', '.join(fset.languages) or '—'}); base model {base}."
    return _card(
        f'<p class="caption">{_e(caption)}</p><table id="forgetting-table" class="trials">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _card(body: str) -> str:
    return f'<section class="card" id="forgetting"><h2>Forgetting: loss on other voices</h2>{body}</section>'


def _e(text: object) -> str:
    return html.escape(str(text))
