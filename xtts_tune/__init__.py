"""xtts-tune: hyperparameter search and overfitting diagnosis for fine-tuning XTTS v2 on small datasets.

The public API, in the order data flows (each function's docstring has a short example)::

    from xtts_tune import load_config, run_trial, run_search, diagnose, recommend, build_report, export_best

    cfg = load_config("studies/demo.yaml")             # config: typed, validated YAML
    result = run_trial(cfg)                            # training: one real fine-tune, its curve and checkpoint
    summary = run_search(cfg, n_trials=20)             # search: the Optuna study, stored in SQLite
    diagnose(result.curve).verdict                     # analysis: healthy / overfitting / ...
    study = load_study("demo", summary.storage)
    recommend(study)                                   # analysis: the recommended trial, with reasons
    build_report(study, "studies/demo-report.html")    # report: one offline HTML file
    export_best(study, "studies/demo-best.yaml")       # export: the YAML that trains the final model
    final = run_final_training("studies/demo-best.yaml")  # the final fine-tune: a loadable XTTS folder
    synthesize(final.model_dir, "Hello.", "my_clip.wav", "hello.wav")   # listen (needs a HiFi-GAN decoder)
    doc = run_data_curve("studies/demo-best.yaml")     # would more data help? one run per data fraction

The names are imported on first use, so ``import xtts_tune.analysis`` (or the report, or the export) never
pulls in torch or coqui.
"""

from __future__ import annotations

from xtts_tune.lazy import lazy_exports

__version__ = "0.1.0"

_API = {
    "load_config": "xtts_tune.config",
    "run_trial": "xtts_tune.training.loop",
    "run_search": "xtts_tune.search.runner",
    "load_study": "xtts_tune.search.storage",
    "diagnose": "xtts_tune.analysis.curve.diagnosis",
    "recommend": "xtts_tune.analysis.ranking.recommend",
    "analyze": "xtts_tune.analysis.study_analysis",
    "build_report": "xtts_tune.report.page",
    "export_best": "xtts_tune.export",
    "run_final_training": "xtts_tune.training.final",
    "confirm_top_trials": "xtts_tune.search.confirm",
    "synthesize": "xtts_tune.model.speak",
    "run_data_curve": "xtts_tune.training.data_curve",
    "fit_power_law": "xtts_tune.analysis.data_curve",
    "UserError": "xtts_tune.errors",
}

__all__ = ["__version__", *_API]


__getattr__, __dir__ = lazy_exports(__name__, _API)
