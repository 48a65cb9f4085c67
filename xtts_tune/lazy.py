"""Lazy public names for a package's ``__init__``: each name is imported from its module on first use, so
importing a package (``xtts_tune.analysis``) never pulls in what its other modules need (torch, coqui).

>>> getattr_, dir_ = lazy_exports("xtts_tune.analysis", {"diagnose": "xtts_tune.analysis.curve.diagnosis"})
>>> getattr_("diagnose").__name__
'diagnose'
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping


def lazy_exports(package: str, api: Mapping[str, str]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of package ``package`` whose public names ``api`` maps to the
    modules that define them (a name is cached in the package once imported)."""

    def __getattr__(name: str) -> object:
        if name in api:
            value = getattr(importlib.import_module(api[name]), name)
            setattr(sys.modules[package], name, value)
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(api))

    return __getattr__, __dir__
