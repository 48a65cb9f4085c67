"""Memory of a trial: an estimate of the peak before the first trial, and an out-of-memory trial's one line.

The estimate comes from the real-size measurements (``make bench-real-size`` on one NVIDIA H200, the released
XTTS v2 GPT shape: 30 blocks, 441 M parameters, bf16 autocast, batch 1 x accumulation 16, one 11 s clip) in
:data:`REAL_SIZE_PEAKS`. A trial's peak is the fp32 weights, the trainable parameters' gradient and AdamW
state (12 bytes each), and activations, which grow with the batch and the clip length and are measured
per row; between measured freeze depths they are interpolated, beyond them extrapolated. It is a rough
figure for the released shape only (a base of another depth gets none).

>>> gib = estimate_peak_bytes(freeze_depth=0, embeddings_frozen=False, batch_size=1, longest_clip_s=11.0) / 2**30
>>> round(gib, 2)
7.89
>>> round(estimate_peak_bytes(freeze_depth=28, embeddings_frozen=True, batch_size=4, longest_clip_s=11.0) / 2**30, 1)
3.0
"""

from __future__ import annotations

import gc

from xtts_tune.record import write_trial

GIB = 2**30
REAL_SIZE_LAYERS = 30
TOTAL_PARAMS = 441.0e6
MEASURED_CLIP_S = 11.0

REAL_SIZE_PEAKS = {
    # (freeze depth, embeddings frozen): (trainable parameters, peak max_memory_allocated in GiB); README's
    # real-size GPU table (benchmark commit c45f54b, batch 1 x accumulation 16, one 11 s clip)
    (0, False): (394.7e6, 7.89),
    (24, False): (92.4e6, 4.41),
    (28, False): (42.0e6, 3.82),
    (24, True): (83.5e6, 3.05),
    (28, True): (33.1e6, 2.26),
}


def _static_gib(trainable: float) -> float:
    return (TOTAL_PARAMS * 4 + trainable * 12) / GIB


def _interpolate(depth: float, points: list[tuple[int, float]]) -> float:
    """Linear in the freeze depth through the measured rows (the nearest two beyond them)."""
    points = sorted(points)
    lo, hi = points[0], points[-1]
    for a, b in zip(points, points[1:]):
        if a[0] <= depth <= b[0]:
            lo, hi = a, b
            break
    else:
        lo, hi = (points[0], points[1]) if depth < points[0][0] else (points[-2], points[-1])
    return lo[1] + (hi[1] - lo[1]) * (depth - lo[0]) / (hi[0] - lo[0])


def estimate_peak_bytes(*, freeze_depth: int, embeddings_frozen: bool, batch_size: int, longest_clip_s: float) -> int:
    """The estimated peak GPU memory of a trial of the released XTTS v2 shape (bytes); see the module."""
    rows = [(d, v) for (d, frozen), v in REAL_SIZE_PEAKS.items() if frozen == embeddings_frozen]
    trainable = _interpolate(freeze_depth, [(d, t) for d, (t, _) in rows])
    activations = _interpolate(freeze_depth, [(d, peak - _static_gib(t)) for d, (t, peak) in rows])
    scale = max(1, batch_size) * max(longest_clip_s, 0.1) / MEASURED_CLIP_S
    return int((_static_gib(trainable) + max(activations, 0.0) * scale) * GIB)


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it wraps) is CUDA running out of memory."""
    import torch

    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, torch.cuda.OutOfMemoryError):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def device_memory_text(device) -> str:
    """``a 12 GiB GPU`` (its total memory), or ``the CPU``."""
    import torch

    if getattr(device, "type", str(device)) == "cuda" and torch.cuda.is_available():
        return f"a {torch.cuda.get_device_properties(device).total_memory / GIB:.0f} GiB GPU"
    return "the CPU"


def out_of_memory_line(train, longest_clip_s: float, device) -> str:
    """The one line of a trial that ran out of memory: where, and what to lower."""
    return (
        f"out of memory at batch {train.batch_size} × accumulation {train.grad_accum_steps} with clips up to "
        f"{longest_clip_s:.1f} s on {device_memory_text(device)}; lower train.batch_size or max clip length "
        "(remove the longest clips), or freeze more layers (a higher freeze_depth)"
    )


def record_out_of_memory(trial, train, longest_clip_s: float, device) -> str:
    """A trial that ran out of memory: its memory released, :attr:`~xtts_tune.record.TrialRecord.out_of_memory`, its stop reason and its line
    stored on ``trial`` (an ``optuna.Trial``); returns the line."""
    release_memory()
    line = out_of_memory_line(train, longest_clip_s, device)
    write_trial(trial, out_of_memory=True, stop_reason="out_of_memory", fail_reason=line)
    return line


def most_expensive_config(space_params: dict, train, model, longest_clip_s: float) -> dict:
    """The space's most expensive configuration: lowest freeze depth, largest batch, the longest clip, and
    its estimated peak (:func:`estimate_peak_bytes`, ``peak`` in bytes)."""

    def extreme(name: str, fixed: int, pick) -> int:
        spec = space_params.get(name)
        if spec is None:
            return fixed
        return int(pick(spec.choices) if spec.kind == "categorical" else pick((spec.low, spec.high)))

    depth = extreme("freeze_depth", train.freeze_depth, min)
    batch = extreme("batch_size", train.batch_size, max)
    frozen = bool(model.freeze_text_embedding and model.freeze_mel_embedding)
    peak = estimate_peak_bytes(
        freeze_depth=depth, embeddings_frozen=frozen, batch_size=batch, longest_clip_s=longest_clip_s
    )
    return {"depth": depth, "batch": batch, "frozen": frozen, "peak": peak}


def most_expensive_peak(space_params: dict, train, model, longest_clip_s: float, num_layers: int) -> int | None:
    """The estimated peak GPU memory (bytes) of :func:`most_expensive_config`; None for a base that is not the
    released 30-block shape (the table says nothing about it)."""
    if num_layers != REAL_SIZE_LAYERS:
        return None
    return most_expensive_config(space_params, train, model, longest_clip_s)["peak"]


def most_expensive_line(space_params: dict, train, model, longest_clip_s: float, num_layers: int, device) -> str | None:
    """Before the first trial: the estimated peak of the space's most expensive configuration (lowest freeze
    depth, largest batch, the longest clip) next to the device's memory; None for a base that is not the
    released 30-block shape (the table says nothing about it)."""
    if num_layers != REAL_SIZE_LAYERS:
        return None
    c = most_expensive_config(space_params, train, model, longest_clip_s)
    return (
        f"memory: the space's most expensive configuration (freeze_depth {c['depth']}, embeddings "
        f"{'frozen' if c['frozen'] else 'trainable'}, batch {c['batch']}, clips up to {longest_clip_s:.1f} s) needs "
        f"about {c['peak'] / GIB:.1f} GiB (estimated from the real-size GPU table); this run has "
        f"{device_memory_text(device)}"
    )


def release_memory() -> None:
    """Give back what a failed trial held: Python's garbage, then CUDA's cached blocks."""
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
