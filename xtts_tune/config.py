"""Typed study configuration, loaded from one YAML file and validated once: :func:`load_config`.

A study YAML has these sections (every key optional except where noted)::

    study_name: demo
    base_model: embedded          # "embedded" (the tiny base shipped in the package) or an XTTS v2 folder
    output_dir: runs/demo         # each study's files go to <output_dir>/<study_name>/
    data:    {path, formatter, language, val_fraction | val_count, train_count, split_seed, demo_target}
    model:   {freeze_conditioning, freeze_text_embedding, freeze_text_head, freeze_mel_embedding, freeze_mel_head}
    train:   {freeze_depth, learning_rate, weight_decay, ... see TrainConfig}
    search:  {...}                # read by the search (xtts_tune.search.settings)
    diagnosis: {...}              # thresholds (xtts_tune.analysis.curve.thresholds)

Unknown or misspelled keys are rejected with the file, the key and the closest valid key (or the key a
common alias such as ``lr`` stands for). ``--set key=value`` overrides use dotted keys
(``train.learning_rate=1e-5``); train and data knobs may also be named bare (``learning_rate=1e-5``).
The schema (sections, keys, validation) is :mod:`xtts_tune.schema`, reading the file and applying overrides
:mod:`xtts_tune.overrides`; this module puts them together and re-exports the schema's public names.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from xtts_tune.overrides import apply_overrides, read_yaml
from xtts_tune.schema import (
    ALIASES,
    EMBEDDED_BASE,
    SEARCH_KEYS,
    ConfigError,
    DataConfig,
    ModelConfig,
    StudyConfig,
    TrainConfig,
    check_freeze_depth,
    coerce,
    config_from_dict,
    project_root,
    section_class,
    section_fields,
    study_outputs,
    unknown_key,
)

__all__ = [
    "ALIASES",
    "ConfigError",
    "DataConfig",
    "EMBEDDED_BASE",
    "ModelConfig",
    "SEARCH_KEYS",
    "StudyConfig",
    "TrainConfig",
    "check_freeze_depth",
    "coerce",
    "config_from_dict",
    "dump_config",
    "load_config",
    "project_root",
    "section_class",
    "section_fields",
    "study_outputs",
    "unknown_key",
]


def load_config(path: str | Path, overrides: list[str] | None = None) -> StudyConfig:
    """Load, override and validate a study YAML. Relative paths resolve against :func:`project_root`.

    A YAML in ``<project>/studies/`` resolves ``data/...`` and ``runs/...`` against ``<project>``; a YAML
    elsewhere resolves against its own folder.

    >>> cfg = load_config("studies/demo.yaml", ["learning_rate=3e-4"])
    >>> cfg.study_name, cfg.train.learning_rate, cfg.output_path.name
    ('demo', 0.0003, 'demo-small')
    """
    path = Path(path)
    raw = apply_overrides(read_yaml(path, overrides or []), overrides or [])
    cfg = config_from_dict(raw, source=str(path), root=project_root(path))
    cfg.validate()
    return cfg


def dump_config(cfg: StudyConfig) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
