"""The weighted-least-squares engine under every tau² estimator and pooled fit: a batch of problems, their weighted
fits, the sums, traces and likelihood those are made of, the rescaling of extreme variances and the chunking of large
batches.

A :class:`Problem` holds effect sizes ``y`` and sampling variances ``v`` of shape (B, k), a design ``X`` of shape
(B, k, p) (a column of ones for plain pooling) and a ``mask`` of shape (B, k) that marks the studies present in each
problem. Absent studies get weight zero, so one code path serves a single analysis (B = 1), subgroup fits,
leave-one-out and GOSH subsets. All formulas are weighted sums along the study axis plus p x p solves: O(k p²) per
problem, never a k x k matrix. :class:`OneFit` is :class:`WeightedFit` for one intercept-only problem in scalar
arithmetic (numpy's per-call overhead on (1, k) arrays dominates a single small fit).

Notation (metafor's): for weights w, W = diag(w), P = W − W X (X'W X)⁻¹ X' W, so that
y'P y = Σ w r² with r the WLS residuals, and P y = W r.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol, TypeVar

import numpy as np
from numpy.typing import NDArray

from metabac._checks import InputError

Array = NDArray[np.float64]
# A per-problem number: a numpy scalar for one problem in scalar arithmetic, an array of shape (B,) for a batch.
Value = TypeVar("Value", np.float64, Array)


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


def variance_scale(v: Array, mask: NDArray[np.bool_] | None = None) -> np.float64 | Array:
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


def study_sum(a: Array) -> Any:
    """Σ a along the study axis: einsum over a batch of short rows (three times faster than ``sum`` there), numpy's
    pairwise ``sum`` on a single row (1-D: twice as fast as einsum) and on long rows. An array of shape (B,) for 2-D
    ``a``, a numpy scalar for 1-D (numpy's annotations cannot tell the two apart, hence ``Any``)."""
    if a.ndim > 1 and a.shape[-1] <= LONG_ROWS:
        return np.einsum("...k->...", a)
    return np.add.reduce(a, axis=-1)


def study_dot(a: Array, b: Array) -> Any:
    """Σ a·b along the study axis: numpy's vecdot on short rows (twice as fast as einsum on one problem), einsum on
    long ones, where vecdot's BLAS would start threads that stall on a busy machine. Shapes as :func:`study_sum`."""
    if a.shape[-1] <= LONG_ROWS and hasattr(np, "vecdot"):  # numpy >= 2.0
        return np.vecdot(a, b)
    return np.einsum("...k,...k->...", a, b)


def intercept_trace_p(sum_w: Value, sum_w2: Value) -> Value:
    """tr P for X = 1: Σw − Σw²/Σw."""
    return sum_w - sum_w2 / sum_w


def intercept_trace_pp(sum_w: Value, sum_w2: Value, sum_w3: Value) -> Value:
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


LOG_2PI = float(np.log(2 * np.pi))


def log_likelihood(k: Value, p: int, log_det_v: Value, rss: Value, log_det_xwx: Value, restricted: bool) -> Value:
    """(Restricted) log-likelihood of the normal-normal model, constants kept as metafor:
    −½(k or k − p)·log 2π − ½ Σ log(v + tau²) − ½ y'Py (− ½ log det X'WX for REML); ``k`` as a float."""
    ll = -0.5 * (k - p if restricted else k) * LOG_2PI - 0.5 * log_det_v - 0.5 * rss
    return ll - 0.5 * log_det_xwx if restricted else ll


def problem_log_likelihood(problem: Problem, tau2: Array, fit: WeightedFit, restricted: bool) -> Array:
    """:func:`log_likelihood` of each problem at tau²; ``fit`` is the weighted fit at tau²."""
    log_det_v = study_sum(problem.present(np.log(problem.v + tau2[:, None])))
    log_det_xwx = fit.log_det_xwx() if restricted else np.zeros_like(log_det_v)
    return log_likelihood(problem.k.astype(float), problem.p, log_det_v, fit.rss(), log_det_xwx, restricted)


class ScoringFit(Protocol[Value]):  # type: ignore[misc]
    """What the scoring steps (and DL, HS) read from a weighted fit: a :class:`WeightedFit` over a batch (arrays of
    shape (B,)), or a :class:`OneFit` of one problem (numpy scalars)."""

    @property
    def sum_w(self) -> Value: ...

    @property
    def sum_w2(self) -> Value: ...

    def rss(self) -> Value: ...

    def ypp_y(self) -> Value: ...

    def trace_p(self) -> Value: ...

    def trace_pp(self) -> Value: ...


class OneFit:
    """The weighted fit of one intercept-only problem at one tau² (w = 1/(v + tau²)): β̂ = Σwy/Σw and the sums of
    :class:`WeightedFit` for X = 1, as numpy scalars (``y`` and ``v`` 1-D)."""

    __slots__ = ("w", "sum_w", "sum_w2", "beta", "residuals", "weighted_residuals")

    def __init__(self, y: Array, v: Array, tau2: float) -> None:
        self.w: Array = 1.0 / (v + tau2)
        self.sum_w: np.float64 = study_sum(self.w)
        self.sum_w2: np.float64 = study_dot(self.w, self.w)
        self.beta: np.float64 = study_dot(self.w, y) / self.sum_w
        self.residuals: Array = y - self.beta
        self.weighted_residuals: Array = self.w * self.residuals

    def rss(self) -> np.float64:
        """y'Py = Σw(y − β̂)² (the generalised Q statistic)."""
        return study_dot(self.weighted_residuals, self.residuals)

    def ypp_y(self) -> np.float64:
        """y'PPy = Σ(w(y − β̂))²."""
        return study_dot(self.weighted_residuals, self.weighted_residuals)

    def trace_p(self) -> np.float64:
        return intercept_trace_p(self.sum_w, self.sum_w2)

    def trace_pp(self) -> np.float64:
        return intercept_trace_pp(self.sum_w, self.sum_w2, study_dot(self.w * self.w, self.w))

    def log_likelihood(self, v: Array, tau2: float, restricted: bool) -> np.float64:
        """:func:`log_likelihood` at this fit's tau²."""
        return log_likelihood(np.float64(len(v)), 1, study_sum(np.log(v + tau2)), self.rss(), np.log(self.sum_w),
                              restricted)
