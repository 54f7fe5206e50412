"""Between-study variance (tau²) estimators over a batch of meta-analyses.

Every estimator takes a :class:`Problem`: effect sizes ``y`` and sampling variances ``v`` of shape (B, k), a
design ``X`` of shape (B, k, p) (a column of ones for plain pooling) and a ``mask`` of shape (B, k) that marks the
studies present in each problem. Absent studies get weight zero, so one code path serves a single analysis
(B = 1), subgroup fits, leave-one-out and GOSH subsets. All formulas are weighted sums along the study axis plus
p x p solves: O(k p²) per problem, never a k x k matrix.

Notation (metafor's): for weights w, W = diag(w), P = W − W X (X'W X)⁻¹ X' W, so that
y'P y = Σ w r² with r the WLS residuals, and P y = W r.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Literal, NamedTuple, Protocol

import numpy as np
from numpy.typing import NDArray
from scipy import special
from scipy.optimize import brentq

from metabac._checks import ConvergenceError, InputError, require_positive_number, require_whole_number

Method = Literal["EE", "FE", "DL", "HE", "HS", "SJ", "ML", "REML", "EB", "PM"]
Array = NDArray[np.float64]
METHODS: tuple[str, ...] = ("EE", "FE", "DL", "HE", "HS", "SJ", "ML", "REML", "EB", "PM")
# Tests of the pooled effect: Wald (z), Hartung-Knapp-Sidik-Jonkman (knha) and its modified form (adhoc, metafor's
# name); the last two use the t distribution with the variance factor of :func:`knapp_hartung_factor`.
TESTS: tuple[str, ...] = ("z", "knha", "adhoc")
T_TESTS = frozenset({"knha", "adhoc"})


def critical_value(level: float, df: NDArray[np.float64] | int | None = None) -> NDArray[np.float64]:
    """The two-sided critical value at ``level`` percent: z_{1/2 + level/200}, or t with ``df`` degrees of freedom
    (NaN where df <= 0). Scalars give 0-d arrays, arrays of df arrays."""
    upper = 0.5 + level / 200
    if df is None:
        return np.asarray(special.ndtri(upper))
    degrees = np.asarray(df)
    with np.errstate(invalid="ignore"):
        return np.where(degrees > 0, special.stdtrit(np.maximum(degrees, 1), upper), np.nan)


def two_sided_p(statistic: NDArray[np.float64] | float, df: NDArray[np.float64] | int | None = None
                ) -> NDArray[np.float64]:
    """The two-sided p-value of a z statistic, or of a t statistic with ``df`` degrees of freedom (NaN where
    df <= 0): 2·Φ(−|z|) or 2·F_t(−|t|; df)."""
    if df is None:
        return 2 * special.ndtr(-np.abs(statistic))
    degrees = np.asarray(df)
    with np.errstate(invalid="ignore"):
        return np.where(degrees > 0, 2 * special.stdtr(np.maximum(degrees, 1), -np.abs(statistic)), np.nan)


def q_based_i2(q: NDArray[np.float64] | float, df: NDArray[np.float64] | int) -> NDArray[np.float64]:
    """I² from Cochran's Q, 100·max(0, Q − df)/Q (Higgins & Thompson 2002), 0 where Q or df is 0: the fixed-effect
    model's I² and RevMan's (the random-effects I² is computed from tau² instead)."""
    q, degrees = np.asarray(q, dtype=float), np.asarray(df)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((q > 0) & (degrees > 0), np.maximum(0.0, 100 * (q - degrees) / q), 0.0)


def knapp_hartung_factor(rss: NDArray[np.float64] | float, df: NDArray[np.float64] | int, test: str
                         ) -> NDArray[np.float64]:
    """The variance factor s² = Σw(y − Xβ̂)²/(k − p) of the Knapp-Hartung (Sidik-Jonkman) test (Knapp & Hartung
    2003, eq. 10), 0 where the weighted residual sum of squares is within rounding of 0 (as metafor); under
    ``test="adhoc"`` max(1, s²), so the interval is never narrower than the Wald interval's on the t scale: the
    modified Hartung-Knapp of Röver, Knapp & Friede (BMC Med Res Methodol 2015;15:99)."""
    s2 = np.where(np.asarray(rss) <= np.finfo(float).eps, 0.0, np.asarray(rss) / np.maximum(df, 1))
    return np.maximum(1.0, s2) if test == "adhoc" else s2


@dataclass(frozen=True)
class Control:
    """Numerical settings of the iterative estimators.

    The defaults converge to the exact root: Fisher scoring (ML, REML, EB), accelerated by secant steps
    (``accelerate``), and Newton's method on 1/Q (PM and the Q-profile bounds) stop when |Δtau²| <= ``threshold`` ·
    max(tau², smallest sampling variance). :meth:`metafor` reproduces metafor 3.8's plain Fisher scoring and
    default stopping rules (absolute threshold 1e-5, 100 iterations) and its ``uniroot`` for PM and the Q-profile
    bounds: Brent's method per problem to ``xtol`` = eps^0.25 within tau2.max = max(100, 10 mad(y)²) (``absolute``
    selects this), for users comparing with metafor's printed output digit by digit.
    """

    threshold: float = 1e-13
    xtol: float = 1e-15
    maxiter: int = 1000
    absolute: bool = False
    tau2_max: float | None = None
    accelerate: bool = True

    def __post_init__(self) -> None:
        require_whole_number(self.maxiter, "Control: maxiter")
        require_positive_number(self.threshold, "Control: threshold")
        require_positive_number(self.xtol, "Control: xtol")
        if self.tau2_max is not None:
            require_positive_number(self.tau2_max, "Control: tau2_max")

    def scaled(self, s2: float) -> Control:
        """The settings for data divided by s (tau² by s², see :func:`variance_scale`): thresholds in units of tau²
        (``absolute``, ``xtol``) and ``tau2_max`` are divided by s² too; relative thresholds need no change."""
        if s2 == 1:
            return self
        return replace(self, threshold=self.threshold / s2 if self.absolute else self.threshold, xtol=self.xtol / s2,
                       tau2_max=None if self.tau2_max is None else self.tau2_max / s2)

    @classmethod
    def metafor(cls) -> Control:
        """metafor's default ``control`` for ``rma()``: plain scoring that stops early, as metafor itself does."""
        return cls(threshold=1e-5, xtol=float(np.finfo(float).eps) ** 0.25, maxiter=100, absolute=True,
                   accelerate=False)


