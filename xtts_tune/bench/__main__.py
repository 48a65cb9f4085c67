"""``python -m xtts_tune.bench`` (``make bench``; ``--real-size`` for ``make bench-real-size``)."""

from xtts_tune.bench.demo import main

raise SystemExit(main())
