"""What a search will cost, before its first trial: the data, RAM, VRAM and every file it will write, checked
against the free disk; and, as trials end, the measured trial time and the ETA of the rest.

:func:`estimate_cost` reads the clips' lengths from their headers (``soundfile.info``) and the split from
:func:`~xtts_tune.data.split.make_split` (or the saved one), and writes nothing. The sizes are formulas in the
model's shape, so they scale from the embedded base to the released one:

- **feature cache**, per clip and noisy variant: the conditioning mel (80 bins, hop 256, fp16 as stored), the
  DVAE codes (one per ``gpt_code_stride_len`` samples, int64) and the text tokens (int64; ~1.8 characters a
  token, as :mod:`benchmarks.realsize.model` measured), plus a per-entry overhead of the container;
- **prefix cache**, per freeze depth of the space (only with ``train.prefix_cache``): per clip and variant
  (validation clips clean), the hidden states entering block N, ``(32 conditioning latents + text + 1 + codes
  + 4) x gpt_n_model_channels`` in ``train.prefix_cache_dtype``; capped by ``train.prefix_cache_max_gb``
  when that setting exists and is > 0;
- **checkpoints**: ``search.keep_top_k`` kept trials plus the recommended one and the trial running, each the
  trained tensors (fp32) of the space's lowest freeze depth (:mod:`xtts_tune.model.checkpoint`);
- **the final model** that ``xtts-tune train`` writes afterwards: a copy of the base folder's size.

The per-entry constants were calibrated against real cache files of the embedded base (``make bench-scale``).
RAM is the process's measured footprint plus the weights and the caches the stores keep in memory; VRAM is
:func:`xtts_tune.training.memory.most_expensive_peak` (released shape only). When the files do not fit the
free disk of ``output_dir`` (``XTTS_TUNE_FREE_DISK_BYTES`` overrides it, for tests),
:meth:`CostEstimate.check` raises :class:`DiskSpaceError`, one line that names the setting to change.

>>> trial_eta([30.0, 50.0], done=2, n_trials=20)
720.0
>>> eta_event([], 0, finished_at=None, started_at=None, n_trials=3) is None
True
"""

from __future__ import annotations

import math
import os
import shutil
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path

from xtts_tune.config import StudyConfig
from xtts_tune.errors import UserError
from xtts_tune.io import GB, human_bytes

FREE_DISK_ENV = "XTTS_TUNE_FREE_DISK_BYTES"
"""An environment override of the free disk (bytes), so a test can simulate a full disk."""
MEL_BINS, MEL_HOP, MEL_BYTES, CODE_BYTES, TOKEN_BYTES = 80, 256, 2, 8, 8
CHARS_PER_TOKEN = 1.8
CONDITIONING_LATENTS = 32  # the perceiver's output positions (coqui's GPT, perceiver resampler)
FEATURE_ENTRY_OVERHEAD = 1_100  # bytes per feature entry (keys, tensor headers): a 100-clip file within 0.1 %
PREFIX_ENTRY_OVERHEAD = 400  # bytes per prefix entry (key, tensor header): 397 measured on a real shard
PROCESS_BYTES = int(1.3 * 2**30)  # torch + coqui + Optuna imported, embedded base loaded: measured peak RSS
DTYPE_BYTES = {"float16": 2, "bfloat16": 2, "float32": 4}


class DiskSpaceError(UserError):
    """The search's caches and checkpoints would not fit the free disk; the message names the setting."""


