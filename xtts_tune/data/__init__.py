"""The data: clips read through coqui's formatters and validated (:mod:`~.clips`), the saved split
(:mod:`~.split`), the demo voices (:mod:`~.demo`), noise augmentation (:mod:`~.augmentation`), cached
per-clip features and batches (:mod:`~.features`). What a study prepares once with the base model is
:mod:`xtts_tune.training.prepare`: the data layer never imports the model."""

from xtts_tune.lazy import lazy_exports

_API = {
    "Clip": "xtts_tune.data.clips",
    "load_clips": "xtts_tune.data.clips",
    "validate_clips": "xtts_tune.data.clips",
    "DataValidationError": "xtts_tune.data.clips",
    "Split": "xtts_tune.data.split",
    "load_or_create_split": "xtts_tune.data.split",
    "generate_demo_data": "xtts_tune.data.demo",
    "ensure_demo_target": "xtts_tune.data.demo",
    "FeatureStore": "xtts_tune.data.features",
    "dataset_fingerprint": "xtts_tune.data.content",
}

__all__ = sorted(_API)
__getattr__, __dir__ = lazy_exports(__name__, _API)