class Tau2Fit(NamedTuple):
    """Estimated tau² per problem, with the iterations used and whether the estimator converged."""

    tau2: Array
    iterations: NDArray[np.int64]
    converged: NDArray[np.bool_]


@dataclass(frozen=True)
class Problem:
    """A batch of meta-analyses (see the module docstring for shapes).

    ``intercept`` (X is a column of ones) and ``complete`` (every study present) are detected when not given; they
    select the closed-form p = 1 path and skip masking, and never change a result beyond rounding. Absent studies
    may hold any finite y and positive v (:meth:`intercept_only` puts y = 0, v = 1 there): they are masked by
    multiplying with 0.
    """

    y: Array
    v: Array
    X: Array
    mask: NDArray[np.bool_]
    intercept: bool | None = field(default=None, compare=False)
    complete: bool | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.intercept is None:
            object.__setattr__(self, "intercept", self.X.shape[-1] == 1 and bool(np.all(self.X == 1)))
        if self.complete is None:
            object.__setattr__(self, "complete", bool(np.all(self.mask)))

    @classmethod
    def intercept_only(cls, y: Array, v: Array, mask: NDArray[np.bool_] | None = None) -> Problem:
        """Plain pooling: X is a column of ones (a read-only broadcast view: no memory of size k)."""
        y, v = np.atleast_2d(y).astype(float), np.atleast_2d(v).astype(float)  # copies: results own their data
        ones = np.broadcast_to(np.ones((1, 1, 1)), (*y.shape, 1))
        if mask is None:
            return cls(y, v, ones, np.ones(y.shape, dtype=bool), intercept=True, complete=True)
        mask = np.atleast_2d(np.asarray(mask, dtype=bool))
        return cls(np.where(mask, y, 0.0), np.where(mask, v, 1.0), ones, mask, intercept=True)

    @cached_property
    def k(self) -> NDArray[np.int64]:
        return self.mask.sum(axis=-1)

    @property
    def p(self) -> int:
        return self.X.shape[-1]

    @cached_property
    def fixed_fit(self) -> WeightedFit:
        """The equal-effects fit, w = 1/v (computed once: Q, DL, HS, the tau² = 0 likelihood and pool use it)."""
        return WeightedFit.at(self, 0.0)

    def present(self, values: Array) -> Array:
        """``values`` with absent studies set to 0 (a product with the mask: several times faster than ``np.where``)."""
        return values if self.complete else values * self.mask

    def scale(self) -> Array:
        """Smallest sampling variance of each problem (makes tolerances scale-free): a tau² step below
        threshold × this changes no study's weight by more than threshold relatively. (The mean let one huge
        variance loosen the tolerance for all: with v from 1e-12 to 1e12, REML stopped 0.6% from its root.)"""
        return np.min(np.where(self.mask, self.v, np.inf), axis=-1)

    def scaled(self, s: Array) -> Problem:
        """The problems with y divided by s and v by s² (s one value per problem; see :func:`variance_scale`)."""
        v = self.v / (s * s)[:, None]
        return Problem(self.y / s[:, None], v if self.complete else np.where(self.mask, v, 1.0), self.X, self.mask,
                       intercept=self.intercept, complete=self.complete)

    def rows(self, keep: NDArray[np.bool_] | NDArray[np.int64]) -> Problem:
        """The sub-batch of problems where ``keep`` is true (or whose indices ``keep`` lists)."""
        return Problem(self.y[keep], self.v[keep], self.X[keep], self.mask[keep], intercept=self.intercept,
                       complete=True if self.complete else None)


# Sampling variances within [2^-SAFE_EXPONENT, 2^SAFE_EXPONENT] are fitted as given: the sums of the engine (Σw³
# with w = 1/v among them) stay far from overflow and underflow. Beyond, see variance_scale.
SAFE_EXPONENT = 100


