"""The report's listening section: each kept trial's samples as embedded ``<audio>`` players (the wav bytes
are inlined, so the report stays one offline file) in a table with how they sound (speaker similarity, CER,
babble flags: :mod:`xtts_tune.probes`), beside the base model and the target's own clips, and a scatter of
validation loss against speaker similarity; or one line saying why there are no samples."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from pathlib import Path

import optuna
import plotly.graph_objects as go
import plotly.io as pio
from optuna.trial import FrozenTrial

from xtts_tune.analysis.ranking.sound import babble_count
from xtts_tune.analysis.ranking.verdicts import TrialVerdict
from xtts_tune.record import StudyRecord, TrialRecord

_HEAD = ("trial", "validation loss", "speaker similarity", "CER", "past the text", "flagged", "samples")


def samples_section(
    study: optuna.Study, trials: Sequence[FrozenTrial], verdicts: Sequence[TrialVerdict], recommended: int | None
) -> str:
    """``<section id="samples">``: the recommended trial first, then the other trials with samples."""
    with_samples = [t for t in trials if _playable(t)]
    with_samples.sort(key=lambda t: (t.number != recommended, t.number))
    record = StudyRecord.from_study(study)
    if not with_samples:
        why = record.listening_samples or (
            "no trial has listening samples yet: they are made for the kept trials (search.keep_top_k) when the "
            "base model has a HiFi-GAN decoder"
        )
        return _card(f'<div id="samples-note" class="plot-note">{_e("No listening samples: " + why)}.</div>')
    values = {v.number: v.value for v in verdicts}
    rows = []
    for t in with_samples:
        mark = " (recommended)" if t.number == recommended else ""
        rec = TrialRecord.from_trial(t)
        players = "".join(
            f'<figure class=sample><audio controls preload=none src="data:audio/wav;base64,{_b64(s.path)}">'
            f"</audio><figcaption>{_e(s.text)}</figcaption></figure>"
            for s in rec.samples
            if Path(s.path).is_file()
        )
        value = values.get(t.number)
        rows.append(
            f'<tr class=samples data-trial="{t.number}"><td>Trial {t.number}{_e(mark)}</td>'
            f"<td>{'—' if value is None else f'{value:.4f}'}</td>{_figures(rec.probes)}"
            f"<td>{players}</td></tr>"
        )
    for name, figures in (
        ("base model", record.probes_base),
        ("the target's own held-out clips", record.probes_ceiling),
    ):
        if figures:
            rows.append(f"<tr class=baseline><td>{_e(name)}</td><td>—</td>{_figures(figures)}<td></td></tr>")
    table = (
        f'<div class=scroll><table id="samples-table" class=trials><thead><tr>'
        f"{''.join(f'<th>{h}</th>' for h in _HEAD)}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )
    return _card(table + _scatter(with_samples, values, record))


def _figures(probes: dict | None) -> str:
    if not probes:
        return "<td>—</td>" * 4
    sim, sd, cer = probes.get("similarity"), probes.get("similarity_sd"), probes.get("cer")
    sim_text = "—" if sim is None else f"{sim:.2f}" + (f" ±{sd:.2f}" if isinstance(sd, float) else "")
    cer_text = "n/a" if cer is None else f"{cer:.0%}"
    return (
        f"<td>{sim_text}</td><td>{cer_text}</td><td>{babble_count(probes)} of {probes.get('n_texts', '?')}</td>"
        f"<td>{probes.get('n_flagged', 0)}</td>"
    )


def _scatter(trials: Sequence[FrozenTrial], values: dict, record: StudyRecord) -> str:
    points = [
        (values.get(t.number), (TrialRecord.from_trial(t).probes or {}).get("similarity"), t.number) for t in trials
    ]
    points = [p for p in points if p[0] is not None and p[1] is not None]
    if not points:
        return ""
    fig = go.Figure(
        go.Scatter(
            x=[p[0] for p in points],
            y=[p[1] for p in points],
            mode="markers+text",
            text=[f"trial {p[2]}" for p in points],
            textposition="top center",
            name="kept trials",
        )
    )
    for name, figures, dash in (
        ("base model", record.probes_base, "dash"),
        ("target's own clips", record.probes_ceiling, "dot"),
    ):
        if figures and figures.get("similarity") is not None:
            fig.add_hline(y=figures["similarity"], line_dash=dash, annotation_text=name)
    fig.update_layout(
        xaxis_title="best validation loss", yaxis_title="speaker similarity to the target", margin={"t": 30}
    )
    caption = (
        "<p class=caption>Lower loss is not always a voice closer to the target: each point is a kept "
        "trial; the lines are the base model and the target's own held-out clips.</p>"
    )
    return caption + pio.to_html(
        fig, include_plotlyjs=False, full_html=False, div_id="plot-sound", default_height="360px", validate=False
    )


def _playable(trial: FrozenTrial) -> bool:
    return any(Path(s.path).is_file() for s in TrialRecord.from_trial(trial).samples)


def _card(body: str) -> str:
    return (
        '<section class="card" id="samples"><h2>Listen</h2><p class="caption">Each kept trial\'s best checkpoint '
        "speaks validation texts, then short ones (where fine-tunes babble), in the validation speaker's voice "
        "(same texts, voice and seed for every trial): judge the fine-tune by ear, not only by its loss. The "
        "probes score them offline: speaker similarity to the target's training clips, the character error "
        "rate of a Whisper transcript (tiny.en for English, base for other languages), and samples that ran past "
        "the end of their text; N texts with "
        "one seed, so differences inside the ± spread are noise.</p>" + body + "</section>"
    )


def _b64(path: str) -> str:
    return base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)
