"""Early stopping on the validation loss, with an absolute ``min_delta`` (as in Keras and Lightning).

The guide's two examples, with min_delta 0.01 and patience 1:

>>> stop = EarlyStopping(patience=1, min_delta=0.01)
>>> [stop.update(v, i) for i, v in enumerate([3.412, 3.427])], stop.best_index
([False, True], 0)
>>> stop = EarlyStopping(patience=1, min_delta=0.01)
>>> [stop.update(v, i) for i, v in enumerate([3.412, 3.350, 3.380])], stop.best_index
([False, False, True], 1)
"""

from __future__ import annotations

import math


class EarlyStopping:
    """Stop after ``patience`` evaluations without an improvement of at least ``min_delta`` (absolute).

    ``min_delta`` is absolute, in loss units (as in Keras and Lightning): with the guide's min_delta 0.01,
    3.412 → 3.350 is an improvement (−0.062) and 3.350 → 3.380 is not. The best value and step are the
    lowest validation loss seen, whether or not it beat the previous best by ``min_delta``.
    """

    def __init__(self, patience: int, min_delta: float):
        self.patience = patience
        self.min_delta = min_delta
        self.best = math.inf
        self.best_index: int | None = None
        self._reference = math.inf  # the value an improvement must beat by min_delta
        self.bad_evals = 0

    def update(self, value: float, index: int) -> bool:
        """Record one validation loss; return True when training should stop."""
        if not math.isfinite(value):
            self.bad_evals += 1
            return self.bad_evals >= self.patience
        if value < self.best:
            self.best, self.best_index = value, index
        if value < self._reference - self.min_delta:
            self._reference = value
            self.bad_evals = 0
        else:
            self.bad_evals += 1
        return self.bad_evals >= self.patience
