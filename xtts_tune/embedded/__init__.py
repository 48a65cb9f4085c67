"""The embedded tiny base (``xtts_tune/assets/tiny_base``) and how it is built (``make demo-base``,
:mod:`~.base`). Building it is not part of a trial: it trains a small XTTS-shaped model once, on the demo
voices, and writes a folder with a released XTTS v2 folder's layout that every command loads as it would a
real one."""

from xtts_tune.lazy import lazy_exports

_API = {
    "build_tiny_base": "xtts_tune.embedded.base",
    "TinyBaseSpec": "xtts_tune.embedded.base",
}

__all__ = sorted(_API)
__getattr__, __dir__ = lazy_exports(__name__, _API)
