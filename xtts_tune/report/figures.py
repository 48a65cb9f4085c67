"""The report's Plotly figures: curves, optimisation history, intermediate values, importances, parallel
coordinates and the overfitting map. Each returns a figure, or a string saying why it cannot be drawn."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
import plotly.graph_objects as go
from optuna.importance import BaseImportanceEvaluator
from optuna.trial import FrozenTrial, TrialState

from xtts_tune.analysis.ranking.verdicts import (
    INCONCLUSIVE,
    UNDER_TRAINED,
    UNKNOWN,
    TrialVerdict,
)
from xtts_tune.analysis.records import (
    FREEZE_DEPTH,
    LEARNING_RATE,
    knob_value,
)
from xtts_tune.analysis.study_analysis import StudyAnalysis
from xtts_tune.io import finite
from xtts_tune.record import TrialRecord

VERDICT_COLOURS = {
    "healthy": "#2a9d4b",
    "overfitting": "#d62728",
    "underfitting": "#e8890c",
    "unstable": "#8e44ad",
    UNDER_TRAINED: "#2f7fc1",
    INCONCLUSIVE: "#b5b5b5",
    UNKNOWN: "#8c8c8c",
}


PLOT_CONFIG = {"displaylogo": False, "responsive": True, "showSendToCloud": False}


HEIGHT = 460


@dataclass
class _Curve:
    number: int
    verdict: str
    steps: list[int]
    train: list[float | None]
    val: list[float | None]
    best_step: int | None
    onset_step: int | None


def curve_data(trial: FrozenTrial, verdict: TrialVerdict) -> _Curve | None:
    records = TrialRecord.from_trial(trial).curve
    if isinstance(records, list) and records:
        rows = [r for r in records if isinstance(r, Mapping) and finite(r.get("step")) is not None]
        steps = [int(r["step"]) for r in rows]
        train = [finite(r.get("train_loss")) for r in rows]
        val = [finite(r.get("val_loss")) for r in rows]
    elif trial.intermediate_values:
        steps = sorted(trial.intermediate_values)
        train = [None] * len(steps)
        val = [finite(trial.intermediate_values[s]) for s in steps]
    else:
        return None
    return _Curve(trial.number, verdict.verdict, steps, train, val, verdict.best_step, verdict.overfit_onset_step)


def _recommended(analysis: StudyAnalysis) -> int | None:
    return analysis.recommendation.trial_number if analysis.recommendation else None


def all_curves(curves: Sequence[_Curve], analysis: StudyAnalysis) -> go.Figure | str:
    if not curves:
        return "No trial has reported a validation loss yet."
    chosen = _recommended(analysis)
    shown: set[str] = set()
    traces = []
    for c in sorted(curves, key=lambda c: c.number == chosen):
        traces.append(
            {
                "type": "scatter",
                "mode": "lines",
                "x": c.steps,
                "y": c.val,
                "name": c.verdict,
                "legendgroup": c.verdict,
                "showlegend": c.verdict not in shown,
                "line": {"color": VERDICT_COLOURS.get(c.verdict), "width": 4 if c.number == chosen else 1.5},
                "opacity": 1.0 if c.number == chosen else 0.65,
                "hovertemplate": f"trial {c.number} ({c.verdict})<br>step %{{x}}<br>val loss %{{y:.4f}}<extra></extra>",
            }
        )
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
        xref="paper",
        yref="paper",
        x=0,
        y=1.02,
        xanchor="left",
        yanchor="bottom",
        showarrow=False,
        font={"size": 11, "color": "#5a6272"},
    )
    return figure


def _ends(values: Sequence[float | None]) -> list[float]:
    finite = [v for v in values if v is not None]
    return [finite[0], finite[-1]] if finite else []


def trial_curves(curves: Sequence[_Curve], analysis: StudyAnalysis) -> go.Figure | str:
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
        updatemenus=[
            {
                "buttons": buttons,
                "active": first,
                "x": 0.0,
                "xanchor": "left",
                "y": 1.18,
                "yanchor": "top",
                "direction": "down",
            }
        ],
        margin={"t": 80},
    )
    return go.Figure({"data": traces, "layout": layout}, skip_invalid=False)


def _curve_traces(c: _Curve) -> list[dict[str, Any]]:
    colour = VERDICT_COLOURS.get(c.verdict)
    traces = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "x": c.steps,
            "y": c.val,
            "name": "validation",
            "line": {"color": colour, "width": 3},
            "marker": {"size": 5},
            "hovertemplate": "step %{x}<br>validation %{y:.4f}<extra></extra>",
        }
    ]
    if any(v is not None for v in c.train):
        traces.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "x": c.steps,
                "y": c.train,
                "name": "train",
                "line": {"color": colour, "width": 2, "dash": "dash"},
                "opacity": 0.6,
                "marker": {"size": 4},
                "hovertemplate": "step %{x}<br>train %{y:.4f}<extra></extra>",
            }
        )
    best = _value_at(c, c.best_step)
    if best is not None:
        traces.append(
            {
                "type": "scatter",
                "mode": "markers",
                "x": [c.best_step],
                "y": [best],
                "name": "best step",
                "marker": {"symbol": "star", "size": 16, "color": colour, "line": {"color": "#222", "width": 1}},
                "hovertemplate": "best step %{x}<br>validation %{y:.4f}<extra></extra>",
            }
        )
    onset = _value_at(c, c.onset_step)
    if onset is not None:
        traces.append(
            {
                "type": "scatter",
                "mode": "markers",
                "x": [c.onset_step],
                "y": [onset],
                "name": "overfitting onset",
                "marker": {"symbol": "x", "size": 13, "color": VERDICT_COLOURS["overfitting"]},
                "hovertemplate": "overfitting from step %{x}<br>validation %{y:.4f}<extra></extra>",
            }
        )
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
        "type": "line",
        "xref": "x",
        "yref": "paper",
        "x0": x,
        "x1": x,
        "y0": 0,
        "y1": 1,
        "line": {"color": colour, "width": 2, "dash": dash},
        "label": {
            "text": text,
            "textposition": "end",
            "textangle": 0,
            "xanchor": "right",
            "font": {"size": 11, "color": colour},
        },
    }


def _complete(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    return [t for t in trials if t.state == TrialState.COMPLETE]


def history(study: optuna.Study, trials: Sequence[FrozenTrial]) -> go.Figure | str:
    if not _complete(trials):
        return "Needs at least one completed trial."
    return _tidy(optuna.visualization.plot_optimization_history(study))


def intermediate(study: optuna.Study, trials: Sequence[FrozenTrial], curves: Sequence[_Curve]) -> go.Figure | str:
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


def importances(study: optuna.Study, analysis: StudyAnalysis) -> go.Figure | str:
    stats = analysis.importances
    if not stats.values:
        return f"No importances: {stats.note}."
    figure = optuna.visualization.plot_param_importances(
        study, evaluator=_Precomputed(stats.values), params=list(stats.values)
    )
    return _tidy(figure).update_layout(margin={"l": 130})


def parallel(study: optuna.Study, trials: Sequence[FrozenTrial]) -> go.Figure | str:
    complete = [t for t in _complete(trials) if t.params]
    if len(complete) < 2:
        return "Needs at least two completed trials with searched parameters."
    figure = _tidy(optuna.visualization.plot_parallel_coordinate(study))
    # Optuna's default scale fades the worst trials to near-white on a white page; Viridis keeps every line
    # visible (dark blue = low loss, yellow = high)
    figure.update_traces(line={"colorscale": "Viridis", "reversescale": False}, selector={"type": "parcoords"})
    return figure


def _tidy(figure: go.Figure) -> go.Figure:
    figure.update_layout(_layout(title=None))
    return figure


def _layout(**extra: Any) -> dict[str, Any]:
    layout = {
        "template": "plotly_white",
        "height": HEIGHT,
        "margin": {"l": 60, "r": 30, "t": 40, "b": 50},
        "legend": {"orientation": "v"},
        "hovermode": "closest",
    }
    layout.update(extra)
    return layout


def overfit_map(trials: Sequence[FrozenTrial], analysis: StudyAnalysis) -> go.Figure | str:
    points: dict[str, list[tuple[float, int, str]]] = {}
    by_number = {t.number: t for t in trials}
    for v in analysis.verdicts:
        trial = by_number[v.number]
        lr = finite(knob_value(trial, LEARNING_RATE))
        depth = finite(knob_value(trial, FREEZE_DEPTH))
        if lr is None or depth is None or lr <= 0:
            continue
        value = "—" if v.value is None else f"{v.value:.4f}"
        text = f"trial {v.number} ({v.state.lower()})<br>{v.verdict}<br>val loss {value}"
        points.setdefault(v.verdict, []).append((lr, int(depth), text))
    if not points:
        return "Needs trials with a learning rate and a freeze depth."
    traces = [
        {
            "type": "scatter",
            "mode": "markers",
            "name": verdict,
            "x": [p[0] for p in pts],
            "y": [p[1] for p in pts],
            "text": [p[2] for p in pts],
            "marker": {
                "color": VERDICT_COLOURS.get(verdict),
                "size": 12,
                "opacity": 0.85,
                "line": {"color": "white", "width": 1},
            },
            "hovertemplate": "%{text}<br>learning rate %{x:.2e}<br>freeze depth %{y}<extra></extra>",
        }
        for verdict, pts in sorted(points.items(), key=lambda kv: list(VERDICT_COLOURS).index(kv[0]))
    ]
    layout = _layout(
        xaxis={"title": {"text": "learning rate"}, "type": "log", "exponentformat": "power"},
        yaxis={"title": {"text": "freeze depth (frozen GPT blocks)"}, "dtick": 1},
    )
    return go.Figure({"data": traces, "layout": layout}, skip_invalid=False)
