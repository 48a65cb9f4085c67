"""One self-contained, offline HTML report of a study.

:func:`build_report` writes a single file: plotly.js is embedded once (no CDN, no external
URL), every figure is a ``<div>`` with a stable id (:data:`PLOT_IDS`), and the trials table is
sorted by a few lines of inline JavaScript. A figure that needs more trials than the study has
is replaced by a note in a ``<div>`` with the same id. The report works for a study that is
still running and for studies with failed trials.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
import datetime as dt
import html
import logging
import math
import numbers
import os
from pathlib import Path
import time
from typing import Any

import optuna
from optuna.importance import BaseImportanceEvaluator
from optuna.trial import FrozenTrial
from optuna.trial import TrialState
import plotly.graph_objects as go
import plotly.io as pio
import plotly.offline

from xtts_tune.analysis import analyze
from xtts_tune.analysis import FREEZE_DEPTH
from xtts_tune.analysis import knob_value
from xtts_tune.analysis import LEARNING_RATE
from xtts_tune.analysis import StudyAnalysis
from xtts_tune.analysis import TrialVerdict
from xtts_tune.analysis import UNKNOWN


__all__ = ["PLOT_IDS", "VERDICT_COLOURS", "build_report"]

logger = logging.getLogger(__name__)

PLOT_IDS = (
    "plot-curves-all",
    "plot-curves",
    "plot-history",
    "plot-intermediate",
    "plot-importances",
    "plot-parallel",
    "plot-overfit-map",
)
"""The ids of the report's figure ``<div>``s (a note replaces a figure that cannot be drawn)."""

VERDICT_COLOURS = {
    "healthy": "#2a9d4b",
    "overfitting": "#d62728",
    "underfitting": "#e8890c",
    "unstable": "#8e44ad",
    UNKNOWN: "#8c8c8c",
}
_PLOT_CONFIG = {"displaylogo": False, "responsive": True, "showSendToCloud": False}
_HEIGHT = 460


# --- entry point ------------------------------------------------------------------------------------


def build_report(study: optuna.Study, out_path: Path, *, noise: float | None = None) -> Path:
    """Write the study's HTML report to ``out_path`` (atomically) and return the path.

    Args:
        study: The study (it may still be running).
        out_path: The HTML file to write; parent folders are created.
        noise: Relative seed noise for the recommendation (see :func:`xtts_tune.analysis.recommend`).
    """
    started = time.perf_counter()
    out_path = Path(out_path)
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    analysis = analyze(study, noise=noise, trials=trials)
    curves = [c for c in (_curve_data(t, v) for t, v in zip(trials, analysis.verdicts, strict=True)) if c]
    figures = [
        _block("plot-curves-all", "Validation curves of every trial", _all_curves(curves, analysis),
               "Each line is one trial's validation loss, coloured by its verdict; the recommended "
               "trial is drawn thicker."),
        _block("plot-curves", "Train and validation curves, one trial at a time", _trial_curves(curves, analysis),
               "Pick a trial in the menu. The dashed vertical line marks its best step, the dotted "
               "red one the step where overfitting set in."),
        _block("plot-history", "Optimisation history", _history(study, trials),
               "Best validation loss of each completed trial and the best so far."),
        _block("plot-intermediate", "Intermediate values", _intermediate(study, trials, curves),
               "Validation loss reported at each evaluation step, as the pruner saw it."),
        _block("plot-importances", "Parameter importances", _importances(study, analysis),
               "Which knobs drive the best validation loss (fANOVA, completed trials)."),
        _block("plot-parallel", "Parallel coordinates", _parallel(study, trials),
               "Each line is a completed trial through its parameter values to its loss."),
        _block("plot-overfit-map", "Overfitting map", _overfit_map(trials, analysis),
               "Freeze depth against learning rate, coloured by verdict; below, the share of "
               "finished trials that overfit at each freeze depth and learning-rate decade.",
               after=_rates_table(analysis)),
    ]
    page = _page(study, trials, analysis, figures)
    _write(out_path, page)
    logger.info(
        "wrote the report of study %r to %s (%.1f MiB, %.2f s)",
        study.study_name, out_path, len(page.encode()) / 2**20, time.perf_counter() - started,
    )
    return out_path


