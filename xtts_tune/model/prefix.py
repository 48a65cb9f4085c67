"""The frozen prefix of the XTTS GPT: its losses, and the hidden states entering the first trainable block.

With the conditioning encoder and perceiver, the text and mel embeddings and blocks ``0..N-1`` frozen, the
input of block N for one clip (its conditioning slice, text and audio codes) never changes while training.
:func:`capture_prefix` computes it once (eval mode: no dropout); :func:`gpt_losses` with ``prefix=`` runs
the GPT with it, so only blocks ``N..`` and the heads compute. Both keep coqui's own ``GPT.forward`` (its input layout,
attention masks, targets and losses): we only swap the blocks list of its GPT-2 for the duration of a call.
That swap is the one place that knows coqui's layout, ``[conditioning | start text stop pad | start codes
stop pad]``; it is checked against the uncached path in ``tests/test_prefix_cache.py``.

Per clip we keep the positions the losses depend on: the conditioning latents, the text positions ``0..t``
(start + ``t`` tokens: keys that are attended and queries with a target) and the mel positions ``0..c``
(``c`` = coqui's code length). Padded positions are masked as keys and have no target, so a batch built from
cached clips fills them with zeros.

>>> import torch
>>> from xtts_tune.model.base import embedded_base_path, load_base
>>> from xtts_tune.data.features import ClipFeatures, collate, silence_frame
>>> base = load_base(embedded_base_path())
>>> gpt, args = base.gpt, base.trainer.args
>>> clip = ClipFeatures(torch.tensor([5, 6, 7]), torch.tensor([1, 2, 3]), torch.zeros(80, 300), 3000)
>>> batch = collate([clip], args=args, silence=silence_frame(base.trainer), rng=None, is_eval=True)
>>> batch["cond_idxs"] = None
>>> _ = gpt.eval()
>>> (piece,) = capture_prefix(gpt, 2, batch)
>>> cached = gpt_losses(gpt, args, batch, prefix=(2, assemble_prefix([piece], batch, gpt)))
>>> torch.allclose(cached["loss"], gpt_losses(gpt, args, batch)["loss"], atol=1e-5)
True
"""

from __future__ import annotations

import contextlib
import math

import torch
from torch import nn


class _Captured(Exception):
    def __init__(self, hidden: torch.Tensor):
        self.hidden = hidden


class _CaptureAfter(nn.Module):
    """Runs block N-1, then raises with its output, so nothing above it runs (the GPT-2 indexes per-block
    arguments by position, so the blocks list must not grow)."""

    def __init__(self, block: nn.Module):
        super().__init__()
        self.block = block

    def forward(self, *args, **kwargs):
        out = self.block(*args, **kwargs)
        raise _Captured(out[0] if isinstance(out, tuple) else out)


class _Inject(nn.Module):
    """Stands in for the frozen blocks: returns the cached input of block N, as a GPT-2 block's output."""

    def __init__(self, hidden: torch.Tensor, as_tuple: bool):
        super().__init__()
        self.hidden, self.as_tuple = hidden, as_tuple

    def forward(self, hidden_states, *args, **kwargs):
        hidden = self.hidden.to(hidden_states.dtype)
        return (hidden,) if self.as_tuple else hidden


_RETURNS_TUPLE: dict[type, bool] = {}


@torch.no_grad()
def _block_returns_tuple(block: nn.Module) -> bool:
    """Whether this GPT-2 block class returns ``(hidden, ...)`` (transformers 4) or the tensor (5), probed once."""
    kind = type(block)
    if kind not in _RETURNS_TUPLE:
        weight = next(block.parameters())
        was_training = block.training
        block.eval()
        try:
            out = block(weight.new_zeros(1, 1, weight.shape[-1]))
        finally:
            block.train(was_training)
        _RETURNS_TUPLE[kind] = isinstance(out, tuple)
    return _RETURNS_TUPLE[kind]


@contextlib.contextmanager
def _blocks(gpt: nn.Module, blocks: list[nn.Module]):
    """Run ``gpt`` with its GPT-2's blocks replaced by ``blocks`` (restored on exit, whatever happens)."""
    transformer = gpt.gpt
    original = transformer.h
    transformer.h = nn.ModuleList(blocks)
    try:
        yield
    finally:
        transformer.h = original


def layout(batch: dict, gpt: nn.Module) -> tuple[int, list[int], int, list[int]]:
    """``(text_width, text_keep, mel_width, mel_keep)`` of coqui's GPT input for ``batch``: the padded width
    of the text and mel parts and, per clip, how many of their positions the losses depend on."""
    text_lengths = [int(n) for n in batch["text_lengths"]]
    code_lengths = [math.ceil(int(n) / gpt.code_stride_len) + 3 for n in batch["wav_lengths"]]
    return max(text_lengths) + 2, [n + 1 for n in text_lengths], max(code_lengths) + 2, [n + 1 for n in code_lengths]


