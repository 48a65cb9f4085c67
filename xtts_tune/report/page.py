"""One self-contained, offline HTML report of a study.

:func:`build_report` writes a single file: plotly.js is embedded once (no CDN, no external
URL), every figure is a ``<div>`` with a stable id (:data:`PLOT_IDS`), and the trials table is
sorted by a few lines of inline JavaScript. A figure that needs more trials than the study has
is replaced by a note in a ``<div>`` with the same id. The report works for a study that is
still running and for studies with failed trials.
"""

from __future__ import annotations

import datetime as dt
import html
import logging
import numbers
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna
import plotly.graph_objects
import plotly.io as pio
import plotly.offline
from optuna.trial import FrozenTrial, TrialState

from xtts_tune.analysis.evidence.holdout import describe_test_comparison
from xtts_tune.analysis.ranking.verdicts import UNKNOWN, TrialVerdict
from xtts_tune.analysis.records import stop_reason_words
from xtts_tune.analysis.rungs import rungs_line
from xtts_tune.analysis.statistics import MIN_TRIALS_FOR_IMPORTANCES
from xtts_tune.analysis.study_analysis import StudyAnalysis, analyze
from xtts_tune.io import atomic_write_text, finite
from xtts_tune.record import StudyRecord, TestComparison, TrialRecord
from xtts_tune.report import figures
from xtts_tune.report.data_curve import data_curve_section, find_study_curve
from xtts_tune.report.figures import PLOT_CONFIG, VERDICT_COLOURS
from xtts_tune.report.forgetting import forgetting_section
from xtts_tune.report.samples import samples_section
from xtts_tune.report.style import CSS, SORT_JS
from xtts_tune.stamps import report_stamp

__all__ = ["PLOT_IDS", "build_report"]

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


def build_report(study: optuna.Study, out_path: Path, *, noise: float | None = None) -> Path:
    """Write the study's HTML report to ``out_path`` (atomically) and return the path.

    Args:
        study: The study (it may still be running).
        out_path: The HTML file to write; parent folders are created.
        noise: Relative seed noise for the recommendation (see :func:`xtts_tune.analysis.ranking.recommend`).

    >>> import tempfile
    >>> from xtts_tune.analysis.examples import example_study
    >>> path = build_report(example_study(), f"{tempfile.mkdtemp()}/example-report.html")
    >>> path.name, "plot-overfit-map" in path.read_text()
    ('example-report.html', True)
    """
    started = time.perf_counter()
    out_path = Path(out_path)
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    analysis = analyze(study, noise=noise, trials=trials)
    curves = [c for c in (figures.curve_data(t, v) for t, v in zip(trials, analysis.verdicts, strict=True)) if c]
    blocks = [
        _block(
            "plot-curves-all",
            "Validation curves of every trial",
            figures.all_curves(curves, analysis),
            "Each line is one trial's validation loss, coloured by its verdict; the recommended "
            "trial is drawn thicker.",
        ),
        _block(
            "plot-curves",
            "Train and validation curves, one trial at a time",
            figures.trial_curves(curves, analysis),
            "Pick a trial in the menu. The dashed vertical line marks its best step, the dotted "
            "red one the step where overfitting set in. The train curve is the mean loss of the "
            "training batches (noise-augmented ones included) since the previous evaluation, so it is "
            "smoother and noisier than the validation curve in different ways.",
        ),
        _block(
            "plot-history",
            "Optimisation history",
            figures.history(study, trials),
            "Best validation loss of each completed trial and the best so far.",
        ),
        _block(
            "plot-intermediate",
            "Intermediate values",
            figures.intermediate(study, trials, curves),
            "Validation loss reported at each evaluation step, as the pruner saw it.",
        ),
        _block(
            "plot-importances",
            "Parameter importances",
            figures.importances(study, analysis),
            f"Which knobs drive the best validation loss: {analysis.importances.method}, over "
            f"{analysis.importances.trials} complete trials (a ranking needs "
            f"{MIN_TRIALS_FOR_IMPORTANCES}; few trials rank noise).",
        ),
        _block(
            "plot-parallel",
            "Parallel coordinates",
            figures.parallel(study, trials),
            "Each line is a completed trial through its parameter values to its loss.",
        ),
        _block(
            "plot-overfit-map",
            "Overfitting map",
            figures.overfit_map(trials, analysis),
            "Freeze depth against learning rate, coloured by verdict; below, the share of "
            "finished trials that overfit at each freeze depth and learning-rate decade.",
            after=_rates_table(analysis),
        ),
        samples_section(
            study,
            trials,
            analysis.verdicts,
            analysis.recommendation.trial_number if analysis.recommendation else None,
        ),
    ]
    recommended = analysis.recommendation.trial_number if analysis.recommendation else None
    blocks.append(forgetting_section(study, analysis.verdicts, recommended))
    data_curve = find_study_curve(StudyRecord.from_study(study).study_dir)
    if data_curve is not None:  # xtts-tune data-curve was run on the study's export
        blocks.append(data_curve_section(data_curve))
    page = _page(study, trials, analysis, blocks)
    atomic_write_text(out_path, page)
    logger.info(
        "wrote the report of study %r to %s (%.1f MiB, %.2f s)",
        study.study_name,
        out_path,
        len(page.encode()) / 2**20,
        time.perf_counter() - started,
    )
    return out_path


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


