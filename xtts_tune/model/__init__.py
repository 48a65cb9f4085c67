"""The base model: loading an XTTS v2 folder (:mod:`~.base`), freezing its GPT (:mod:`~.freezing`),
trial checkpoints against it (:mod:`~.checkpoint`) and speaking with a fine-tuned folder (:mod:`~.speak`)."""
