"""The data a study prepares once and every trial shares: validated clips, the saved split, cached features.

>>> from xtts_tune.config import load_config
>>> from xtts_tune.model.base import load_study_base
>>> cfg = load_config("studies/demo.yaml")
>>> data = prepare_data(cfg, load_study_base(cfg))
>>> len(data.clips), len(data.split.train), len(data.split.val)   # the demo trains on 8 of its 150 clips
(150, 8, 20)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from xtts_tune.config import StudyConfig
from xtts_tune.data.audio import describe_rates
from xtts_tune.data.clips import Clip, load_clips, validate_clips
from xtts_tune.data.content import AudioHashes, dataset_fingerprint
from xtts_tune.data.exclude import without_excluded
from xtts_tune.data.features import FeatureStore
from xtts_tune.data.split import Split, load_or_create_split
from xtts_tune.model.base import LoadedBase

logger = logging.getLogger(__name__)

TINY_TRAIN_CLIPS = 50
TINY_VAL_CLIPS = 5
"""Below these split sizes a dataset is tiny: the run goes on with a warning that names the sizes."""


def ensure_dataset(cfg: StudyConfig) -> list[Clip]:
    """The dataset's clips (generating the demo target voice first when ``data.demo_target`` asks for it)."""
    if cfg.data.demo_target and not cfg.data_path.exists():
        from xtts_tune.data.demo import ensure_demo_target

        logger.info("generating the demo target voice into %s", cfg.data_path)
        ensure_demo_target(cfg.data_path)
    return load_clips(cfg.data, Path(cfg.root))


@dataclass
class PreparedData:
    """Validated clips, the saved split and the feature cache: built once, shared by every trial."""

    clips: dict[str, Clip]
    split: Split
    fingerprint: str
    features: FeatureStore
    split_path: Path
    # validation conditioning latents, shared by the trials of a study (see TrialRun.evaluate)
    style_cache: dict = field(default_factory=dict, repr=False)
    # block-N inputs of the clips (xtts_tune.training.prefix_cache), created by the first trial that uses it
    prefix_cache: object | None = field(default=None, repr=False)
    audio_summary: str = ""
    longest_clip_s: float = 0.0
    """The longest training clip, in seconds (an out-of-memory line names it)."""
    """The clips' own sample rates, once (``clips: 48000 Hz (100), resampled to 22050 Hz``)."""


def validate_for_base(clips, base: LoadedBase, data_cfg, dataset, **kwargs):
    """:func:`validate_clips` with the base model's limits (its tokenizer, rate, longest wav and text) and the
    study's ``data`` floors: the one check of a study's clips and of its forgetting set."""
    args = base.trainer.args
    return validate_clips(
        clips,
        base.tokenizer,
        sample_rate=base.config.audio.sample_rate,
        max_wav_length=args.max_wav_length,
        max_text_tokens=args.max_text_length,
        min_seconds=data_cfg.min_seconds,
        silence_rms=data_cfg.silence_rms,
        dataset=dataset,
        **kwargs,
    )


def prepare_data(cfg: StudyConfig, base: LoadedBase, *, progress=None, use_cache: bool = True) -> PreparedData:
    """Load the dataset with coqui's formatter, leave out ``data.exclude``, validate every other clip, load or
    create the split."""
    clips = ensure_dataset(cfg)
    kept = without_excluded(clips, cfg.data, cfg.root)
    rates: dict[int, int] = {}
    lengths = validate_for_base(kept, base, cfg.data, cfg.data_path, progress=progress, rates=rates)
    audio_summary = describe_rates(rates, base.config.audio.sample_rate)
    logger.info("%s: %s", cfg.data_path, audio_summary)
    by_id = {c.id: c for c in kept}  # ids are unique (load_clips refuses duplicates)
    split = load_or_create_split(list(by_id), cfg.data, cfg.split_path, must_exist=bool(cfg.data.split_file))
    # data.train_count asks for few training clips on purpose (the demo): no warning then
    if not cfg.data.train_count and (len(split.train) < TINY_TRAIN_CLIPS or len(split.val) < TINY_VAL_CLIPS):
        logger.warning(
            "tiny dataset %s: %d clips, %d for training and %d for validation; so few clips are memorised at "
            "once and their validation loss is noise (XTTS fine-tunes usually have 1,000-3,000 clips)",
            cfg.data_path,
            len(by_id),
            len(split.train),
            len(split.val),
        )
    hashes = audio_hashes(cfg)
    # every clip on disk: what the dataset is; what the study leaves out is in its definition (a drift)
    fingerprint = dataset_fingerprint(clips, hashes)
    hashes.save()
    store = FeatureStore(
        base.trainer, by_id, base_fingerprint=base.fingerprint, cache_dir=cfg.cache_dir, use_cache=use_cache
    )
    longest = max((lengths[c] for c in split.train if c in lengths), default=0) / base.config.audio.sample_rate
    return PreparedData(
        by_id, split, fingerprint, store, cfg.split_path, audio_summary=audio_summary, longest_clip_s=longest
    )


def audio_hashes(cfg: StudyConfig) -> AudioHashes:
    """The study's cache of audio content hashes (``<study_dir>/cache/audio-sha256.json``)."""
    return AudioHashes(cfg.cache_dir / "audio-sha256.json")
