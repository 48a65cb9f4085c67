"""A trial's stored record: every attribute the search writes on a trial, its key, its type and where it
lives (one definition; writers and readers both go through :class:`TrialRecord`).

The Optuna study is the project's database and the seam between the torch side (the runner writes) and the
torch-free side (analysis, report, export read). Each field of :class:`TrialRecord` is one stored attribute
under the field's name. Three long ones (``curve``, ``train_config``, ``diagnosis``) are stored as *system*
attributes under :data:`LONG_ATTR_PREFIX`: optuna-dashboard shows user attributes cut at 1,024 characters,
which broke their JSON there. Reading is defensive: a value of the wrong type reads as ``None`` (or empty),
so a study written by an older version, by hand or by a crashed worker never crashes a reader.

>>> import optuna
>>> study = optuna.create_study()
>>> trial = study.ask()
>>> write_trial(trial, steps=12, planned_steps=16, curve=[{"step": 0, "val_loss": 5.0}], verdict="healthy")
>>> study.tell(trial, 4.9)
FrozenTrial(...)
>>> rec = TrialRecord.from_trial(study.trials[0])
>>> rec.steps, rec.planned_steps, rec.verdict, len(rec.curve)
(12, 16, 'healthy', 1)
>>> sorted(study.trials[0].user_attrs)
['planned_steps', 'steps', 'verdict']
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from xtts_tune.io import as_int, finite, json_safe

__all__ = [
    "FULL_DATA",
    "LONG_ATTR_PREFIX",
    "SampleEntry",
    "TrialRecord",
    "enqueue_attrs",
    "optuna_enqueued",
    "retry_attrs",
    "write_trial",
    "write_trial_attrs",
]

LONG_ATTR_PREFIX = "xtts_tune:"
"""Prefix of the long trial attributes, stored as system attributes (the dashboard cuts user attributes)."""

_LONG = ("curve", "train_config", "diagnosis")

FULL_DATA = 1.0
"""The ``fidelity`` of a trial trained on the whole train split (:attr:`TrialRecord.data_fraction`)."""


@dataclass(frozen=True)
class SampleEntry:
    """One listening sample of a trial: the text it speaks, the wav and its dashboard artifact id."""

    text: str
    path: str
    artifact_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def parse(cls, raw: Any) -> SampleEntry | None:
        if not isinstance(raw, Mapping) or not isinstance(raw.get("path"), str):
            return None
        artifact = raw.get("artifact_id")
        return cls(str(raw.get("text") or ""), raw["path"], artifact if isinstance(artifact, str) else None)


def _num(kind: str):
    return field(default=None, metadata={"kind": kind})


@dataclass(frozen=True)
class TrialRecord:
    """Everything the search stores on one trial. Every field is optional: trials are written in stages
    (worker and run folder at start, the result at the end, samples and artifacts after), and old studies
    lack newer fields."""

    # the result of the trial (the runner's trial_attrs)
    curve: list[dict[str, Any]] | None = _num("records")
    """The trial's evaluations (``{"step", "epoch", "train_loss", "val_loss", ...}``); None when not stored."""
    best_step: int | None = _num("int")
    best_epoch: float | None = _num("float")
    best_val_loss: float | None = _num("float")
    steps: int | None = _num("int")
    planned_steps: int | None = _num("int")
    stop_reason: str | None = _num("str")
    trainable_share: float | None = _num("float")
    trainable_params: int | None = _num("int")
    total_params: int | None = _num("int")
    wall_seconds: float | None = _num("float")
    compute_seconds: float | None = _num("float")
    peak_memory_bytes: int | None = _num("int")
    checkpoint_path: str | None = _num("str")
    curve_path: str | None = _num("str")
    seed: int | None = _num("int")
    train_config: dict[str, Any] | None = _num("dict")
    diagnosis: dict[str, Any] | None = _num("dict")
    verdict: str | None = _num("str")
    rejected: float | None = _num("float")
    """1.0 when the ranking would never pick the trial (a rejected verdict, sounding worse than the base,
    out of memory), else 0.0: the sampler's constraint (:meth:`xtts_tune.search.settings.SearchSettings.set_constraint`)."""
    # written at other moments of the trial's life
    run_dir: str | None = _num("str")
    worker: dict[str, Any] | None = _num("dict")
    interrupted: bool = field(default=False, metadata={"kind": "bool"})
    out_of_memory: bool = field(default=False, metadata={"kind": "bool"})
    """The trial ran out of (GPU) memory and failed (:mod:`xtts_tune.training.memory`)."""
    fail_reason: str | None = _num("str")
    """Why a failed trial failed, in one line."""
    enqueued: str | None = _num("str")
    """``"guide"`` for the guide's recipe (trial 0), ``"spread"`` for the space-filling start, ``"config"`` for
    a config from the YAML's enqueue list."""
    retry_of: int | None = _num("int")
    samples: list[SampleEntry] = field(default_factory=list, metadata={"kind": "samples"})
    probes: dict[str, Any] | None = _num("dict")
    """How the listening samples sound (:meth:`xtts_tune.probes.ProbeScores.summary`: similarity, CER, WER,
    flags, N texts); the per-sample figures are ``probes.json`` in the trial's samples folder."""
    forget_loss: float | None = _num("float")
    """Its mean per-clip loss on the forgetting set, clips that are not the target voice
    (:mod:`xtts_tune.search.forgetting`; the base's is :class:`xtts_tune.record.ForgettingSet`)."""
    forget_loss_change: float | None = _num("float")
    """``forget_loss`` relative to the base model's on the same clips (+0.041: 4.1 % higher: it forgot)."""
    forget_loss_se: float | None = _num("float")
    """The standard error of ``forget_loss_change``, from the clips' paired differences with the base."""
    forget_ear: dict[str, Any] | None = _num("dict")
    """Forgetting by ear (:mod:`xtts_tune.search.forgetting_ear`): ``{language: {"cer", "cer_sd", "similarity",
    "similarity_sd", "n_texts", "base": the base model's same figures}}``, sentences in other languages spoken
    in a voice that is not the target's."""
    curve_png_artifact_id: str | None = _num("str")
    curve_artifact_id: str | None = _num("str")
    table_params: dict[str, Any] | None = _num("dict")
    """The search bench's replayed trials: the table grid point the suggested params snapped to."""
    fidelity: float | None = _num("float")
    """The share of the train split the trial trained on, its ``search.fidelity`` rung (0.25: a nested quarter
    of the clips, :func:`xtts_tune.data.split.nested_train_subset`); unset (a study without rungs) is full data."""
    promoted_from: int | None = _num("int")
    """The trial of the rung below whose params this one re-ran on more of the clips (``search.fidelity``)."""

    @classmethod
    def from_attrs(cls, user_attrs: Mapping[str, Any], system_attrs: Mapping[str, Any] | None = None) -> TrialRecord:
        """Parse stored attributes: long fields from the system attributes first, then the user attributes
        (where studies made before the move keep them); a value of the wrong type reads as unset."""
        system_attrs = system_attrs or {}
        values = {}
        for f in dataclasses.fields(cls):
            raw = system_attrs.get(LONG_ATTR_PREFIX + f.name) if f.name in _LONG else None
            if raw is None:
                raw = user_attrs.get(f.name)
            parsed = _parse(f.metadata["kind"], raw)
            if parsed is not None:
                values[f.name] = parsed
        return cls(**values)

    @classmethod
    def from_trial(cls, trial) -> TrialRecord:
        """The record of a trial (an Optuna ``FrozenTrial`` or a running ``Trial``)."""
        return cls.from_attrs(trial.user_attrs, trial.system_attrs)

    def to_attrs(self) -> dict[str, Any]:
        """The fields that are set, JSON-safe, under their stored keys (as :func:`write_trial` takes them)."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None or value == [] or (f.metadata["kind"] == "bool" and not value):
                continue
            out[f.name] = [s.to_dict() for s in value] if f.metadata["kind"] == "samples" else value
        return json_safe(out)

    def split_attrs(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(user, system) attributes as the storage holds them, for ``optuna.trial.create_trial``
        (a study built in memory, e.g. by examples and tests, is stored exactly as a search stores it)."""
        user, system = {}, {}
        for key, value in self.to_attrs().items():
            if key in _LONG:
                system[LONG_ATTR_PREFIX + key] = value
            else:
                user[key] = value
        return user, system

    @property
    def enqueued_by_guide(self) -> bool:
        return self.enqueued == "guide"

    @property
    def data_fraction(self) -> float:
        """The share of the train split it trained on: its ``fidelity``, :data:`FULL_DATA` when unset (a
        full-data trial is one whose ``data_fraction`` is :data:`FULL_DATA`)."""
        return self.fidelity if self.fidelity is not None else FULL_DATA


