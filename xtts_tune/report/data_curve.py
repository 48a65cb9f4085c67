"""The data curve's figure and page: test loss against training clips, the fitted power law, and its sentence.

:func:`write_data_curve` takes what :func:`xtts_tune.training.data_curve.run_data_curve` measured, fits it
(:mod:`xtts_tune.analysis.data_curve`) and writes, beside ``curve.json``, ``fit.json`` (the fit, its
sentence and the hindsight check) and ``data-curve.html`` (one offline page: plotly.js embedded, no CDN).

>>> import tempfile
>>> doc = {"setup": {"config": "studies/demo.yaml", "train_clips": 64}, "points": [
...     {"fraction": f, "train_clips": int(64 * f), "test_loss": 2 + 3 * (64 * f) ** -0.5, "best_step": 90, "steps": 100}
...     for f in (0.125, 0.25, 0.5, 1)]}
>>> fit, page = write_data_curve(doc, tempfile.mkdtemp())
>>> fit["sentence"], fit["budget_note"], page.name
('twice your data: test loss -4.6 % (±0.0)', None, 'data-curve.html')
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

from xtts_tune.analysis.data_curve import budget_note, fit_points, hindsight, sentence
from xtts_tune.io import atomic_write_json, atomic_write_text, json_safe
from xtts_tune.report.figures import HEIGHT, PLOT_CONFIG

FIT_FILE = "fit.json"
PAGE_FILE = "data-curve.html"
PLOT_ID = "plot-data-curve"


def find_study_curve(study_dir: str | Path | None) -> dict | None:
    """The data curve measured for a study, if any: ``data-curve/curve.json`` in the exported config's
    folder (``<study_dir>-final``, where ``xtts-tune data-curve --config BEST.yaml`` writes it) or the
    study's own. None when there is none (or it cannot be read)."""
    import json

    if not study_dir:
        return None
    study_dir = Path(study_dir)
    for folder in (study_dir.with_name(study_dir.name + "-final"), study_dir):
        path = folder / "data-curve" / "curve.json"
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
    return None


def data_curve_section(doc: dict) -> str:
    """The report's card: the figure (plotly.js is the page's), the sentence and the budget note."""
    note = budget_note(doc["points"])
    body = pio.to_html(
        data_curve_figure(doc), config=PLOT_CONFIG, include_plotlyjs=False, full_html=False, div_id=PLOT_ID,
        validate=False,
    )  # fmt: skip
    caption = (
        "Would more data help? The exported config trained on nested fractions of the train split (the same "
        "optimizer steps each), every best checkpoint scored on the test split, and the power law a + b·n^-c "
        "fitted to them: " + sentence(fit_points(doc["points"])) + (f". Note: {note}" if note else "")
    )
    return f'<section class="card"><h2>Data curve</h2><p class="caption">{html.escape(caption)}</p>{body}</section>'


def data_curve_figure(doc: dict) -> go.Figure:
    """Measured test losses (markers), the fitted curve out to twice the largest run (dashed past it)."""
    points = sorted(doc["points"], key=lambda p: p["train_clips"])
    fit = fit_points(points)
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[p["train_clips"] for p in points],
            y=[p["test_loss"] for p in points],
            mode="markers",
            name="test loss (best checkpoint)",
            marker={"size": 10},
            text=[f"{100 * p['fraction']:g} % of the train split" for p in points],
        )
    )
    if fit.ok:
        n_max = max(fit.n)
        seen = np.geomspace(min(fit.n), n_max, 60)
        ahead = np.geomspace(n_max, 2 * n_max, 20)
        fig.add_trace(go.Scatter(x=seen, y=fit.predict(seen), mode="lines", name="fit: a + b·n^-c"))
        fig.add_trace(
            go.Scatter(x=ahead, y=fit.predict(ahead), mode="lines", line={"dash": "dash"}, name="twice the data")
        )
    fig.update_layout(
        title=sentence(fit),
        xaxis={"title": "training clips", "type": "log"},
        yaxis={"title": "test loss"},
        height=HEIGHT,
        template="plotly_white",
    )
    return fig


def write_data_curve(doc: dict, folder: str | Path) -> tuple[dict, Path]:
    """Write ``fit.json`` and ``data-curve.html`` into ``folder``; return the fit (as ``fit.json`` holds it)
    and the page's path."""
    folder = Path(folder)
    fit = fit_points(doc["points"]).to_dict()
    fit["hindsight"] = hindsight(doc["points"])
    fit["budget_note"] = budget_note(doc["points"])
    atomic_write_json(folder / FIT_FILE, json_safe(fit))
    body = pio.to_html(
        data_curve_figure(doc), config=PLOT_CONFIG, include_plotlyjs=True, full_html=False, validate=False
    )
    title = f"xtts-tune data curve: {html.escape(str(doc.get('setup', {}).get('config', '')))}"
    page = (
        f"<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8><title>{title}</title></head><body>"
        f"<h1>{title}</h1><p>{html.escape(fit['sentence'])}</p>"
        + (f"<p>Note: {html.escape(fit['budget_note'])}</p>" if fit["budget_note"] else "")
        + f"{body}</body></html>\n"
    )
    return fit, atomic_write_text(folder / PAGE_FILE, page)
