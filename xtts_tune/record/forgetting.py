"""The forgetting set a study was scored on, and the base model's loss on it, stored on the study (one key:
:data:`FORGETTING_KEY`). Each kept trial's own figures are :class:`~xtts_tune.record.TrialRecord` fields
(``forget_loss``, ``forget_loss_change``, ``forget_loss_se``). No torch here.

>>> import optuna
>>> study = optuna.create_study()
>>> write_forgetting(study, ForgettingSet(source="demo base voice, held out", clips=45, base_loss=3.41))
>>> ForgettingSet.from_study(study).base_loss
3.41
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from xtts_tune.io import as_int, finite, json_safe

FORGETTING_KEY = "forgetting"
"""The study attribute that holds the :class:`ForgettingSet`."""

FORGET_EAR_BASE_KEY = "forget_ear_base"
"""The study attribute that holds the base model's figures by ear (:mod:`xtts_tune.search.forgetting_ear`):
``{"key": the plan's hash, "voice": in words, "languages": {language: figures}}``."""


@dataclass(frozen=True)
class ForgettingSet:
    """What the kept trials' forgetting figures were measured on (:mod:`xtts_tune.search.forgetting`)."""

    source: str
    """In words: ``"the demo base voice's 45 held-out clips"`` or the folder of ``data.forgetting_path``."""
    clips: int = 0
    base_loss: float | None = None
    """The base model's mean per-clip loss on the set: what every trial's change is relative to."""
    languages: list[str] = field(default_factory=list)
    fingerprint: str | None = None
    """The set's clip ids, texts and audio sizes, hashed: a changed set is scored again."""

    @classmethod
    def parse(cls, raw: Any) -> ForgettingSet | None:
        """From the stored dict; None when missing or malformed."""
        if not isinstance(raw, Mapping) or not isinstance(raw.get("source"), str):
            return None
        langs = raw.get("languages")
        return cls(
            source=raw["source"],
            clips=as_int(raw.get("clips")) or 0,
            base_loss=finite(raw.get("base_loss")),
            languages=[str(x) for x in langs] if isinstance(langs, list) else [],
            fingerprint=raw["fingerprint"] if isinstance(raw.get("fingerprint"), str) else None,
        )

    @classmethod
    def from_study(cls, study) -> ForgettingSet | None:
        return cls.parse(study.user_attrs.get(FORGETTING_KEY))

    def to_attrs(self) -> dict[str, Any]:
        return json_safe(dataclasses.asdict(self))


def write_forgetting(study, forgetting: ForgettingSet) -> None:
    """Store the study's forgetting set (replacing an earlier one)."""
    study.set_user_attr(FORGETTING_KEY, forgetting.to_attrs())


def read_ear_base(study) -> dict[str, Any] | None:
    """The base model's stored figures by ear (None when missing or malformed)."""
    raw = study.user_attrs.get(FORGET_EAR_BASE_KEY)
    if not isinstance(raw, Mapping) or not isinstance(raw.get("languages"), Mapping):
        return None
    return dict(raw)


def write_ear_base(study, figures: Mapping[str, Any]) -> None:
    """Store the base model's figures by ear (replacing earlier ones)."""
    study.set_user_attr(FORGET_EAR_BASE_KEY, json_safe(dict(figures)))
