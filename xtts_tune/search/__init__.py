"""The Optuna study: the search space (:mod:`~.space`), sampler and pruner (:mod:`~.settings`), the storage
(:mod:`~.storage`), what a study was run on (:mod:`~.fingerprint`), the runner (:mod:`~.runner`, the YAML
section is documented there), checkpoint retention (:mod:`~.retention`), dashboard notes (:mod:`~.notes`,
:mod:`~.dashboard`), the summary (:mod:`~.summary`) and seed confirmation (:mod:`~.confirm`)."""

from xtts_tune.lazy import lazy_exports

_API = {
    "run_search": "xtts_tune.search.runner",
    "trial_record": "xtts_tune.search.outcome",
    "load_study": "xtts_tune.search.storage",
    "default_storage": "xtts_tune.search.storage",
    "open_storage": "xtts_tune.search.storage",
    "study_names": "xtts_tune.search.storage",
    "SearchSettings": "xtts_tune.search.settings",
    "SearchSpace": "xtts_tune.search.space",
    "SearchSummary": "xtts_tune.search.summary",
    "confirm_top_trials": "xtts_tune.search.confirm",
    "score_on_test": "xtts_tune.search.holdout",
    "dashboard_command": "xtts_tune.search.dashboard",
}

__all__ = sorted(_API)
__getattr__, __dir__ = lazy_exports(__name__, _API)
