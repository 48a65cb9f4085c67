"""Where the benchmarks find the real hour of speech, and what they say when it is not there.

The CC0 speaker's whole hour (1,132 clips, 57.6 min, 48 kHz; ``corpora/real-voice-kathleen`` is its first 100
clips) is 319 MB, so it is never committed: it is rebuilt from its source repository into
``data/real-voice-kathleen-1h/`` (git-ignored), or wherever ``XTTS_TUNE_REAL_HOUR`` points.

>>> hour = real_hour(required=False)
>>> hour is None or (hour / "metadata.csv").is_file()
True
"""

from __future__ import annotations

import os
from pathlib import Path

from xtts_tune.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
REAL_HOUR_ENV = "XTTS_TUNE_REAL_HOUR"
REAL_HOUR_DEFAULT = ROOT / "data" / "real-voice-kathleen-1h"
HOW_TO_GET = (
    "the real hour is not here: clone github.com/rhasspy/dataset-voice-cathy (any clone, a bare one will do), "
    "then run `python3 ../shared/data/real-voice-kathleen-1h/rebuild.py CLONE/.git data/real-voice-kathleen-1h` "
    f"(42 s), or set {REAL_HOUR_ENV} to a folder that has it"
)


def real_hour(*, required: bool = True) -> Path | None:
    """The real hour's folder (LJSpeech layout: ``metadata.csv``, ``wavs/``).

    Raises:
        UserError: it is missing and ``required`` (the message says how to get it); with ``required`` False,
            None is returned instead.
    """
    folder = Path(os.environ.get(REAL_HOUR_ENV) or REAL_HOUR_DEFAULT)
    if (folder / "metadata.csv").is_file() and (folder / "wavs").is_dir():
        return folder
    if required:
        raise UserError(f"{folder}: {HOW_TO_GET}")
    return None
