"""The offline HTML report of a study: Plotly figures (:mod:`~.figures`) on one page (:mod:`~.page`).
Never imports torch or coqui."""
