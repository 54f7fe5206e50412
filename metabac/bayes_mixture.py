"""Normal mixtures over the quadrature nodes of tau: the marginal posteriors of mu, a new trial's effect and each
trial's theta_i (:mod:`metabac.bayes_posterior`), with their CDF, density, derivatives, quantiles, modes and
shortest intervals.

A parameter is P(x) = Σ_n w_n Φ(z_n), z_n = (x − m_n)/s_n, over the N nodes of tau; its derivatives are

    P^(r)(x) = (−1)^(r−1) Σ_n w_n s_n^−r He_{r−1}(z_n) φ(z_n),   r >= 1,

with He the probabilists' Hermite polynomials (He_0 = 1, He_1 = z, He_{r+1} = z He_r − r He_{r−1}). One evaluation
at x costs one ``ndtr`` and one ``exp`` per node (each further derivative a few multiplications); it runs in chunks
of rows small enough for the working arrays to stay in cache, and only on the points still unsolved.

Since |He_r(z) φ(z)| <= K √(r!) / √(2π) for every z, K = 1.086435 (Cramér's inequality; Abramowitz & Stegun
22.14.17), every derivative is bounded over the whole line:

    sup_x |P^(r+1)(x)| <= S_r = K √(r!) / √(2π) · Σ_n w_n s_n^−(r+1),

so the Taylor polynomial T of degree r of P at x errs by at most S_r |d|^(r+1) / (r+1)! at x + d (Lagrange's
remainder), that of the density P' by S_r |d|^r / r!. The searches solve their equations on these polynomials (no
further evaluation) and accept the solution when the bound shows it is as good as an exact evaluation would:

- quantiles (degree ORDER): P(x + d) = p; accepted when the remainder plus the polynomial's residual is below
  10^-13 |x + d| P'(x) (10^-13 relative in the quantile) or 10^-14 min(p, 1 − p). Otherwise the next evaluation is at
  x + d, kept inside a bracket that holds the root (its midpoint where x + d would leave it). The bracket starts
  from the components' p-quantiles m_n + s_n z_p, through their smallest and largest mean and SD among those of
  weight above 10^-15 (which move P by less than that);
- shortest intervals (degree INTERVAL_ORDER at both ends): see :meth:`NormalMixture.shortest_interval`.

Starting points come from the compressed mixture (:attr:`NormalMixture.compressed`: runs of GROUP consecutive nodes
moment-matched by one normal, within about 10^-4 of the full one) when the batch is large enough to repay its
overhead, so that one evaluation usually suffices; a mode is polished by Newton's method from the best point of a
grid (:meth:`NormalMixture.mode`).
"""

from __future__ import annotations

import math
from functools import cached_property

import numpy as np
from numpy.typing import NDArray
from scipy import special

from metabac.bayes_search import RTOL, mode, peak_bracket, shortest_interval

Array = NDArray[np.float64]
Index = NDArray[np.intp]
ORDER = 4  # derivatives per evaluation in the quantile search
INTERVAL_ORDER = 6  # and at the ends of a shortest interval
GROUP = 8  # nodes per component of the compressed mixture
CHUNK = 1 << 15  # array elements per chunk of an evaluation (256 KiB per working array)
CRAMER = 1.086435
POLISH = 20  # Newton steps for a mode
SHORTEST = 60  # rounds for a shortest interval
COMPRESS = 1 << 17  # node evaluations from which a search starts on the compressed mixture
SQRT_2PI = math.sqrt(2 * math.pi)
FACTORIALS = np.array([math.factorial(r) for r in range(12)], dtype=float)