def variance_scale(v: Array, mask: NDArray[np.bool_] | None = None) -> Array:
    """A power of two s per problem (of a 1-D ``v``: a scalar) by which to divide y (and v by s²) before fitting.

    s = 1 when every sampling variance lies within [2^-100, 2^100]; otherwise s² is the power of two nearest
    √(min v · max v) (an even power), which centres the variances on 1 (e.g. v around 1e-160, where w² = 1/v²
    overflows and DL's tr P = Σw − Σw²/Σw became −inf). A fit is equivariant: with y/s and v/s², tau² is divided
    by s², the estimate, its SE and bounds by s, and every test statistic, p-value, Q, I², H² and weight is
    unchanged; a power of two makes the division and the multiplication back exact, so the numbers are those of
    the exact computation wherever it is representable.
    """
    if mask is None:
        low, high = v.min(axis=-1), v.max(axis=-1)
        if v.ndim == 1 and 2.0**-SAFE_EXPONENT <= low and high <= 2.0**SAFE_EXPONENT:
            return np.float64(1.0)  # one analysis in range (the common case): no further numpy calls
    else:
        low, high = np.min(np.where(mask, v, np.inf), axis=-1), np.max(np.where(mask, v, 0.0), axis=-1)
    with np.errstate(divide="ignore"):
        low, high = np.log2(low), np.log2(high)
    safe = (low >= -SAFE_EXPONENT) & (high <= SAFE_EXPONENT)
    exponent = np.where(safe, 0, np.round((low + high) / 4)).astype(np.int64)
    return np.ldexp(1.0, exponent)


def require_representable(q: Array | float, v_min: Array | float, v_max: Array | float) -> None:
    """Refuse data that double precision cannot fit even after :func:`variance_scale` (arguments: Cochran's Q and
    the smallest and largest sampling variance of the data as fitted, one per problem), rather than return NaN, a
    tau² of 0 or an interval of zero width: variances more than 2^200 (about 1e60) apart, where Σw³ over- or
    underflows, or a Q beyond 2^900, where y'PPy <= max w · Q may overflow."""
    ratio = v_max / v_min
    if np.ndim(ratio) == 0 and ratio <= 2.0 ** (2 * SAFE_EXPONENT) and q < 2.0**900:
        return  # one analysis that fits (the common case), in scalar arithmetic
    ratio = np.max(ratio)
    if not ratio <= 2.0 ** (2 * SAFE_EXPONENT):
        raise InputError(f"vi: the sampling variances span more than 1e60 (a ratio of {ratio:.3g}): beyond double "
                         "precision")
    if not np.all(np.asarray(q) < 2.0**900):
        raise InputError("yi/vi: Cochran's Q overflows double precision (the effect sizes differ by more than about "
                         "1e135 standard errors); express the effects in other units")


# PoolResult numbers in the units of y (divided by s when y is) and of tau² (by s²); the others are scale-free.
Y_UNITS = ("estimate", "se", "ci_low", "ci_high", "pi_low", "pi_high")
TAU2_UNITS = ("tau2", "vt")


def unscale(numbers: dict, s: Array | float) -> dict:
    """The numbers of a fit to y/s, v/s² (see :func:`variance_scale`) in the units of y and v; refused when they do
    not fit in double precision there (e.g. tau² of effects near 1e200, about 1e400)."""
    scaled = numbers | {key: numbers[key] * s for key in Y_UNITS} | {key: numbers[key] * s * s for key in TAU2_UNITS}
    for key in ("tau2", "estimate", "se"):
        if not np.all(np.isfinite(scaled[key])):
            raise InputError(f"yi/vi: {key} overflows double precision (about {np.max(numbers[key]):.3g} x "
                             f"{s * s if key == 'tau2' else s:.3g}); express the effects in other units")
    return scaled


CHUNK_BYTES = 64 * 2**20


