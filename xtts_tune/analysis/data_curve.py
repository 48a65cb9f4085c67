"""Would more data help? A saturating power law fitted to the data curve, with its uncertainty (no torch).

The test loss of a run trained on ``n`` clips is modelled as ``L(n) = a + b * n**-c`` (a >= 0 the loss that no
amount of this data removes, b >= 0, 0.01 <= c <= 3), fitted by least squares (scipy's ``curve_fit``). The
question it answers: with twice the clips of the largest run, how much lower would the test loss be? The
change is ``L(2 n) / L(n) - 1`` on the fitted curve at the largest ``n``.

Its uncertainty is a parametric bootstrap: pseudo-curves are the fitted values plus Gaussian noise of the
fit's own residual standard deviation (``sqrt(SSR / (k - 3))`` for ``k`` points), each refitted; the ± is
the standard deviation of their predicted change. Four points leave one degree of freedom, so the ± is
itself rough: more fractions make it firmer. When the predicted gain is within its ± (or under
:data:`MIN_GAIN`), the sentence is that the curve has flattened. Fewer than :data:`MIN_POINTS` points, or a fit that does not
converge, is said as it is, never papered over.

>>> n = [8, 16, 32, 64, 128]
>>> fit = fit_power_law(n, [2.0 + 3.0 * x**-0.5 for x in n])
>>> round(fit.a, 3), round(fit.b, 3), round(fit.c, 3)
(2.0, 3.0, 0.5)
>>> sentence(fit)
'twice your data: test loss -3.4 % (±0.0)'
>>> sentence(fit_power_law([8, 16, 32, 64], [3.0, 3.0, 3.0, 3.0]))
'the curve has flattened: more of the same data will not help (twice your data: test loss +0.0 % ±0.0)'
>>> sentence(fit_power_law([8, 16, 32], [3.0, 2.5, 2.2]))
'3 points: a curve needs at least 4 to be fitted with its uncertainty (add fractions, e.g. 0.125 0.25 0.5 1)'
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MIN_POINTS = 4
"""Points (data fractions) a fit with an uncertainty needs: three parameters and one degree of freedom."""

MIN_GAIN = 0.005
"""A predicted gain of twice the data under this (0.5 % of the test loss) counts as flattened, whatever its ±."""

BOOTSTRAP = 100
"""Pseudo-curves refitted for the uncertainty."""

_BOUNDS = ([0.0, 0.0, 0.01], [np.inf, np.inf, 3.0])


@dataclass(frozen=True)
class PowerLawFit:
    """A fitted data curve ``L(n) = a + b * n**-c`` and what it predicts for twice the largest ``n``."""

    n: tuple[float, ...]
    loss: tuple[float, ...]
    a: float | None = None
    b: float | None = None
    c: float | None = None
    doubled_change: float | None = None
    """Relative change of the test loss from the largest ``n`` to twice it, on the fitted curve (-0.03: -3 %)."""
    doubled_sd: float | None = None
    """The change's bootstrap standard deviation (None without one: exactly 3 points)."""
    problem: str | None = None
    """Why there is no fit (too few points, no convergence); None when there is one."""

    @property
    def ok(self) -> bool:
        return self.problem is None

    @property
    def flattened(self) -> bool:
        """The predicted gain of twice the data is within its uncertainty, or under :data:`MIN_GAIN`."""
        return self.ok and -self.doubled_change <= max(self.doubled_sd or 0.0, MIN_GAIN)

    def predict(self, n: float | Sequence[float]) -> np.ndarray:
        """The fitted loss at ``n`` clips."""
        return _law(np.asarray(n, dtype=float), self.a, self.b, self.c)

    def to_dict(self) -> dict:
        return {
            "n": list(self.n),
            "loss": list(self.loss),
            "a": self.a,
            "b": self.b,
            "c": self.c,
            "doubled_change": self.doubled_change,
            "doubled_sd": self.doubled_sd,
            "flattened": self.flattened,
            "problem": self.problem,
            "sentence": sentence(self),
        }


def _law(n, a, b, c):
    return a + b * np.power(n, -c)


def _fit(n: np.ndarray, y: np.ndarray) -> np.ndarray:
    from scipy.optimize import curve_fit

    start = [max(0.0, float(y.min()) * 0.9), max(1e-6, float(y.max() - y.min())) * float(n.min()) ** 0.5, 0.5]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an ill-conditioned covariance: the bootstrap gives the uncertainty
        params, _ = curve_fit(_law, n, y, p0=start, bounds=_BOUNDS, maxfev=20000)
    return params


def _doubled(params: np.ndarray, n_max: float) -> float:
    here, there = _law(np.array([n_max, 2 * n_max]), *params)
    return float(there / here - 1) if here > 0 else math.nan