@dataclass
class CostEstimate:
    """The cost block printed before the first trial (bytes and seconds; see the module)."""

    clips: int
    hours: float
    train: int
    val: int
    test: int
    ram_bytes: int
    vram_bytes: int | None
    disk: dict[str, int] = field(default_factory=dict)
    """Every file the search writes, by name: ``feature cache``, ``prefix cache depth N``, ``checkpoints``,
    ``final model``."""
    free_bytes: int = 0
    folder: str = ""

    @property
    def disk_bytes(self) -> int:
        return sum(self.disk.values())

    @property
    def fits(self) -> bool:
        return self.disk_bytes <= self.free_bytes

    def to_event(self) -> dict:
        return {"event": "preflight", **asdict(self), "disk_bytes": self.disk_bytes, "fits": self.fits}

    def check(self) -> None:
        """Raise :class:`DiskSpaceError` when the files do not fit the free disk."""
        if self.fits:
            return
        prefix = sum(v for k, v in self.disk.items() if k.startswith("prefix"))
        ckpt = self.disk.get("checkpoints", 0)
        if prefix >= max(ckpt, self.disk_bytes / 3):
            fix = "set train.prefix_cache_max_gb (a cap), or train.prefix_cache: false"
        elif ckpt >= self.disk_bytes / 3:
            fix = "lower search.keep_top_k"
        else:
            fix = "free some disk"
        parts = ", ".join(f"{k} {human_bytes(v)}" for k, v in self.disk.items())
        raise DiskSpaceError(
            f"{self.folder}: the search would write about {human_bytes(self.disk_bytes)} ({parts}) but only "
            f"{human_bytes(self.free_bytes)} are free; {fix}, or set output_dir to a disk with more room"
        )


def free_disk_bytes(folder: Path) -> int:
    """Free bytes on the disk that holds ``folder`` (its nearest existing parent), or :data:`FREE_DISK_ENV`."""
    if os.environ.get(FREE_DISK_ENV):
        return int(float(os.environ[FREE_DISK_ENV]))
    path = Path(folder).resolve()
    while not path.exists():
        path = path.parent
    return shutil.disk_usage(path).free


def clip_entry_sizes(seconds: float, text: str, *, sample_rate: int, code_stride: int, width: int, dtype: str):
    """``(feature bytes, prefix bytes)`` of one clip (or one noisy variant) of ``seconds`` and ``text``.

    >>> feat, prefix = clip_entry_sizes(8.0, "x" * 120, sample_rate=22050, code_stride=1024, width=1024,
    ...                                 dtype="float16")
    >>> round(feat / 1e3), round(prefix / 1e3)   # kB: at the released width the prefix is 5x the features
    (113, 568)
    """
    samples = seconds * sample_rate
    tokens = math.ceil(len(text) / CHARS_PER_TOKEN)
    codes = math.ceil(samples / code_stride)
    feat = MEL_BINS * math.ceil(samples / MEL_HOP) * MEL_BYTES + codes * CODE_BYTES + tokens * TOKEN_BYTES
    positions = CONDITIONING_LATENTS + tokens + 1 + codes + 4
    prefix = positions * width * DTYPE_BYTES[dtype]
    return feat + FEATURE_ENTRY_OVERHEAD, prefix + PREFIX_ENTRY_OVERHEAD


def clip_lengths(cfg: StudyConfig) -> dict[str, tuple[float, str]]:
    """Each clip's ``(seconds, text)`` from its audio header (nothing is decoded nor written)."""
    import soundfile

    from xtts_tune.training.prepare import ensure_dataset

    return {c.id: (soundfile.info(str(c.audio_file)).duration, c.text) for c in ensure_dataset(cfg)}