def chunk_rows(k: int, p: int = 1, budget: int = CHUNK_BYTES) -> int:
    """How many problems of k studies and p coefficients to fit per batch so that its arrays stay within ``budget``.

    A fit holds about 7 + 5p float arrays of shape (B, k) at its peak (y, v, X and mask, the weights and residuals,
    the QR factors; measured with tracemalloc: 8k·(3 + 4.2p) bytes per problem besides the inputs), so a chunk is
    budget / (8k·(7 + 5p)) problems, at least one.
    """
    return max(1, budget // (8 * k * (7 + 5 * p)))


# Above this many studies per problem, numpy's pairwise ``sum`` is faster than einsum (5x at k = 1e6).
LONG_ROWS = 4096


def study_sum(a: Array) -> Array:
    """Σ a along the study axis: einsum over a batch of short rows (three times faster than ``sum`` there), numpy's
    pairwise ``sum`` on a single row (1-D: twice as fast as einsum) and on long rows."""
    if a.ndim > 1 and a.shape[-1] <= LONG_ROWS:
        return np.einsum("...k->...", a)
    return np.add.reduce(a, axis=-1)


def study_dot(a: Array, b: Array) -> Array:
    """Σ a·b along the study axis: numpy's vecdot on short rows (twice as fast as einsum on one problem), einsum on
    long ones, where vecdot's BLAS would start threads that stall on a busy machine."""
    if a.shape[-1] <= LONG_ROWS and hasattr(np, "vecdot"):  # numpy >= 2.0
        return np.vecdot(a, b)
    return np.einsum("...k,...k->...", a, b)


def intercept_trace_p(sum_w: Array, sum_w2: Array) -> Array:
    """tr P for X = 1: Σw − Σw²/Σw."""
    return sum_w - sum_w2 / sum_w


def intercept_trace_pp(sum_w: Array, sum_w2: Array, sum_w3: Array) -> Array:
    """tr PP for X = 1: Σw² − 2Σw³/Σw + (Σw²/Σw)²."""
    a = sum_w2 / sum_w
    return sum_w2 - 2 * sum_w3 / sum_w + a * a


@dataclass(frozen=True)
class WeightedFit:
    """Weighted least squares of y on X with weights w (zero for absent studies), per problem.

    For an intercept-only problem (X = 1) every quantity is a weighted sum: β̂ = Σwy/Σw, (X'WX)⁻¹ = 1/Σw,
    tr P = Σw − Σw²/Σw, tr PP = Σw² − 2Σw³/Σw + (Σw²/Σw)², so no decomposition is needed and the cost is O(k).
    """

    w: Array
    beta: Array  # (B, p)
    residuals: Array  # (B, k)
    xwx_inv: Array  # (B, p, p) = (X'WX)⁻¹
    X: Array
    sum_w: Array  # (B,)
    intercept: bool = False

    @classmethod
    def fit(cls, problem: Problem, w: Array) -> WeightedFit:
        """Solve by a QR decomposition of W^½X, which stays accurate for ill-conditioned designs (e.g. a year
        moderator beside the intercept, cond(X'WX) ≈ 1e12, where inverting X'WX loses four more digits); in
        closed form when X is a column of ones."""
        w = problem.present(w)
        sum_w = study_sum(w)
        if problem.intercept:
            beta = study_dot(w, problem.y) / sum_w
            residuals = problem.y - beta[:, None]
            return cls(w, beta[:, None], residuals, (1 / sum_w)[:, None, None], problem.X, sum_w, intercept=True)
        X = problem.X
        root_w = np.sqrt(w)
        q, r = np.linalg.qr(root_w[..., None] * X)
        r_inv = np.linalg.inv(r)
        beta = np.einsum("bij,bkj,bk->bi", r_inv, q, root_w * problem.y)
        residuals = problem.y - np.einsum("bkj,bj->bk", X, beta)
        return cls(w, beta, residuals, np.einsum("bij,bkj->bik", r_inv, r_inv), X, sum_w)

    @classmethod
    def at(cls, problem: Problem, tau2: Array | float) -> WeightedFit:
        """The fit with inverse-variance weights w = 1/(v + tau²), tau² one value or one per problem."""
        w = problem.v + np.asarray(tau2, dtype=float)[..., None]
        np.reciprocal(w, out=w)  # in place: no second array of size B·k
        return cls.fit(problem, w)

    @cached_property
    def weighted_residuals(self) -> Array:
        """P y = W r."""
        return self.w * self.residuals

    @cached_property
    def sum_w2(self) -> Array:
        """Σw²."""
        return study_dot(self.w, self.w)

    def rss(self) -> Array:
        """y'P y = Σ w r² (the generalised Q statistic)."""
        return study_dot(self.weighted_residuals, self.residuals)

    def ypp_y(self) -> Array:
        """y'P P y = Σ (w r)²."""
        return study_dot(self.weighted_residuals, self.weighted_residuals)

    def _xdx(self, d: Array) -> Array:
        """X' diag(d) X per problem, (B, p, p) (a batched matmul: several times faster than a 3-operand einsum)."""
        return (self.X * d[..., None]).swapaxes(-1, -2) @ self.X

    @cached_property
    def _xw2x(self) -> Array:
        """X'W²X, shared by tr P and tr PP."""
        return self._xdx(self.w**2)

    def trace_term(self, d: Array) -> Array:
        """tr((X'WX)⁻¹ X' diag(d) X); Σd/Σw when X is a column of ones."""
        if self.intercept:
            return study_sum(d) / self.sum_w
        return np.einsum("bij,bji->b", self.xwx_inv, self._xdx(d))

    def trace_p(self) -> Array:
        """tr(P) = Σw − tr((X'WX)⁻¹ X'W²X); Σw − Σw²/Σw when X is a column of ones."""
        if self.intercept:
            return intercept_trace_p(self.sum_w, self.sum_w2)
        return self.sum_w - np.einsum("bij,bji->b", self.xwx_inv, self._xw2x)

    def trace_pp(self) -> Array:
        """tr(P P) = Σw² − 2 tr((X'WX)⁻¹X'W³X) + tr([(X'WX)⁻¹X'W²X]²); with X = 1 the last term is (Σw²/Σw)²."""
        w2 = self.w**2
        if self.intercept:
            return intercept_trace_pp(self.sum_w, self.sum_w2, study_dot(w2, self.w))
        a = self.xwx_inv @ self._xw2x
        return self.sum_w2 - 2 * self.trace_term(w2 * self.w) + np.einsum("bij,bji->b", a, a)

    def log_det_xwx(self) -> Array:
        """log det(X'WX) (the REML likelihood's extra term); log Σw when X is a column of ones."""
        if self.intercept:
            return np.log(self.sum_w)
        return np.linalg.slogdet(np.linalg.inv(self.xwx_inv))[1]


def q_statistic(problem: Problem, tau2: Array) -> Array:
    """Generalised Q(tau²) = Σ (y − Xβ̂)²/(v + tau²), decreasing in tau²; Q(0) is Cochran's Q."""
    return WeightedFit.at(problem, tau2).rss()


def _done(tau2: Array) -> Tau2Fit:
    n = tau2.shape[0]
    return Tau2Fit(np.maximum(tau2, 0.0), np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool))