# --- curves -----------------------------------------------------------------------------------------


@dataclass
class _Curve:
    number: int
    verdict: str
    steps: list[int]
    train: list[float | None]
    val: list[float | None]
    best_step: int | None
    onset_step: int | None


def _curve_data(trial: FrozenTrial, verdict: TrialVerdict) -> _Curve | None:
    records = trial.user_attrs.get("curve")
    if isinstance(records, list) and records:
        rows = [r for r in records if isinstance(r, Mapping) and _num(r.get("step")) is not None]
        steps = [int(r["step"]) for r in rows]
        train = [_num(r.get("train_loss")) for r in rows]
        val = [_num(r.get("val_loss")) for r in rows]
    elif trial.intermediate_values:
        steps = sorted(trial.intermediate_values)
        train = [None] * len(steps)
        val = [_num(trial.intermediate_values[s]) for s in steps]
    else:
        return None
    return _Curve(trial.number, verdict.verdict, steps, train, val, verdict.best_step, verdict.overfit_onset_step)


def _recommended(analysis: StudyAnalysis) -> int | None:
    return analysis.recommendation.trial_number if analysis.recommendation else None


def _all_curves(curves: Sequence[_Curve], analysis: StudyAnalysis) -> go.Figure | str:
    if not curves:
        return "No trial has reported a validation loss yet."
    chosen = _recommended(analysis)
    shown: set[str] = set()
    traces = []
    for c in sorted(curves, key=lambda c: c.number == chosen):
        traces.append({
            "type": "scatter", "mode": "lines", "x": c.steps, "y": c.val,
            "name": c.verdict, "legendgroup": c.verdict, "showlegend": c.verdict not in shown,
            "line": {"color": VERDICT_COLOURS.get(c.verdict), "width": 4 if c.number == chosen else 1.5},
            "opacity": 1.0 if c.number == chosen else 0.65,
            "hovertemplate": f"trial {c.number} ({c.verdict})<br>step %{{x}}<br>val loss %{{y:.4f}}<extra></extra>",
        })
        shown.add(c.verdict)
    layout = _layout(xaxis={"title": {"text": "optimizer step"}}, yaxis={"title": {"text": "validation loss"}})
    figure = go.Figure({"data": traces, "layout": layout}, skip_invalid=False)
    return _clip_spikes(figure, curves)


def _clip_spikes(figure: go.Figure, curves: Sequence[_Curve]) -> go.Figure:
    """Keep loss spikes from flattening every other curve: the y axis stops a little above the
    highest first or last value of any curve, with a note when something is cut off."""
    ends = [v for c in curves for v in _ends(c.val)]
    values = [v for c in curves for v in c.val if v is not None]
    if not ends or max(values) <= max(ends):
        return figure
    low, high = min(values), max(ends)
    pad = 0.05 * (high - low or abs(high) or 1.0)
    figure.update_yaxes(range=[low - pad, high + pad])
    figure.add_annotation(
        text=f"spikes above {high + pad:.3g} are cut off (hover or zoom out to see them)",
        xref="paper", yref="paper", x=0, y=1.02, xanchor="left", yanchor="bottom",
        showarrow=False, font={"size": 11, "color": "#5a6272"},
    )
    return figure


def _ends(values: Sequence[float | None]) -> list[float]:
    finite = [v for v in values if v is not None]
    return [finite[0], finite[-1]] if finite else []


