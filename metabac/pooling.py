"""Inverse-variance pooling (fixed and random effects), Q-profile intervals, and the pooled result object.

``pool`` fits one meta-analysis, or a batch of them at once (2-D ``yi``/``vi`` with an optional mask); every
formula is a weighted sum along the study axis (see :mod:`metabac.tau2`). A batch runs :func:`fit_problem`; one
analysis runs the same formulas in scalar arithmetic (:mod:`metabac.single`), about four times faster per call,
with the same numbers to 1e-12 (tests/test_batch.py).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypedDict, TypeVar, Unpack, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

from metabac._checks import (
    InputError,
    effects_and_variances,
    label_list,
    require_choice,
    require_label_count,
    require_level,
    require_nonnegative_number,
    require_positive_number,
    unpack_effect_sizes,
)
from metabac._result import Result, fmt, fmt_p, table
from metabac.effects import RATIO_MEASURES, SCALE_NAMES, canonical_measure
from metabac.formatting import natural_scale, number
from metabac.single import fit_one
from metabac.tau2 import (
    METHODS,
    T_TESTS,
    TEST_NAMES,
    Control,
    critical_value,
    estimate_tau2,
    knapp_hartung_factor,
    q_based_i2,
    solve_q_equation,
    two_sided_p,
)
from metabac.wls import Problem, WeightedFit, q_statistic, require_representable, unscale, variance_scale

if TYPE_CHECKING:
    import pandas as pd

Array = NDArray[np.float64]


class Interval(NamedTuple):
    """An estimate with its confidence interval."""

    estimate: float
    ci_low: float
    ci_high: float


class HeterogeneityCI(NamedTuple):
    """Q-profile confidence intervals for tau², tau, I² (percent) and H².

    ``upper_censored`` / ``lower_censored`` are true where a bound lies beyond the search limit ``tau2_max`` and
    the interval shows the limit instead (metafor prints these bounds as ">tau2_max"). ``empty`` is true where
    Q(0) is already below the lower χ² quantile, so that both bounds would lie below 0: the interval shows [0, 0],
    and is the null set (metafor prints both bounds as "<0" and says so).
    """

    tau2: Interval
    tau: Interval
    i2: Interval
    h2: Interval
    tau2_max: float = float("inf")
    lower_censored: bool = False
    upper_censored: bool = False
    empty: bool = False

    def summary(self, digits: int = 4) -> str:
        """metafor's ``confint`` table: estimate and bounds of tau², tau, I² (%) and H², with its notes."""
        rows = [[name, fmt(row.estimate, digits), fmt(row.ci_low, digits), fmt(row.ci_high, digits)]
                for name, row in (("tau^2", self.tau2), ("tau", self.tau), ("I^2(%)", self.i2), ("H^2", self.h2))]
        lines = [table(["", "estimate", "ci_low", "ci_high"], rows)]
        if self.upper_censored or self.lower_censored:
            lines.append(f"(a bound beyond tau2_max = {self.tau2_max:g} is shown as tau2_max)")
        if self.empty:
            lines.append("(Q(0) is below the lower quantile: the interval is empty, shown as [0, 0])")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return (f"<HeterogeneityCI: tau^2 {fmt(self.tau2.estimate)} [{fmt(self.tau2.ci_low)}, "
                f"{fmt(self.tau2.ci_high)}], I^2 {fmt(self.i2.estimate, 2)}% [{fmt(self.i2.ci_low, 2)}, "
                f"{fmt(self.i2.ci_high, 2)}]>")


Float = TypeVar("Float", float, Array)  # a pooled number: a float for one analysis, shape (batch,) for a batch
Count = TypeVar("Count", int, NDArray[np.int64])  # a count, likewise


