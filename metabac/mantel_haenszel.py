"""Fixed-effect pooling straight from 2x2 tables: Mantel-Haenszel (OR, RR, RD) and Peto's odds ratio.

Both follow metafor's ``rma.mh`` and ``rma.peto``: the pooled estimate uses the observed cells (no continuity
correction), and the heterogeneity test uses the escalc effect sizes (1/2 added to every cell of a study with a
zero cell, double-zero studies left out of Q).
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

from metabac._checks import InputError, label_list, require_choice, require_level, study_name
from metabac.effects import BINARY_MEASURES, Cells, cells_from_arms
from metabac.pooling import PoolResult
from metabac.tau2 import critical_value, q_based_i2, two_sided_p

MH_MEASURES = ("OR", "RR", "RD")
RdVariance = Literal["SGR", "GR"]


def _tables(arms: dict[str, ArrayLike], labels: ArrayLike | None) -> Cells:
    """The validated 2x2 tables; a study with a group of no participants is refused, naming the study.

    Such a study compares nothing: it adds 0 to every Mantel-Haenszel and Peto sum (a study with no participants
    at all makes them 0/0), and the continuity correction would invent cells for it in the heterogeneity test.
    """
    names = label_list(labels)
    cells = cells_from_arms(arms, names)
    for field, size in (("n1i", cells.n1), ("n2i", cells.n2)):
        if (size == 0).any():
            i = int(np.flatnonzero(size == 0)[0])
            raise InputError(f"{study_name(i, names)}: {field}: no participants in this group (0); a study needs "
                             "participants in both groups")
    return cells


def _heterogeneity(cells: Cells, measure: str, estimate: float, add: float) -> tuple[float, int]:
    """Cochran's Q of the escalc effect sizes around ``estimate``, and its number of studies (k.yi)."""
    keep = ~cells.double_zero()
    sub = Cells(cells.a[keep], cells.b[keep], cells.c[keep], cells.d[keep])
    yi, vi = BINARY_MEASURES[measure](sub.with_continuity(add, "only0"))
    usable = np.isfinite(yi) & np.isfinite(vi)
    q = float(max(0.0, np.sum((yi[usable] - estimate) ** 2 / vi[usable])))
    return q, int(usable.sum())


def _result(
    cells: Cells, measure: str, model: str, estimate: float, se: float, weights: np.ndarray, q: float, k_q: int,
    level: float, labels: ArrayLike | None,
) -> PoolResult:
    crit = float(critical_value(level))
    statistic = estimate / se
    q_df = k_q - 1
    i2 = float(q_based_i2(q, q_df))
    h2 = q / q_df if q_df > 0 else 1.0
    return PoolResult(
        estimate=estimate, se=se, ci_low=estimate - crit * se, ci_high=estimate + crit * se, statistic=statistic,
        pvalue=float(two_sided_p(statistic)), df=None, tau2=0.0, q=q, q_df=q_df,
        q_pvalue=float(special.chdtrc(q_df, q)) if q_df > 0 else 1.0, i2=i2, h2=h2,
        pi_low=estimate - crit * se, pi_high=estimate + crit * se, k=len(cells.a),
        weights=100 * weights / weights.sum(), method="EE", test="z", level=level, measure=measure, model=model,
        labels=None if (names := label_list(labels)) is None else tuple(names),
        yi=np.empty(0), vi=np.empty(0),
    )


