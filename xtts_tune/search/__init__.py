"""The Optuna study: the search space (:mod:`~.space`), sampler and pruner (:mod:`~.settings`), the storage
(:mod:`~.storage`), what a study was run on (:mod:`~.fingerprint`), the runner (:mod:`~.runner`, the YAML
section is documented there), checkpoint retention (:mod:`~.retention`), dashboard notes (:mod:`~.notes`,
:mod:`~.dashboard`), the summary (:mod:`~.summary`) and seed confirmation (:mod:`~.confirm`)."""
