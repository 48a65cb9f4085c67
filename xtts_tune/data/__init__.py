"""The data: clips read through coqui's formatters and validated (:mod:`~.clips`), the saved split
(:mod:`~.split`), the demo voices (:mod:`~.demo`), noise augmentation (:mod:`~.augmentation`), cached
per-clip features and batches (:mod:`~.features`), and what a study prepares once (:mod:`~.prepare`)."""