def mantel_haenszel(
    measure: str, *, level: float = 95, add: float = 0.5, labels: ArrayLike | None = None,
    add_inside: bool = False, rd_variance: RdVariance = "SGR", **arms: ArrayLike
) -> PoolResult:
    """Mantel-Haenszel fixed-effect pooling of 2x2 tables, as metafor's ``rma.mh``.

    Parameters
    ----------
    measure : {"OR", "RR", "RD"}
    level : float
        Confidence level in percent.
    add : float
        Continuity correction for the effect sizes behind the heterogeneity test (not for the pooled estimate).
    labels : array-like, optional
        Study labels for error messages.
    add_inside : bool
        Add ``add`` to every cell of a study with a zero cell inside the Mantel-Haenszel sums too (RevMan 5; R meta
        ``MH.exact=FALSE``); double-zero studies then leave the OR and RR sums. For RD only the variance uses the
        corrected cells. Default False: observed cells, as metafor.
    rd_variance : {"SGR", "GR"}
        RD variance of Sato, Greenland & Robins (1989), as metafor, or of Greenland & Robins (1985), as RevMan 5 and
        Stata's metan: Σ(a·b·n2³ + c·d·n1³)/(n1·n2·N²) / (Σ n1·n2/N)².
    **arms : array-like
        ``ai, bi, ci, di`` or ``ai, n1i, ci, n2i``.

    Notes
    -----
    With N the study total:

    - OR: R = Σ a·d/N, S = Σ b·c/N, log OR = log(R/S); variance of Robins, Breslow & Greenland (1986):
      ½[Σ P·R/R² + Σ(P·S + Q·R)/(R·S) + Σ Q·S/S²] with per-study P = (a + d)/N, Q = (b + c)/N.
    - RR: log(R/S) with R = Σ a·n2/N, S = Σ c·n1/N; variance Σ(n1·n2·(a + c)/N² − a·c/N)/(R·S)
      (Greenland & Robins 1985), computed as the equal Σ(a·n1·d + c·n2·b)/N²/(R·S), which has no cancellation
      and is exactly 0 when every study has no events or only events in both groups (then not estimable).

    A study with a group of no participants is an :class:`InputError` naming it.
    - RD: Σ(a·n2 − c·n1)/N / Σ n1·n2/N; variance of Sato, Greenland & Robins (1989), as metafor.
    """
    measure = require_choice(measure, MH_MEASURES, "measure")
    level = require_level(level)
    rd_variance = require_choice(rd_variance, get_args(RdVariance), "rd_variance")
    cells = _tables(arms, labels)
    summed = cells
    if add_inside and measure != "RD":
        keep = ~cells.double_zero()
        summed = Cells(cells.a[keep], cells.b[keep], cells.c[keep], cells.d[keep]).with_continuity(add, "only0")
    a, b, c, d = summed.a, summed.b, summed.c, summed.d
    n1, n2 = summed.n1, summed.n2
    total = n1 + n2
    if measure == "OR":
        r_i, s_i = a * d / total, b * c / total
        r, s = r_i.sum(), s_i.sum()
        if r == 0 or s == 0:
            raise InputError("OR: Mantel-Haenszel odds ratio is not estimable (no discordant information)")
        p_i, q_i = (a + d) / total, (b + c) / total
        variance = 0.5 * (np.sum(p_i * r_i) / r**2 + np.sum(p_i * s_i + q_i * r_i) / (r * s) + np.sum(q_i * s_i) / s**2)
        estimate, weights = float(np.log(r / s)), s_i
    elif measure == "RR":
        r, s = np.sum(a * n2 / total), np.sum(c * n1 / total)
        if a.sum() == 0 or c.sum() == 0:
            raise InputError("RR: Mantel-Haenszel risk ratio is not estimable (no events in one group)")
        variance = np.sum((a * n1 * d + c * n2 * b) / total**2) / (r * s)
        if not variance > 0:  # metafor: the estimate 1 with se NA (rounding makes its variance slightly negative)
            raise InputError("RR: Mantel-Haenszel risk ratio is not estimable (no events, or only events, in every "
                             "study: its variance is 0)")
        estimate, weights = float(np.log(r / s)), c * n1 / total
    else:
        weights = n1 * n2 / total
        estimate = float(np.sum(a * n2 / total - c * n1 / total) / weights.sum())
        if add_inside:
            v = cells.with_continuity(add, "only0")
            a, b, c, d, n1, n2 = v.a, v.b, v.c, v.d, v.n1, v.n2
            total = n1 + n2
        if rd_variance == "GR":
            variance = np.sum((a * b * n2**3 + c * d * n1**3) / (n1 * n2 * total**2)) / np.sum(n1 * n2 / total) ** 2
        else:
            numerator = estimate * np.sum(c * (n1 / total) ** 2 - a * (n2 / total) ** 2 + (n1 / total)
                                          * (n2 / total) * (n2 - n1) / 2) + np.sum(a * (n2 - c) / total
                                                                                   + c * (n1 - a) / total) / 2
            variance = numerator / np.sum(n1 * n2 / total) ** 2
        if not variance > 0:  # metafor returns 0 with se 0 and the interval [0, 0]
            raise InputError("RD: Mantel-Haenszel risk difference is not estimable (no events, or only events, in "
                             "every study: its variance is 0)")
    if add_inside and measure != "RD":
        full = np.zeros(len(cells.a))
        full[keep] = weights
        weights = full
    q, k_q = _heterogeneity(cells, measure, estimate, add)
    return _result(cells, measure, "Mantel-Haenszel", estimate, float(np.sqrt(variance)), weights, q, k_q, level,
                   labels)


def peto(*, level: float = 95, add: float = 0.5, labels: ArrayLike | None = None, **arms: ArrayLike) -> PoolResult:
    """Peto's fixed-effect log odds ratio, as metafor's ``rma.peto`` (Yusuf et al. 1985).

    Notes
    -----
    With E = n1(a + c)/N and V = (a + c)(b + d)n1·n2/(N²(N − 1)) per study: log OR = Σ(a − E)/ΣV, se = 1/√ΣV,
    Q = Σ(a − E)²/V − (Σ(a − E))²/ΣV over tables with V > 0, on k − 1 df (k excluding double-zero studies).
    """
    level = require_level(level)
    cells = _tables(arms, labels)
    n1, n2 = cells.n1, cells.n2
    total = n1 + n2
    events = cells.a + cells.c
    expected = events * n1 / total
    variance = events * (cells.b + cells.d) * (n1 / total) * (n2 / total) / (total - 1)
    if variance.sum() == 0:
        raise InputError("PETO: not estimable (no events, or only events, in every study)")
    estimate = float(np.sum(cells.a - expected) / variance.sum())
    informative = variance > 0
    deviation = (cells.a - expected)[informative]
    q = float(max(0.0, np.sum(deviation**2 / variance[informative]) - deviation.sum() ** 2 / variance.sum()))
    k_q = int((~cells.double_zero()).sum())
    return _result(cells, "PETO", "Peto", estimate, float(1 / np.sqrt(variance.sum())), variance, q, k_q, level,
                   labels)