def _trial_curves(curves: Sequence[_Curve], analysis: StudyAnalysis) -> go.Figure | str:
    if not curves:
        return "No trial has reported a validation loss yet."
    chosen = _recommended(analysis)
    first = next((i for i, c in enumerate(curves) if c.number == chosen), 0)
    traces: list[dict[str, Any]] = []
    owner: list[int] = []
    for i, c in enumerate(curves):
        for trace in _curve_traces(c):
            trace["visible"] = i == first
            traces.append(trace)
            owner.append(i)
    buttons = [
        {
            "label": f"trial {c.number}: {c.verdict}",
            "method": "update",
            "args": [
                {"visible": [o == i for o in owner]},
                {"shapes": _markers(c), "xaxis.autorange": True, "yaxis.autorange": True},
            ],
        }
        for i, c in enumerate(curves)
    ]
    layout = _layout(
        shapes=_markers(curves[first]),
        xaxis={"title": {"text": "optimizer step"}},
        yaxis={"title": {"text": "loss"}},
        updatemenus=[{"buttons": buttons, "active": first, "x": 0.0, "xanchor": "left",
                      "y": 1.18, "yanchor": "top", "direction": "down"}],
        margin={"t": 80},
    )
    return go.Figure({"data": traces, "layout": layout}, skip_invalid=False)


def _curve_traces(c: _Curve) -> list[dict[str, Any]]:
    colour = VERDICT_COLOURS.get(c.verdict)
    traces = [{
        "type": "scatter", "mode": "lines+markers", "x": c.steps, "y": c.val, "name": "validation",
        "line": {"color": colour, "width": 3}, "marker": {"size": 5},
        "hovertemplate": "step %{x}<br>validation %{y:.4f}<extra></extra>",
    }]
    if any(v is not None for v in c.train):
        traces.append({
            "type": "scatter", "mode": "lines+markers", "x": c.steps, "y": c.train, "name": "train",
            "line": {"color": colour, "width": 2, "dash": "dash"}, "opacity": 0.6, "marker": {"size": 4},
            "hovertemplate": "step %{x}<br>train %{y:.4f}<extra></extra>",
        })
    best = _value_at(c, c.best_step)
    if best is not None:
        traces.append({
            "type": "scatter", "mode": "markers", "x": [c.best_step], "y": [best], "name": "best step",
            "marker": {"symbol": "star", "size": 16, "color": colour, "line": {"color": "#222", "width": 1}},
            "hovertemplate": "best step %{x}<br>validation %{y:.4f}<extra></extra>",
        })
    onset = _value_at(c, c.onset_step)
    if onset is not None:
        traces.append({
            "type": "scatter", "mode": "markers", "x": [c.onset_step], "y": [onset], "name": "overfitting onset",
            "marker": {"symbol": "x", "size": 13, "color": VERDICT_COLOURS["overfitting"]},
            "hovertemplate": "overfitting from step %{x}<br>validation %{y:.4f}<extra></extra>",
        })
    return traces


def _value_at(c: _Curve, step: int | None) -> float | None:
    if step is None or step not in c.steps:
        return None
    return c.val[c.steps.index(step)]


def _markers(c: _Curve) -> list[dict[str, Any]]:
    shapes = []
    if c.best_step is not None:
        shapes.append(_vline(c.best_step, VERDICT_COLOURS.get(c.verdict, "#444"), "dash", f"best step {c.best_step}"))
    if c.onset_step is not None:
        shapes.append(_vline(c.onset_step, VERDICT_COLOURS["overfitting"], "dot", f"overfitting from {c.onset_step}"))
    return shapes


def _vline(x: int, colour: str, dash: str, text: str) -> dict[str, Any]:
    return {
        "type": "line", "xref": "x", "yref": "paper", "x0": x, "x1": x, "y0": 0, "y1": 1,
        "line": {"color": colour, "width": 2, "dash": dash},
        "label": {"text": text, "textposition": "end", "textangle": 0, "xanchor": "right",
                  "font": {"size": 11, "color": colour}},
    }


# --- Optuna's figures -------------------------------------------------------------------------------


