"""Trial checkpoints sized by what trains: only the tensors a trial trained, tied to its base model.

A trial at freeze depth 28 of the released XTTS v2 GPT trains about 9 % of its weights; storing the whole
GPT (1.75 GB) per kept trial wasted the rest. A checkpoint holds the trained tensors and the fingerprint of
the base folder they were trained from; :func:`load_trained_tensors` refuses one from another base (one
line naming the file), and :func:`full_gpt_state` rebuilds the whole GPT against the base wherever a full
model is needed (the final XTTS folder). Every write is atomic, so a kill or power loss never leaves a
half-written file.

>>> import tempfile, torch
>>> path = save_trial_checkpoint(f"{tempfile.mkdtemp()}/best_gpt.pth", {"mel_head.weight": torch.ones(2)},
...                              base_fingerprint="abc")
>>> load_trained_tensors(path, base_fingerprint="abc")
{'mel_head.weight': tensor([1., 1.])}
>>> load_trained_tensors(path, base_fingerprint="xyz")
Traceback (most recent call last):
...
xtts_tune.model.checkpoint.CheckpointError: .../best_gpt.pth: trained from another base model (fingerprint abc, this base is xyz); use the base_model the study used
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path

import torch

from xtts_tune.errors import UserError
from xtts_tune.io import atomic_torch_save

FORMAT = "xtts-tune trained tensors 1"


class CheckpointError(UserError):
    """A checkpoint that cannot be used with this base model; the message names the file and the fix."""


def save_trial_checkpoint(path: str | Path, trained: Mapping[str, torch.Tensor], *, base_fingerprint: str) -> Path:
    """Write the trained tensors (GPT state-dict names → CPU tensors) with the base's fingerprint."""
    tensors = {name: t.detach().to("cpu") for name, t in trained.items()}
    return atomic_torch_save({"format": FORMAT, "base_fingerprint": base_fingerprint, "tensors": tensors}, path)


def load_trained_tensors(path: str | Path, *, base_fingerprint: str | None) -> dict[str, torch.Tensor]:
    """The trained tensors of a checkpoint, checked against the base it will be applied to.

    ``base_fingerprint`` None skips the check. A plain GPT state dict (checkpoints written before this
    format) is returned as it is.
    """
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:
        raise CheckpointError(f"{path}: cannot be read as a checkpoint ({str(exc).splitlines()[0][:160]})") from None
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path}: not an xtts-tune checkpoint (a {type(obj).__name__})")
    if obj.get("format") != FORMAT:
        return dict(obj)
    stored = obj.get("base_fingerprint")
    if base_fingerprint is not None and stored != base_fingerprint:
        raise CheckpointError(
            f"{path}: trained from another base model (fingerprint {stored}, this base is {base_fingerprint}); "
            "use the base_model the study used"
        )
    return dict(obj["tensors"])


def full_gpt_state(base_state: Mapping[str, torch.Tensor], trained: Mapping[str, torch.Tensor]) -> dict:
    """The whole GPT state: the base's tensors with the trained ones in place (names must exist in the base)."""
    unknown = sorted(set(trained) - set(base_state))
    if unknown:
        raise CheckpointError(
            f"the checkpoint has tensors this base model lacks ({unknown[0]} and {len(unknown) - 1} more); "
            "use the base_model the study used"
        )
    return {**base_state, **trained}
