"""The study YAML as a user hands it over: reading the file and applying ``--set key=value`` overrides.

Every mistake is one :class:`~xtts_tune.errors.ConfigError` line. A path that is a folder, a binary file,
an empty file and invalid YAML each name the file (and the line, for YAML); an override is checked on its
own (its key, its type, its value) so that its mistakes name the override, not the YAML file.

>>> apply_overrides({}, ["lr=3e-4"])
Traceback (most recent call last):
...
xtts_tune.errors.ConfigError: --set lr=3e-4: unknown key 'lr'; did you mean 'learning_rate'? (valid: ...)
>>> apply_overrides({}, ["train.val_count=2"])
Traceback (most recent call last):
...
xtts_tune.errors.ConfigError: --set train.val_count=2: unknown key 'train.val_count'; did you mean 'data.val_count'? (valid: ...)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from xtts_tune.schema import (
    SEARCH_KEYS,
    ConfigError,
    StudyConfig,
    coerce,
    config_from_dict,
    section_class,
    section_fields,
    unknown_key,
)

REQUIRED = ("data.path", "base_model")
"""The two keys a study YAML must set (the defaults are the demo's)."""

_FREE_SECTIONS = ("search", "diagnosis", "provenance")


def read_yaml(path: Path, overrides: list[str] | None = None) -> dict[str, Any]:
    """The YAML file's mapping; a folder, a binary or empty file or invalid YAML is one line naming the file.

    An empty file is refused (it would silently run the demo defaults) unless the overrides set both
    :data:`REQUIRED` keys.
    """
    path = Path(path)
    if path.is_dir():
        inside = sorted(p.name for p in path.glob("*.yaml"))
        hint = f", e.g. --config {path / inside[0]}" if inside else ""
        raise ConfigError(f"{path}: is a folder, not a study YAML; pass the YAML file{hint}")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    try:
        if b"\x00" in data:
            raise UnicodeDecodeError("utf-8", data, data.index(b"\x00"), data.index(b"\x00") + 1, "NUL byte")
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not a text YAML file (binary data at byte {exc.start}); pass the study YAML "
            "(e.g. studies/demo.yaml)"
        ) from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{where}: not valid YAML ({problem})") from None
    if raw is None or raw == {}:
        if not all(_sets(overrides or [], key) for key in REQUIRED):
            raise ConfigError(
                f"{path}: the study YAML is empty; set at least data.path (your dataset folder: metadata.csv and "
                "wavs/) and base_model (an XTTS v2 folder, or 'embedded' for the tiny demo base)"
            )
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys to values")
    return raw


def _sets(overrides: list[str], key: str) -> bool:
    return any(text.split("=", 1)[0].strip() == key for text in overrides)


def parse_override(text: str) -> tuple[str, Any]:
    """``"key=value"`` → ``(key, value)`` with the value read as YAML (``3e-4`` a float, ``[1, 2]`` a list)."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected key=value, e.g. --set learning_rate=3e-4")
    key, value = text.split("=", 1)
    try:
        return key.strip(), yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"--set {text}: the value is not valid YAML ({problem})") from None


def apply_overrides(raw: dict[str, Any], overrides: list[str], where: str = "--set") -> dict[str, Any]:
    """Apply ``key=value`` overrides to a raw YAML mapping; bare train/data knob names are accepted.

    Each override's key, type and value are checked on their own, so a mistake names the override.
    """
    raw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in (raw or {}).items()}
    top = section_fields(StudyConfig)
    for text in overrides:
        key, value = parse_override(text)
        here = f"{where} {text}"
        parts = key.split(".")
        if len(parts) == 1 and parts[0] not in top:
            owners = [s for s in ("data", "model", "train") if parts[0] in section_fields(section_class(s))]
            if not owners:
                valid = list(top) + [k for s in ("data", "model", "train") for k in section_fields(section_class(s))]
                raise unknown_key(parts[0], valid, here, None)
            parts = [owners[-1], parts[0]]  # train wins over data for shared names (none today)
        if len(parts) > 2:
            raise ConfigError(f"{here}: keys have at most one dot, e.g. train.learning_rate")
        _check(parts, value, here)
        if len(parts) == 1:
            raw[parts[0]] = value
        else:
            raw[parts[0]] = dict(raw.get(parts[0]) or {})
            raw[parts[0]][parts[1]] = value
    return raw


def _check(parts: list[str], value: Any, where: str) -> None:
    """Refuse an override whose key does not exist or whose value is invalid on its own (naming ``where``)."""
    if len(parts) == 1:
        if parts[0] in ("data", "model", "train") or parts[0] in _FREE_SECTIONS:
            return  # a whole section: checked with the file
        section, key = None, parts[0]
    else:
        section, key = parts
        if section == "search" and key not in SEARCH_KEYS:
            raise unknown_key(key, list(SEARCH_KEYS), where, "search")
        if section in _FREE_SECTIONS:
            return
        if section_class(section) is None:
            valid = [*("data", "model", "train"), *_FREE_SECTIONS]
            raise unknown_key(section, valid, where, None)
        fields = section_fields(section_class(section))
        if key not in fields:
            others = [f"{s}.{key}" for s in ("data", "model", "train") if key in section_fields(section_class(s))]
            if others:  # the knob exists, in another section
                raise ConfigError(
                    f"{where}: unknown key '{section}.{key}'; did you mean '{others[0]}'? "
                    f"(valid: {', '.join(sorted(fields))})"
                )
            raise unknown_key(key, list(fields), where, section)
    full = f"{section}.{key}" if section else key
    typ = section_fields(section_class(section) if section else StudyConfig)[key]
    checked = coerce(value, typ, full, where)
    alone = {section: {key: checked}} if section else {key: checked}
    config_from_dict(alone, source=where).validate(combinations=False)  # only this value can fail