def _call(gpt: nn.Module, batch: dict, cond_latents: torch.Tensor | None = None):
    cond_idxs = batch["cond_idxs"]
    return gpt(
        batch["text_inputs"],
        batch["text_lengths"],
        batch["audio_codes"],
        batch["wav_lengths"],
        cond_mels=batch["cond_mels"],
        cond_idxs=None if cond_idxs is None else cond_idxs.clone(),  # coqui divides it in place
        cond_lens=batch["cond_lens"],
        cond_latents=cond_latents,
    )


@torch.no_grad()
def capture_prefix(gpt: nn.Module, depth: int, batch: dict) -> list[torch.Tensor]:
    """Per clip of ``batch``, the hidden states entering block ``depth`` at the positions the losses use
    (``(positions, model_dim)``), computed with the GPT in eval mode (no dropout)."""
    if not 1 <= depth <= len(gpt.gpt.h):
        raise ValueError(f"depth must be between 1 and {len(gpt.gpt.h)}, got {depth}")
    was_training = gpt.training
    gpt.eval()
    try:
        with _blocks(gpt, [*gpt.gpt.h[: depth - 1], _CaptureAfter(gpt.gpt.h[depth - 1])]):
            _call(gpt, batch)
        raise RuntimeError("the GPT returned without reaching the captured block")
    except _Captured as captured:
        hidden = captured.hidden
    finally:
        gpt.train(was_training)
    text_width, text_keep, mel_width, mel_keep = layout(batch, gpt)
    prompt = hidden.shape[1] - text_width - mel_width
    pieces = []
    for i in range(hidden.shape[0]):
        text0, mel0 = prompt, prompt + text_width
        pieces.append(
            torch.cat(
                [
                    hidden[i, :prompt],
                    hidden[i, text0 : text0 + text_keep[i]],
                    hidden[i, mel0 : mel0 + mel_keep[i]],
                ]
            ).clone()
        )
    return pieces


def assemble_prefix(pieces: list[torch.Tensor], batch: dict, gpt: nn.Module) -> torch.Tensor:
    """The block-``N`` input of ``batch`` in coqui's layout, from one captured piece per clip (padding 0)."""
    text_width, text_keep, mel_width, mel_keep = layout(batch, gpt)
    prompt = pieces[0].shape[0] - text_keep[0] - mel_keep[0]  # the conditioning part (32 latents: perceiver)
    out = pieces[0].new_zeros(len(pieces), prompt + text_width + mel_width, pieces[0].shape[-1])
    for i, piece in enumerate(pieces):
        t, m = text_keep[i], mel_keep[i]
        if piece.shape[0] != prompt + t + m:
            raise ValueError(
                f"cached prefix of clip {i} has {piece.shape[0]} positions, the batch needs {prompt + t + m}"
            )
        out[i, :prompt] = piece[:prompt]
        out[i, prompt : prompt + t] = piece[prompt : prompt + t]
        out[i, prompt + text_width : prompt + text_width + m] = piece[prompt + t :]
    return out


def gpt_losses(
    gpt: nn.Module,
    args,
    batch: dict,
    *,
    cond_latents: torch.Tensor | None = None,
    prefix: tuple[int, torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """GPTTrainer.train_step's losses for ``batch`` (``loss_text_ce`` and ``loss_mel_ce`` weighted by the
    trainer's ``args``, and their sum ``loss``), computed by calling the GPT ourselves so that
    ``cond_latents`` (the conditioning encoder's output) or ``prefix`` (``(depth, block-depth input)``, see
    :func:`assemble_prefix`) can replace what is cached. Pass ``batch["cond_idxs"] = None`` for eval_step's."""
    if prefix is None:
        loss_text, loss_mel, _ = _call(gpt, batch, cond_latents)
    else:
        depth, hidden = prefix
        prompt = hidden.shape[1] - sum(layout(batch, gpt)[0::2])
        # the conditioning encoder is not run: its output only sets the prompt's length, then is replaced
        dummy = hidden.new_zeros(hidden.shape[0], prompt, hidden.shape[-1], dtype=gpt.final_norm.weight.dtype)
        inject = _Inject(hidden, _block_returns_tuple(gpt.gpt.h[0]))
        with _blocks(gpt, [inject, *gpt.gpt.h[depth:]]):
            loss_text, loss_mel, _ = _call(gpt, batch, dummy)
    text = loss_text * args.gpt_loss_text_ce_weight
    mel = loss_mel * args.gpt_loss_mel_ce_weight
    return {"loss_text_ce": text, "loss_mel_ce": mel, "loss": text + mel}
