"""Benchmarks (``make bench``, ``make bench-real-size``): the demo figures (:mod:`~.demo`), the same fine-tune
through coqui's stock Trainer (:mod:`~.stock_trainer`), and the real XTTS v2 GPT shape (:mod:`~.realsize`)."""
