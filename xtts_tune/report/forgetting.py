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
from xtts_tune.analysis.ranking.forgetting_ear import language_name
from xtts_tune.analysis.ranking.verdicts import TrialVerdict
from xtts_tune.record import ForgettingSet, TrialRecord

CAPTION = (
    "The loss of each kept trial on clips that are not the target voice, against the base model's on the same "
    "clips: a rise is what the fine-tune forgot. Beyond the noise means more than twice the change's standard "
    "error over the clips and at least 1 %."
)

EAR_CAPTION = (
    "Each kept trial and the base model speak the same sentences in other languages, in a voice that is not "
    "the target's, with the same seed; Whisper hears them in their language. Forgot: the CER rose by more than "
    "10 points and the noise of the few sentences, or the similarity to that voice fell beyond its noise."
)


def forgetting_section(study: optuna.Study, verdicts: Sequence[TrialVerdict], recommended: int | None = None) -> str:
    """``<section id="forgetting">``: one row per scored trial, or a note saying why there is none; then, where
    trials were heard in other languages (a base with a decoder), one row per trial and language."""
    return _card(_loss_table(study, verdicts, recommended) + _ear_table(verdicts, recommended))


def _loss_table(study: optuna.Study, verdicts: Sequence[TrialVerdict], recommended: int | None) -> str:
    fset = ForgettingSet.from_study(study)
    scored = [v for v in verdicts if v.forgetting is not None]
    if fset is None or not scored:
        note = (
            "Forgetting was not measured: a search scores its kept trials on data.forgetting_path (clips of other "
            "voices), or on the embedded base on its own voice's held-out clips."
        )
        return f'<div id="forgetting-note" class="plot-note">{_e(note)}</div>'
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
    return (
        f'<p class="caption">{_e(caption)}</p><table id="forgetting-table" class="trials">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _ear_table(verdicts: Sequence[TrialVerdict], recommended: int | None) -> str:
    heard = [v for v in verdicts if v.forget_ear is not None]
    if not heard:
        return ""
    rows = []
    for v in heard:
        mark = " (recommended)" if v.number == recommended else ""
        for x in v.forget_ear.languages:
            cer = "—" if x.cer is None or x.base_cer is None else f"{100 * x.base_cer:.0f} % → {100 * x.cer:.0f} %"
            sim = (
                "—"
                if x.similarity is None or x.base_similarity is None
                else f"{x.base_similarity:.2f} → {x.similarity:.2f}"
            )
            rows.append(
                f'<tr data-trial="{v.number}" data-language="{_e(x.language)}"><td>trial {v.number}{_e(mark)}</td>'
                f"<td>{_e(language_name(x.language))}</td><td>{_e(cer)}</td><td>{_e(sim)}</td>"
                f"<td>{'forgot' if x.forgot else 'kept'}</td></tr>"
            )
    head = "".join(f"<th>{h}</th>" for h in ("trial", "language", "CER base → trial", "similarity base → trial", ""))
    return (
        f'<h3>By ear</h3><p class="caption">{_e(EAR_CAPTION)}</p><table id="forgetting-ear-table" class="trials">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _card(body: str) -> str:
    return f'<section class="card" id="forgetting"><h2>Forgetting: loss on other voices</h2>{body}</section>'


def _e(text: object) -> str:
    return html.escape(str(text))
