"""The dataset doctor on the terminal (``xtts-tune check-data``): its progress line and its findings."""

from __future__ import annotations

import sys
from pathlib import Path


def doctor_progress(stream=sys.stdout):
    """The dataset doctor's progress: one live line on a terminal, a line per 10 % otherwise."""
    from xtts_tune.doctor.table import render_progress

    tty, step = stream.isatty(), {"next": 0.0}

    def on_event(event: dict) -> None:
        done, total = event["done"], event["total"]
        if tty:
            stream.write(f"\r\033[K{render_progress(event)}" + ("\n" if done == total else ""))
        elif done / total >= step["next"] or done == total:
            stream.write(render_progress(event) + "\n")
            step["next"] = done / total + 0.1
        stream.flush()

    return on_event


def print_check_data(report, exclude: Path | None) -> None:
    """``check-data``'s output: the ranked findings, where they are, and the exclude file it wrote."""
    from xtts_tune.doctor.table import render_report

    print(render_report(report), flush=True)
    if report.path is not None:
        print(f"findings: {report.path} ({report.seconds:.0f} s, {report.cached} of {report.clips} clips cached)")
    if exclude is not None:
        print(f"wrote {len(report.findings)} clip ids to {exclude}: listen, keep what is fine, then set data.exclude")
