"""The offline HTML report of a study: Plotly figures (:mod:`~.figures`) on one page (:mod:`~.page`).
Never imports torch or coqui."""

from xtts_tune.lazy import lazy_exports

_API = {
    "build_report": "xtts_tune.report.page",
    "all_curves": "xtts_tune.report.figures",
    "overfit_map": "xtts_tune.report.figures",
    "samples_section": "xtts_tune.report.samples",
}

__all__ = sorted(_API)
__getattr__, __dir__ = lazy_exports(__name__, _API)