def _block(
    plot_id: str, title: str, content: plotly.graph_objects.Figure | str, caption: str, *, after: str = ""
) -> str:
    if isinstance(content, str):
        body = f'<div id="{plot_id}" class="plot-note">{_e(content)}</div>'
    else:
        body = pio.to_html(
            content,
            config=PLOT_CONFIG,
            include_plotlyjs=False,
            full_html=False,
            div_id=plot_id,
            default_height=f"{figures.HEIGHT}px",
            validate=False,
        )
    return f'<section class="card"><h2>{_e(title)}</h2><p class="caption">{_e(caption)}</p>{body}{after}</section>'


def _page(
    study: optuna.Study,
    trials: Sequence[FrozenTrial],
    analysis: StudyAnalysis,
    figures: Sequence[str],
) -> str:
    name = _e(study.study_name)
    return (
        f"<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>{report_stamp(StudyRecord.from_study(study).uid)}"
        "<meta name=viewport content='width=device-width, initial-scale=1'>"
        f"<title>xtts-tune report: {name}</title><style>{CSS}</style>"
        f"<script>{plotly.offline.get_plotlyjs()}</script></head><body>"
        f"<header><h1>xtts-tune report: {name}</h1>{_subtitle(study, trials)}</header><main>"
        f"{_summary(study, trials, analysis)}"
        + "".join(figures)
        + _trials_table(trials, analysis)
        + f"</main><script>{SORT_JS}</script></body></html>\n"
    )


def _subtitle(study: optuna.Study, trials: Sequence[FrozenTrial]) -> str:
    version = StudyRecord.from_study(study).xtts_tune_version or "?"
    now = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    running = sum(t.state == TrialState.RUNNING for t in trials)
    note = (
        f"<p class=warn>{running} trial{'s are' if running != 1 else ' is'} still running: "
        "this report is a snapshot.</p>"
        if running
        else ""
    )
    return f"<p class=muted>Generated {_e(now)} by xtts-tune {_e(str(version))}.</p>{note}"


def _summary(study: optuna.Study, trials: Sequence[FrozenTrial], analysis: StudyAnalysis) -> str:
    return (
        '<section class="card summary" id="summary"><div class=grid>'
        f"{_recommendation_html(analysis, TestComparison.from_study(study))}"
        f"{_study_html(study, trials, analysis)}</div></section>"
    )


def _recommendation_html(analysis: StudyAnalysis, comparison) -> str:
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
        f'<p class=big id="test-comparison"><b>Against the guide\'s recipe</b>, '
        f"{_e(describe_test_comparison(comparison, rec.trial_number))}</p>"
        f"<table class=kv>{params}</table>"
        f"<h3>Why</h3><ul>{''.join(f'<li>{_e(r)}</li>' for r in rec.reasons)}</ul>"
        f"<h3>Next</h3><ul class=next>{''.join(f'<li>{_e(s)}</li>' for s in rec.next_steps)}</ul>"
        "</div>"
    )


