"""What makes a study's trials comparable, recorded when it is created and compared on every resume.

The definition is the search space (every searched knob: its kind, range or choices) and every setting a
trial runs with that is not searched: the fixed knobs (``search.space`` scalars and the ``train`` section:
budget such as ``max_epochs``/``max_steps``/``eval_every``, batch, seed, ...) and the ``model`` freezing
flags, and the clips ``data.exclude`` leaves out. A resume that changes any of them would mix trials that cannot be compared ("drift") and is refused
with one line naming the key, the stored and the new value, and how to start a new study. What only changes
how the study goes on is free: more trials, another worker, the sampler and pruner, the rungs of ``search.fidelity``, enqueued configs,
``keep_top_k``, samples, heartbeats, the diagnosis thresholds, and a worker's own ``train.device``,
``train.num_threads`` and ``train.save_checkpoint``. (The dataset, split and base model are compared by
:mod:`xtts_tune.search.fingerprint`.)

>>> from xtts_tune.config import StudyConfig
>>> from xtts_tune.search.space import parse_space
>>> cfg = StudyConfig()
>>> stored = study_definition(cfg, parse_space({"learning_rate": {"low": 1e-5, "high": 1e-3, "log": True}}, cfg.train, "s.yaml"))
>>> now = study_definition(cfg, parse_space({"learning_rate": {"choices": [1e-4, 1e-3]}}, cfg.train, "s.yaml"))
>>> check_definition("demo", "sqlite:///demo.db", stored, now, cfg)
Traceback (most recent call last):
...
xtts_tune.search.definition.StudyDriftError: study 'demo' in sqlite:///demo.db: search.space.learning_rate changed (stored float in [1e-05, 0.001] log, now choices [0.0001, 0.001]), so new trials would not be comparable with its trials; nothing was changed. Keep the stored value (in <defaults> and any --set) to continue the study, or start a new study with a study_name of its own (e.g. --set study_name=demo-2)
"""

from __future__ import annotations

import dataclasses
from typing import Any

from xtts_tune.config import StudyConfig
from xtts_tune.data.exclude import excluded_ids
from xtts_tune.io import json_safe
from xtts_tune.search.fingerprint import StudyMismatchError
from xtts_tune.search.space import SearchSpace
from xtts_tune.search.storage import redact

WORKER_CHOICES = ("device", "num_threads", "save_checkpoint")
"""Train keys each worker may set as it likes: trials stay comparable."""


class StudyDriftError(StudyMismatchError):
    """A resume that changes the search space, a fixed knob or the freezing of the study's trials."""


def study_definition(cfg: StudyConfig, space: SearchSpace) -> dict[str, Any]:
    """The definition of the study that ``cfg`` and its (resolved) search ``space`` describe (JSON-safe)."""
    train = dataclasses.asdict(dataclasses.replace(cfg.train, **space.fixed))
    fixed = {k: v for k, v in train.items() if k not in space.params and k not in WORKER_CHOICES}
    return json_safe(
        {
            "space": {name: _spec(spec) for name, spec in space.params.items()},
            "train": fixed,
            "search_fixed": sorted(space.fixed),
            "model": dataclasses.asdict(cfg.model),
            "data": {"exclude": sorted(excluded_ids(cfg.data, cfg.root))},
        }
    )


def _spec(spec) -> dict[str, Any]:
    if spec.kind == "categorical":
        return {"kind": "categorical", "choices": list(spec.choices)}
    return {"kind": spec.kind, "low": spec.low, "high": spec.high, "log": spec.log, "step": spec.step}


def describe(spec: dict | None) -> str:
    """A stored knob's space in words (``float in [1e-05, 0.001] log``, ``choices [1, 2]``, ``not searched``)."""
    if not spec:
        return "not searched"
    if spec.get("kind") == "categorical":
        return f"choices {spec.get('choices')}"
    extra = " log" if spec.get("log") else (f" step {spec.get('step')}" if spec.get("step") else "")
    return f"{spec.get('kind')} in [{spec.get('low')}, {spec.get('high')}]{extra}"


def drift(stored: dict, current: dict) -> tuple[str, str, str] | None:
    """The first difference as (key, stored value, new value), or None when the definitions agree."""
    old_space, new_space = stored.get("space") or {}, current.get("space") or {}
    for name in sorted(set(old_space) | set(new_space)):
        if old_space.get(name) != new_space.get(name):
            return f"search.space.{name}", describe(old_space.get(name)), describe(new_space.get(name))
    fixed_here = set(current.get("search_fixed") or [])
    for section in ("train", "model", "data"):  # a key a stored study lacks is not compared (older studies)
        old, new = stored.get(section) or {}, current.get(section) or {}
        for key in sorted(set(old) | set(new)):
            if key in old and key in new and old[key] != new[key]:
                if section == "data" and key == "exclude":
                    return "data.exclude", *_exclusions(old[key], new[key])
                where = "search.space" if section == "train" and key in fixed_here else section
                return f"{where}.{key}", repr(old[key]), repr(new[key])
    return None


def _exclusions(old: list, new: list) -> tuple[str, str]:
    """Two excluded-id lists in words: ``3 clips``, ``5 clips (+a, b; -c)`` (the ids that changed, a few)."""
    added, removed = sorted(set(new) - set(old)), sorted(set(old) - set(new))

    def few(ids: list) -> str:
        return ", ".join(ids[:3]) + (f" and {len(ids) - 3} more" if len(ids) > 3 else "")

    change = "; ".join(
        part for part in (f"+{few(added)}" if added else "", f"-{few(removed)}" if removed else "") if part
    )
    return f"{len(old)} clips excluded", f"{len(new)} clips excluded ({change})"


def check_definition(study_name: str, url: str, stored: dict | None, current: dict, cfg: StudyConfig) -> None:
    """Raise :class:`StudyDriftError` (one line) when ``current`` would mix incomparable trials into the study."""
    found = drift(stored, current) if stored else None
    if found is None:
        return
    key, old, new = found
    raise StudyDriftError(
        f"study '{study_name}' in {redact(url)}: {key} changed (stored {old}, now {new}), so new trials would not "
        f"be comparable with its trials; nothing was changed. Keep the stored value (in {cfg.source} and any --set) "
        f"to continue the study, or start a new study with a study_name of its own (e.g. --set study_name={study_name}-2)"
    )