def estimate_cost(cfg: StudyConfig, base, settings, *, lengths: dict | None = None) -> CostEstimate:
    """The cost block of a search on ``cfg`` with ``base`` (a LoadedBase) and ``settings`` (SearchSettings,
    resolved); ``lengths`` (:func:`clip_lengths`) may be passed to skip reading the headers."""
    from xtts_tune.data.split import make_split, saved_split
    from xtts_tune.model.freezing import frozen_modules
    from xtts_tune.training.memory import most_expensive_peak

    lengths = clip_lengths(cfg) if lengths is None else lengths
    split = saved_split(cfg.split_path) if cfg.split_path.is_file() else None
    split = split or make_split(list(lengths), cfg.data)
    train, args = cfg.train, base.config.model_args
    depths = _space_values(settings.space.params.get("freeze_depth"), train.freeze_depth)
    augment = may_augment(cfg, settings)
    variants = 1 + (train.augment_variants if augment else 0)
    sizes = {
        cid: clip_entry_sizes(
            s,
            text,
            sample_rate=base.config.audio.sample_rate,
            code_stride=args.gpt_code_stride_len,
            width=args.gpt_n_model_channels,
            dtype=train.prefix_cache_dtype,
        )
        for cid, (s, text) in lengths.items()
    }
    feat = sum(sizes[c][0] * variants for c in split.train) + sum(sizes[c][0] for c in [*split.val, *split.test])
    disk = {"feature cache": int(feat)}
    prefix_total = 0
    if _space_values(settings.space.params.get("prefix_cache"), train.prefix_cache) != [False]:
        per_depth = sum(sizes[c][1] * variants for c in split.train) + sum(sizes[c][1] for c in split.val)
        cap = train.prefix_cache_max_gb * GB
        for depth in sorted(d for d in depths if d >= 1):
            room = cap - prefix_total if cap else per_depth
            disk[f"prefix cache depth {depth}"] = int(max(0.0, min(per_depth, room)))
            prefix_total += disk[f"prefix cache depth {depth}"]
    gpt = base.gpt
    total = sum(p.numel() for p in gpt.parameters())
    frozen = frozen_modules(gpt, min(depths), cfg.model)
    trainable = total - sum(p.numel() for m in frozen.values() for p in m.parameters())
    disk["checkpoints"] = (settings.keep_top_k + 2) * trainable * 4
    disk["final model"] = sum(f.stat().st_size for f in Path(base.folder).glob("*") if f.is_file())
    seconds = sum(s for s, _ in lengths.values())
    longest = max((lengths[c][0] for c in split.train), default=0.0)
    in_memory = feat * 1.6 + prefix_total  # the stores keep every entry (mels as fp32) in memory
    ram = PROCESS_BYTES + total * 4 + (trainable * 12 if next(gpt.parameters()).device.type == "cpu" else 0) + in_memory
    vram = most_expensive_peak(settings.space.params, train, cfg.model, longest, base.num_layers)
    folder = cfg.study_dir
    return CostEstimate(
        clips=len(lengths),
        hours=seconds / 3600,
        train=len(split.train),
        val=len(split.val),
        test=len(split.test),
        ram_bytes=int(ram),
        vram_bytes=vram,
        disk=disk,
        free_bytes=free_disk_bytes(folder),
        folder=str(folder),
    )


def may_augment(cfg: StudyConfig, settings) -> bool:
    """Whether a trial of the search may train on noisy variants (``augment_prob`` above 0 anywhere in the
    space): then the variants' features are prepared and counted too."""
    return max(_space_values(settings.space.params.get("augment_prob"), cfg.train.augment_prob)) > 0


def _space_values(spec, fixed) -> list:
    """Every value a searched knob can take (an int range in full, a float range as its ends), or the
    fixed one."""
    if spec is None:
        return [fixed]
    if spec.kind == "categorical":
        return list(spec.choices)
    if spec.kind == "int":
        return list(range(int(spec.low), int(spec.high) + 1, int(spec.step or 1)))
    return [spec.low, spec.high]


def check_cost(cfg: StudyConfig, base, settings, progress=None) -> CostEstimate:
    """:func:`estimate_cost`, reported as a ``preflight`` event, then :meth:`CostEstimate.check`ed."""
    cost = estimate_cost(cfg, base, settings)
    if progress is not None:
        progress(cost.to_event())
    cost.check()
    return cost


def trial_eta(durations: list[float], *, done: int, n_trials: int) -> float:
    """Seconds left for the ``n_trials - done`` trials still to run, at the mean of the measured ones."""
    if not durations:
        return float("nan")
    return statistics.fmean(durations) * max(0, n_trials - done)


def eta_event(durations: list[float], done: int, *, finished_at, started_at, n_trials: int) -> dict | None:
    """The ``eta`` event after a trial ends (its start and end datetimes); appends its duration to
    ``durations``; None when the times are unknown."""
    if finished_at is None or started_at is None:
        return None
    durations.append((finished_at - started_at).total_seconds())
    return {
        "event": "eta",
        "trial_seconds": durations[-1],
        "mean_seconds": statistics.fmean(durations),
        "done": done,
        "n_trials": n_trials,
        "eta_seconds": trial_eta(durations, done=done, n_trials=n_trials),
    }
