"""The study configuration's schema: the typed sections (``data``, ``model``, ``train``; ``search`` and
``diagnosis`` are read by their own modules), their keys and aliases, building and validating a config from a
dict, and the paths a config implies. The YAML's layout is described once, in :mod:`xtts_tune.config`, which
loads it; reading the file and applying overrides is :mod:`xtts_tune.overrides`. Both build on this module.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

from xtts_tune.errors import ConfigError
from xtts_tune.values import coerce

EMBEDDED_BASE = "embedded"
VAL_MAX = 200
"""The default cap on validation clips (``data.val_max``): at the users' size more cost evaluations, not rank."""


@dataclass
class DataConfig:
    path: str = "data/demo/target"
    """Dataset folder (LJSpeech layout: metadata.csv + wavs/), relative to the YAML's folder's parent."""
    formatter: str = "ljspeech"
    """coqui-tts formatter: ``ljspeech`` (``id|text|normalized_text``) or ``coqui`` (CSV with audio_file|text)."""
    metadata: str = ""
    """Metadata file name inside ``path``; empty means the formatter's default (metadata.csv)."""
    language: str = "en"
    val_fraction: float = 0.15
    val_count: int = 0
    """If > 0, use exactly this many validation clips instead of ``val_fraction``."""
    val_max: int = VAL_MAX
    """At most this many validation clips from ``val_fraction`` (0: no cap); the clips over it train. On the
    real hour 200 clips ranked trials as 300 did (``make bench-valnoise``, docs/search.md)."""
    test_fraction: float = 0.1
    """Clips held back from selection (at least 2): the winner and the guide's recipe are scored on them
    after the search. 0: no test part."""
    test_count: int = 0
    """If > 0, use exactly this many test clips instead of ``test_fraction``."""
    train_count: int = 0
    """If > 0, train on at most this many of the clips left after the validation split (drawn by
    ``split_seed``; the rest are unused). 0 trains on all of them. The demo uses it to overfit in a short run."""
    split_seed: int = 0
    split_file: str = ""
    """Use this saved split (clip ids) instead of ``<output_dir>/<study_name>/split.json`` (export sets it);
    it must exist."""
    demo_target: bool = False
    """Generate the demo target voice with espeak-ng when ``path`` is missing."""
    min_seconds: float = 0.5
    silence_rms: float = 1e-4
    """Clips whose RMS is below this are reported as silent."""
    exclude: list[str] | str = field(default_factory=list)
    """Clips left out before validation and the split: a file of clip ids (one a line, relative to the
    project root) or a list of ids (:mod:`xtts_tune.data.exclude`). Part of the study's definition."""
    forgetting_path: str = ""
    """Clips that are not the target voice (any speakers, any languages): a dataset folder or its metadata
    file (:mod:`xtts_tune.data.forgetting`). After a search every kept trial and the base are scored on it:
    what the fine-tune forgot. Empty: the embedded base's own held-out voice, or nothing on another base."""

    def validate(self, where: str) -> None:
        if self.formatter not in ("ljspeech", "coqui"):
            raise ConfigError(f"{where}: data.formatter must be 'ljspeech' or 'coqui', got {self.formatter!r}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ConfigError(f"{where}: data.val_fraction must be between 0 and 1, got {self.val_fraction}")
        if self.val_max < 0:
            raise ConfigError(f"{where}: data.val_max must be >= 0 (0: no cap), got {self.val_max}")
        if self.val_count < 0:
            raise ConfigError(f"{where}: data.val_count must be >= 0, got {self.val_count}")
        if not 0.0 <= self.test_fraction < 1.0 or self.test_count < 0:
            raise ConfigError(f"{where}: data.test_fraction must be in [0, 1) and data.test_count >= 0")
        if self.train_count < 0:
            raise ConfigError(f"{where}: data.train_count must be >= 0, got {self.train_count}")


@dataclass
class ModelConfig:
    freeze_conditioning: bool = True
    """Freeze the conditioning encoder and perceiver resampler (the guide: FREEZE_ENCODER = True)."""
    freeze_text_embedding: bool = False
    """Freeze the text token and position embeddings."""
    freeze_text_head: bool = False
    freeze_mel_embedding: bool = False
    """Freeze the audio-code token and position embeddings. With both embeddings frozen (and the conditioning),
    the backward pass stops above the frozen blocks: freezing 28 of 30 layers then saves compute and memory."""
    freeze_mel_head: bool = False

    def validate(self, where: str) -> None:  # booleans only; typed loading already checked them
        return None


@dataclass
class TrainConfig:
    freeze_depth: int = 2
    """Freeze the first N GPT transformer blocks (0..layers)."""
    learning_rate: float = 1e-4
    weight_decay: float = 0.1
    weight_decay_weights_only: bool = True
    """Apply weight decay to weight matrices only (not biases, norms, embeddings), as coqui's option does."""
    batch_size: int = 8
    grad_accum_steps: int = 1
    grad_clip_norm: float = 0.5
    max_epochs: int = 3
    max_steps: int = 0
    """Stop after this many optimizer steps (0 = no limit besides max_epochs)."""
    warmup_steps: int = 0
    """Linear learning-rate warm-up over the first N optimizer steps (0 = constant learning rate)."""
    eval_every: int = 10
    """Evaluate every N optimizer steps (and always at each epoch end)."""
    eval_at_start: bool = True
    """Evaluate the base model before the first step (gives the curve its starting point)."""
    patience: int = 2
    """Evaluations without an improvement of at least ``min_delta`` before early stopping."""
    min_delta: float = 0.01
    """Absolute improvement in validation loss that counts as better (like Keras / Lightning)."""
    augment_prob: float = 0.3
    noise_level_range: list[float] = field(default_factory=lambda: [0.001, 0.01])
    augment_variants: int = 4
    """Pre-computed noisy variants per clip (keeps the feature cache useful with augmentation on)."""
    seed: int = 0
    device: str = "auto"
    """auto | cpu | cuda | cuda:N"""
    precision: str = "fp32"
    """fp32 | bf16 | fp16 (autocast; GPU only, ignored on CPU)"""
    conditioning_slice: str = "random"
    """random: each training step draws a new conditioning slice of each clip (coqui's XTTSDataset); fixed:
    one seeded slice per clip and noise variant, which is what ``prefix_cache`` needs."""
    prefix_cache: bool = False
    """Compute the hidden states entering the first trainable block once per clip and reuse them in every
    trial of the same freeze depth (:mod:`xtts_tune.training.prefix_cache`). Needs the conditioning and both
    embeddings frozen and ``conditioning_slice: fixed``; the frozen blocks then run without dropout."""
    prefix_cache_dtype: str = "float16"
    """float16 | bfloat16 | float32: how cached hidden states are stored."""
    prefix_cache_max_gb: float = 0.0
    """Most GB the prefix cache may take on disk (0: no cap): past it, whole freeze depths are deleted, least
    recently used first, and recaptured when a trial needs them again."""
    save_checkpoint: bool = True
    num_threads: int = 0
    """torch CPU threads; 0 leaves torch's default."""

    def validate(self, where: str) -> None:
        checks = [
            (self.freeze_depth >= 0, "train.freeze_depth must be >= 0"),
            (self.learning_rate > 0, "train.learning_rate must be > 0"),
            (self.weight_decay >= 0, "train.weight_decay must be >= 0"),
            (self.batch_size >= 1, "train.batch_size must be >= 1"),
            (self.grad_accum_steps >= 1, "train.grad_accum_steps must be >= 1"),
            (self.grad_clip_norm >= 0, "train.grad_clip_norm must be >= 0 (0 disables clipping)"),
            (self.max_epochs >= 1, "train.max_epochs must be >= 1"),
            (self.max_steps >= 0, "train.max_steps must be >= 0"),
            (self.warmup_steps >= 0, "train.warmup_steps must be >= 0"),
            (self.eval_every >= 1, "train.eval_every must be >= 1"),
            (self.patience >= 1, "train.patience must be >= 1"),
            (self.min_delta >= 0, "train.min_delta must be >= 0"),
            (0.0 <= self.augment_prob <= 1.0, "train.augment_prob must be in [0, 1]"),
            (
                len(self.noise_level_range) == 2 and 0 <= self.noise_level_range[0] <= self.noise_level_range[1],
                "train.noise_level_range must be [low, high] with 0 <= low <= high",
            ),
            (self.augment_variants >= 1, "train.augment_variants must be >= 1"),
            (self.prefix_cache_max_gb >= 0, "train.prefix_cache_max_gb must be >= 0 (0: no cap)"),
            (self.precision in ("fp32", "bf16", "fp16"), "train.precision must be fp32, bf16 or fp16"),
            (self.conditioning_slice in ("random", "fixed"), "train.conditioning_slice must be random or fixed"),
            (
                self.prefix_cache_dtype in ("float16", "bfloat16", "float32"),
                "train.prefix_cache_dtype must be float16, bfloat16 or float32",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"{where}: {message}")


@dataclass
class StudyConfig:
    study_name: str = "demo"
    base_model: str = EMBEDDED_BASE
    output_dir: str = "runs/demo"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    search: dict[str, Any] = field(default_factory=dict)
    diagnosis: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    """Written by ``xtts-tune export``: where this config came from. Informational."""
    source: str = field(default="<defaults>", repr=False, compare=False)
    """The file this config came from (for error messages); not a YAML key."""
    root: str = field(default=".", repr=False, compare=False)
    """Folder that relative paths are resolved against (the YAML's project root)."""

    def validate(self, *, combinations: bool = True) -> None:
        """Check every value, and (``combinations``) the rules between keys."""
        where = self.source
        if not self.study_name or any(c in self.study_name for c in "/\\ "):
            raise ConfigError(f"{where}: study_name must be a non-empty name without spaces or slashes")
        self.data.validate(where)
        self.model.validate(where)
        self.train.validate(where)
        m, t = self.model, self.train
        if not combinations or not t.prefix_cache:
            return
        if t.conditioning_slice != "fixed":
            raise ConfigError(
                f"{where}: train.prefix_cache needs train.conditioning_slice: fixed (the cache holds one "
                "conditioning slice per clip); set it or turn prefix_cache off"
            )
        if not (m.freeze_conditioning and m.freeze_text_embedding and m.freeze_mel_embedding):
            raise ConfigError(
                f"{where}: train.prefix_cache needs model.freeze_conditioning, model.freeze_text_embedding and "
                "model.freeze_mel_embedding true (what feeds the frozen blocks must not train); set them or turn "
                "prefix_cache off"
            )

    def resolve(self, path: str) -> Path:
        p = Path(path).expanduser()
        return p if p.is_absolute() else Path(self.root) / p

    @property
    def data_path(self) -> Path:
        return self.resolve(self.data.path)

    @property
    def output_path(self) -> Path:
        return self.resolve(self.output_dir)

    @property
    def study_dir(self) -> Path:
        """The study's own folder, ``<output_dir>/<study_name>``: its trials, split, feature cache, artifacts
        and confirmation runs. No other study writes there (:mod:`xtts_tune.search.home` enforces it)."""
        return self.output_path / self.study_name

    @property
    def split_path(self) -> Path:
        """The study's saved train/validation split: ``data.split_file`` or ``<study_dir>/split.json``."""
        return self.resolve(self.data.split_file) if self.data.split_file else self.study_dir / "split.json"

    @property
    def cache_dir(self) -> Path:
        """Feature, prefix and audio-hash caches: the study's (``cache/`` next to ``data.split_file``, as an
        exported YAML's final run has it) when there is one, else ``<study_dir>/cache``."""
        if self.data.split_file and (self.split_path.parent / "cache").is_dir():
            return self.split_path.parent / "cache"
        return self.study_dir / "cache"

    @property
    def report_path(self) -> Path:
        """Where ``search`` and ``report`` write the study's HTML report by default."""
        return study_outputs(self.root, self.study_name)[0]

    @property
    def export_path(self) -> Path:
        """Where ``search`` and ``export`` write the study's best config by default."""
        return study_outputs(self.root, self.study_name)[1]

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("source")
        d.pop("root")
        return d


_SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}
_NOT_KEYS = {"source", "root"}

SEARCH_KEYS = (
    "space",
    "sampler",
    "pruner",
    "enqueue",
    "enqueue_guide",
    "keep_top_k",
    "samples",
    "short_samples",
    "sample_max_seconds",
    "forgetting",
    "forgetting_samples",
    "heartbeat_interval",
    "grace_period",
    "max_retry",
    "fidelity",
)
"""The keys of the ``search`` section (:mod:`xtts_tune.search.settings` reads them)."""

ALIASES = {
    "lr": "learning_rate",
    "wd": "weight_decay",
    "epochs": "max_epochs",
    "steps": "max_steps",
    "bs": "batch_size",
    "batch": "batch_size",
    "accum": "grad_accum_steps",
    "grad_accum": "grad_accum_steps",
    "clip": "grad_clip_norm",
    "freeze": "freeze_depth",
    "frozen_layers": "freeze_depth",
    "warmup": "warmup_steps",
    "lang": "language",
    "val_split": "val_fraction",
    "val_size": "val_count",
}
"""Names users reach for (other tools' spellings) and the key each one means."""


def section_fields(cls) -> dict[str, Any]:
    """``{key: type}`` of a config dataclass (StudyConfig or one of its sections), YAML keys only."""
    return _fields(cls)


def section_class(name: str):
    """The dataclass of a typed section (``data``, ``model``, ``train``), or None for another name."""
    return _SECTIONS.get(name)


def _fields(cls) -> dict[str, Any]:
    hints = get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.name not in _NOT_KEYS}


