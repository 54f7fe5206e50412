"""Searches on a one-dimensional marginal posterior (of tau, or a normal mixture), elementwise over a batch: the
root of CDF = p, the mode, the shortest interval.

Each works on any :class:`Distribution` (``cdf``, ``pdf``, ``dlogpdf`` and ``quantile`` on arrays of points, the
last axis the points of one parameter), so that :class:`metabac.bayes_posterior.TauPosterior` and
:class:`metabac.bayes_mixture.NormalMixture` share them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]
RTOL = 1e-13


class Distribution(Protocol):
    """What the searches need of a batch of one-dimensional distributions."""

    def cdf(self, x: Array) -> Array: ...

    def pdf(self, x: Array) -> Array: ...

    def dlogpdf(self, x: Array) -> Array: ...

    def cdf_pdf_dlogpdf(self, x: Array) -> tuple[Array, Array, Array]: ...

    def quantile(self, p: Array) -> Array: ...


def solve_cdf(cdf_pdf: Callable[[Array], tuple[Array, Array]], p: Array, lo: Array, hi: Array, x: Array,
              iterations: int = 100) -> Array:
    """Solve cdf(x) = p for every element: Newton steps kept inside the bracket [lo, hi] that holds the root, a
    bisection where a step would leave it; stops when a step falls below 10^-13 relative, or the CDF is within
    10^-14·min(p, 1 − p) of p (the rounding of a sum of a few hundred terms)."""
    lo, hi, x = lo.copy(), hi.copy(), x.copy()
    active = np.isfinite(p) & (lo < hi)
    close = 1e-14 * np.minimum(p, 1 - p)
    for _ in range(iterations):
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            cdf, pdf = cdf_pdf(x)
            f = cdf - p
            below = f < 0
            lo, hi = np.where(below, x, lo), np.where(below, hi, x)
            step = x - f / pdf
            inside = np.isfinite(step) & (step >= lo) & (step <= hi)
            new = np.where(inside, step, (lo + hi) / 2)
        done = (np.abs(new - x) <= RTOL * np.abs(x)) | (np.abs(f) <= close)
        x = np.where(active, new, x)
        active &= ~done
        if not active.any():
            break
    return x


def shortest_interval(dist: Distribution, level: float, start: tuple[Array, Array], peak: Array,
                      lower_bounded: bool) -> tuple[Array, Array]:
    """The shortest interval [a, b] holding ``level`` (a fraction) of a unimodal distribution with mode ``peak``:
    F(b) − F(a) = level and f(a) = f(b), solved by Newton's method in (a, b) from ``start`` (the equal-tailed
    interval), with steps halved until a < peak < b. For a density on [0, inf) whose value at 0 is at least
    f(Q(level)) it is [0, Q(level)] (Box & Tiao's highest posterior density interval)."""
    a, b = start[0].copy(), start[1].copy()
    at_zero = np.zeros(a.shape, dtype=bool)
    if lower_bounded:
        upper = dist.quantile(np.full(a.shape + (1,), level))[..., 0]
        density = dist.pdf(np.stack([np.zeros_like(upper), upper], axis=-1))
        at_zero = density[..., 0] >= density[..., 1]
    for _ in range(60):
        both = np.stack([a, b], axis=-1)
        cdf, pdf, slope = dist.cdf_pdf_dlogpdf(both)
        r1 = cdf[..., 1] - cdf[..., 0] - level
        with np.errstate(divide="ignore", invalid="ignore"):
            r2 = np.log(pdf[..., 0]) - np.log(pdf[..., 1])
            det = pdf[..., 0] * slope[..., 1] - pdf[..., 1] * slope[..., 0]
            da = (r1 * slope[..., 1] + pdf[..., 1] * r2) / det
            db = (pdf[..., 0] * r2 + slope[..., 0] * r1) / det
        keep = at_zero | ~np.isfinite(da) | ~np.isfinite(db)
        da, db = np.where(keep, 0.0, da), np.where(keep, 0.0, db)
        t = np.ones_like(a)
        for _ in range(30):
            bad = (a + t * da >= peak) | (b + t * db <= peak) | (lower_bounded & (a + t * da < 0))
            if not bad.any():
                break
            t = np.where(bad, t / 2, t)
        a, b = a + t * da, b + t * db
        tolerance = RTOL * (np.abs(a) + np.abs(b))
        if np.all((np.abs(t * da) <= tolerance) & (np.abs(t * db) <= tolerance)):
            break
    if lower_bounded:
        a, b = np.where(at_zero, 0.0, a), np.where(at_zero, upper, b)
    return a, b


def illinois(fun: Callable[[Array], Array], lo: Array, hi: Array, f_lo: Array, f_hi: Array,
             iterations: int = 100) -> Array:
    """A root of ``fun`` in [lo, hi] where f_lo and f_hi have opposite signs, elementwise: regula falsi, the
    Illinois variant (the value kept at an end that stayed put twice in a row is halved)."""
    lo, hi, f_lo, f_hi = lo.copy(), hi.copy(), f_lo.copy(), f_hi.copy()
    side = np.zeros(lo.shape)
    x, width = lo, np.abs(hi - lo)
    for _ in range(iterations):
        previous = x
        with np.errstate(invalid="ignore", divide="ignore"):
            x = hi - f_hi * (hi - lo) / (f_hi - f_lo)
        x = np.where(np.isfinite(x) & (x >= np.minimum(lo, hi)) & (x <= np.maximum(lo, hi)), x, (lo + hi) / 2)
        f = fun(x)
        same = np.sign(f) == np.sign(f_lo)
        f_hi = np.where(same, np.where(side == 1, f_hi / 2, f_hi), f)
        f_lo = np.where(same, f, np.where(side == -1, f_lo / 2, f_lo))
        lo, hi = np.where(same, x, lo), np.where(same, hi, x)
        side = np.where(same, 1, -1)
        if np.all((np.abs(x - previous) <= RTOL * (np.abs(x) + width)) | (f == 0)):
            break
    return x


def peak_bracket(dist: Distribution, lo: Array, hi: Array) -> tuple[Array, Array, Array]:
    """The highest of 17 evenly spaced points across [lo, hi] by the density, and its two neighbours (the point itself
    where it is an end)."""
    grid = lo[..., None] + np.linspace(0, 1, 17) * (hi - lo)[..., None]
    with np.errstate(divide="ignore"):
        best = np.log(dist.pdf(grid)).argmax(axis=-1)[..., None]
    left = np.take_along_axis(grid, np.maximum(best - 1, 0), -1)[..., 0]
    right = np.take_along_axis(grid, np.minimum(best + 1, 16), -1)[..., 0]
    return np.take_along_axis(grid, best, -1)[..., 0], left, right


def mode(dist: Distribution, lo: Array, hi: Array, lower_bounded: bool) -> Array:
    """The highest point of a unimodal density: the best of 17 points across [lo, hi] (with lo = 0 for tau), then the
    zero of d/dx log f between its neighbours; an end of that bracket where the slope does not change sign (0 for
    a density falling from tau = 0, the upper end of a uniform prior)."""
    peak, left, right = peak_bracket(dist, lo, hi)
    if lower_bounded:  # the slope of an even density is 0 at tau = 0: look just beside it
        left = np.maximum(left, 1e-9 * right)
    ends = np.stack([left, right], axis=-1)
    slope = dist.dlogpdf(ends)
    with np.errstate(invalid="ignore"):
        found = illinois(lambda x: dist.dlogpdf(x[..., None])[..., 0], left, right, slope[..., 0], slope[..., 1])
    found = np.where(slope[..., 1] >= 0, right, found)
    at_left = (slope[..., 0] <= 0) & (peak == lo)
    return np.where(at_left, 0.0 if lower_bounded else left, found)