def equal_effects(problem: Problem, control: Control) -> Tau2Fit:
    """Equal-effects (fixed-effect) model: tau² = 0."""
    return _done(np.zeros(problem.y.shape[0]))


def dersimonian_laird(problem: Problem, control: Control) -> Tau2Fit:
    """DerSimonian-Laird: tau² = max(0, (Q − (k − p)) / tr(P)), w = 1/v (DerSimonian & Laird 1986, eq. 8).

    For p = 1, tr(P) = Σw − Σw²/Σw.
    """
    return _done(dl_estimate(problem.fixed_fit, problem.k, problem.p))


def dl_estimate(fixed: ScoringFit, k: Array, p: int) -> Array:
    """DerSimonian-Laird's (Q − (k − p))/tr(P) from the equal-effects fit, before truncation at 0."""
    return (fixed.rss() - (k - p)) / fixed.trace_p()


def hedges(problem: Problem, control: Control) -> Tau2Fit:
    """Hedges (variance components): tau² = max(0, (RSS_ols − tr(P₁V))/(k − p)), P₁ the OLS residual maker.

    For p = 1: (Σ(y − ȳ)² − (k − 1)/k · Σv)/(k − 1) (Hedges 1983; Hedges & Olkin 1985, p. 194).
    """
    ols = WeightedFit.fit(problem, np.ones_like(problem.v))
    v = problem.present(problem.v)
    tr_pv = study_sum(v) - ols.trace_term(v)
    return _done((ols.rss() - tr_pv) / (problem.k - problem.p))


def hunter_schmidt(problem: Problem, control: Control) -> Tau2Fit:
    """Hunter-Schmidt: tau² = max(0, (Q − k)/Σw), w = 1/v (Hunter & Schmidt 2004; Viechtbauer 2005, eq. 10)."""
    return _done(hs_estimate(problem.fixed_fit, problem.k))


def hs_estimate(fixed: ScoringFit, k: Array) -> Array:
    """Hunter-Schmidt's (Q − k)/Σw from the equal-effects fit, before truncation at 0."""
    return (fixed.rss() - k) / fixed.sum_w


def sidik_jonkman(problem: Problem, control: Control) -> Tau2Fit:
    """Sidik-Jonkman: tau² = tau0² · Q(tau0²)/(k − p), tau0² = Σ(y − ȳ)²/k (Sidik & Jonkman 2005, eq. 3-4).

    The start value tau0² is the (unweighted, n-denominator) variance of y, as metafor.
    """
    k = problem.k
    mean = study_sum(problem.present(problem.y)) / k
    tau0 = study_sum(problem.present(problem.y - mean[:, None]) ** 2) / k
    return _done(tau0 * q_statistic(problem, tau0) / (k - problem.p))


def _log_likelihood(problem: Problem, tau2: Array, fit: WeightedFit, restricted: bool) -> Array:
    """:func:`log_likelihood` of each problem at tau²; ``fit`` is the weighted fit at tau²."""
    log_det_v = study_sum(problem.present(np.log(problem.v + tau2[:, None])))
    return log_likelihood(problem.k, problem.p, log_det_v, fit.rss(), fit.log_det_xwx() if restricted else 0.0,
                          restricted)


def _outside(new: Array, low: Array, high: Array) -> tuple[Array, Array]:
    """Where ``new`` is below the bracket and where above it. ``high`` and a ``low`` above 0 are evaluated tau²
    values and excluded (landing on one again would repeat a step); a ``low`` of 0 may be reached (metafor's rule)."""
    return np.where(low > 0, new <= low, new < low), new >= high


def _halve_into(tau2: Array, adj: Array, low: Array, high: Array) -> Array:
    """Halve each step until tau² + step lies in the bracket (metafor's step halving, with [0, ∞) at first).

    Repeated halving is exact in binary, so the steps are first scaled by the largest power of two that certainly
    leaves them outside (computed from log2 of the overshoot) and then halved one at a time: the result is that of
    the plain loop without its up to ~1075 passes when tau² sits on the edge (then the step becomes ±0). A step
    that underflows to 0 stops the halving (a bracket of two adjacent numbers has no inside).
    """
    below, above = _outside(tau2 + adj, low, high)
    outside = below | above
    if not outside.any():
        return adj
    room = np.abs(np.where(below, low, high) - tau2)
    adj = np.where(np.isinf(adj), np.copysign(room, adj), adj)  # an infinite step (flat Q) goes to the edge
    with np.errstate(divide="ignore", invalid="ignore"):
        skip = np.floor(np.log2(np.abs(adj) / room)) - 1
    skip = np.where(outside & (room > 0), np.clip(skip, 0, 1100), 0).astype(np.int64)
    adj = np.where(outside & (room == 0), np.copysign(0.0, adj), np.ldexp(adj, -skip))
    while True:
        below, above = _outside(tau2 + adj, low, high)
        outside = (below | above) & (adj != 0)
        if not outside.any():
            return adj
        adj = np.where(outside, adj / 2, adj)


