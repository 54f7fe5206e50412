"""One intercept-only meta-analysis in scalar arithmetic: the path :func:`metabac.pool` takes for a single analysis.

On one analysis the batched engine (:mod:`metabac.tau2`, :func:`metabac.pooling.fit_problem`) spends its time in
numpy's per-call overhead, not in arithmetic: some 500 operations on arrays of shape (1, k), about a microsecond
each whatever k is. Here the per-study sums are the engine's (:func:`metabac.tau2.study_sum`, ``study_dot``) on
the 1-D arrays, and everything per problem (tau², the bracket of the root, the statistics) is a numpy scalar, a
tenth of the cost per operation:

- the tau² estimators are the formulas of :mod:`metabac.tau2` (DL, HS and the Fisher-scoring steps,
  :data:`metabac.tau2.SCORING_STEPS`, evaluated on a :class:`OneFit`; HE and SJ written out for X = 1);
- :func:`score` takes the decisions of :func:`metabac.tau2._fisher_scoring` for one problem (bracket, secant step,
  step halving, stopping rule), with the same :class:`~metabac.tau2.Control`;
- :func:`fit_one` returns the numbers of :func:`metabac.pooling.fit_problem` for one problem.

The two paths agree to rounding for every estimator and test (``tests/test_batch.py``). Under ``Control.absolute``
(metafor's stopping rules) Paule-Mandel runs Brent's method through the batched engine, as it is for comparison
rather than speed.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray
from scipy import special

from metabac._checks import ConvergenceError
from metabac.tau2 import (
    SCORING_STEPS,
    T_TESTS,
    Control,
    Problem,
    critical_value,
    dl_estimate,
    estimate_tau2,
    hs_estimate,
    intercept_trace_p,
    intercept_trace_pp,
    knapp_hartung_factor,
    log_likelihood,
    q_based_i2,
    q_newton_step,
    require_representable,
    study_dot,
    study_sum,
    two_sided_p,
    unscale,
    variance_scale,
    zero_is_better,
)

Array = NDArray[np.float64]


class OneFit:
    """The weighted fit of one intercept-only problem at one tau² (w = 1/(v + tau²)): β̂ = Σwy/Σw and the sums of
    :class:`metabac.tau2.WeightedFit` for X = 1, as numpy scalars."""

    __slots__ = ("w", "sum_w", "sum_w2", "beta", "residuals", "weighted_residuals")

    def __init__(self, y: Array, v: Array, tau2: float) -> None:
        self.w = w = 1.0 / (v + tau2)
        self.sum_w = study_sum(w)
        self.sum_w2 = study_dot(w, w)
        self.beta = study_dot(w, y) / self.sum_w
        self.residuals = y - self.beta
        self.weighted_residuals = w * self.residuals

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
        """:func:`metabac.tau2.log_likelihood` at this fit's tau²."""
        return log_likelihood(len(v), 1, study_sum(np.log(v + tau2)), self.rss(), np.log(self.sum_w), restricted)


def _below(new: float, low: float) -> bool:
    """``new`` is under the bracket: an evaluated ``low`` above 0 is excluded, a ``low`` of 0 may be reached."""
    return new <= low if low > 0 else new < low


def halve_into(tau2: float, adj: float, low: float, high: float) -> float:
    """:func:`metabac.tau2._halve_into` for one problem: the step halved until tau² + step lies in the bracket
    (first scaled by the power of two that certainly leaves it outside, as there)."""
    below = _below(tau2 + adj, low)
    if not below and tau2 + adj < high:
        return adj
    room = abs((low if below else high) - tau2)
    if math.isinf(adj):
        adj = math.copysign(room, adj)
    if room > 0:
        skip = np.floor(np.log2(abs(adj) / room)) - 1  # −inf for a zero step, inf for an overflowing ratio
        adj = math.ldexp(adj, -int(min(max(skip, 0), 1100)) if skip == skip else 0)
    else:
        adj = math.copysign(0.0, adj)
    while adj != 0 and (_below(tau2 + adj, low) or tau2 + adj >= high):
        adj = adj / 2
    return adj


def score(step: Callable[[float], float], start: float, scale: float, control: Control,
          accelerate: bool) -> tuple[float, int, bool]:
    """The root of a scoring step function by :func:`metabac.tau2._fisher_scoring`'s loop, for one problem.

    Returns (tau², iterations, converged); ``scale`` is the smallest sampling variance (the relative threshold's
    floor). Call under ``np.errstate(all="ignore")``: a secant through two equal steps divides by zero.
    """
    current, low, high = np.float64(start), 0.0, math.inf
    previous_tau2 = previous_step = math.nan
    for iteration in range(1, control.maxiter + 1):
        fisher = step(current)
        if fisher != fisher:
            fisher = 0.0
        if fisher > 0:
            low = current
        elif fisher < 0:
            high = current
        adj = fisher
        if accelerate:
            target = current - fisher * (current - previous_tau2) / (fisher - np.float64(previous_step))
            adj = target - current if low < target < high else fisher
            if low == 0:
                adj = max(adj, -current)  # not below 0 while 0 is the lower end
            previous_tau2, previous_step = current, fisher
        adj = halve_into(current, adj, low, high)
        current = current + adj
        limit = control.threshold if control.absolute else control.threshold * max(current, scale)
        if abs(adj) <= limit or high - low <= limit:
            return current, iteration, True
    return current, control.maxiter, False


def _deviations(y: Array) -> Array:
    """y − ȳ (unweighted mean)."""
    return y - study_sum(y) / len(y)


def _hedges(y: Array, v: Array) -> float:
    """Hedges' estimator for X = 1: max(0, (Σ(y − ȳ)² − (k − 1)/k · Σv)/(k − 1)) (see :func:`metabac.tau2.hedges`)."""
    k = len(y)
    r = _deviations(y)
    v_sum = study_sum(v)
    return max((study_dot(r, r) - (v_sum - v_sum / k)) / (k - 1), 0.0)


