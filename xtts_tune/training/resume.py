"""A long fine-tune that survives a kill: its state saved atomically every N optimizer steps, and resumed.

``xtts-tune train`` (:func:`xtts_tune.training.final.run_final_training`) runs for hours on a real dataset. Every
``every`` steps the loop writes ``<run_dir>/resume.pt`` through one rename (a kill never leaves half a file):
the trained tensors and the best ones so far, the optimizer (and fp16 scaler), the step, epoch and position in
the epoch's shuffled batches, the Python and torch random states, early stopping's state and the curve. Running
the same command again continues from there; the curve goes on where it stopped, and on a CPU the result is the
one an uninterrupted run gives (tests/test_resume.py kills one with SIGKILL). The file is removed when the run
ends. A state written for another config, split or base is ignored with a warning (the run starts over).

>>> import tempfile
>>> from pathlib import Path
>>> saver = ResumeState(Path(tempfile.mkdtemp()), every=2, identity={"lr": 1e-4})
>>> saver.due(4), saver.due(5), saver.load()
(True, False, None)
"""

from __future__ import annotations

import logging
import random
from pathlib import Path

import torch

from xtts_tune.io import atomic_torch_save

logger = logging.getLogger(__name__)

RESUME_FILE = "resume.pt"


def rng_states() -> dict:
    """The torch random states (CPU and, when present, every CUDA device's)."""
    states = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def python_rng_state(rng: random.Random) -> list:
    """``rng.getstate()`` as plain lists (``torch.load(weights_only=True)`` reads them)."""
    version, internal, gauss = rng.getstate()
    return [version, list(internal), gauss]


def set_python_rng_state(rng: random.Random, state: list) -> None:
    version, internal, gauss = state
    rng.setstate((version, tuple(internal), gauss))


class ResumeState:
    """Where and how often a run saves its resumable state; ``identity`` (the train config, the split and the
    base) must match for a saved state to be resumed."""

    def __init__(self, run_dir: Path, *, every: int, identity: dict):
        if every < 1:
            raise ValueError(f"resume_every must be >= 1, got {every}")
        self.path = Path(run_dir) / RESUME_FILE
        self.every = every
        self.identity = identity

    def due(self, step: int) -> bool:
        return step % self.every == 0

    def save(self, state: dict) -> None:
        atomic_torch_save({"identity": self.identity, **state}, self.path)

    def load(self) -> dict | None:
        """The saved state, or None (none saved, unreadable, or written by another config: started over)."""
        if not self.path.is_file():
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as exc:  # a state is disposable: train from the start rather than fail
            logger.warning("%s: unreadable resume state, starting over (%s)", self.path, type(exc).__name__)
            return None
        if state.get("identity") != self.identity:
            logger.warning("%s: saved by a run with another config, split or base; starting over", self.path)
            return None
        return state

    def done(self) -> None:
        self.path.unlink(missing_ok=True)