Step = Callable[[Problem, Array, NDArray[np.int64]], Array]


def _fisher_scoring(problem: Problem, control: Control, step: Step, start: Array | None = None,
                    accelerate: bool | None = None) -> Tau2Fit:
    """Iterate tau² ← tau² + Δ until |Δ| is below the threshold, Δ a safeguarded Fisher-scoring step.

    ``step(rows_problem, tau2, rows)`` gives the step for the problems still iterating (``rows``: their indices in
    the batch). Starts from ``start``, by default max(0, Hedges' estimate) as metafor; ``accelerate`` defaults to
    ``control.accelerate``. The Fisher step s(tau²) = score/expected information has the sign of the score, so
    every evaluated tau² narrows an interval [low, high] that holds the root (at first [0, ∞)). With
    acceleration, Δ is the secant step −s·(tau² − tau²_prev)/(s − s_prev) towards the root of s through the last
    two iterates whenever the secant point lies strictly inside [low, high] (superlinear convergence instead of
    scoring's linear rate: about 6 instead of about 20 iterations to 1e-13); otherwise Δ = s, and a step below 0
    (while 0 is the lower end) goes to 0 exactly, so a root on the boundary is reached at once. A step leaving
    [low, high] is halved until it lands inside: without acceleration this is metafor's halving of steps below 0;
    it also stops the growing oscillation of plain scoring where the observed information exceeds about twice the
    expected one (there metafor reports non-convergence). A problem has converged when |Δ| or the width of
    [low, high] is below the threshold (the latter where rounding noise in the score flips the sign of steps of
    about the threshold's size). Converged problems are frozen; each problem reports its own iterations and
    convergence.
    """
    tau2 = hedges(problem, control).tau2 if start is None else np.array(start, dtype=float)
    accelerate = control.accelerate if accelerate is None else accelerate
    n = tau2.shape[0]
    iterations = np.full(n, control.maxiter, dtype=np.int64)
    converged = np.zeros(n, dtype=bool)
    # State of the problems still iterating, row for row with `sub`; `index` maps them back into the batch.
    index, current, sub, scale = np.arange(n), tau2.copy(), problem, problem.scale()
    low, high = np.zeros(n), np.full(n, np.inf)
    previous_tau2, previous_step = np.full(n, np.nan), np.full(n, np.nan)
    for iteration in range(1, control.maxiter + 1):
        fisher = step(sub, current, index)
        fisher[np.isnan(fisher)] = 0.0
        low = np.where(fisher > 0, current, low)
        high = np.where(fisher < 0, current, high)
        adj = fisher
        if accelerate:
            with np.errstate(divide="ignore", invalid="ignore"):
                target = current - fisher * (current - previous_tau2) / (fisher - previous_step)
            # Strictly inside [low, high] also means s decreases: current is one end, and a secant through an
            # increasing s points away from the root, to the other side of it.
            adj = np.where((target > low) & (target < high), target - current, fisher)
            adj = np.maximum(adj, np.where(low == 0, -current, -np.inf))  # not below 0 while 0 is the lower end
            previous_tau2, previous_step = current, fisher
        adj = _halve_into(current, adj, low, high)
        current = current + adj
        limit = control.threshold if control.absolute else control.threshold * np.maximum(current, scale)
        finished = (np.abs(adj) <= limit) | (high - low <= limit)  # the root is within limit of tau²
        if finished.any():
            done = index[finished]
            tau2[done], iterations[done], converged[done] = current[finished], iteration, True
            going = ~finished
            if not going.any():
                break
            index, current, scale, low, high, previous_tau2, previous_step = (
                a[going] for a in (index, current, scale, low, high, previous_tau2, previous_step))
            sub = sub.rows(going)
    else:
        tau2[index] = current
    return Tau2Fit(tau2, iterations, converged)


class ScoringFit(Protocol):
    """What the scoring steps (and DL, HS) read from a weighted fit: a :class:`WeightedFit` over a batch,
    or a :class:`metabac.single.OneFit` of one problem."""

    sum_w: Array
    sum_w2: Array

    def rss(self) -> Array: ...

    def ypp_y(self) -> Array: ...

    def trace_p(self) -> Array: ...

    def trace_pp(self) -> Array: ...


def ml_step(fit: ScoringFit, k: Array, p: int) -> Array:
    """ML scoring step: (y'PPy − Σw)/Σw², w = 1/(v + tau²) (Viechtbauer 2005, eq. 13 and Appendix)."""
    return (fit.ypp_y() - fit.sum_w) / fit.sum_w2


