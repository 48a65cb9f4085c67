"""The one base class of user mistakes.

Every error that a user can fix (a misspelled YAML key, a missing wav, a base folder without ``dvae.pth``, a
study that does not exist, ...) derives from :class:`UserError`. Its message is one line that names the file
and the fix; the command line prints it as ``error: <message>`` and exits with status 2. Anything else is a
bug and keeps its traceback.

>>> from xtts_tune.errors import UserError
>>> from xtts_tune.config import ConfigError
>>> issubclass(ConfigError, UserError)
True

A full disk or a read-only database is not a bug either: :func:`user_error_for` finds one in an exception's
causes and returns its line (the command line prints it like any user mistake).

>>> import errno
>>> str(user_error_for(OSError(errno.ENOSPC, "No space left on device", "runs/x/curve.json")))
'runs/x/curve.json: disk full, no space left on the device; free some space and run again (files already written were left as they were)'
"""

from __future__ import annotations

import errno
import re


class UserError(ValueError):
    """A mistake the user can fix; the message is one line naming the file (or key) and the fix."""


class ConfigError(UserError):
    """A user mistake in a study YAML or an override; the message names the file, key and fix."""


class DiskFullError(UserError):
    """No space left on the device while writing a file; the message names the file."""


FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


def disk_full_error(path) -> DiskFullError:
    """The one line for a write that ran out of space."""
    return DiskFullError(
        f"{path}: disk full, no space left on the device; free some space and run again "
        "(files already written were left as they were)"
    )


def user_error_for(exc: BaseException) -> UserError | None:
    """The :class:`UserError` behind ``exc`` (itself or one of its causes): a user mistake, a full disk or a
    read-only database (as SQLite reports them through SQLAlchemy and Optuna). None for anything else."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, UserError):
            return exc
        if isinstance(exc, OSError) and exc.errno in FULL_ERRNOS:
            return disk_full_error(exc.filename or "a file")
        if isinstance(exc, OSError) and exc.errno == errno.EROFS:
            return UserError(f"{exc.filename or 'a file'}: read-only file system; write to a writable folder")
        text = str(exc)
        if "database or disk is full" in text:
            return DiskFullError("the study database: disk full; free some space and run again")
        if "readonly database" in text:
            return UserError(
                "the study database is read-only; make it (and its folder) writable, or copy it and pass --storage"
            )
        exc = exc.__cause__ or exc.__context__
    return None


_INTERNALS = re.compile(
    r"\S*(?:/__w/|site-packages/|dist-packages/|/_core/|\.(?:cpp|cc|cu|h|hpp)\b)\S*"  # build and library paths
)


def plain_reason(exc: BaseException | str, limit: int = 160) -> str:
    """A third-party exception as a short reason for one of our lines: its first line, without the library's
    internals (C++ sources, build folders like torchcodec's ``/__w/...``, installed package paths).

    >>> plain_reason(RuntimeError("Could not open input file: x.wav Invalid data found when processing input "
    ...                           "(/__w/torchcodec/torchcodec/src/torchcodec/_core/SingleStreamDecoder.cpp:95)"))
    'Could not open input file: x.wav Invalid data found when processing input'
    """
    text = str(exc).strip()
    if not text and isinstance(exc, BaseException):
        return type(exc).__name__
    text = text.split("Exception raised from", 1)[0].strip().splitlines()[0] if text else ""
    text = _INTERNALS.sub("", text)
    text = re.sub(r"\(\s*\)|\[\s*\]", "", text)  # what held only a path
    text = " ".join(text.split()).rstrip(" :;,(")
    return (text or (type(exc).__name__ if isinstance(exc, BaseException) else "unknown error"))[:limit]
