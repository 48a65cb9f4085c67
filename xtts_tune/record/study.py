"""A study's stored record: what the search writes on the study itself (its id, fingerprints, definition,
config and folders; the unseen-clips comparison; the confirmation runs), with one key each.

Writers (opening, holdout, confirm, the runner) and readers (analysis, report, export, the CLI) both go
through these classes; reading is defensive (a value of the wrong type reads as unset).

>>> import optuna
>>> study = optuna.create_study()
>>> write_study(study, uid="a1b2", fingerprint={"dataset": "d1"})
>>> rec = StudyRecord.from_study(study)
>>> rec.uid, rec.fingerprint["dataset"], rec.config
('a1b2', 'd1', None)
>>> write_test_comparison(study, TestComparison(clips=15, winner=3, winner_loss=3.2))
>>> TestComparison.from_study(study).winner_loss
3.2
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from xtts_tune.io import as_int, finite, json_safe

logger = logging.getLogger(__name__)

__all__ = [
    "CONFIRMATIONS_KEY",
    "TEST_COMPARISON_KEY",
    "StudyRecord",
    "TestComparison",
    "read_confirmations",
    "stored_study_record",
    "write_confirmation_run",
    "write_study",
    "write_test_comparison",
]

TEST_COMPARISON_KEY = "test_comparison"
CONFIRMATIONS_KEY = "confirmations"


def _opt(kind: str):
    return field(default=None, metadata={"kind": kind})


@dataclass(frozen=True)
class StudyRecord:
    """The study's own attributes, written when the search creates it (and the samples status per run)."""

    uid: str | None = _opt("str")
    """The study's id, stamped into its report and exported YAML (:mod:`xtts_tune.stamps`)."""
    fingerprint: dict[str, Any] | None = _opt("dict")
    """``{"dataset", "split", "base_model", ...}``: what the study was recorded on."""
    definition: dict[str, Any] | None = _opt("dict")
    """The search space and fixed knobs (:mod:`xtts_tune.search.definition`)."""
    config: dict[str, Any] | None = _opt("dict")
    """The study YAML as loaded (``StudyConfig.to_dict()``)."""
    xtts_tune_version: str | None = _opt("str")
    artifact_dir: str | None = _opt("str")
    output_dir: str | None = _opt("str")
    study_dir: str | None = _opt("str")
    project_root: str | None = _opt("str")
    config_path: str | None = _opt("str")
    created_at: str | None = _opt("str")
    listening_samples: str | None = _opt("str")
    """Why the kept trials have no listening samples (``None`` when the base can make them)."""
    probes_base: dict[str, Any] | None = _opt("dict")
    """The base model's samples (the same texts and voice as every trial's), as the probes hear them: the
    baseline of every trial's figures (:meth:`xtts_tune.probes.ProbeScores.summary`)."""
    verdicts: dict[str, Any] | None = _opt("dict")
    """``{trial number: study-level verdict}``, written when a search ends (:mod:`xtts_tune.search.verdict_sync`)."""
    test_scores: list[dict[str, Any]] | None = _opt("list")
    """Every kept trial scored on the test split (:func:`xtts_tune.search.holdout.score_kept_on_test`)."""
    probes_ceiling: dict[str, Any] | None = _opt("dict")
    """The target's own held-out clips against the same reference: the similarity ceiling and the ASR's
    own error floor."""

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any] | None) -> StudyRecord:
        attrs = attrs or {}
        values = {}
        for f in dataclasses.fields(cls):
            raw = attrs.get(f.name)
            kind = f.metadata["kind"]
            if kind == "str" and isinstance(raw, str):
                values[f.name] = raw
            elif kind == "dict" and isinstance(raw, Mapping):
                values[f.name] = dict(raw)
            elif kind == "list" and isinstance(raw, list):
                values[f.name] = [dict(r) for r in raw if isinstance(r, Mapping)]
        return cls(**values)

    @classmethod
    def from_study(cls, study) -> StudyRecord:
        return cls.from_attrs(study.user_attrs)

    def to_attrs(self) -> dict[str, Any]:
        return json_safe({k: v for k, v in dataclasses.asdict(self).items() if v is not None})

    @property
    def train_section(self) -> dict[str, Any] | None:
        """The ``train`` section of the stored config."""
        train = (self.config or {}).get("train")
        return dict(train) if isinstance(train, Mapping) else None


_STUDY_FIELDS = {f.name for f in dataclasses.fields(StudyRecord)}


def write_study(study, **attrs: Any) -> None:
    """Write fields of the study's record (``None`` clears a field's value). Raises ``KeyError`` for a key
    that is not a :class:`StudyRecord` field."""
    for key, value in attrs.items():
        if key not in _STUDY_FIELDS:
            raise KeyError(f"{key!r} is not a stored study attribute (xtts_tune.record.StudyRecord)")
        study.set_user_attr(key, json_safe(value))