def _complete(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    return [t for t in trials if t.state == TrialState.COMPLETE]


def _history(study: optuna.Study, trials: Sequence[FrozenTrial]) -> go.Figure | str:
    if not _complete(trials):
        return "Needs at least one completed trial."
    return _tidy(optuna.visualization.plot_optimization_history(study))


def _intermediate(
    study: optuna.Study, trials: Sequence[FrozenTrial], curves: Sequence[_Curve]
) -> go.Figure | str:
    if not any(t.intermediate_values for t in trials):
        return "No trial has reported an intermediate value yet."
    figure = _tidy(optuna.visualization.plot_intermediate_values(study))
    return _clip_spikes(figure, curves)


class _Precomputed(BaseImportanceEvaluator):
    """Hands Optuna's plot the importances already computed, so they are not computed twice."""

    def __init__(self, importances: Mapping[str, float]):
        self._importances = dict(importances)

    def evaluate(self, study, params=None, *, target=None) -> dict[str, float]:
        return dict(self._importances)


def _importances(study: optuna.Study, analysis: StudyAnalysis) -> go.Figure | str:
    if not analysis.importances:
        return "Needs at least two completed trials whose parameters differ."
    figure = optuna.visualization.plot_param_importances(
        study, evaluator=_Precomputed(analysis.importances), params=list(analysis.importances)
    )
    return _tidy(figure).update_layout(margin={"l": 130})


def _parallel(study: optuna.Study, trials: Sequence[FrozenTrial]) -> go.Figure | str:
    complete = [t for t in _complete(trials) if t.params]
    if len(complete) < 2:
        return "Needs at least two completed trials with searched parameters."
    return _tidy(optuna.visualization.plot_parallel_coordinate(study))


def _tidy(figure: go.Figure) -> go.Figure:
    figure.update_layout(_layout(title=None))
    return figure


def _layout(**extra: Any) -> dict[str, Any]:
    layout = {
        "template": "plotly_white",
        "height": _HEIGHT,
        "margin": {"l": 60, "r": 30, "t": 40, "b": 50},
        "legend": {"orientation": "v"},
        "hovermode": "closest",
    }
    layout.update(extra)
    return layout


# --- overfitting map --------------------------------------------------------------------------------


def _overfit_map(trials: Sequence[FrozenTrial], analysis: StudyAnalysis) -> go.Figure | str:
    points: dict[str, list[tuple[float, int, str]]] = {}
    by_number = {t.number: t for t in trials}
    for v in analysis.verdicts:
        trial = by_number[v.number]
        lr = _num(knob_value(trial, LEARNING_RATE))
        depth = _num(knob_value(trial, FREEZE_DEPTH))
        if lr is None or depth is None or lr <= 0:
            continue
        value = "—" if v.value is None else f"{v.value:.4f}"
        text = f"trial {v.number} ({v.state.lower()})<br>{v.verdict}<br>val loss {value}"
        points.setdefault(v.verdict, []).append((lr, int(depth), text))
    if not points:
        return "Needs trials with a learning rate and a freeze depth."
    traces = [
        {
            "type": "scatter", "mode": "markers", "name": verdict,
            "x": [p[0] for p in pts], "y": [p[1] for p in pts], "text": [p[2] for p in pts],
            "marker": {"color": VERDICT_COLOURS.get(verdict), "size": 12, "opacity": 0.85,
                       "line": {"color": "white", "width": 1}},
            "hovertemplate": "%{text}<br>learning rate %{x:.2e}<br>freeze depth %{y}<extra></extra>",
        }
        for verdict, pts in sorted(points.items(), key=lambda kv: list(VERDICT_COLOURS).index(kv[0]))
    ]
    layout = _layout(
        xaxis={"title": {"text": "learning rate"}, "type": "log", "exponentformat": "power"},
        yaxis={"title": {"text": "freeze depth (frozen GPT blocks)"}, "dtick": 1},
    )
    return go.Figure({"data": traces, "layout": layout}, skip_invalid=False)


def _rates_table(analysis: StudyAnalysis) -> str:
    rates = analysis.rates
    if not rates.by_freeze_depth and not rates.by_learning_rate:
        return ""
    parts = []
    for title, rows in (("freeze depth", rates.by_freeze_depth), ("learning rate", rates.by_learning_rate)):
        body = "".join(
            f"<tr><td>{_e(k)}</td><td>{r.overfitting} / {r.trials}</td>"
            f"<td><span class=bar style='width:{r.rate * 60:.0f}px'></span> {r.rate:.0%}</td></tr>"
            for k, r in rows.items()
        )
        parts.append(
            f"<table class=rates><thead><tr><th>{title}</th><th>overfit / trials</th>"
            f"<th>rate</th></tr></thead><tbody>{body}</tbody></table>"
        )
    return f"<div class=rates-row>{''.join(parts)}</div>"


# --- page -------------------------------------------------------------------------------------------


def _block(plot_id: str, title: str, content: go.Figure | str, caption: str, *, after: str = "") -> str:
    if isinstance(content, str):
        body = f'<div id="{plot_id}" class="plot-note">{_e(content)}</div>'
    else:
        body = pio.to_html(
            content, config=_PLOT_CONFIG, include_plotlyjs=False, full_html=False,
            div_id=plot_id, default_height=f"{_HEIGHT}px", validate=False,
        )
    return (
        f'<section class="card"><h2>{_e(title)}</h2><p class="caption">{_e(caption)}</p>'
        f"{body}{after}</section>"
    )


def _page(
    study: optuna.Study,
    trials: Sequence[FrozenTrial],
    analysis: StudyAnalysis,
    figures: Sequence[str],
) -> str:
    name = _e(study.study_name)
    return (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width, initial-scale=1'>"
        f"<title>xtts-tune report: {name}</title><style>{_CSS}</style>"
        f"<script>{plotly.offline.get_plotlyjs()}</script></head><body>"
        f"<header><h1>xtts-tune report: {name}</h1>{_subtitle(study, trials)}</header><main>"
        f"{_summary(study, trials, analysis)}"
        + "".join(figures)
        + _trials_table(trials, analysis)
        + f"</main><script>{_SORT_JS}</script></body></html>\n"
    )


def _subtitle(study: optuna.Study, trials: Sequence[FrozenTrial]) -> str:
    version = study.user_attrs.get("xtts_tune_version", "?")
    now = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    running = sum(t.state == TrialState.RUNNING for t in trials)
    note = (
        f"<p class=warn>{running} trial{'s are' if running != 1 else ' is'} still running: "
        "this report is a snapshot.</p>" if running else ""
    )
    return f"<p class=muted>Generated {_e(now)} by xtts-tune {_e(str(version))}.</p>{note}"


def _summary(study: optuna.Study, trials: Sequence[FrozenTrial], analysis: StudyAnalysis) -> str:
    return (
        '<section class="card summary" id="summary"><div class=grid>'
        f"{_recommendation_html(analysis)}{_study_html(study, trials, analysis)}"
        "</div></section>"
    )


def _recommendation_html(analysis: StudyAnalysis) -> str:
    rec = analysis.recommendation
    if rec is None:
        return (
            '<div class="panel" id="recommendation"><h2>No recommendation yet</h2>'
            f"<p>{_e(analysis.no_recommendation or '')}</p></div>"
        )
    params = "".join(f"<tr><th>{_e(k)}</th><td>{_e(_fmt(v))}</td></tr>" for k, v in rec.params.items())
    stop = "—" if rec.stop_step is None else f"step {rec.stop_step}"
    if rec.stop_epoch is not None:
        stop += f" (epoch {rec.stop_epoch:.2f})"
    return (
        '<div class="panel" id="recommendation">'
        f"<h2>Recommended: trial {rec.trial_number} {_badge(rec.verdict)}</h2>"
        f"<p class=big>validation loss <b>{rec.val_loss:.4f}</b> · stop at <b>{_e(stop)}</b></p>"
        f"<table class=kv>{params}</table>"
        f"<h3>Why</h3><ul>{''.join(f'<li>{_e(r)}</li>' for r in rec.reasons)}</ul>"
        f"<h3>Next</h3><ul class=next>{''.join(f'<li>{_e(s)}</li>' for s in rec.next_steps)}</ul>"
        "</div>"
    )


def _study_html(study: optuna.Study, trials: Sequence[FrozenTrial], analysis: StudyAnalysis) -> str:
    config = study.user_attrs.get("config")
    config = config if isinstance(config, Mapping) else {}
    data = config.get("data") if isinstance(config.get("data"), Mapping) else {}
    fingerprint = study.user_attrs.get("fingerprint")
    fingerprint = fingerprint if isinstance(fingerprint, Mapping) else {}
    states = Counter(t.state.name.lower() for t in trials)
    state_text = ", ".join(f"{n} {s}" for s, n in sorted(states.items())) or "none"
    verdicts = " ".join(f"{_badge(v)} {n}" for v, n in analysis.verdict_counts().items()) or "—"
    compute = analysis.compute
    saved = (
        f"{compute.steps:,} of {compute.planned_steps:,} planned optimizer steps spent; "
        f"{compute.saved_steps:,} ({compute.saved_fraction:.1%}) saved by pruning and early stopping"
        if compute.planned_steps else "—"
    )
    rows = [
        ("dataset", _e(str(data.get("path", "—")))),
        ("dataset fingerprint", _e(str(fingerprint.get("dataset", "—"))[:16])),
        ("base model", _e(str(config.get("base_model", "—")))),
        ("trials", f"{len(trials)} ({_e(state_text)})"),
        ("verdicts", verdicts),
        ("compute", _e(saved)),
        ("top knobs", _e(_top_knobs(analysis))),
    ]
    body = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    return f'<div class="panel" id="study-facts"><h2>Study</h2><table class=kv>{body}</table></div>'


def _top_knobs(analysis: StudyAnalysis) -> str:
    ranked = sorted(analysis.importances.items(), key=lambda kv: -kv[1])
    return ", ".join(f"{k} {v:.0%}" for k, v in ranked) or "—"


# --- trials table -----------------------------------------------------------------------------------


def _trials_table(trials: Sequence[FrozenTrial], analysis: StudyAnalysis) -> str:
    names = sorted({k for t in trials for k in t.params})
    heads = ["trial", "state", "verdict", "best val loss", "best step", "best epoch", "onset",
             "steps", "planned", *names, "trainable", "stop reason", "wall s"]
    head = "".join(f'<th scope=col title="sort">{_e(h)}</th>' for h in heads)
    rows = "".join(_trial_row(t, v, names) for t, v in zip(trials, analysis.verdicts, strict=True))
    return (
        '<section class="card"><h2>Trials</h2><p class="caption">Click a column header to sort.</p>'
        '<div class=scroll><table id="trials-table" class="sortable trials" data-sort-initial="3">'
        f"<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div></section>"
    )


def _trial_row(trial: FrozenTrial, verdict: TrialVerdict, names: Sequence[str]) -> str:
    attrs = trial.user_attrs
    share = _num(attrs.get("trainable_share"))
    cells = [
        _cell(trial.number), _cell(trial.state.name.lower()),
        _verdict_cell(verdict),
        _cell(verdict.value, digits=4), _cell(verdict.best_step), _cell(verdict.best_epoch, digits=2),
        _cell(verdict.overfit_onset_step), _cell(_num(attrs.get("steps"))), _cell(_num(attrs.get("planned_steps"))),
        *(_cell(trial.params.get(n)) for n in names),
        _cell(share, shown=None if share is None else f"{share:.1%}"),
        _cell(attrs.get("stop_reason")), _cell(_num(attrs.get("wall_seconds")), digits=1),
    ]
    return f'<tr data-trial="{trial.number}">{"".join(cells)}</tr>'


def _verdict_cell(verdict: TrialVerdict) -> str:
    reasons = _e("; ".join(verdict.reasons))
    return f'<td data-sort="{_e(verdict.verdict)}" title="{reasons}">{_badge(verdict.verdict)}</td>'


def _cell(value: Any, *, digits: int | None = None, shown: str | None = None) -> str:
    if value is None:
        return '<td data-sort="">—</td>'
    if shown is None:
        shown = f"{value:.{digits}f}" if digits is not None and isinstance(value, float) else _fmt(value)
    key = repr(float(value)) if isinstance(value, numbers.Real) and not isinstance(value, bool) else str(value)
    return f'<td data-sort="{_e(key)}">{_e(shown)}</td>'


# --- helpers ----------------------------------------------------------------------------------------


def _badge(verdict: str) -> str:
    colour = VERDICT_COLOURS.get(verdict, VERDICT_COLOURS[UNKNOWN])
    return f'<span class=badge style="background:{colour}">{_e(verdict)}</span>'


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1e-3 and value else f"{value:.4g}"
    return str(value)


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    return float(value) if math.isfinite(value) else None


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#f4f5f7;color:#1d2330}
header{background:#1d2330;color:#fff;padding:18px 32px}header h1{margin:0;font-size:24px}
.muted{color:#b8bfcc;margin:6px 0 0}.warn{background:#fff3cd;color:#664d03;padding:6px 10px;border-radius:4px;display:inline-block}
main{padding:20px 32px;max-width:1500px;margin:0 auto}
.card{background:#fff;border-radius:8px;box-shadow:0 1px 3px rgba(0,0,0,.12);padding:16px 20px;margin:0 0 20px}
.card h2{margin:0 0 4px;font-size:19px}.caption{color:#5a6272;margin:0 0 8px;font-size:14px}
.grid{display:grid;grid-template-columns:3fr 2fr;gap:24px}.panel h3{margin:14px 0 4px;font-size:15px}
.panel ul{margin:0;padding-left:20px;line-height:1.45}.next li{font-family:ui-monospace,Menlo,monospace;font-size:13px}
.big{font-size:17px}.kv th{text-align:left;padding:2px 14px 2px 0;color:#5a6272;font-weight:600;vertical-align:top}
.kv td{padding:2px 0}.badge{color:#fff;border-radius:10px;padding:1px 8px;font-size:12px;font-weight:600}
.plot-note{border:2px dashed #c9ced6;border-radius:6px;padding:40px;text-align:center;color:#5a6272}
.rates-row{display:flex;gap:40px;flex-wrap:wrap;align-items:flex-start;margin-top:10px}
table.rates{border-collapse:collapse;font-size:13px}table.rates td,table.rates th{padding:2px 10px;text-align:left}
.bar{display:inline-block;height:9px;background:#d62728;border-radius:2px;vertical-align:middle}
.scroll{overflow-x:auto}table.trials{border-collapse:collapse;font-size:13px;width:100%}
table.trials th{background:#eef0f4;cursor:pointer;position:sticky;top:0;padding:6px 8px;text-align:left;white-space:nowrap;user-select:none}
table.trials td{padding:4px 8px;border-top:1px solid #eceef2;white-space:nowrap}
table.trials tr:hover td{background:#f7f9fc}
th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
@media (max-width:1000px){.grid{grid-template-columns:1fr}}
"""

_SORT_JS = """
(function () {
  function key(cell) {
    var raw = cell.getAttribute("data-sort");
    if (raw === null) raw = cell.textContent.trim();
    if (raw === "") return null;
    var n = Number(raw);
    return isNaN(n) ? raw.toLowerCase() : n;
  }
  function compare(a, b, dir) {
    if (a === null || b === null) return a === b ? 0 : (a === null ? 1 : -1);
    if (typeof a !== typeof b) { a = String(a); b = String(b); }
    return (a < b ? -1 : a > b ? 1 : 0) * dir;
  }
  function sortBy(table, col, dir) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (r, s) {
      return compare(key(r.cells[col]), key(s.cells[col]), dir) || Number(r.dataset.trial) - Number(s.dataset.trial);
    });
    rows.forEach(function (r) { body.appendChild(r); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
      th.setAttribute("aria-sort", i === col ? (dir > 0 ? "ascending" : "descending") : "none");
    });
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
      th.addEventListener("click", function () {
        sortBy(table, col, th.getAttribute("aria-sort") === "ascending" ? -1 : 1);
      });
    });
    var initial = table.getAttribute("data-sort-initial");
    if (initial !== null) sortBy(table, Number(initial), 1);
  });
})();
"""
