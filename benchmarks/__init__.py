"""The benchmarks (``make bench…``), kept out of the installed package as Optuna keeps ``benchmarks/`` out of
``optuna/``: they import ``xtts_tune``, never the other way round, and a user who installs the library gets none
of them.

Rooms:

- :mod:`benchmarks.demo` (``make bench``): the demo figures; :mod:`benchmarks.demo_search` its search part;
  :mod:`benchmarks.stock_trainer` the same fine-tune through coqui's stock Trainer; :mod:`benchmarks.prefix`
  the prefix cache's figures.
- :mod:`benchmarks.realsize` (``make bench-real-size``): the real XTTS v2 GPT shape with random weights.
- :mod:`benchmarks.search` (``make bench-search``): search strategies replayed on tables of measured curves
  (the tables are the ``search-table-*.json`` files beside this file).
- :mod:`benchmarks.probes` (``make bench-probes``) and :mod:`benchmarks.flag_effect`.

Run them from the project root as modules (``python -m benchmarks…``); the Makefile does.
"""

__all__: list[str] = []  # benchmarks run as modules, nothing to import