@dataclass(frozen=True, repr=False)
class PooledFit(Result, Generic[Float, Count]):
    """The numbers of a pooled analysis, shared by :class:`PoolResult` (one analysis: floats and ints) and
    :class:`PoolBatch` (many: arrays of shape (batch,)).

    Attributes
    ----------
    estimate, se, ci_low, ci_high, statistic, pvalue
        Pooled estimate (on the analysis scale, e.g. log RR), its standard error, confidence interval, z or t
        statistic and two-sided p-value.
    df
        Degrees of freedom of the t distribution (k − 1) under ``test="knha"`` or ``"adhoc"``; None for z.
    tau2, q, q_df, q_pvalue, i2, h2
        Between-study variance, Cochran's Q with its df and p-value, I² (percent; tau²-based for random effects,
        Q-based for fixed effect, as metafor) and H².
    pi_low, pi_high
        Prediction interval: estimate ± crit·√(se² + tau²), crit from z or t(k − 1).
    k, weights
        Number of studies and the percent weight of each study.
    tau2_fixed
        True where tau² was given (``pool(..., tau2=)``) rather than estimated.
    """

    estimate: Float
    se: Float
    ci_low: Float
    ci_high: Float
    statistic: Float
    pvalue: Float
    df: Count | None
    tau2: Float
    q: Float
    q_df: Count
    q_pvalue: Float
    i2: Float
    h2: Float
    pi_low: Float
    pi_high: Float
    k: Count
    weights: Array
    method: str
    test: str
    level: float
    measure: str | None = None
    model: str = "inverse variance"
    labels: tuple[str, ...] | None = None
    yi: Array = field(default_factory=lambda: np.empty(0), repr=False)
    vi: Array = field(default_factory=lambda: np.empty(0), repr=False)
    control: Control = field(default_factory=Control, repr=False)
    tau2_fixed: bool = False

    @property
    def is_random(self) -> bool:
        return (self.tau2_fixed or self.method not in ("EE", "FE")) and self.model == "inverse variance"


@dataclass(frozen=True, repr=False)
class PoolResult(PooledFit[float, int]):
    """One fitted meta-analysis (see :class:`PooledFit` for the fields); ``vt`` is the typical sampling variance
    behind I² and H², ``iterations`` those of the tau² estimator."""

    vt: float = field(default=float("nan"), repr=False)
    iterations: int = 0

    def confint(self, tau2_max: float | None = None) -> HeterogeneityCI:
        """Q-profile confidence intervals for tau², tau, I² and H² (Viechtbauer 2007).

        ``tau2_max`` bounds the search, as metafor's ``control=list(tau2.max=...)``; by default metafor's
        max(100, 10·tau²). Pass ``float("inf")`` for the exact bounds however far out they lie. Not available
        where tau² was given rather than estimated (as metafor).
        """
        if self.model != "inverse variance":
            raise InputError("confint: available for a single inverse-variance analysis")
        if self.tau2_fixed:
            raise InputError("confint: tau2 was given, not estimated; there is no interval to compute")
        if tau2_max is not None:
            tau2_max = require_positive_number(tau2_max, "tau2_max", allow_inf=True)
        return q_profile(self, tau2_max)

    def to_frame(self) -> pd.DataFrame:
        """Per-study rows (yi, CI, weight) and a pooled row, as a forest plot lists them."""
        import pandas as pd

        crit = float(critical_value(self.level))
        se = np.sqrt(self.vi)
        labels = list(self.labels) if self.labels else [f"study {i + 1}" for i in range(len(self.yi))]
        frame = pd.DataFrame(
            {"estimate": self.yi, "se": se, "ci_low": self.yi - crit * se, "ci_high": self.yi + crit * se,
             "weight": self.weights},
            index=pd.Index(labels, name="study"),
        )
        pooled = pd.DataFrame(
            {"estimate": [self.estimate], "se": [self.se], "ci_low": [self.ci_low], "ci_high": [self.ci_high],
             "weight": [100.0]},
            index=pd.Index([f"pooled ({self.method})"], name="study"),
        )
        return pd.concat([frame, pooled])

    def summary(self, digits: int = 4) -> str:
        """A text summary in metafor's print layout, with a back-transformed line for ratio measures."""
        return format_summary(self, digits)

    def brief(self) -> str:
        """Model, k, the estimate with its interval and tau²."""
        model = self.method if self.model == "inverse variance" else self.model
        scale = SCALE_NAMES.get(self.measure or "")
        return (f"{model}, k = {self.k}: estimate {fmt(self.estimate)}{f' ({scale})' if scale else ''} "
                f"[{self.level:g}% CI {fmt(self.ci_low)}, {fmt(self.ci_high)}], p = {fmt_p(self.pvalue)}"
                + (f", tau^2 = {fmt(self.tau2)}" if self.is_random else ""))


