"""The training: one trial's fine-tune (:mod:`~.loop`), its losses through the caches (:mod:`~.losses`,
:mod:`~.prefix_cache`), early stopping (:mod:`~.early_stopping`), its result (:mod:`~.result`), the final
fine-tune and its XTTS folder (:mod:`~.final`), the data curve's runs (:mod:`~.data_curve`) and the tiny embedded base's build (:mod:`~.tiny_base`)."""

from xtts_tune.lazy import lazy_exports

_API = {
    "run_trial": "xtts_tune.training.loop",
    "validation_loss": "xtts_tune.training.evaluation",
    "TrialResult": "xtts_tune.training.result",
    "run_final_training": "xtts_tune.training.final",
    "FinalTraining": "xtts_tune.training.final",
    "EarlyStopping": "xtts_tune.training.early_stopping",
    "PrefixCache": "xtts_tune.training.prefix_cache",
    "prepare_data": "xtts_tune.training.prepare",
    "run_data_curve": "xtts_tune.training.data_curve",
}

__all__ = sorted(_API)
__getattr__, __dir__ = lazy_exports(__name__, _API)