def reml_step(fit: ScoringFit, k: Array, p: int) -> Array:
    """REML scoring step: (y'PPy − tr P)/tr(PP) (Viechtbauer 2005, eq. 15 and Appendix)."""
    return (fit.ypp_y() - fit.trace_p()) / fit.trace_pp()


def eb_step(fit: ScoringFit, k: Array, p: int) -> Array:
    """Empirical Bayes step: (y'Py · k/(k − p) − k)/Σw (Morris 1983; Berkey et al. 1995, eq. 6)."""
    return (fit.rss() * k / (k - p) - k) / fit.sum_w


def q_newton_step(fit: ScoringFit, target: Array) -> Array:
    """Newton step on 1/Q(tau²) = 1/target: (Q − target)·Q/(target·y'PPy), as dQ/dtau² = −y'PPy (see
    :func:`_q_newton`). Call under ``np.errstate(divide="ignore", invalid="ignore")``: y'PPy = 0 (all y equal)
    makes Q flat and the step infinite."""
    q = fit.rss()
    return (q - target) * q / (target * fit.ypp_y())


SCORING_STEPS = {"ML": ml_step, "REML": reml_step, "EB": eb_step}


def _batch_step(formula: Callable[[ScoringFit, Array, int], Array]) -> Step:
    """A scoring step formula as the batched loop calls it."""

    def step(problem: Problem, tau2: Array, rows: NDArray[np.int64] | None = None) -> Array:
        return formula(WeightedFit.at(problem, tau2), problem.k, problem.p)

    return step


_ml_step = _batch_step(ml_step)
_reml_step = _batch_step(reml_step)
_eb_step = _batch_step(eb_step)


LOG_2PI = float(np.log(2 * np.pi))


def log_likelihood(k: Array, p: int, log_det_v: Array, rss: Array, log_det_xwx: Array, restricted: bool) -> Array:
    """(Restricted) log-likelihood of the normal-normal model, constants kept as metafor:
    −½(k or k − p)·log 2π − ½ Σ log(v + tau²) − ½ y'Py (− ½ log det X'WX for REML)."""
    ll = -0.5 * (k - p if restricted else k) * LOG_2PI - 0.5 * log_det_v - 0.5 * rss
    return ll - 0.5 * log_det_xwx if restricted else ll


def zero_is_better(at_zero: Array, at_root: Array) -> Array:
    """metafor's boundary rule: the likelihood at tau² = 0 beats the one at the scoring root (beyond rounding)."""
    return at_zero - at_root > 1e-12 * np.abs(at_root)


def _with_boundary_check(problem: Problem, fit: Tau2Fit, restricted: bool) -> Tau2Fit:
    """Set tau² to 0 where the (restricted) likelihood is higher at 0 than at the scoring root, as metafor."""
    if not np.any(fit.tau2 > 0):
        return fit
    at_zero = _log_likelihood(problem, np.zeros_like(fit.tau2), problem.fixed_fit, restricted)
    at_root = _log_likelihood(problem, fit.tau2, WeightedFit.at(problem, fit.tau2), restricted)
    better = zero_is_better(at_zero, at_root) & (fit.tau2 > 0)
    return fit._replace(tau2=np.where(better, 0.0, fit.tau2))


def maximum_likelihood(problem: Problem, control: Control) -> Tau2Fit:
    """Maximum likelihood by Fisher scoring; root of Σw²((y − Xβ̂)² − v − tau²) = 0 (Hardy & Thompson 1996)."""
    return _with_boundary_check(problem, _fisher_scoring(problem, control, _ml_step), restricted=False)


def restricted_maximum_likelihood(problem: Problem, control: Control) -> Tau2Fit:
    """Restricted maximum likelihood by Fisher scoring; root of y'PPy = tr(P) (Viechtbauer 2005, eq. 15)."""
    return _with_boundary_check(problem, _fisher_scoring(problem, control, _reml_step), restricted=True)


def empirical_bayes(problem: Problem, control: Control) -> Tau2Fit:
    """Empirical Bayes (Morris 1983): root of Q(tau²) = k − p reached by the EB iteration; equals PM at the root."""
    return _fisher_scoring(problem, control, _eb_step)


def upper_bracket(problem: Problem, control: Control) -> Array:
    """metafor's upper end for ``uniroot``: ``control.tau2_max``, or tau2.max = max(100, 10·mad(y)²) per problem."""
    if control.tau2_max is not None:
        return np.full(problem.y.shape[0], control.tau2_max)
    upper = np.empty(problem.y.shape[0])
    for i in range(problem.y.shape[0]):
        y = problem.y[i][problem.mask[i]]
        upper[i] = max(100.0, 10 * (1.4826 * np.median(np.abs(y - np.median(y)))) ** 2)
    return upper


def _q_newton(problem: Problem, target: Array, control: Control) -> Tau2Fit:
    """The tau² >= 0 with Q(tau²) = target per problem (0 when Q(0) < target), by Newton's method from 0.

    Newton runs on 1/Q(tau²) = 1/target, which is close to linear in tau² (Q ≈ c/(v̄ + tau²) when the variances are
    alike), where Q itself is steeply convex: with dQ/dtau² = −y'PPy the step is Δ = (Q − target)·Q/(target·y'PPy)
    (at most 8 iterations on variances spread over six orders of magnitude, against 40 for Newton on Q). The steps
    run through the safeguarded loop of :func:`_fisher_scoring` (bracket, halving, per-problem convergence).
    """

    def step(rows_problem: Problem, tau2: Array, rows: NDArray[np.int64]) -> Array:
        with np.errstate(divide="ignore", invalid="ignore"):
            return q_newton_step(WeightedFit.at(rows_problem, tau2), target[rows])

    return _fisher_scoring(problem, control, step, start=np.zeros(problem.y.shape[0]), accelerate=False)