@dataclass(frozen=True, repr=False)
class PoolBatch(PooledFit[Array, NDArray[np.int64]]):
    """A batch of fitted meta-analyses, every number of :class:`PooledFit` an array of shape (batch,) (``weights``,
    ``yi`` and ``vi`` of shape (batch, k), zero weight for absent studies)."""

    vt: Array = field(default_factory=lambda: np.empty(0), repr=False)
    iterations: NDArray[np.int64] = field(default_factory=lambda: np.empty(0, dtype=np.int64))

    def to_frame(self) -> pd.DataFrame:
        """One row per problem: estimate, se, CI, p-value, tau², I² and k."""
        import pandas as pd

        return pd.DataFrame({name: getattr(self, name) for name in
                             ("estimate", "se", "ci_low", "ci_high", "pvalue", "tau2", "i2", "k")},
                            index=pd.RangeIndex(len(self.estimate), name="problem"))

    def summary(self, digits: int = 4) -> str:
        return f"Batch of {len(self.estimate)} meta-analyses ({self.method}); use to_frame() per problem"

    def brief(self) -> str:
        return f"batch of {len(self.estimate)} meta-analyses ({self.method})"


def _ndim(values: ArrayLike) -> int:
    """Number of dimensions, without converting an array or failing on a ragged list."""
    ndim = getattr(values, "ndim", None)
    return ndim if ndim is not None else np.asarray(values, dtype=object).ndim


def _prepare_one(yi: ArrayLike, vi: ArrayLike, labels: list[str] | None, mask: ArrayLike | None
                 ) -> tuple[Array, Array, list[str] | None]:
    """Checked copies of one analysis' effect sizes and variances (the result owns its data) and labels, keeping
    the studies where ``mask`` is true."""
    y, v = effects_and_variances(yi, vi, labels)
    require_label_count(labels, len(y))
    if mask is None:
        return y.copy(), v.copy(), labels
    keep = _mask(mask, y.shape)
    if not keep.any():
        raise InputError("mask: excludes every study")
    return y[keep], v[keep], None if labels is None else [name for name, kept in zip(labels, keep) if kept]


def _mask(mask: ArrayLike, shape: tuple[int, ...]) -> NDArray[np.bool_]:
    """``mask`` as booleans of ``shape``: only booleans or numbers equal to 0 or 1 are accepted (NaN, 0.5 or "no"
    are not a choice between including and excluding a study)."""
    values = np.asarray(mask)
    if values.shape != shape:
        raise InputError(f"mask: shape {values.shape} differs from yi {shape}")
    if values.dtype != bool:
        numeric = np.issubdtype(values.dtype, np.integer) or np.issubdtype(values.dtype, np.floating)
        if not numeric or not np.isin(values, (0, 1)).all():
            found = (next(x for x in values.ravel() if x not in (0, 1) or isinstance(x, str)) if numeric or
                     values.dtype == object else values.ravel()[0])
            raise InputError(f"mask: must be booleans (or 0 and 1), got {getattr(found, 'item', lambda: found)()!r}")
    return values.astype(bool)


def _prepare_batch(yi: ArrayLike, vi: ArrayLike, mask: ArrayLike | None, labels: list[str] | None) -> Problem:
    try:
        y, v = np.asarray(yi, dtype=float), np.asarray(vi, dtype=float)
    except (TypeError, ValueError, OverflowError):
        raise InputError("yi/vi: batched input must be numbers in two arrays of one shape (batch, k)") from None
    if y.shape != v.shape or y.ndim != 2:
        raise InputError(f"yi/vi: batched input needs two arrays of one shape (batch, k), got {y.shape}, {v.shape}")
    keep = np.ones(y.shape, dtype=bool) if mask is None else _mask(mask, y.shape)
    require_label_count(labels, y.shape[1])
    if not np.all(np.isfinite(y[keep]) & np.isfinite(v[keep])):
        raise InputError("yi/vi: must be finite where mask is true")
    if np.any(v[keep] <= 0):
        raise InputError("vi: must be positive where mask is true")
    if np.any(keep.sum(axis=1) == 0):
        raise InputError("mask: a problem of the batch has no studies")
    return Problem.intercept_only(y, v, keep)


