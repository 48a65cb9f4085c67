"""``python -m benchmarks`` (``make bench``; ``--real-size`` for ``make bench-real-size``)."""

from benchmarks.demo import main

raise SystemExit(main())
