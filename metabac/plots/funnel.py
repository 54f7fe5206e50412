"""Funnel plot: effect sizes against their standard errors, with the pseudo-confidence funnel around the pooled
estimate, contours of statistical significance around the null (Peters et al. 2008) and, when given, the studies
imputed by trim-and-fill."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from scipy import special

from metabac.bias import TrimFillResult
from metabac.moderators import SubgroupResult
from metabac.plots.style import BLUE, GREY, INK, RED, axis_label, axis_titles, effect_axis, new_figure, pooled_studies
from metabac.pooling import PoolResult
from metabac.tau2 import critical_value

CONTOUR_SHADES = ("#f2f2f2", "#d9d9d9", "#bdbdbd")


def funnel(
    fit: PoolResult | SubgroupResult,
    trimfill: TrimFillResult | None = None,
    *,
    contours: tuple[float, ...] = (0.10, 0.05, 0.01),
    title: str = "",
) -> Figure:
    """Draw a contour-enhanced funnel plot of a fitted model.

    Each study is a point at (y_i, √v_i), the vertical axis reversed so that large studies are at the top. The
    dashed funnel is μ̂ ± z_{α/2}·se at the model's level; the grey bands are the regions where a study's own
    two-sided test against 0 has p between the ``contours`` levels (p < 0.10, < 0.05, < 0.01, darker as p falls);
    a gap of studies in the non-significant region suggests publication bias rather than other small-study
    effects. Filled studies of ``trimfill`` are drawn as open red circles, with the adjusted estimate.

    References
    ----------
    Sterne JAC, Egger M (2001). Funnel plots for detecting bias in meta-analysis. J Clin Epidemiol 54:1046-1055.
    Peters JL, Sutton AJ, Jones DR, Abrams KR, Rushton L (2008). Contour-enhanced meta-analysis funnel plots help
    distinguish publication bias from other causes of asymmetry. J Clin Epidemiol 61:991-996.
    """
    fit = pooled_studies(fit, "funnel")
    y, se = np.asarray(fit.yi, dtype=float), np.sqrt(np.asarray(fit.vi, dtype=float))
    filled_y = trimfill.filled["yi"].to_numpy(dtype=float) if trimfill is not None else np.empty(0)
    filled_se = np.sqrt(trimfill.filled["vi"].to_numpy(dtype=float)) if trimfill is not None else np.empty(0)
    top = 1.1 * float(np.max(np.concatenate([se, filled_se])))
    fig, ax = new_figure(6.4, 5.4, title, bottom=1.1)
    grid = np.array([0.0, top])
    crit = float(critical_value(fit.level))
    points = np.concatenate([y, filled_y, [0.0, fit.estimate - crit * top, fit.estimate + crit * top]])
    low, high = float(np.min(points)), float(np.max(points))
    pad = 0.05 * (high - low)
    reach = 2 * max(abs(low), abs(high))
    ax.axvspan(-reach, reach, color="white")
    for level, shade in zip(sorted(contours, reverse=True), CONTOUR_SHADES):
        z = -special.ndtri(level / 2)
        for sign in (-1, 1):
            ax.fill_betweenx(grid, sign * z * grid, sign * reach, color=shade, lw=0)
    ax.plot(fit.estimate - crit * grid, grid, color=GREY, lw=0.8, ls="--", label=f"{fit.level:g}% pseudo-CI")
    ax.plot(fit.estimate + crit * grid, grid, color=GREY, lw=0.8, ls="--")
    ax.axvline(float(fit.estimate), color=INK, lw=1, label=f"pooled ({fit.method})")
    ax.scatter(y, se, s=28, color=BLUE, edgecolor="white", lw=0.5, zorder=3, label=f"studies (k = {len(y)})")
    if trimfill is not None and trimfill.k0 > 0:
        ax.scatter(filled_y, filled_se, s=28, facecolor="white", edgecolor=RED, lw=1.2, zorder=3,
                   label=f"filled by trim-and-fill (k0 = {trimfill.k0})")
        ax.axvline(trimfill.estimate, color=RED, lw=1, ls=":", label="adjusted estimate")
    ax.set_xlim(low - pad, high + pad)
    ax.set_ylim(top, 0)
    axis_titles(ax, axis_label(fit.measure), "Standard error")
    effect_axis(ax, fit.measure)
    shades = ", ".join(f"p < {c:g}" for c in sorted(contours, reverse=True))
    fig.legend(fontsize=7.5, loc="lower center", ncols=3, frameon=False,
               title=f"shaded, light to dark: a study's own p-value {shades}", title_fontsize=7.5)
    return fig


__all__ = ["funnel"]
