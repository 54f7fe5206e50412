"""Bubble plot of a meta-regression on one moderator (metafor's ``regplot``): each study's effect against the
moderator, its area proportional to its random-effects weight, with the fitted line and its confidence band."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from metabac._checks import InputError
from metabac.moderators import MetaRegResult
from metabac.plots.style import BLUE, GREY, INK, LIGHT, axis_label, axis_titles, effect_axis, new_figure
from metabac.tau2 import T_TESTS, critical_value


def bubble(fit: MetaRegResult, moderator: str, measure: str | None = None, title: str = "") -> Figure:
    """The studies' ``yi`` against the single moderator of ``fit`` (intercept and one slope), bubbles of area
    ∝ w = 1/(v + tau²), the line b0 + b1·x and its pointwise confidence band ± crit·√(x'Var(b)x), crit from
    t(k − p) under a Hartung-Knapp test, else the normal. Ratio measures are drawn on the log scale with
    back-transformed ticks."""
    if fit.X.shape[1] != 2:
        raise InputError(f"bubble: needs a meta-regression on one moderator, got {fit.X.shape[1] - 1}")
    x, y = fit.X[:, 1], np.asarray(fit.yi, float)
    w = 1 / (np.asarray(fit.vi, float) + fit.tau2)
    fig, ax = new_figure(6.4, 4.6, title)
    ax.scatter(x, y, s=600 * w / w.max(), color=BLUE, alpha=0.55, edgecolor=INK, linewidth=0.6, zorder=3)
    grid = np.linspace(x.min(), x.max(), 100)
    design = np.column_stack([np.ones_like(grid), grid])
    line = design @ fit.coef
    half = _critical(fit) * np.sqrt(np.einsum("ij,jk,ik->i", design, _vcov(fit, w), design))
    ax.fill_between(grid, line - half, line + half, color=LIGHT, zorder=1)
    ax.plot(grid, line, color=INK, lw=1.2, zorder=2)
    ax.axhline(0.0, color=GREY, lw=0.6, ls="--", zorder=0)
    effect_axis(ax, measure, axis="y")
    axis_titles(ax, moderator, axis_label(measure))
    return fig


def _vcov(fit: MetaRegResult, w: np.ndarray) -> np.ndarray:
    """Var(b) = s²·(X'WX)⁻¹, s² (1 under z, the Knapp-Hartung factor otherwise) recovered from the intercept's se."""
    inverse = np.linalg.inv(fit.X.T @ (w[:, None] * fit.X))
    return inverse * (fit.se[0] ** 2 / inverse[0, 0])


def _critical(fit: MetaRegResult) -> float:
    return float(critical_value(fit.level, fit.qe_df if fit.test in T_TESTS else None))
