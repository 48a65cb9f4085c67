"""Which study a report or an exported YAML belongs to: the study's id, stamped into each file.

A study's id is its record's ``uid`` (:class:`xtts_tune.record.StudyRecord`) (made when the search creates it). The report carries it in a
``<meta name=xtts-tune-study>`` tag, the exported YAML in ``provenance.study_uid``;
:mod:`xtts_tune.search.home` reads them back so that one study never overwrites another's files.

>>> import tempfile, pathlib
>>> page = pathlib.Path(tempfile.mkdtemp()) / "r.html"
>>> _ = page.write_text(f"<html><head>{report_stamp('a1b2c3')}</head></html>")
>>> output_owner(page)
'a1b2c3'
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

_META = re.compile(rb"<meta name=xtts-tune-study content=([0-9a-f]+)>")


def report_stamp(uid: str | None) -> str:
    """The ``<meta>`` tag that marks a report as study ``uid``'s (empty without an id)."""
    return f"<meta name=xtts-tune-study content={uid}>" if uid else ""


def output_owner(path: Path) -> str | None:
    """The id of the study a report (``.html``) or exported YAML was written for, or None (no stamp)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        if path.suffix == ".html":
            with path.open("rb") as f:
                found = _META.search(f.read(4096))
            return found.group(1).decode() if found else None
        doc = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    provenance = doc.get("provenance") if isinstance(doc, dict) else None
    uid = provenance.get("study_uid") if isinstance(provenance, dict) else None
    return str(uid) if uid else None