def fit_problem(problem: Problem, method: str, test: str, level: float, control: Control,
                tau2: float | None = None) -> dict:
    """Fit every problem of the batch: all PoolBatch numbers as arrays of shape (batch,); ``tau2``, when given, is
    the between-study variance of every problem instead of an estimate.

    Problems whose sampling variances lie beyond 2^±100 are fitted to y/s, v/s² and scaled back
    (:func:`metabac.wls.variance_scale`), grouped by their s.
    """
    scale = np.atleast_1d(variance_scale(problem.v, problem.mask))
    if np.all(scale == 1):
        return _fit_problem(problem, method, test, level, control, tau2)
    parts = []
    for s in np.unique(scale):
        rows = np.flatnonzero(scale == s)
        sub = problem.rows(rows).scaled(np.full(len(rows), s))
        s2 = float(s * s)
        numbers = _fit_problem(sub, method, test, level, control.scaled(s2), None if tau2 is None else tau2 / s2)
        parts.append((rows, unscale(numbers, s)))
    if len(parts) == 1:
        return parts[0][1]
    numbers = {}
    for key, value in parts[0][1].items():
        if value is None:
            numbers[key] = None
            continue
        numbers[key] = np.empty((len(scale), *np.shape(value)[1:]), dtype=np.result_type(value))
        for rows, part in parts:
            numbers[key][rows] = part[key]
    return numbers


def _fit_problem(problem: Problem, method: str, test: str, level: float, control: Control,
                 fixed_tau2: float | None) -> dict:
    """:func:`fit_problem` on data that need no scaling.

    Distribution functions come from :mod:`scipy.special` (the functions behind ``scipy.stats``, without its
    per-call argument handling): ``ndtr``/``ndtri`` for z, ``stdtr``/``stdtrit`` for t, ``chdtrc`` for χ².
    """
    k, p = problem.k, problem.p
    fixed = problem.fixed_fit
    q = np.maximum(fixed.rss(), 0.0)
    require_representable(q, problem.scale(), np.max(np.where(problem.mask, problem.v, 0.0), axis=-1))
    n = problem.y.shape[0]
    if fixed_tau2 is None:
        tau2, iterations = estimate_tau2(problem, method, control)[:2]
    else:
        tau2, iterations = np.full(n, fixed_tau2), np.zeros(n, dtype=np.int64)
    random = fixed_tau2 is not None or method not in ("EE", "FE")
    fit = WeightedFit.at(problem, tau2) if random else fixed
    estimate = fit.beta[:, 0]
    se = np.sqrt(fit.xwx_inv[:, 0, 0])
    q_df = k - p
    with np.errstate(divide="ignore", invalid="ignore"):
        q_pvalue = np.where(q_df > 0, special.chdtrc(np.maximum(q_df, 1), q), 1.0)
        vt = q_df / fixed.trace_p()
        if random:
            i2 = 100 * tau2 / (vt + tau2)
            h2 = tau2 / vt + 1
        else:
            i2 = q_based_i2(q, q_df)
            h2 = np.where(q_df > 0, q / q_df, 1.0)
    i2 = np.where(k > 1, i2, 0.0)
    h2 = np.where(k > 1, h2, 1.0)
    df = None
    if test in T_TESTS:
        se = se * np.sqrt(knapp_hartung_factor(fit.rss(), q_df, test))
        df = q_df
    with np.errstate(divide="ignore", invalid="ignore"):
        statistic = estimate / se
    crit = np.broadcast_to(critical_value(level, df), estimate.shape)
    pvalue = two_sided_p(statistic, df)
    pi_half = crit * np.sqrt(se**2 + tau2)
    weights = 100 * fit.w / fit.sum_w[:, None]
    return dict(
        estimate=estimate, se=se, ci_low=estimate - crit * se, ci_high=estimate + crit * se,
        statistic=statistic, pvalue=pvalue, df=df, tau2=tau2, q=q, q_df=q_df, q_pvalue=q_pvalue, i2=i2, h2=h2,
        pi_low=estimate - pi_half, pi_high=estimate + pi_half, k=k, weights=weights, vt=vt,
        iterations=iterations,
    )


# Inputs whose number of dimensions the type says: one analysis (k,) or a batch (batch, k). An array typed without
# its shape (most are) takes the first overload; its number of dimensions decides at run time.
OneAnalysis = Sequence[float] | np.ndarray[tuple[int], np.dtype[Any]]
Batch = Sequence[Sequence[float]] | np.ndarray[tuple[int, int], np.dtype[Any]]