def solve_q_equation(
    problem: Problem, target: Array, control: Control, method: str, upper: Array | None = None
) -> Array:
    """The tau² >= 0 with Q(tau²) = target for each problem (0 when Q(0) < target).

    By default by Newton's method on the whole batch (:func:`_q_newton`); with ``control.absolute`` (as in
    :meth:`Control.metafor`) by Brent's method per problem on [0, upper], as metafor's ``uniroot``, with ``upper``
    from :func:`upper_bracket` unless given. A root beyond a given ``upper`` (or ``control.tau2_max``) raises
    :class:`ConvergenceError`.
    """
    if not control.absolute:
        fit = _q_newton(problem, target, control)
        if not fit.converged.all():
            raise ConvergenceError(f"{method}: tau2 did not converge after {control.maxiter} iterations")
        limit = upper if upper is not None else control.tau2_max
        if limit is not None:
            beyond = np.flatnonzero(fit.tau2 > limit)
            if beyond.size:
                i = beyond[0]
                raise ConvergenceError(f"{method}: Q(tau2) is still above {target[i]:g} at tau2 = "
                                       f"{np.broadcast_to(limit, target.shape)[i]:g}")
        return fit.tau2
    n = problem.y.shape[0]
    q0 = q_statistic(problem, np.zeros(n))
    upper = upper_bracket(problem, control) if upper is None else upper
    root = np.zeros(n)
    for i in np.flatnonzero(q0 >= target):
        one = problem.rows(np.array([i]))
        objective = lambda t: q_statistic(one, np.array([t]))[0] - target[i]  # noqa: E731
        if objective(upper[i]) > 0:
            raise ConvergenceError(f"{method}: Q(tau2) is still above {target[i]:g} at tau2 = {upper[i]:g}")
        try:
            root[i] = brentq(objective, 0.0, upper[i], xtol=control.xtol, maxiter=control.maxiter)
        except RuntimeError:  # scipy's "Failed to converge after n iterations"
            raise ConvergenceError(f"{method}: tau2 did not converge after {control.maxiter} iterations") from None
    return root


def paule_mandel(problem: Problem, control: Control) -> Tau2Fit:
    """Paule-Mandel: the tau² with Q(tau²) = k − p, or 0 if Q(0) < k − p (Paule & Mandel 1982; DerSimonian &
    Kacker 2007, eq. 6): Newton's method on the batch, or Brent's method per problem under ``control.absolute``
    (see :func:`solve_q_equation`)."""
    target = (problem.k - problem.p).astype(float)
    if not control.absolute:
        return _q_newton(problem, target, control)
    tau2 = solve_q_equation(problem, target, control, "PM")
    n = tau2.shape[0]
    return Tau2Fit(tau2, np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool))


TAU2_ESTIMATORS: dict[str, Callable[[Problem, Control], Tau2Fit]] = {
    "EE": equal_effects,
    "FE": equal_effects,
    "DL": dersimonian_laird,
    "HE": hedges,
    "HS": hunter_schmidt,
    "SJ": sidik_jonkman,
    "ML": maximum_likelihood,
    "REML": restricted_maximum_likelihood,
    "EB": empirical_bayes,
    "PM": paule_mandel,
}


def estimate_tau2(problem: Problem, method: str, control: Control | None = None, strict: bool = True) -> Tau2Fit:
    """Estimate tau² with ``method`` for every problem of the batch.

    Problems with a single study get tau² = 0, as metafor. With ``strict`` (the default), an iterative estimator
    that fails to converge raises :class:`ConvergenceError` naming the method and the iterations tried; otherwise
    the failure is reported per problem in ``converged``.
    """
    control = control or Control()
    single = problem.k <= problem.p
    if single.all():
        return equal_effects(problem, control)
    if single.any():
        rest = TAU2_ESTIMATORS[method](problem.rows(~single), control)
        tau2 = np.zeros(problem.y.shape[0])
        tau2[~single] = rest.tau2
        iterations = np.zeros_like(tau2, dtype=np.int64)
        iterations[~single] = rest.iterations
        converged = np.ones_like(tau2, dtype=bool)
        converged[~single] = rest.converged
        fit = Tau2Fit(tau2, iterations, converged)
    else:
        fit = TAU2_ESTIMATORS[method](problem, control)
    if strict and not fit.converged.all():
        tried = int(fit.iterations[~fit.converged].max())
        raise ConvergenceError(f"{method}: tau2 did not converge after {tried} iterations")
    return fit


__all__ = ["CHUNK_BYTES", "Control", "Method", "METHODS", "Problem", "Tau2Fit", "TAU2_ESTIMATORS", "chunk_rows",
           "estimate_tau2"]
