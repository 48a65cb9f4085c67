"""The forgetting set: clips that are not the target voice, scored after a search to measure what a
fine-tune forgot (:mod:`xtts_tune.search.forgetting` scores them; this module only finds and reads them).

Two sources:

- ``data.forgetting_path``: a dataset of any speakers and any languages, as a folder or its metadata file,
  in the LJSpeech layout (``metadata.csv`` ``id|text|normalized_text``, ``wavs/``) or coqui's CSV (a header
  line with ``audio_file|text``; an optional ``language`` column gives each clip its own language, otherwise
  the clips take ``data.language``). The layout is read from the first line.
- **The embedded base**, when the key is unset: the demo base voice's held-out clips, i.e. the sentences
  of the base corpus the tiny base was validated on and never trained on (:data:`~xtts_tune.data.demo.
  BASE_VAL_FRACTION`), spoken again with the base voice. No demo target trains on that voice or those
  sentences, so a rise of their loss is what the fine-tune forgot of the base.

>>> sentences = base_heldout_sentences()
>>> len(sentences), sentences[0][:30]
(45, 'Our neighbors painted their fe')
"""

from __future__ import annotations

import csv
import dataclasses
import io
from pathlib import Path

from xtts_tune.config import DataConfig
from xtts_tune.data.clips import Clip, DataError, load_clips, read_utf8
from xtts_tune.data.demo import BASE_COUNT, BASE_VAL_FRACTION, BASE_VOICE, generate_dataset, split_demo_sentences
from xtts_tune.data.split import make_split
from xtts_tune.errors import UserError

HELDOUT_PREFIX = "heldout"
"""Clip ids of the demo base voice's held-out clips: ``heldout_0001`` ... in the base corpus's order."""


class ForgettingSetError(UserError):
    """``data.forgetting_path`` cannot be read; the message names the file and the fix."""


def base_heldout_sentences() -> list[str]:
    """The base corpus's sentences the embedded base held out of its pre-training (its validation split:
    the base corpus's clip ids ``base_0001``... are its sentences in order), in corpus order."""
    base, _ = split_demo_sentences()
    ids = [f"base_{i + 1:04d}" for i in range(BASE_COUNT)]
    held = make_split(ids, DataConfig(val_fraction=BASE_VAL_FRACTION, test_fraction=0.0)).val
    return [base[int(cid.split("_")[1]) - 1] for cid in sorted(held)]


def ensure_base_heldout(out: Path, progress=None) -> Path:
    """Make ``out`` the demo base voice's held-out clips (espeak-ng; left as it is when complete); return it."""
    sentences = base_heldout_sentences()
    return generate_dataset(
        Path(out), sentences, BASE_VOICE, prefix=HELDOUT_PREFIX, count=len(sentences), progress=progress
    )


def load_forgetting_clips(path: str | Path, language: str) -> list[Clip]:
    """The clips of a forgetting set (a dataset folder, or its metadata file), each with its language.

    >>> load_forgetting_clips("/no/such/folder", "en")
    Traceback (most recent call last):
    ...
    xtts_tune.data.forgetting.ForgettingSetError: /no/such/folder: data.forgetting_path not found; give a folder of other voices (metadata.csv and wavs/, or coqui's CSV with audio_file|text) or its metadata file, or remove the key
    """
    path = Path(path)
    folder, name = (path.parent, path.name) if path.is_file() else (path, "metadata.csv")
    meta = folder / name
    if not meta.is_file():
        raise ForgettingSetError(
            f"{path}: data.forgetting_path not found; give a folder of other voices (metadata.csv and wavs/, or "
            "coqui's CSV with audio_file|text) or its metadata file, or remove the key"
        )
    text = read_utf8(meta)
    first = text.splitlines()[0].split("|") if text.strip() else []
    formatter = "coqui" if "audio_file" in first and "text" in first else "ljspeech"
    try:
        clips = load_clips(
            DataConfig(path=str(folder), formatter=formatter, metadata=name, language=language), Path(folder)
        )
    except DataError as exc:
        raise ForgettingSetError(f"data.forgetting_path: {exc}") from None
    if formatter == "coqui" and "language" in first:
        rows = csv.DictReader(io.StringIO(text), delimiter="|")
        by_file = {str(folder / r["audio_file"]): (r.get("language") or "").strip() for r in rows}
        clips = [dataclasses.replace(c, language=by_file.get(c.audio_file) or language) for c in clips]
    return clips