def _study_html(study: optuna.Study, trials: Sequence[FrozenTrial], analysis: StudyAnalysis) -> str:
    record = StudyRecord.from_study(study)
    config = record.config or {}
    data = config.get("data") if isinstance(config.get("data"), Mapping) else {}
    fingerprint = record.fingerprint or {}
    states = Counter(t.state.name.lower() for t in trials)
    state_text = ", ".join(f"{n} {s}" for s, n in sorted(states.items())) or "none"
    verdicts = " ".join(f"{_badge(v)} {n}" for v, n in analysis.verdict_counts().items()) or "—"
    compute = analysis.compute
    saved = (
        f"{compute.steps:,} of {compute.planned_steps:,} planned optimizer steps spent; "
        f"{compute.saved_steps:,} ({compute.saved_fraction:.1%}) saved by pruning and early stopping"
        if compute.planned_steps
        else "—"
    )
    rows = [
        ("dataset", _e(str(data.get("path", "—")))),
        ("dataset fingerprint", _e(str(fingerprint.get("dataset", "—"))[:16])),
        ("base model", _e(str(config.get("base_model", "—")))),
        ("trials", f"{len(trials)} ({_e(state_text)})"),
        ("verdicts", verdicts),
        ("compute", _e(saved)),
        *([("rungs", _e(rungs_line(trials)))] if rungs_line(trials) else []),
        ("top knobs", _e(_top_knobs(analysis))),
    ]
    body = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    return f'<div class="panel" id="study-facts"><h2>Study</h2><table class=kv>{body}</table></div>'


def _top_knobs(analysis: StudyAnalysis) -> str:
    stats = analysis.importances
    ranked = sorted(stats.values.items(), key=lambda kv: -kv[1])
    shown = ", ".join(f"{k} {v:.0%}" for k, v in ranked)
    return f"{shown} (over {stats.trials} complete trials)" if shown else (stats.note or "—")


def _trials_table(trials: Sequence[FrozenTrial], analysis: StudyAnalysis) -> str:
    names = sorted({k for t in trials for k in t.params})
    heads = [
        "trial",
        "state",
        "verdict",
        "best val loss",
        "best step",
        "best epoch",
        "onset",
        "steps",
        "planned",
        *names,
        "trainable",
        "stop reason",
        "wall s",
    ]
    head = "".join(f'<th scope=col title="sort">{_e(h)}</th>' for h in heads)
    rows = "".join(_trial_row(t, v, names) for t, v in zip(trials, analysis.verdicts, strict=True))
    return (
        '<section class="card"><h2>Trials</h2><p class="caption">Click a column header to sort.</p>'
        '<div class=scroll><table id="trials-table" class="sortable trials" data-sort-initial="3">'
        f"<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div></section>"
    )


def _trial_row(trial: FrozenTrial, verdict: TrialVerdict, names: Sequence[str]) -> str:
    record = TrialRecord.from_trial(trial)
    share = record.trainable_share
    cells = [
        _cell(trial.number),
        _cell(trial.state.name.lower()),
        _verdict_cell(verdict),
        _cell(verdict.value, digits=4),
        _cell(verdict.best_step),
        _cell(verdict.best_epoch, digits=2),
        _cell(verdict.overfit_onset_step),
        _cell(finite(record.steps)),
        _cell(finite(record.planned_steps)),
        *(_cell(trial.params.get(n)) for n in names),
        _cell(share, shown=None if share is None else f"{share:.1%}"),
        _cell(stop_reason_words(record.stop_reason)),
        _cell(record.wall_seconds, digits=1),
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


def _badge(verdict: str) -> str:
    colour = VERDICT_COLOURS.get(verdict, VERDICT_COLOURS[UNKNOWN])
    return f'<span class=badge style="background:{colour}">{_e(verdict)}</span>'


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1e-3 and value else f"{value:.4g}"
    return str(value)


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)
