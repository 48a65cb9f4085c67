"""``data.exclude``: the clips a study leaves out before validation and the split (the ones
``xtts-tune check-data --write-exclude`` flagged and the user kept out after listening).

The key is a path to a file of clip ids, one a line (``#`` starts a comment, blank lines are skipped), or a
YAML list of ids. An id the dataset does not have is refused (one line naming the file), so a stale list of
another dataset never passes silently.

>>> import tempfile, pathlib
>>> from xtts_tune.config import DataConfig
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "exclude.txt").write_text("# flagged by check-data\\nclip2\\n\\nclip5\\n")
>>> sorted(excluded_ids(DataConfig(exclude="exclude.txt"), folder, known=["clip1", "clip2", "clip5"]))
['clip2', 'clip5']
>>> sorted(excluded_ids(DataConfig(exclude=["clip1"]), folder))
['clip1']
>>> excluded_ids(DataConfig(exclude=["nope"]), folder, known=["clip1"])
Traceback (most recent call last):
...
xtts_tune.errors.UserError: data.exclude names 1 clip id(s) the dataset does not have (nope); remove them from the list or fix the ids
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from xtts_tune.config import DataConfig
from xtts_tune.errors import UserError


def read_exclude_file(path: Path) -> list[str]:
    """The ids listed in an exclude file (one a line; ``#`` comments and blank lines skipped)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(
            f"{path}: data.exclude file not found; write it (xtts-tune check-data --write-exclude {path}) or "
            "remove data.exclude"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: data.exclude file cannot be read ({exc}); give a UTF-8 file of clip ids") from None
    ids = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            ids.append(line)
    return ids


def excluded_ids(cfg: DataConfig, base_dir: str | Path, *, known: Iterable[str] | None = None) -> frozenset[str]:
    """The clip ids ``data.exclude`` names (empty when unset). A file path resolves against ``base_dir`` (the
    config's root); ``known`` (the dataset's ids), when given, must hold every excluded id."""
    value = cfg.exclude
    if not value:
        return frozenset()
    if isinstance(value, str):
        path = Path(value).expanduser()
        path = path if path.is_absolute() else Path(base_dir) / path
        ids, where = read_exclude_file(path), str(path)
    else:
        ids, where = [str(v).strip() for v in value], "data.exclude"
    found = frozenset(i for i in ids if i)
    if known is not None:
        unknown = sorted(found - set(known))
        if unknown:
            named = ", ".join(unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
            prefix = f"{where}: " if where != "data.exclude" else ""
            raise UserError(
                f"{prefix}data.exclude names {len(unknown)} clip id(s) the dataset does not have ({named}); "
                "remove them from the list or fix the ids"
            )
    return found


def without_excluded(clips: list, cfg: DataConfig, base_dir: str | Path) -> list:
    """``clips`` less those ``data.exclude`` names (every named id must be one of them)."""
    drop = excluded_ids(cfg, base_dir, known=[c.id for c in clips])
    return [c for c in clips if c.id not in drop] if drop else list(clips)
