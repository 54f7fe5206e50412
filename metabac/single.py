"""One intercept-only meta-analysis in scalar arithmetic: the path :func:`metabac.pool` takes for a single analysis.

On one analysis the batched engine (:mod:`metabac.wls`, :func:`metabac.pooling.fit_problem`) spends its time in
numpy's per-call overhead, not in arithmetic: some 500 operations on arrays of shape (1, k), about a microsecond
each whatever k is. Here the per-study sums are the engine's (:func:`metabac.wls.study_sum`, ``study_dot``) on the
1-D arrays, and everything per problem is a numpy scalar, a tenth of the cost per operation: tau² comes from the
estimator's scalar form in :data:`metabac.tau2.TAU2_ESTIMATORS` (or its batched form on a batch of one, see
:func:`metabac.tau2.estimate_tau2_one`), and :func:`fit_one` returns the numbers of
:func:`metabac.pooling.fit_problem` for one problem. The two paths agree to rounding for every estimator and test
(``tests/test_batch.py``).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from scipy import special

from metabac.tau2 import (
    T_TESTS,
    Control,
    critical_value,
    estimate_tau2_one,
    knapp_hartung_factor,
    q_based_i2,
    two_sided_p,
)
from metabac.wls import OneFit, require_representable, unscale, variance_scale

Array = NDArray[np.float64]


def fit_one(y: Array, v: Array, method: str, test: str, level: float, control: Control,
            tau2: float | None = None) -> dict:
    """Every number of :func:`metabac.pooling.fit_problem` for one intercept-only problem (same formulas, see its
    docstring and :func:`metabac.pool`), as scalars; ``weights`` in percent, one per study. ``tau2``, when given,
    is the between-study variance to use instead of estimating it. Variances beyond 2^±100 are fitted as y/s, v/s²
    and scaled back, as there (:func:`metabac.wls.variance_scale`)."""
    s = float(variance_scale(v))
    with np.errstate(all="ignore"):
        if s == 1:
            return _fit_one(y, v, method, test, level, control, tau2)
        s2 = s * s
        return unscale(_fit_one(y / s, v / s2, method, test, level, control.scaled(s2),
                                None if tau2 is None else tau2 / s2), s)


def _fit_one(y: Array, v: Array, method: str, test: str, level: float, control: Control,
             fixed_tau2: float | None) -> dict:
    k = len(y)
    fixed = OneFit(y, v, 0.0)
    q, q_df = max(fixed.rss(), 0.0), k - 1
    require_representable(q, v.min(), v.max())
    if fixed_tau2 is None:
        tau2, iterations, fit = estimate_tau2_one(y, v, method, control, fixed)
    else:
        tau2, iterations, fit = fixed_tau2, 0, fixed if fixed_tau2 == 0 else OneFit(y, v, fixed_tau2)
    random = fixed_tau2 is not None or method not in ("EE", "FE")
    estimate, se = fit.beta, math.sqrt(1 / fit.sum_w)
    q_pvalue = special.chdtrc(q_df, q) if q_df > 0 else 1.0
    vt = q_df / fixed.trace_p()
    if k == 1:
        i2, h2 = 0.0, 1.0
    elif random:
        i2, h2 = 100 * tau2 / (vt + tau2), tau2 / vt + 1
    else:
        i2, h2 = float(q_based_i2(q, q_df)), q / q_df
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
