"""The numbers a verdict weighs a curve by: its own evaluation noise and the trend of a series over a window.

A learning curve of a small dataset wiggles: validation loss on 20 clips moves up and down by a little
between evaluations even while the model keeps improving. A rise is only evidence when it is larger than
those wiggles and lasts, so :func:`curve_noise` measures them on the curve itself.

**Noise** (:func:`curve_noise`): the median height of the curve's *reversals*. A reversal is an evaluation
where the curve changes direction (a local peak or dip) other than its minimum; its height is the smaller of
the two moves around it (a bump of +0.02 followed by −0.03 has height 0.02). A curve that falls smoothly to
a minimum and then rises smoothly has no reversal besides its minimum, and its noise is only the floor
(``noise_floor_rel`` of the minimum, in :class:`~xtts_tune.analysis.curve.thresholds.DiagnosisThresholds`); a
curve whose earlier bumps recovered has a noise as large as those bumps.

>>> round(curve_noise([4.0, 3.5, 3.6, 3.3, 3.35, 3.2, 3.25]), 3)
0.075
>>> curve_noise([4.0, 3.5, 3.3, 3.2, 3.4])
0.0

**Trend** (:func:`fitted_change`): the least-squares line through a series over a window, as the change of
that line from the window's first step to its last, relative to its value at the first step. One noisy
interval at the end does not flip it.

>>> round(fitted_change([0, 1, 2, 3], [3.0, 2.5, 2.2, 2.3]), 3)
-0.252
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["curve_noise", "fitted_change", "trailing_run"]


def curve_noise(values: Sequence[float]) -> float:
    """The median height of the series' reversals other than at its minimum (0.0 when it has none)."""
    v = np.asarray([x for x in values if math.isfinite(x)], dtype=float)
    if v.size < 3:
        return 0.0
    best = int(np.argmin(v))
    d = np.diff(v)
    heights = [min(abs(d[i - 1]), abs(d[i])) for i in range(1, v.size - 1) if i != best and d[i - 1] * d[i] < 0]
    return float(np.median(heights)) if heights else 0.0


def fitted_change(steps: Sequence[float], values: Sequence[float]) -> float | None:
    """Relative change of the least-squares line through ``values`` from the first step to the last
    (``None`` with fewer than two finite values or a line through zero at the first step)."""
    pairs = [(float(s), float(x)) for s, x in zip(steps, values) if math.isfinite(x)]
    if len(pairs) < 2 or pairs[0][0] == pairs[-1][0]:
        return None
    s, x = np.asarray(pairs).T
    slope, intercept = np.polyfit(s, x, 1)
    start = slope * s[0] + intercept
    if start == 0 or not math.isfinite(start):
        return None
    return float(slope * (s[-1] - s[0]) / start)


def trailing_run(values: Sequence[float], level: float) -> int:
    """How many evaluations at the end of ``values`` are all above ``level``.

    >>> trailing_run([3.0, 3.2, 2.9, 3.1, 3.2], 3.05)
    2
    """
    run = 0
    for x in reversed(list(values)):
        if not (math.isfinite(x) and x > level):
            break
        run += 1
    return run