class ModelChoice(TypedDict):
    """The model arguments of :func:`pool` and of the functions that refit it (sensitivity, risk-of-bias
    re-runs), passed on together as ``**model``."""

    method: str
    test: str
    level: float


class PoolOptions(TypedDict, total=False):
    """The keyword-only arguments of :func:`pool` (for its overloads, which differ only in the shape of yi, vi)."""

    measure: str | None
    labels: ArrayLike | None
    mask: ArrayLike | None
    control: Control | None
    tau2: float | None


@overload
def pool(yi: OneAnalysis | pd.DataFrame, vi: OneAnalysis | None = None, method: str = "REML", test: str = "z",
         level: float = 95, **options: Unpack[PoolOptions]) -> PoolResult: ...
@overload
def pool(yi: Batch, vi: Batch, method: str = "REML", test: str = "z", level: float = 95,
         **options: Unpack[PoolOptions]) -> PoolBatch: ...
@overload
def pool(yi: ArrayLike | pd.DataFrame, vi: ArrayLike | None = None, method: str = "REML", test: str = "z",
         level: float = 95, **options: Unpack[PoolOptions]) -> PoolResult | PoolBatch: ...


def pool(
    yi: ArrayLike | pd.DataFrame,
    vi: ArrayLike | None = None,
    method: str = "REML",
    test: str = "z",
    level: float = 95,
    *,
    measure: str | None = None,
    labels: ArrayLike | None = None,
    mask: ArrayLike | None = None,
    control: Control | None = None,
    tau2: float | None = None,
) -> PoolResult | PoolBatch:
    """Pool effect sizes by inverse-variance weighting, with a fixed-effect or random-effects model.

    Parameters
    ----------
    yi, vi : array-like
        Effect sizes and sampling variances: shape (k,) for one analysis, or (batch, k) for many at once. Or the
        DataFrame of :func:`metabac.effect_sizes` alone (``pool(es)``): its yi, vi, study labels and measure.
    method : {"EE", "FE", "DL", "HE", "HS", "SJ", "ML", "REML", "EB", "PM"}
        tau² estimator (EE/FE: equal-effects model, tau² = 0). See :mod:`metabac.tau2`.
    test : {"z", "knha", "adhoc"}
        Normal-theory tests and intervals, or the Hartung-Knapp-Sidik-Jonkman adjustment: se² multiplied by
        s² = Σw(y − μ̂)²/(k − 1) and a t distribution with k − 1 df (Knapp & Hartung 2003, eq. 10); "adhoc" is the
        modified Hartung-Knapp, se² multiplied by max(1, s²) (Röver, Knapp & Friede 2015), as metafor's
        ``test="adhoc"``. The prediction interval uses the same standard error and critical value.
    level : float
        Confidence level in percent; a value below 1 is a proportion (0.95 is 95%), as metafor reads it.
    measure : str, optional
        The effect measure of ``yi`` (e.g. "RR"), used for printing and back-transformation.
    labels : array-like, optional
        Study labels, used in error messages, ``to_frame`` and reports.
    mask : array-like of bool (or of 0 and 1), optional
        Which studies to include: of shape (k,) for one analysis (its labels are kept for the included studies),
        of shape (batch, k) for a batch.
    control : Control, optional
        Convergence settings; by default the exact root (see :class:`metabac.tau2.Control`).
    tau2 : float, optional
        A fixed between-study variance (a finite number >= 0) instead of an estimate, as metafor's
        ``rma(..., tau2=)`` and PyMARE's: a random-effects model with w = 1/(v + tau²) whatever ``method`` says
        (which must then not be EE or FE), ``iterations`` 0 and ``tau2_fixed`` true. The other numbers follow from
        the given tau² as metafor computes them: Q, its df and p-value are Cochran's (from the equal-effects fit,
        w = 1/v, whatever tau² is); I² = 100 tau²/(vt + tau²) and H² = tau²/vt + 1 with the typical sampling
        variance vt below; the z test (or the Hartung-Knapp test, with s² = Σw(y − μ̂)²/(k − 1) at the given
        tau²) and the prediction interval estimate ± crit·√(se² + tau²) use w = 1/(v + tau²). ``confint()`` is not
        available (there is no tau² to profile).

    Returns
    -------
    PoolResult for one analysis, PoolBatch for a batch

    Notes
    -----
    With w = 1/(v + tau²): μ̂ = Σwy/Σw, se = 1/√Σw, Q = Σ(y − μ̂_EE)²/v. Random effects: I² = 100 tau²/(vt + tau²),
    H² = tau²/vt + 1 with the typical sampling variance vt = (k − 1)/(Σ(1/v) − Σ(1/v²)/Σ(1/v)) (Higgins & Thompson
    2002); fixed effect: I² = 100 max(0, Q − (k − 1))/Q, H² = Q/(k − 1).

    Examples
    --------
    >>> fit = pool([0.1, 0.3, 0.35, 0.65], [0.01, 0.02, 0.015, 0.03], method="DL")
    >>> round(float(fit.estimate), 4), round(float(fit.tau2), 4)
    (0.3226, 0.029)
    """
    yi, vi, labels, measure = unpack_effect_sizes(yi, vi, labels, measure)
    method = require_choice(method, METHODS, "method")
    test = require_choice(test, TEST_NAMES, "test")
    level = require_level(level)
    names = label_list(labels)
    control = Control() if control is None else control
    if not isinstance(control, Control):
        raise InputError(f"control: must be a metabac.Control, got {type(control).__name__}")
    if tau2 is not None:
        tau2 = _given_tau2(tau2, method)
    if _ndim(yi) > 1 or _ndim(vi) > 1:
        problem = _prepare_batch(yi, vi, mask, names)
        numbers = fit_problem(problem, method, test, level, control, tau2)
        result: type[PoolResult] | type[PoolBatch] = PoolBatch
        y, v = problem.y, problem.v
    else:
        y, v, names = _prepare_one(yi, vi, names, mask)
        if test in T_TESTS and len(y) == 1:
            warnings.warn("Setting test='z' since k = 1 (as metafor does).", stacklevel=2)
            test = "z"
        numbers = fit_one(y, v, method, test, level, control, tau2)
        result = PoolResult
    return result(**numbers, method=method, test=test, level=level, measure=canonical_measure(measure),
                  labels=tuple(names) if names else None, yi=y, vi=v, control=control, tau2_fixed=tau2 is not None)