def _parse(kind: str, raw: Any) -> Any:
    if raw is None:
        return None
    if kind == "int":
        return as_int(raw)
    if kind == "float":
        return finite(raw)
    if kind == "str":
        return raw if isinstance(raw, str) else None
    if kind == "dict":
        return dict(raw) if isinstance(raw, Mapping) else None
    if kind == "bool":
        return raw is True
    if kind == "records":
        return [dict(r) for r in raw if isinstance(r, Mapping)] if isinstance(raw, list) else None
    if kind == "samples":
        if not isinstance(raw, list):
            return None
        return [e for e in (SampleEntry.parse(r) for r in raw) if e is not None]
    raise AssertionError(kind)


_FIELDS = {f.name: f for f in dataclasses.fields(TrialRecord)}


def write_trial_attrs(storage, trial_id: int, attrs: Mapping[str, Any]) -> None:
    """Write stored attributes of a trial through its storage (a running trial, or a finished one whose
    attributes the search rewrites): long ones as system attributes, the rest as user attributes.

    Optuna has no public setter for a trial's system attributes; its storage's is public, and this is the
    one place that uses it. Raises ``KeyError`` for a key that is not a :class:`TrialRecord` field."""
    for key, value in attrs.items():
        if key not in _FIELDS:
            raise KeyError(f"{key!r} is not a stored trial attribute (xtts_tune.record.TrialRecord)")
        if _FIELDS[key].metadata["kind"] == "samples":
            value = [s.to_dict() if isinstance(s, SampleEntry) else s for s in value]
        value = json_safe(value)
        if key in _LONG:
            storage.set_trial_system_attr(trial_id, LONG_ATTR_PREFIX + key, value)
        else:
            storage.set_trial_user_attr(trial_id, key, value)


def write_trial(trial, **attrs: Any) -> None:
    """Write fields of a running Optuna trial's record (``write_trial(trial, run_dir="...")``)."""
    write_trial_attrs(trial.storage, trial._trial_id, attrs)


def enqueue_attrs(kind: str) -> dict[str, Any]:
    """The user attributes of a queued trial: ``"guide"`` (the guide's recipe) or ``"config"`` (the YAML's)."""
    return TrialRecord(enqueued=kind).to_attrs()


def retry_attrs(number: int, fidelity: float | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(user, system) attributes of a queued re-run of trial ``number`` (on the same ``fidelity`` rung); the
    system ones are the keys of Optuna's own ``RetryFailedTrialCallback``, so its ``retried_trial_number`` reads them."""
    user = TrialRecord(retry_of=number, fidelity=fidelity).to_attrs()
    return user, {"failed_trial": number, "retry_history": [number]}


def optuna_enqueued(trial) -> bool:
    """Whether Optuna ran the trial from its queue with fixed params (``enqueue_trial``'s system attribute)."""
    return "fixed_params" in trial.system_attrs
