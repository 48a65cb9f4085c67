"""The data curve on a terminal: a line per fraction as it starts and ends (with the ETA), then the table,
the fit and its sentence. Beside :mod:`xtts_tune.terminal` (whose :class:`~xtts_tune.terminal.Progress`
prints the runs' own evaluation lines), the only other library module that prints."""

from __future__ import annotations

import sys
from pathlib import Path

from xtts_tune.terminal import Progress


def _minutes(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


class DataCurveProgress(Progress):
    """:class:`~xtts_tune.terminal.Progress` plus the data curve's own events (``{"event": "data_curve"}``)."""

    def __init__(self, stream=sys.stdout):
        super().__init__(stream, prefix="  ")

    def __call__(self, event: dict) -> None:
        if event.get("event") != "data_curve":
            super().__call__(event)
        elif event["stage"] == "start":
            self._line(
                f"[{event['index']}/{event['total']}] {100 * event['fraction']:g} % of the train split: "
                f"{event['train_clips']} clip{'s' if event['train_clips'] != 1 else ''}, "
                f"{event['planned_steps']} optimizer steps at most"
            )
        else:
            self._line(
                f"[{event['index']}/{event['total']}] {100 * event['fraction']:g} %: test loss "
                f"{event['test_loss']:.4f} (best step {event['best_step']} of {event['steps']}, "
                f"{event['stop_reason']}) in {_minutes(event['seconds'])}; ETA {_minutes(event['eta_s'])}"
            )


def print_data_curve(doc: dict, fit: dict, page: Path, stream=sys.stdout) -> None:
    """The measured points, the fit and its sentence, the hindsight check and where the files are."""
    w = stream.write
    w("\nfraction  clips  test loss  best val  best step  steps  stop\n")
    for p in sorted(doc["points"], key=lambda p: p["fraction"]):
        w(
            f"{100 * p['fraction']:>7g} % {p['train_clips']:>6} {p['test_loss']:>10.4f} {p['best_val_loss']:>9.4f} "
            f"{p['best_step']:>10} {p['steps']:>6}  {p['stop_reason']}\n"
        )
    if fit.get("problem") is None:
        w(f"fit: test loss = {fit['a']:.4g} + {fit['b']:.4g} · clips^-{fit['c']:.3g}\n")
    h = fit.get("hindsight")
    if h and h.get("predicted") is not None:
        w(
            f"hindsight: fitted on {', '.join(map(str, h['fit_on']))} clips, it predicted {h['predicted']:.4f} at "
            f"{h['n']} clips; measured {h['measured']:.4f} ({100 * h['error']:+.1f} %)\n"
        )
    if fit.get("budget_note"):
        w(f"note: {fit['budget_note']}\n")
    w(f"{fit['sentence']}\n")
    w(f"figure: {page}\n")
    stream.flush()
