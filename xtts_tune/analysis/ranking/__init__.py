"""A study's judgment: every trial's verdict, how it sounds, the one ranking, the recommendation with its
reasons and the search-space advice. Every consumer (summary, retention, report, notes, export) calls
:func:`~xtts_tune.analysis.ranking.order.rank`."""
