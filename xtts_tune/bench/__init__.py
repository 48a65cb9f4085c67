"""Benchmarks (``make bench``, ``make bench-search``, ``make bench-real-size``): the demo figures (:mod:`~.demo`), the
same fine-tune through coqui's stock Trainer (:mod:`~.stock_trainer`), search strategies replayed on tables of
measured curves (:mod:`~.search_table`, :mod:`~.search_record`, :mod:`~.search_replay`, :mod:`~.search_bench`),
and the real XTTS v2 GPT shape (:mod:`~.realsize`)."""

__all__: list[str] = []  # benchmarks run as modules (python -m xtts_tune.bench...), nothing to import
