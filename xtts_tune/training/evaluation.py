"""Scoring a GPT on held-out clips exactly as a trial's evaluations do (:func:`validation_loss`): the
validation split by default, the test split for the unseen-clips comparison, with a trial checkpoint's
tensors put on the base for the call and taken off after.
"""

from __future__ import annotations

import contextlib
import os

import torch

from xtts_tune.config import StudyConfig
from xtts_tune.model.base import LoadedBase
from xtts_tune.model.checkpoint import full_gpt_state
from xtts_tune.training.loop import TrialRun
from xtts_tune.training.prepare import PreparedData


def validation_loss(
    cfg: StudyConfig,
    *,
    base: LoadedBase,
    data: PreparedData,
    state: dict[str, torch.Tensor] | None = None,
    clips: list[str] | None = None,
) -> dict[str, float]:
    """The validation losses of the GPT (or with the weights ``state``: a whole GPT state dict, or a trial
    checkpoint's trained tensors), measured exactly as trials measure them; ``clips`` (e.g. the test split)
    instead of the validation clips.

    The GPT is left with the weights it had on entry (only the tensors ``state`` replaces are copied).
    """
    with _evaluator(cfg, base, data, state) as trial:
        return trial.evaluate(clips)


def clip_losses(
    cfg: StudyConfig,
    *,
    base: LoadedBase,
    data: PreparedData,
    clips: list[str],
    state: dict[str, torch.Tensor] | None = None,
) -> dict[str, float]:
    """Each clip's loss (``{clip id: loss}``), every clip evaluated on its own by the evaluator of
    :func:`validation_loss` (a batch of one: no padding, and the per-clip spread gives the figure's noise;
    :mod:`xtts_tune.search.forgetting`). The weights ``state`` go on once for all the clips."""
    with _evaluator(cfg, base, data, state) as trial:
        return {cid: trial.evaluate([cid])["loss"] for cid in clips}


@contextlib.contextmanager
def _evaluator(cfg: StudyConfig, base: LoadedBase, data: PreparedData, state: dict[str, torch.Tensor] | None):
    """A trial's evaluator on the GPT with ``state`` put on it, and the GPT's own weights back after."""
    torch.set_num_threads(cfg.train.num_threads or os.cpu_count() or 1)
    gpt = base.gpt
    saved = None
    if state is not None:
        current = gpt.state_dict()
        saved = {k: current[k].detach().clone() for k in state if k in current}
    try:
        if state is not None:
            gpt.load_state_dict(full_gpt_state(gpt.state_dict(), state))
        # never the prefix cache: ``state`` may change blocks the cache took as frozen base weights
        trial = TrialRun(cfg, base, data, None, None, None, use_prefix=False)
        trial.freeze()
        yield trial
    finally:
        if saved is not None:
            gpt.load_state_dict(full_gpt_state(gpt.state_dict(), saved))
        for p in gpt.parameters():
            p.requires_grad_(True)
