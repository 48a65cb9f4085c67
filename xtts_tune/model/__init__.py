"""The base model: loading an XTTS v2 folder (:mod:`~.base`), freezing its GPT (:mod:`~.freezing`),
trial checkpoints against it (:mod:`~.checkpoint`) and speaking with a fine-tuned folder (:mod:`~.speak`)."""

from xtts_tune.lazy import lazy_exports

_API = {
    "LoadedBase": "xtts_tune.model.base",
    "load_base": "xtts_tune.model.base",
    "load_study_base": "xtts_tune.model.base",
    "pick_device": "xtts_tune.model.base",
    "has_decoder": "xtts_tune.model.base",
    "BaseModelError": "xtts_tune.model.base",
    "apply_freezing": "xtts_tune.model.freezing",
    "count_parameters": "xtts_tune.model.freezing",
    "save_trial_checkpoint": "xtts_tune.model.checkpoint",
    "load_trained_tensors": "xtts_tune.model.checkpoint",
    "synthesize": "xtts_tune.model.speak",
    "speak_samples": "xtts_tune.model.speak",
    "SpeakError": "xtts_tune.model.speak",
    "build_released_folder": "xtts_tune.model.released",
}

__all__ = sorted(_API)
__getattr__, __dir__ = lazy_exports(__name__, _API)
