"""The doctor's findings as text: the ranked table ``xtts-tune check-data`` prints (the terminal prints it;
this module only builds the lines).

>>> from xtts_tune.doctor.checks import ClipFinding, Reason
>>> from xtts_tune.doctor.run import DoctorReport
>>> found = ClipFinding("a7", "metadata.csv:7", "wavs/a7.wav", "Hi.", (Reason("trailing silence", 3.4, 1.0, "s"),))
>>> print(render_report(DoctorReport([found], clips=40, asr_note="n/a: off")))
1 of 40 clips flagged (transcripts: n/a: off)
  1. a7 (metadata.csv:7): trailing silence 3.4 s > 1 s
"""

from __future__ import annotations

from xtts_tune.doctor.run import DoctorReport

SHOWN = 50
"""Rows the table shows; the rest are counted (every id is in ``--write-exclude``'s file)."""


def render_report(report: DoctorReport, *, shown: int = SHOWN) -> str:
    """The headline (how many clips are flagged, whether the ASR heard them) and one row per flagged clip."""
    asr = "" if report.asr_note is None else f" (transcripts: {report.asr_note})"
    lines = [f"{len(report.findings)} of {report.clips} clips flagged{asr}"]
    for rank, finding in enumerate(report.findings[:shown], 1):
        reasons = "; ".join(str(r) for r in finding.reasons)
        lines.append(f"  {rank}. {finding.clip} ({finding.where}): {reasons}")
    if len(report.findings) > shown:
        lines.append(f"  ... and {len(report.findings) - shown} more")
    return "\n".join(lines)


def render_progress(event: dict) -> str:
    """One progress line: ``doctor: 120/1132 clips (30 cached), about 9 min left``."""
    eta = event.get("eta_seconds") or 0.0
    left = f"about {eta / 60:.0f} min left" if eta >= 90 else f"about {eta:.0f} s left"
    return f"doctor: {event['done']}/{event['total']} clips ({event.get('cached', 0)} cached), {left}"