def _given_tau2(value: float, method: str) -> float:
    """A tau² given to :func:`pool`: a finite number >= 0, with a random-effects ``method``."""
    tau2 = require_nonnegative_number(value, "tau2")
    if method in ("EE", "FE"):
        raise InputError(f"tau2: a given tau2 needs a random-effects model, but method {method!r} fixes tau2 at 0")
    return tau2


def q_profile(result: PoolResult, tau2_max: float | None = None) -> HeterogeneityCI:
    """Q-profile interval: the tau² where the generalised Q(tau²) equals the χ²(k − 1) quantiles (Viechtbauer 2007).

    Lower bound: Q(tau²) = χ²_{1−α/2}; upper bound: Q(tau²) = χ²_{α/2}; a bound is 0 when Q(0) is already below its
    quantile (both bounds: the interval is empty, flagged ``empty``). The search stops at ``tau2_max`` (metafor's
    default max(100, 10·tau²)); a bound beyond it is reported as ``tau2_max`` and flagged as censored.
    I² and H² bounds follow from tau² through vt, as metafor.
    """
    scale = variance_scale(result.vi)  # tau² in units of s², as in the fit (see metabac.tau2.variance_scale)
    s2 = float(scale) ** 2
    problem = Problem.intercept_only(result.yi, result.vi).scaled(np.atleast_1d(scale))
    control = result.control.scaled(s2)
    df = result.k - problem.p
    if df < 1:
        raise InputError("confint: needs at least 2 studies")
    limit = (max(100.0, 10 * float(result.tau2)) if tau2_max is None else float(tau2_max)) / s2
    alpha = 1 - result.level / 100
    targets = 2 * special.gammaincinv(df / 2, np.array([1 - alpha / 2, alpha / 2]))  # chi2.ppf, as scipy.stats
    both = Problem(np.repeat(problem.y, 2, axis=0), np.repeat(problem.v, 2, axis=0), np.repeat(problem.X, 2, axis=0),
                   np.repeat(problem.mask, 2, axis=0))
    if np.isfinite(limit):
        censored = q_statistic(both, np.full(2, limit)) > targets
        bounds = np.full(2, limit)
        if not censored.all():
            solvable = both.rows(~censored)
            bounds[~censored] = solve_q_equation(solvable, targets[~censored], control, "Q-profile",
                                                 upper=np.full(solvable.y.shape[0], limit))
    else:
        censored = np.zeros(2, dtype=bool)
        bounds = solve_q_equation(both, targets, control, "Q-profile")
    empty = bool(q_statistic(problem, np.zeros(1))[0] < targets[1])
    vt = float(result.vt)
    tau2 = np.array([result.tau2, *(bounds * s2)], dtype=float)
    i2 = 100 * tau2 / (vt + tau2)
    h2 = tau2 / vt + 1
    return HeterogeneityCI(
        tau2=Interval(*tau2.tolist()),
        tau=Interval(*np.sqrt(tau2).tolist()),
        i2=Interval(float(result.i2), float(i2[1]), float(i2[2])),
        h2=Interval(float(result.h2), float(h2[1]), float(h2[2])),
        tau2_max=float(limit * s2),
        lower_censored=bool(censored[0]),
        upper_censored=bool(censored[1]),
        empty=empty,
    )


