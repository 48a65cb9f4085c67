"""The report's listening section: each kept trial's samples as embedded ``<audio>`` players (the wav bytes
are inlined, so the report stays one offline file), or one line saying why there are none."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial

from xtts_tune.record import StudyRecord, TrialRecord


def samples_section(study: optuna.Study, trials: Sequence[FrozenTrial], recommended: int | None) -> str:
    """``<section id="samples">``: the recommended trial first, then the other trials with samples."""
    with_samples = [t for t in trials if _playable(t)]
    with_samples.sort(key=lambda t: (t.number != recommended, t.number))
    if not with_samples:
        why = StudyRecord.from_study(study).listening_samples or (
            "no trial has listening samples yet: they are made for the kept trials (search.keep_top_k) when the "
            "base model has a HiFi-GAN decoder"
        )
        return _card(f'<div id="samples-note" class="plot-note">{_e("No listening samples: " + why)}.</div>')
    rows = []
    for t in with_samples:
        mark = " (recommended)" if t.number == recommended else ""
        players = "".join(
            f'<figure class=sample><audio controls preload=none src="data:audio/wav;base64,{_b64(s.path)}">'
            f"</audio><figcaption>{_e(s.text)}</figcaption></figure>"
            for s in TrialRecord.from_trial(t).samples if Path(s.path).is_file()
        )
        rows.append(f'<div class=samples data-trial="{t.number}"><h3>Trial {t.number}{_e(mark)}</h3>{players}</div>')
    return _card("".join(rows))


def _playable(trial: FrozenTrial) -> bool:
    return any(Path(s.path).is_file() for s in TrialRecord.from_trial(trial).samples)


def _card(body: str) -> str:
    return (
        '<section class="card" id="samples"><h2>Listen</h2><p class="caption">Each kept trial\'s best checkpoint '
        "speaks validation texts in the validation speaker's voice (same texts, voice and seed for every trial): "
        "judge the fine-tune by ear, not only by its loss.</p>" + body + "</section>"
    )


def _b64(path: str) -> str:
    return base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)