class NormalMixture:
    """J parameters per problem, each a mixture over the same N nodes: P(x) = Σ_n weight_n Φ((x − mean_n)/sd_n).

    ``weight`` has shape (B, N) and sums to 1 along N; ``mean`` and ``sd`` (B, J, N). Arguments of ``cdf``, ``pdf``,
    ``dlogpdf`` and ``quantile`` are (B, J, m): m points (or probabilities) for each parameter of each problem.
    """

    def __init__(self, weight: Array, mean: Array, sd: Array) -> None:
        # rows are gathered by np.take in every evaluation: C order keeps each row contiguous
        self.weight, self.mean, self.sd = (np.ascontiguousarray(a) for a in (weight, mean, sd))
        batch, self.width, nodes = mean.shape
        self._rows_mean = self.mean.reshape(batch * self.width, nodes)
        self._rows_inv_sd = 1 / self.sd.reshape(batch * self.width, nodes)
        self._bounds: dict[int, Array] = {}

    @property
    def shape(self) -> tuple[int, int]:
        """(B, J): problems and parameters."""
        return self.mean.shape[0], self.mean.shape[1]

    def select(self, columns: list[int]) -> NormalMixture:
        """The mixture of the parameters ``columns`` only."""
        return NormalMixture(self.weight, self.mean[:, columns], self.sd[:, columns])

    # --- evaluation ---------------------------------------------------------------------------------------------

    def _points(self, x: Array) -> tuple[Index, Index]:
        """Problem and parameter index of every element of x (B, J, m), flattened."""
        batch, width, m = x.shape
        problem = np.repeat(np.arange(batch), width * m)
        return problem, problem * width + np.tile(np.repeat(np.arange(width), m), batch)

    def derivatives(self, problem: Index, row: Index, x: Array, order: int, with_cdf: bool = True) -> Array:
        """P(x) and P'(x) … P^(order)(x) at points x (P,) of the parameters ``row`` (problem·J + parameter) of
        ``problem``: shape (P, order + 1), column 0 NaN unless ``with_cdf``."""
        out = np.full((len(x), order + 1), np.nan)
        step = max(1, CHUNK // self.weight.shape[1])
        for start in range(0, len(x), step):
            part = slice(start, start + step)
            out[part] = self._derivatives_chunk(problem[part], row[part], x[part], order, with_cdf)
        out[:, 1:] /= SQRT_2PI
        return out

    def _derivatives_chunk(self, problem: Index, row: Index, x: Array, order: int, with_cdf: bool) -> Array:
        """:meth:`derivatives` for one chunk of points, the derivatives still without their factor 1/√(2π)."""
        out = np.full((len(x), order + 1), np.nan)
        z = np.take(self._rows_mean, row, axis=0)
        np.subtract(x[:, None], z, out=z)
        inv_sd = np.take(self._rows_inv_sd, row, axis=0)
        z *= inv_sd
        weight = np.take(self.weight, problem, axis=0)
        if with_cdf:
            out[:, 0] = np.einsum("cn,cn->c", special.ndtr(z), weight)
        if order == 0:
            return out
        term = np.square(z)  # becomes w_n φ(z_n) √(2π) / s_n^r
        term *= -0.5
        np.exp(term, out=term)
        term *= weight
        term *= inv_sd
        out[:, 1] = term.sum(axis=1)
        previous: Array | float = 1.0  # He_0
        hermite = z
        for r in range(2, order + 1):
            term *= inv_sd
            out[:, r] = (-1) ** (r - 1) * np.einsum("cn,cn->c", hermite, term)
            if r < order:
                previous, hermite = hermite, z * hermite - (r - 1) * previous
        return out

    def _evaluate(self, x: Array, order: int, with_cdf: bool) -> Array:
        problem, row = self._points(x)
        return self.derivatives(problem, row, x.ravel(), order, with_cdf).reshape(*x.shape, order + 1)

    def cdf(self, x: Array) -> Array:
        return self._evaluate(x, 0, True)[..., 0]

    def pdf(self, x: Array) -> Array:
        return self._evaluate(x, 1, False)[..., 1]

    def dlogpdf(self, x: Array) -> Array:
        """d/dx log f(x)."""
        d = self._evaluate(x, 2, False)
        return d[..., 2] / d[..., 1]

    def cdf_pdf_dlogpdf(self, x: Array) -> tuple[Array, Array, Array]:
        """CDF, density and d/dx log density at x, from one evaluation."""
        d = self._evaluate(x, 2, True)
        return d[..., 0], d[..., 1], d[..., 2] / d[..., 1]

    def moments(self) -> tuple[Array, Array]:
        """Mean and variance (B, J) of each parameter by the quadrature."""
        w = self.weight[:, None, :]
        mean = (w * self.mean).sum(axis=-1)
        variance = (w * (np.square(self.sd) + np.square(self.mean - mean[..., None]))).sum(axis=-1)
        return mean, variance

    # --- mode and shortest interval ------------------------------------------------------------------------------

    def mode(self) -> Array:
        """The mode (B, J) of each parameter: the best of 17 points between the 0.5% and 99.5% quantiles (by the
        compressed mixture, for a large batch), polished by Newton's method on g = d/dx log f = P''/P'
        (g' = P'''/P' − g²) until a step is below 10^-13 (|x| + the bracket's width). Where a step would leave the
        best point's neighbours or g' >= 0 (not a maximum), :func:`bayes_search.mode` decides instead."""
        bracket = self._rough_quantile(np.array([0.005, 0.995]))
        grid = self.compressed if self._large(17) else self
        peak, left, right = peak_bracket(grid, bracket[..., 0], bracket[..., 1])
        x, lo, hi = peak.ravel(), left.ravel(), right.ravel()
        problem, row = self._points(peak[..., None])
        scale = np.abs(x) + (bracket[..., 1] - bracket[..., 0]).ravel()
        active, failed = np.arange(x.size), np.zeros(x.size, dtype=bool)
        for _ in range(POLISH):
            if not active.size:
                break
            d = self.derivatives(problem[active], row[active], x[active], 3, with_cdf=False)
            with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
                g = d[:, 2] / d[:, 1]
                slope = d[:, 3] / d[:, 1] - g**2
                step = -g / slope
                new = x[active] + step
            ok = np.isfinite(new) & (slope < 0) & (new >= lo[active]) & (new <= hi[active])
            x[active] = np.where(ok, new, x[active])
            failed[active[~ok]] = True
            active = active[ok & (np.abs(step) > RTOL * scale[active])]
        failed[active] = True
        if failed.any():
            index = np.flatnonzero(failed)
            rest = self._subset(problem[index], row[index] % self.width)
            ends = bracket.reshape(-1, 2)[index]
            x[index] = mode(rest, ends[:, :1], ends[:, 1:], False)[:, 0]
        return x.reshape(self.shape)

    def shortest_interval(self, level: float, start: tuple[Array, Array], peak: Array) -> tuple[Array, Array]:
        """The shortest intervals [a, b] (B, J) holding ``level`` (a fraction): F(b) − F(a) = level and f(a) = f(b),
        from ``start`` (the equal-tailed intervals; for a large batch the compressed mixture's shortest ones).
        Each round evaluates P and its derivatives at both ends and solves the system on the Taylor polynomials
        (:func:`_interval_step`, degree INTERVAL_ORDER), steps halved until a < peak < b; the result is accepted when
        the polynomials' remainders (:meth:`_derivative_bound`) and residuals move the ends by less than
        10^-13 (|a| + |b|) through the system's Jacobian; otherwise the next round starts there."""
        if self._large(2):
            start = shortest_interval(self.compressed, level, start, peak, False)
        a, b, top = start[0].ravel().copy(), start[1].ravel().copy(), peak.ravel()
        problem, row = (index[::2] for index in self._points(np.stack(start, axis=-1)))
        active, order = np.arange(a.size), INTERVAL_ORDER
        bounds = self._derivative_bound(order)
        for _ in range(SHORTEST):
            if not active.size:
                break
            ends = np.column_stack([a[active], b[active]])
            d = self.derivatives(np.repeat(problem[active], 2), np.repeat(row[active], 2), ends.ravel(), order)
            d = d.reshape(-1, 2, order + 1)
            da, db, r1, r2 = _interval_step(d, level)
            t = np.ones(len(active))
            for _ in range(30):
                bad = (ends[:, 0] + t * da >= top[active]) | (ends[:, 1] + t * db <= top[active])
                if not bad.any():
                    break
                t = np.where(bad, t / 2, t)
            a[active], b[active] = ends[:, 0] + t * da, ends[:, 1] + t * db
            distance = np.maximum(np.abs(da), np.abs(db))
            with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
                bound = bounds[row[active]] * distance**order / math.factorial(order)
                pdf, slope = d[:, :, 1], d[:, :, 2] / d[:, :, 1]
                e1 = r1 + 2 * bound * distance / (order + 1)
                e2 = r2 + bound * (1 / pdf[:, 0] + 1 / pdf[:, 1])
                det = np.abs(pdf[:, 0] * slope[:, 1] - pdf[:, 1] * slope[:, 0])
                shift = (e1 * np.abs(slope).max(axis=1) + pdf.max(axis=1) * e2) / det
            done = (t == 1) & (shift <= RTOL * (np.abs(a[active]) + np.abs(b[active])))
            active = active[~done]
        return a.reshape(peak.shape), b.reshape(peak.shape)

    def _large(self, points: int) -> bool:
        """Whether ``points`` per parameter make a search worth starting on the compressed mixture: its Python
        overhead repays only when the full evaluation is large."""
        return self.mean.shape[2] > 4 * GROUP and self.mean[..., 0].size * points * self.mean.shape[2] >= COMPRESS

    def _rough_quantile(self, p: Array) -> Array:
        """Quantiles (B, J, len(p)) good to about 10^-4 relative: the compressed mixture's for a large batch."""
        target = np.broadcast_to(p, (*self.shape, len(p))).copy()
        return self.compressed.quantile(target) if self._large(len(p)) else self.quantile(target)

    def _subset(self, problem: Index, column: Index) -> NormalMixture:
        """A batch of one-parameter mixtures: parameter column[i] of problem[i]."""
        return NormalMixture(self.weight[problem], self.mean[problem, column][:, None],
                             self.sd[problem, column][:, None])

    # --- quantiles ----------------------------------------------------------------------------------------------

    @cached_property
    def compressed(self) -> NormalMixture:
        """The mixture with each run of GROUP consecutive nodes replaced by one normal of the same weight, mean and
        variance (nodes are ordered by tau, so a run's components are close); a start for the quantile search."""
        batch, width, nodes = self.mean.shape
        groups = -(-nodes // GROUP)
        pad = groups * GROUP - nodes
        weight = np.pad(self.weight, ((0, 0), (0, pad))).reshape(batch, 1, groups, GROUP)
        mean = np.pad(self.mean, ((0, 0), (0, 0), (0, pad)), mode="edge").reshape(batch, width, groups, GROUP)
        sd = np.pad(self.sd, ((0, 0), (0, 0), (0, pad)), mode="edge").reshape(batch, width, groups, GROUP)
        total = weight.sum(axis=-1)
        share = np.divide(weight, total[..., None], out=np.full(weight.shape, 1 / GROUP), where=total[..., None] > 0)
        group_mean = (share * mean).sum(axis=-1)
        variance = (share * (np.square(sd) + np.square(mean - group_mean[..., None]))).sum(axis=-1)
        return NormalMixture(total[:, 0], group_mean, np.sqrt(variance))

    def quantile(self, p: Array) -> Array:
        """Quantiles (B, J, m) for probabilities p (B, J, m): see the module docstring."""
        low_mean, high_mean, low_sd, high_sd = (a[..., None] for a in self._spread)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = special.ndtri(p)
            lo = low_mean + z * np.where(z >= 0, low_sd, high_sd)
            hi = high_mean + z * np.where(z >= 0, high_sd, low_sd)
        if self._large(p.shape[-1]):
            start = self.compressed.quantile(p)
        else:
            average = self.moments()[0][..., None] + z * np.einsum("bn,bjn->bj", self.weight, self.sd)[..., None]
            start = np.where(np.isfinite(average), average, (lo + hi) / 2)
        x = np.clip(start, lo, hi)
        problem, row = self._points(p)
        solved = self._solve(problem, row, p.ravel(), lo.ravel(), hi.ravel(), x.ravel())
        return solved.reshape(p.shape)

    @cached_property
    def _spread(self) -> tuple[Array, Array, Array, Array]:
        """Smallest and largest mean and SD (B, J) of the components of weight above 10^-15: every component's
        p-quantile m + s z lies between min m + z (min s if z >= 0 else max s) and max m + z (max s or min s), and
        so does the mixture's (the components left out move P by less than 10^-15 each)."""
        heavy = (self.weight > 1e-15)[:, None, :]
        return (np.where(heavy, self.mean, np.inf).min(axis=-1), np.where(heavy, self.mean, -np.inf).max(axis=-1),
                np.where(heavy, self.sd, np.inf).min(axis=-1), np.where(heavy, self.sd, -np.inf).max(axis=-1))

    def _derivative_bound(self, order: int) -> Array:
        """S ≥ sup_x |P^(order+1)(x)| for each row (problem·J + parameter): K √(order!) / √(2π) Σ_n w_n s_n^−(order+1)
        (module docstring); the Taylor polynomial of degree ``order`` of P then errs by at most S |d|^(order+1) /
        (order+1)!, that of f = P' by S |d|^order / order!."""
        if order not in self._bounds:
            total = np.einsum("bn,bjn->bj", self.weight, self._rows_inv_sd.reshape(self.sd.shape) ** (order + 1))
            self._bounds[order] = CRAMER * math.sqrt(math.factorial(order)) / SQRT_2PI * total.ravel()
        return self._bounds[order]

    def _solve(self, problem: Index, row: Index, p: Array, lo: Array, hi: Array, x: Array,
               iterations: int = 100) -> Array:
        """Solve P(x) = p for every point: Taylor steps with a bounded remainder, inside the bracket [lo, hi]."""
        lo, hi, x = lo.copy(), hi.copy(), x.copy()
        bound = self._derivative_bound(ORDER) / math.factorial(ORDER + 1)
        active = np.flatnonzero(np.isfinite(p) & (lo < hi))
        for _ in range(iterations):
            if not active.size:
                break
            pa, xa, la, ha = p[active], x[active], lo[active], hi[active]
            d = self.derivatives(problem[active], row[active], xa, ORDER)
            below = d[:, 0] < pa
            la, ha = np.where(below, xa, la), np.where(below, ha, xa)
            step, residual = _taylor_root(d, pa)
            with np.errstate(invalid="ignore", over="ignore"):
                error = bound[row[active]] * np.abs(step) ** (ORDER + 1) + residual
                new = xa + step
                inside = np.isfinite(new) & (new >= la) & (new <= ha)
                tolerance = np.maximum(RTOL * np.abs(new) * d[:, 1], 1e-14 * np.minimum(pa, 1 - pa))
            small = np.abs(step) <= RTOL * np.abs(new)  # converged whatever the bound (say, one overflowed)
            done = (inside & ((error <= tolerance) | small)) | (d[:, 0] == pa) | (ha - la <= RTOL * np.abs(xa))
            x[active] = np.where(d[:, 0] == pa, xa, np.where(inside, new, (la + ha) / 2))
            lo[active], hi[active] = la, ha
            active = active[~done]
        return x


def _taylor_root(d: Array, p: Array, iterations: int = 8) -> tuple[Array, Array]:
    """The root nearest 0 of T(s) − p, T the Taylor polynomial of P at a point (d: P and its derivatives there,
    (P, ORDER + 1)), by Newton's method from the Newton step of P; and |T − p| there."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        step = (p - d[:, 0]) / d[:, 1]
        for _ in range(iterations):
            value, slope = _taylor(d, step, 2)
            change = (value - p) / slope
            step = step - change
            if not np.any(np.abs(change) > 1e-16 * np.abs(step)):
                break
        return step, np.abs(_taylor(d, step, 1)[0] - p)


def _taylor(d: Array, s: Array, count: int) -> list[Array]:
    """The first ``count`` derivatives (0th included) at s (shape d.shape[:-1]) of the Taylor polynomial
    Σ_r d_r s^r / r! (d: derivatives at 0 along the last axis): the k-th is Σ_{r >= k} d_r s^(r − k) / (r − k)!, by
    Horner's rule."""
    size, out = d.shape[-1], []
    for k in range(count):
        value = d[..., -1] / FACTORIALS[size - 1 - k]
        for r in range(size - 2, k - 1, -1):
            value = value * s + d[..., r] / FACTORIALS[r - k]
        out.append(value)
    return out


def _interval_step(d: Array, level: float, iterations: int = 8) -> tuple[Array, Array, Array, Array]:
    """Newton's method for F(b) − F(a) = level, log f(a) = log f(b) on the Taylor polynomials at both ends (d: (P, 2,
    order + 1), ends a and b): the steps (da, db), and bounds on the residuals |r1|, |r2| of the polynomial system
    there (those before the last step). A step that grows beyond 4 times the first (the polynomials far from their
    centre) is replaced by the first, the Newton step of the true functions, with residuals inf."""
    step = np.zeros(d.shape[:2])
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        for i in range(iterations):
            cdf, pdf, slope = _taylor(d, step, 3)
            r1 = cdf[:, 1] - cdf[:, 0] - level
            r2 = np.log(pdf[:, 0]) - np.log(pdf[:, 1])
            slope = slope / pdf
            det = pdf[:, 0] * slope[:, 1] - pdf[:, 1] * slope[:, 0]
            change = np.column_stack([r1 * slope[:, 1] + pdf[:, 1] * r2, pdf[:, 0] * r2 + slope[:, 0] * r1])
            change /= det[:, None]
            step = step + change
            if i == 0:
                first = step, np.abs(change).sum(axis=1)
            elif not np.any(np.abs(change) > 1e-16 * np.abs(step)):
                break
        wild = ~(np.abs(step).sum(axis=1) <= 4 * first[1])
        step = np.where(wild[:, None], first[0], step)
        return step[:, 0], step[:, 1], np.where(wild, np.inf, np.abs(r1)), np.where(wild, np.inf, np.abs(r2))