def unknown_key(key: str, valid: list[str], where: str, section: str | None) -> ConfigError:
    """The error for an unknown key, naming the closest valid one (a common alias: the key it stands for)."""
    full = f"{section}.{key}" if section else key
    alias = ALIASES.get(key.lower())
    close = [alias] if alias in valid else difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    hint = f"; did you mean '{(section + '.') if section else ''}{close[0]}'?" if close else ""
    return ConfigError(f"{where}: unknown key '{full}'{hint} (valid: {', '.join(sorted(valid))})")


def _build(cls, raw: dict[str, Any], where: str, section: str | None):
    if not isinstance(raw, dict):
        name = section or "the top level"
        raise ConfigError(f"{where}: '{name}' must be a mapping of keys to values, got {type(raw).__name__}")
    fields = _fields(cls)
    kwargs = {}
    for key, value in raw.items():
        if key not in fields:
            raise unknown_key(str(key), list(fields), where, section)
        full = f"{section}.{key}" if section else key
        if section is None and key in _SECTIONS:
            kwargs[key] = _build(_SECTIONS[key], value or {}, where, key)
        else:
            kwargs[key] = coerce(value, fields[key], full, where)
    return cls(**kwargs)


def config_from_dict(raw: dict[str, Any], *, source: str = "<dict>", root: str | Path = ".") -> StudyConfig:
    cfg = _build(StudyConfig, raw or {}, source, None)
    cfg.source = source
    cfg.root = str(root)
    return cfg


def project_root(config_path: str | Path) -> Path:
    """The folder a study YAML's relative paths resolve against: the folder above ``studies/`` for a YAML in
    ``<project>/studies/``, else the YAML's own folder."""
    folder = Path(config_path).resolve().parent
    return folder.parent if folder.name == "studies" else folder


def study_outputs(root: str | Path, study_name: str) -> tuple[Path, Path]:
    """The default (report, exported YAML) paths of a study: ``<root>/studies/<name>-report.html`` and
    ``<root>/studies/<name>-best.yaml``. ``search``, ``report`` and ``export`` all use these."""
    studies = Path(root).resolve() / "studies"
    return studies / f"{study_name}-report.html", studies / f"{study_name}-best.yaml"


def check_freeze_depth(value: int, num_layers: int, where: str, key: str = "train.freeze_depth") -> None:
    """Refuse a freeze depth outside ``0..num_layers`` (the base model's GPT layers) with one line."""
    if not 0 <= value <= num_layers:
        raise ConfigError(
            f"{where}: {key} is {value} but the base model has {num_layers} GPT layers; use 0..{num_layers}"
        )