def stored_study_record(storage, name: str) -> StudyRecord | None:
    """The record of study ``name`` read straight from a storage (before loading the study), or None when
    the storage has no such study."""
    try:
        return StudyRecord.from_attrs(storage.get_study_user_attrs(storage.get_study_id_from_name(name)))
    except KeyError:
        return None


@dataclass(frozen=True)
class TestComparison:
    """The recommended trial, the guide's recipe (trial 0) and the base model scored on the test split after
    a search (:mod:`xtts_tune.search.holdout`). ``clips == 0``: there is no test split (``note`` says why)."""

    __test__ = False  # not a pytest class

    clips: int = 0
    winner: int | None = None
    winner_loss: float | None = None
    winner_val_loss: float | None = None
    guide: int | None = None
    guide_loss: float | None = None
    base_loss: float | None = None
    note: str | None = None
    sound: dict[str, Any] | None = None
    """How the three sound on the test texts: ``{"texts": N, "winner"|"guide"|"base": {"similarity", "cer"}}``
    (absent without a decoder)."""

    @classmethod
    def parse(cls, raw: Any) -> TestComparison | None:
        """From the stored dict (or an instance); None when missing or malformed."""
        if isinstance(raw, TestComparison) or raw is None:
            return raw
        if not isinstance(raw, Mapping):
            return None
        clips = as_int(raw.get("clips")) or 0
        loss = finite(raw.get("winner_loss"))
        if clips and loss is None:
            return None
        note = raw.get("note")
        return cls(
            clips=clips,
            winner=as_int(raw.get("winner")),
            winner_loss=loss,
            winner_val_loss=finite(raw.get("winner_val_loss")),
            guide=as_int(raw.get("guide")),
            guide_loss=finite(raw.get("guide_loss")),
            base_loss=finite(raw.get("base_loss")),
            note=note if isinstance(note, str) else None,
            sound=dict(raw["sound"]) if isinstance(raw.get("sound"), Mapping) else None,
        )

    @classmethod
    def from_study(cls, study) -> TestComparison | None:
        return cls.parse(study.user_attrs.get(TEST_COMPARISON_KEY))

    def to_attrs(self) -> dict[str, Any]:
        return json_safe({k: v for k, v in dataclasses.asdict(self).items() if v is not None or k == "guide"})


def write_test_comparison(study, comparison: TestComparison) -> None:
    study.set_user_attr(TEST_COMPARISON_KEY, comparison.to_attrs())


def read_confirmations(study) -> dict[int, list[dict[str, Any]]]:
    """The runs of ``xtts-tune confirm`` as ``{trial number: [run, ...]}``, runs sorted by seed.

    Stored as ``{"<trial number>": [{"seed", "best_val_loss", "best_step", ...}, ...]}``. Each run is
    ``{"seed": int, "best_val_loss": float | None, "best_step": int | None}`` plus any other stored keys; a
    non-finite loss becomes ``None``. Malformed entries are skipped with a warning."""
    raw = study.user_attrs.get(CONFIRMATIONS_KEY)
    if not isinstance(raw, Mapping):
        return {}
    out: dict[int, list[dict[str, Any]]] = {}
    for key, entries in raw.items():
        number = as_int(int(key)) if isinstance(key, str) and key.strip().isdigit() else as_int(key)
        if number is None or not isinstance(entries, list):
            logger.warning("ignoring malformed confirmations of %r in study %r", key, study.study_name)
            continue
        runs: dict[int, dict[str, Any]] = {}
        for entry in entries:
            seed = as_int(entry.get("seed")) if isinstance(entry, Mapping) else None
            if seed is None:
                logger.warning("ignoring a confirmation of trial %d without a seed: %r", number, entry)
                continue
            runs[seed] = {
                **entry,
                "seed": seed,
                "best_val_loss": finite(entry.get("best_val_loss")),
                "best_step": as_int(entry.get("best_step")),
            }
        if runs:
            out[number] = [runs[s] for s in sorted(runs)]
    return out


def write_confirmation_run(study, number: int, run: Mapping[str, Any]) -> None:
    """Merge one confirmation run (``{"seed", ...}``) of trial ``number`` into the stored runs (read fresh:
    other writers may exist), replacing an earlier run with the same seed."""
    current = study.user_attrs.get(CONFIRMATIONS_KEY)
    merged = {str(k): list(v) for k, v in current.items()} if isinstance(current, Mapping) else {}
    key = str(number)
    entries = [e for e in merged.get(key, []) if not (isinstance(e, Mapping) and e.get("seed") == run.get("seed"))]
    entries.append(dict(run))
    merged[key] = sorted(entries, key=lambda e: e.get("seed", 0) if isinstance(e, Mapping) else 0)
    study.set_user_attr(CONFIRMATIONS_KEY, json_safe(merged))
