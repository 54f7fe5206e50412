"""Diagnostic plots of heterogeneity and influence: Baujat, GOSH, radial (Galbraith), L'Abbé and cumulative forest.

Each takes the numbers computed by :mod:`metabac.sensitivity` or a fitted :class:`~metabac.pooling.PoolResult`
and returns a :class:`matplotlib.figure.Figure` built without pyplot.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from metabac.formatting import natural_scale
from metabac.plots.style import (
    BLUE,
    GREY,
    INK,
    LIGHT,
    LITERAL,
    RED,
    axis_label,
    axis_titles,
    effect_axis,
    fit_label,
    label_points,
    new_figure,
    pooled_studies,
    text_width,
)
from metabac.pooling import PoolResult
from metabac.sensitivity import GoshResult
from metabac.tau2 import critical_value


def baujat_plot(table: pd.DataFrame, title: str = "") -> Figure:
    """Baujat plot of :func:`metabac.baujat`: contribution to heterogeneity (x) against influence on the pooled
    result (y), one labelled point per study; studies in the upper right drive both."""
    fig, ax = new_figure(6.4, 4.8, title)
    ax.scatter(table["x"], table["y"], s=26, color=BLUE, zorder=3)
    ax.margins(x=0.18, y=0.1)
    label_points(ax, table["x"], table["y"], table.index)
    axis_titles(ax, "Contribution to overall heterogeneity", "Influence on overall result")
    ax.grid(color=LIGHT, lw=0.6)
    return fig


def gosh_plot(result: GoshResult, measure: str | None = None, title: str = "") -> Figure:
    """GOSH plot of :func:`metabac.gosh`: the pooled estimate (x) against I² (y) of every subset, with the
    distribution of each on the margins (Olkin et al. 2012). Clusters point to studies that drive heterogeneity."""
    table = result.table[result.table["k"] >= 2]
    fig = Figure(figsize=(6.4, 6.0), dpi=100, layout="constrained")
    grid = fig.add_gridspec(2, 2, width_ratios=(4, 1), height_ratios=(1, 4))
    main = fig.add_subplot(grid[1, 0])
    top = fig.add_subplot(grid[0, 0], sharex=main)
    right = fig.add_subplot(grid[1, 1], sharey=main)
    alpha = float(np.clip(300 / max(len(table), 1), 0.05, 0.8))
    main.scatter(table["estimate"], table["i2"], s=4, color=BLUE, alpha=alpha, lw=0, rasterized=True)
    top.hist(table["estimate"], bins=60, color=GREY)
    right.hist(table["i2"], bins=60, color=GREY, orientation="horizontal")
    top.tick_params(labelbottom=False, labelsize=7)
    right.tick_params(labelleft=False, labelsize=7)
    main.tick_params(labelsize=8)
    axis_titles(main, axis_label(measure), "I² (%)")
    main.set_ylim(-2, 102)
    effect_axis(main, measure)
    subsets = "all" if result.exact else "random"
    fig.suptitle(title or f"GOSH plot ({len(table)} {subsets} subsets of ≥ 2 studies, {result.method})",
                 fontsize=11, weight="bold", color=INK, x=0.02, ha="left", **LITERAL)
    return fig


def radial(fit: PoolResult, title: str = "") -> Figure:
    """Radial (Galbraith) plot: y_i/s_i against 1/s_i with s_i = √(v_i + tau²). The line through the origin has
    slope μ̂; about 95% of studies fall within ±1.96 of it when the model fits (Galbraith 1988)."""
    fit = pooled_studies(fit, "radial")
    s = np.sqrt(np.asarray(fit.vi, dtype=float) + float(fit.tau2))
    precision, standardised = 1 / s, np.asarray(fit.yi, dtype=float) / s
    fig, ax = new_figure(6.4, 4.8, title)
    x = np.array([0.0, 1.1 * precision.max()])
    crit = float(critical_value(fit.level))
    ax.fill_between(x, fit.estimate * x - crit, fit.estimate * x + crit, color=LIGHT, lw=0)
    ax.plot(x, fit.estimate * x, color=INK, lw=1, label=f"slope = pooled estimate ({fit.method})")
    ax.axhline(0, color=GREY, lw=0.6)
    ax.scatter(precision, standardised, s=26, color=BLUE, zorder=3, label="studies")
    ax.set_xlim(0, x[1])
    axis_titles(ax, "1 / standard error (precision)", "standardised effect (y / se)")
    ax.legend(fontsize=7.5, frameon=False, loc="best")
    return fig


def labbe(events_treated, n_treated, events_control, n_control, fit: PoolResult | None = None, *,
          labels=None, arm_labels: tuple[str, str] = ("Experimental", "Control"), title: str = "") -> Figure:
    """L'Abbé plot: event risk in the treated arm (y) against the control arm (x), circles sized by the trial's
    size, the line of no effect and, with ``fit``, the pooled effect as a curve (risk ratio y = RR·x, odds ratio
    on the odds scale, risk difference y = x + RD) (L'Abbé et al. 1987)."""
    a, n1 = np.asarray(events_treated, dtype=float), np.asarray(n_treated, dtype=float)
    c, n2 = np.asarray(events_control, dtype=float), np.asarray(n_control, dtype=float)
    fig, ax = new_figure(5.6, 5.4, title)
    base = np.linspace(0.001, 0.999, 200)
    ax.plot([0, 1], [0, 1], color=GREY, lw=0.8, ls="--", label="no effect")
    if fit is not None and fit.measure in ("RR", "OR", "RD", "PETO"):
        effect = natural_scale(fit.measure, fit.estimate)
        if fit.measure == "RR":
            curve = effect * base
        elif fit.measure == "RD":
            curve = base + effect
        else:
            odds = effect * base / (1 - base)
            curve = odds / (1 + odds)
        inside = (curve >= 0) & (curve <= 1)
        ax.plot(base[inside], curve[inside], color=RED, lw=1, label=f"pooled {fit.measure} ({fit.method})")
    sizes = 400 * (n1 + n2) / np.max(n1 + n2)
    ax.scatter(c / n2, a / n1, s=sizes, facecolor=BLUE, alpha=0.35, edgecolor=BLUE, zorder=3)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    if labels is not None:
        label_points(ax, c / n2, a / n1, labels, fontsize=7)
    ax.set_aspect("equal")
    axis_titles(ax, f"Event risk, {arm_labels[1].lower()} arm", f"Event risk, {arm_labels[0].lower()} arm")
    ax.legend(fontsize=7.5, frameon=False, loc="upper left")
    return fig


def cumulative_forest(table: pd.DataFrame, measure: str | None = None, title: str = "") -> Figure:
    """Cumulative forest plot of :func:`metabac.cumulative`: the pooled estimate and CI after each study is
    added, in the order of the table."""
    n = len(table)
    names = [fit_label(f"+ {label}" if i else label, 180, 8) for i, label in enumerate(table.index)]
    width = max(text_width(name, 8) for name in names) / 72  # inches; labels are cut to 2.5 inches
    fig, ax = new_figure(5.2 + width, 1.4 + 0.32 * n, title, left=0.3 + width)  # the axes 4.7 inches wide
    rows = np.arange(n)
    ax.hlines(rows, table["ci_low"], table["ci_high"], color=INK, lw=1)
    ax.scatter(table["estimate"], rows, marker="D", s=22, color=BLUE, zorder=3)
    ax.axvline(0, color=GREY, lw=0.8)
    ax.set_yticks(rows, names, fontsize=8, **LITERAL)
    ax.set_ylim(n - 0.5, -0.5)
    axis_titles(ax, f"Cumulative pooled {axis_label(measure)}")
    effect_axis(ax, measure)
    return fig


__all__ = ["baujat_plot", "cumulative_forest", "gosh_plot", "labbe", "radial"]