def fit_power_law(
    n: Sequence[float], loss: Sequence[float], *, min_points: int = MIN_POINTS, seed: int = 0
) -> PowerLawFit:
    """Fit ``loss = a + b * n**-c`` to the points (``n`` clips, test loss); see the module docstring.

    ``min_points=3`` fits three points exactly (no uncertainty): how docs/data-curve.md checks whether the
    smaller fractions predicted the largest."""
    pairs = sorted((float(x), float(y)) for x, y in zip(n, loss) if y is not None and math.isfinite(float(y)))
    xs, ys = (tuple(p[0] for p in pairs), tuple(p[1] for p in pairs))
    k = len(set(xs))
    if k < max(3, min_points):
        return PowerLawFit(
            xs,
            ys,
            problem=f"{k} point{'s' if k != 1 else ''}: a curve needs at least {max(3, min_points)} to be fitted with "
            "its uncertainty (add fractions, e.g. 0.125 0.25 0.5 1)",
        )
    x, y = np.asarray(xs), np.asarray(ys)
    try:
        params = _fit(x, y)
    except (RuntimeError, ValueError) as exc:
        return PowerLawFit(xs, ys, problem=f"the power law did not fit these {k} points ({exc})")
    change = _doubled(params, x.max())
    sd = None
    if len(x) > 3:
        resid = y - _law(x, *params)
        noise = math.sqrt(float(resid @ resid) / (len(x) - 3))
        rng = np.random.default_rng(seed)
        fitted = _law(x, *params)
        draws = []
        for _ in range(BOOTSTRAP):
            try:
                draws.append(_doubled(_fit(x, fitted + rng.normal(0.0, noise, len(x))), x.max()))
            except (RuntimeError, ValueError):
                continue
        draws = [d for d in draws if math.isfinite(d)]
        sd = float(np.std(draws)) if draws else None
    a, b, c = (float(p) for p in params)
    return PowerLawFit(xs, ys, a=a, b=b, c=c, doubled_change=change, doubled_sd=sd)


def sentence(fit: PowerLawFit) -> str:
    """The one line the data curve ends with: the gain of twice the data, or that the curve has flattened."""
    if not fit.ok:
        return fit.problem
    change = round(100 * fit.doubled_change, 1) + 0.0  # + 0.0: never "-0.0"
    sd = f"±{100 * fit.doubled_sd:.1f}" if fit.doubled_sd is not None else "± unknown: 3 points fit exactly"
    if fit.flattened and -fit.doubled_change > (fit.doubled_sd or 0.0):  # a real gain, but under MIN_GAIN
        return (
            f"the curve has flattened: twice your data would lower the test loss by only {-change:.1f} % ({sd}), "
            f"under {100 * MIN_GAIN:g} %"
        )
    if fit.flattened:
        return (
            "the curve has flattened: more of the same data will not help "
            f"(twice your data: test loss {change:+.1f} % {sd})"
        )
    return f"twice your data: test loss {change:+.1f} % ({sd})"


def fit_points(points: Sequence[dict], *, min_points: int = MIN_POINTS) -> PowerLawFit:
    """:func:`fit_power_law` of a data curve's points (``{"train_clips", "test_loss"}`` each, as
    :func:`xtts_tune.training.data_curve.run_data_curve` writes them)."""
    return fit_power_law([p["train_clips"] for p in points], [p["test_loss"] for p in points], min_points=min_points)


def budget_note(points: Sequence[dict]) -> str | None:
    """A warning when runs were still improving at their last step (and early stopping did not end them):
    then the step budget, not the data, limited them, and a longer budget may change the curve. None when
    every run found its best before the end or was stopped early.

    >>> budget_note([{"fraction": 0.5, "best_step": 80, "steps": 100}, {"fraction": 1.0, "best_step": 100, "steps": 100}])
    'the 100 % run was still improving at its last step (100): the step budget, not only the data, limited it; a longer budget (train.max_steps or train.max_epochs) may change the curve'
    """
    late = [
        p
        for p in sorted(points, key=lambda p: p["fraction"])
        if p.get("steps") and p.get("best_step", 0) >= p["steps"] and p.get("stop_reason") != "early_stopped"
    ]
    if not late:
        return None
    names = ", ".join(f"{100 * p['fraction']:g} %" for p in late)
    return (
        f"the {names} run{'s were' if len(late) > 1 else ' was'} still improving at {'their' if len(late) > 1 else 'its'} "
        f"last step ({late[-1]['steps']}): the step budget, not only the data, limited "
        f"{'them' if len(late) > 1 else 'it'}; a longer budget (train.max_steps or train.max_epochs) may change the curve"
    )


def hindsight(points: Sequence[dict]) -> dict | None:
    """How well the smaller fractions predicted the largest: the fit without the largest point, its
    prediction there against the measured loss. None with fewer than 4 points (3 to fit, 1 to check).

    >>> pts = [{"train_clips": n, "test_loss": 2 + 3 * n**-0.5} for n in (8, 16, 32, 64)]
    >>> h = hindsight(pts)
    >>> h["n"], round(h["measured"], 4), round(h["predicted"], 4), round(h["error"], 4)
    (64, 2.375, 2.375, 0.0)
    """
    pts = sorted(points, key=lambda p: p["train_clips"])
    if len(pts) < 4:
        return None
    fit = fit_points(pts[:-1], min_points=3)
    last = pts[-1]
    if not fit.ok:
        return {"n": last["train_clips"], "measured": last["test_loss"], "predicted": None, "error": None}
    predicted = float(fit.predict(last["train_clips"]))
    return {
        "n": last["train_clips"],
        "measured": last["test_loss"],
        "predicted": predicted,
        "error": predicted / last["test_loss"] - 1,
        "fit_on": [p["train_clips"] for p in pts[:-1]],
    }