def format_summary(result: PoolResult, digits: int = 4) -> str:
    """metafor-style text for a single PoolResult."""
    d = digits
    lines = []
    if result.model != "inverse variance":
        lines.append(f"Equal-Effects Model ({result.model} method; k = {result.k})")
    elif result.tau2_fixed:
        lines.append(f"Random-Effects Model (k = {result.k}; user-specified tau^2 value)")
    elif result.is_random:
        lines.append(f"Random-Effects Model (k = {result.k}; tau^2 estimator: {result.method})")
    else:
        lines.append(f"Equal-Effects Model (k = {result.k})")
    lines.append("")
    if result.is_random:
        lines += [
            f"tau^2 ({'specified' if result.tau2_fixed else 'estimated'} amount of total heterogeneity): "
            f"{fmt(result.tau2, d)}",
            f"tau (square root of estimated tau^2 value):      {fmt(np.sqrt(result.tau2), d)}",
        ]
    lines += [
        f"I^2 (total heterogeneity / total variability):   {result.i2:.2f}%",
        f"H^2 (total variability / sampling variability):  {result.h2:.2f}",
        "",
        "Test for Heterogeneity:",
        f"Q(df = {result.q_df}) = {fmt(result.q, d)}, p-val = {fmt_p(result.q_pvalue, d)}",
        "",
    ]
    scale = SCALE_NAMES.get(result.measure or "", "")
    lines.append(f"Model Results{f' ({scale})' if scale else ''}:")
    stat_name = "t" if result.test in T_TESTS else "z"
    header = ["estimate", "se", stat_name, "p", "ci_low", "ci_high"]
    row = [fmt(result.estimate, d), fmt(result.se, d), fmt(result.statistic, d), fmt_p(result.pvalue, d),
           fmt(result.ci_low, d), fmt(result.ci_high, d)]
    has_pi = result.is_random and bool(np.isfinite(result.pi_low))
    if has_pi:
        header += ["pi_low", "pi_high"]
        row += [fmt(result.pi_low, d), fmt(result.pi_high, d)]
    lines.append(table(header, [row]))
    lines.append(f"({result.level:g}% confidence interval{' and prediction interval' if has_pi else ''})")
    if result.test in T_TESTS:
        modified = "modified (max(1, s²)) " if result.test == "adhoc" else ""
        lines.append(f"({modified}Hartung-Knapp adjustment: t distribution with {result.df} df)")
    if result.measure in RATIO_MEASURES:
        level = f"{result.level:g}%"
        estimate, low, high, pi_low, pi_high = (number(natural_scale(result.measure, x), 2) for x in (
            result.estimate, result.ci_low, result.ci_high, result.pi_low, result.pi_high))
        text = f"{result.measure} {estimate} [{level} CI {low}, {high}]"
        if has_pi:
            text += f"; {level} prediction interval {pi_low}, {pi_high}"
        lines += ["", text]
    return "\n".join(lines)
