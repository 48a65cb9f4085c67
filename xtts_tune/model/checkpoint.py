"""Trial checkpoints: written atomically, so a kill or power loss never leaves a half-written file."""

from __future__ import annotations

from pathlib import Path

import torch

from xtts_tune.io import atomic_path


def atomic_torch_save(obj, path: str | Path) -> Path:
    """``torch.save(obj)`` to ``path`` through a temporary file and one rename; return the path."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)
