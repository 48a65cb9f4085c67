"""xtts-tune: hyperparameter search and overfitting diagnosis for fine-tuning XTTS v2 on small datasets."""

__version__ = "0.1.0"
