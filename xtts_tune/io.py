"""Small stdlib helpers every layer shares: atomic writes, JSON-safe values, number formatting.

One home for each, so that a second copy cannot drift (e.g. a temp name without the process id, which lets
two writers clash).

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "out" / "a.json"
>>> atomic_write_json(path, {"loss": float("nan")}) == path
True
>>> path.read_text()
'{\\n "loss": NaN\\n}'
>>> json_safe({"loss": float("inf"), "path": pathlib.Path("/x")})
{'loss': None, 'path': '/x'}
>>> fmt(3.14159), fmt(3.14159, 2), fmt(None), human_bytes(1536)
('3.142', '3.1', '-', '1.5 KiB')
"""

from __future__ import annotations

import contextlib
import json
import math
import numbers
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from xtts_tune.errors import FULL_ERRNOS, disk_full_error

GB = 10**9
"""A gigabyte, as the ``*_gb`` settings count it (and disks are sold)."""

ProgressFn = Callable[[dict], None]
"""A progress callback: the library calls it with one event dict (``{"event": "eval", ...}``)."""


def _out_of_space(exc: BaseException, folder: Path) -> bool:
    """Whether a failed write ran out of space: ENOSPC/EDQUOT, or a writer that hides the errno (torch's zip
    writer raises RuntimeError) on a file system with (almost) nothing left."""
    if isinstance(exc, OSError):
        return exc.errno in FULL_ERRNOS
    if not isinstance(exc, RuntimeError):
        return False
    try:
        st = os.statvfs(folder)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < (1 << 20)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one rename.

    The temporary name carries the process id, so concurrent writers never clash; on any error (disk full,
    Ctrl-C) the temporary file is removed and ``path`` is left as it was. Running out of space raises
    :class:`~xtts_tune.errors.DiskFullError` (one line naming ``path``).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if exc.errno in FULL_ERRNOS:
            raise disk_full_error(path.parent) from None
        raise
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    except Exception as exc:
        if _out_of_space(exc, path.parent):
            raise disk_full_error(path) from None
        raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def atomic_torch_save(obj, path: str | Path) -> Path:
    """``torch.save(obj)`` to ``path`` through :func:`atomic_path`; return the path.

    torch is imported here, on first use, so that this module stays importable by the layers that never
    load torch (analysis, report, export)."""
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


@contextlib.contextmanager
def file_lock(path: str | Path, *, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold an exclusive ``flock`` on the file ``path`` (created when missing) for the ``with`` block.

    Other processes wait (``on_wait`` is called first when the lock is taken, to say so); the kernel drops the lock when its holder dies (kill, power loss), so a stale lock
    never blocks a rerun. Re-entrant within one thread (``flock`` would otherwise wait for itself)."""
    import fcntl

    path = Path(path)
    held = _held_locks.__dict__.setdefault("paths", set())
    if path in held:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait()
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        held.add(path)
        try:
            yield
        finally:
            held.discard(path)
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


_held_locks = threading.local()  # the lock files this thread holds


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; return the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def create_exclusive(path: str | Path, text: str) -> bool:
    """Write ``text`` to ``path`` only if ``path`` does not exist yet, atomically (complete or absent, never
    half-written; of two writers exactly one wins). Return whether this call created it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.link(tmp, path)  # fails when the file exists, whoever wrote it
        return True
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno in FULL_ERRNOS:
            raise disk_full_error(path) from None
        raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def atomic_write_json(path: str | Path, obj: Any, *, indent: int = 1) -> Path:
    """Write ``obj`` as indented JSON (NaN allowed) to ``path`` atomically; return the path (the argument
    order of :func:`atomic_write_text`: where, then what)."""
    if not isinstance(path, (str, os.PathLike)):  # the order changed once: a caller of the old one fails here
        raise TypeError(f"atomic_write_json(path, obj) takes the path first, got {type(path).__name__}")
    return atomic_write_text(path, json.dumps(obj, indent=indent, allow_nan=True))


def json_safe(value: Any) -> Any:
    """``value`` with non-finite numbers as ``None``, numpy scalars as Python numbers, paths as strings and
    tuples as lists (JSON and Optuna user attributes take it as is)."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (bool, str)) or value is None:
        return value
    if isinstance(value, Path):
        return str(value)
    if type(value).__module__ == "numpy" and hasattr(value, "item"):  # numpy scalars, without importing numpy
        return json_safe(value.item())
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value) if math.isfinite(value) else None
    return value


def finite(value: Any) -> float | None:
    """``value`` as a float when it is a finite real number (not a bool), else ``None``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    return float(value) if math.isfinite(value) else None


def as_int(value: Any) -> int | None:
    """``value`` as an int when it is a finite whole real number (not a bool), else ``None``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    if not math.isfinite(value) or not float(value).is_integer():
        return None
    return int(value)


def fmt(value: Any, digits: int = 4) -> str:
    """A number with ``digits`` significant digits (``-`` for ``None``); anything else as ``str``."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def human_bytes(n: float) -> str:
    """``1536`` → ``'1.5 KiB'`` (binary multiples, named as such: GiB, not GB)."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"