def _sidik_jonkman(y: Array, v: Array) -> float:
    """tau0² · Q(tau0²)/(k − 1), tau0² = Σ(y − ȳ)²/k (see :func:`metabac.tau2.sidik_jonkman`)."""
    k = len(y)
    r = _deviations(y)
    tau0 = study_dot(r, r) / k
    return max(tau0 * OneFit(y, v, tau0).rss() / (k - 1), 0.0)


def _closed_form(method: str, y: Array, v: Array, fixed: OneFit) -> float:
    k = len(y)
    if method == "DL":
        return max(dl_estimate(fixed, k, 1), 0.0)
    if method == "HS":
        return max(hs_estimate(fixed, k), 0.0)
    if method == "HE":
        return _hedges(y, v)
    return _sidik_jonkman(y, v)


def _iterative(method: str, y: Array, v: Array, fixed: OneFit, control: Control
               ) -> tuple[float, int, bool, OneFit | None]:
    """ML, REML, EB by scoring from Hedges' estimate, PM by Newton's method on 1/Q from 0 (see tau2._q_newton):
    tau², iterations, convergence, and the fit at tau² where the boundary check made it."""
    k = len(y)
    if method == "PM":
        target = float(k - 1)
        return *score(lambda t: q_newton_step(OneFit(y, v, t), target), 0.0, v.min(), control, accelerate=False), None
    formula = SCORING_STEPS[method]
    tau2, iterations, converged = score(lambda t: formula(OneFit(y, v, t), k, 1), _hedges(y, v), v.min(),
                                        control, control.accelerate)
    if method not in ("ML", "REML") or tau2 <= 0:
        return tau2, iterations, converged, None
    restricted = method == "REML"
    root = OneFit(y, v, tau2)
    if zero_is_better(fixed.log_likelihood(v, 0.0, restricted), root.log_likelihood(v, tau2, restricted)):
        return 0.0, iterations, converged, fixed
    return tau2, iterations, converged, root


def tau2_one(y: Array, v: Array, method: str, control: Control, fixed: OneFit) -> tuple[float, int, OneFit]:
    """tau² of one problem and the iterations used, as :func:`metabac.tau2.estimate_tau2` (strict) gives them, and
    the weighted fit at that tau²."""
    if len(y) == 1 or method in ("EE", "FE"):
        return 0.0, 0, fixed
    if method in ("DL", "HS", "HE", "SJ"):
        tau2, iterations, at_tau2 = _closed_form(method, y, v, fixed), 0, None
    elif method == "PM" and control.absolute:  # Brent's method, as metafor's uniroot
        brent = estimate_tau2(Problem.intercept_only(y, v), method, control)
        tau2, iterations, at_tau2 = float(brent.tau2[0]), int(brent.iterations[0]), None
    else:
        tau2, iterations, converged, at_tau2 = _iterative(method, y, v, fixed, control)
        if not converged:
            raise ConvergenceError(f"{method}: tau2 did not converge after {iterations} iterations")
    if at_tau2 is None:
        at_tau2 = fixed if tau2 == 0 else OneFit(y, v, tau2)
    return tau2, iterations, at_tau2


def fit_one(y: Array, v: Array, method: str, test: str, level: float, control: Control) -> dict:
    """Every number of :func:`metabac.pooling.fit_problem` for one intercept-only problem (same formulas, see its
    docstring and :func:`metabac.pool`), as scalars; ``weights`` in percent, one per study. Variances beyond 2^±100
    are fitted as y/s, v/s² and scaled back, as there (:func:`metabac.tau2.variance_scale`)."""
    s = float(variance_scale(v))
    with np.errstate(all="ignore"):
        if s == 1:
            return _fit_one(y, v, method, test, level, control)
        return unscale(_fit_one(y / s, v / (s * s), method, test, level, control.scaled(s * s)), s)


def _fit_one(y: Array, v: Array, method: str, test: str, level: float, control: Control) -> dict:
    k = len(y)
    fixed = OneFit(y, v, 0.0)
    q, q_df = max(fixed.rss(), 0.0), k - 1
    require_representable(q, v.min(), v.max())
    tau2, iterations, fit = tau2_one(y, v, method, control, fixed)
    random = method not in ("EE", "FE")
    estimate, se = fit.beta, math.sqrt(1 / fit.sum_w)
    q_pvalue = special.chdtrc(q_df, q) if q_df > 0 else 1.0
    vt = q_df / fixed.trace_p()
    if k == 1:
        i2, h2 = 0.0, 1.0
    elif random:
        i2, h2 = 100 * tau2 / (vt + tau2), tau2 / vt + 1
    else:
        i2, h2 = q_based_i2(q, q_df), q / q_df
    df = None
    if test in T_TESTS:
        se = se * math.sqrt(knapp_hartung_factor(fit.rss(), q_df, test))
        df = q_df
    statistic = estimate / np.float64(se)
    crit, pvalue = critical_value(level, df), two_sided_p(statistic, df)
    pi_half = crit * math.sqrt(se**2 + tau2)
    numbers = dict(
        estimate=estimate, se=se, ci_low=estimate - crit * se, ci_high=estimate + crit * se,
        statistic=statistic, pvalue=pvalue, tau2=tau2, q=q, q_pvalue=q_pvalue, i2=i2, h2=h2,
        pi_low=estimate - pi_half, pi_high=estimate + pi_half, vt=vt,
    )
    return {key: np.float64(value) for key, value in numbers.items()} | dict(
        df=df, q_df=q_df, k=k, weights=100 * fit.w / fit.sum_w, iterations=iterations)
