"""RevMan-style forest plot: study rows with arm data, weights and effect, subgroup and overall diamonds.

Built on :class:`matplotlib.figure.Figure` without pyplot, so it holds no global state; text columns sit in figure
coordinates and share the y axis of the graphic, so rows and markers always line up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Polygon
from matplotlib.transforms import blended_transform_factory

from metabac._checks import InputError
from metabac.effects import RATIO_MEASURES as RATIO
from metabac.formatting import effect_text, number, p_text
from metabac.moderators import SubgroupResult
from metabac.plots.style import (
    BLACK,
    BLUE,
    GREY,
    INK,
    LITERAL,
    RATIO_TICKS,
    fit_label,
    pooled_studies,
    text_width,
)
from metabac.pooling import PoolResult, pool
from metabac.tau2 import T_TESTS, q_based_i2

WIDTH = 14.0  # inches
FONT = 8.5  # points, the text of every row
LABEL_WIDTH = 0.20  # of the figure: the "Study or subgroup" column; a longer study label is cut with "…"
LABEL_POINTS = LABEL_WIDTH * WIDTH * 72
MARK_ROOM = 12.0  # points kept after a study label for its marks († derived, ‡ second-hand)


@dataclass(frozen=True)
class _Row:
    kind: str  # "header", "group", "study", "diamond", "pi", "text"
    cells: tuple[str, ...] = ()
    estimate: float = math.nan
    low: float = math.nan
    high: float = math.nan
    size: float = 0.0
    bold: bool = False


def heterogeneity_line(fit: PoolResult) -> str:
    """RevMan's line, with the Q-profile intervals wherever tau² is printed (Cochrane Handbook chapter 10):
    "Heterogeneity: Tau² = … [lower, upper]; Chi² = …, df = … (P = …); I² = …% [lower, upper]"."""
    if fit.k < 2:
        return "Heterogeneity: not applicable (one trial)"
    if not fit.is_random or fit.model != "inverse variance":
        return (f"Heterogeneity: Chi² = {number(fit.q, 2)}, df = {fit.q_df} ({p_text(fit.q_pvalue, 'P')}); "
                f"I² = {fit.i2:.0f}%")
    ci = fit.confint()
    # a bound beyond the search limit is shown as "> limit" (metafor's convention), I² to one decimal there
    upper = ">" if ci.upper_censored else ""
    i2_high = f"{upper}{ci.i2.ci_high:.1f}" if ci.upper_censored else f"{ci.i2.ci_high:.0f}"
    return (f"Heterogeneity: Tau² = {number(fit.tau2, 2)} [{number(ci.tau2.ci_low, 2)}, "
            f"{upper}{number(ci.tau2.ci_high, 2)}]; "
            f"Chi² = {number(fit.q, 2)}, df = {fit.q_df} ({p_text(fit.q_pvalue, 'P')}); I² = {fit.i2:.0f}% "
            f"[{ci.i2.ci_low:.0f}%, {i2_high}%]")


def overall_effect_line(fit: PoolResult) -> str:
    name = "t" if fit.test in T_TESTS else "Z"
    return f"Test for overall effect: {name} = {abs(fit.statistic):.2f} ({p_text(fit.pvalue, 'P')})"


def subgroup_difference_line(result: SubgroupResult) -> str:
    """RevMan's line, between classified subgroups only: with one classified level the test is not estimable
    (trials without a value are not a level)."""
    if not np.isfinite(result.q_between):
        unclassified = f"; {len(result.missing)} trial(s) not classified" if result.missing else ""
        return (f"Test for subgroup differences: not estimable (one classified subgroup, "
                f"{', '.join(map(str, result.fits))}{unclassified})")
    i2 = float(q_based_i2(result.q_between, result.q_between_df))
    return (f"Test for subgroup differences: Chi² = {number(result.q_between, 2)}, df = {result.q_between_df} "
            f"({p_text(result.q_between_pvalue, 'P')}), I² = {i2:.0f}%")


def _arm_kind(studies: pd.DataFrame) -> str | None:
    """"binary" or "continuous" by the arm columns the table has, None for effect sizes only."""
    return "binary" if "ai" in studies.columns else "continuous" if "m1i" in studies.columns else None


def _arm_cells(row: pd.Series, arms: str | None) -> tuple[str, ...]:
    if arms == "binary":
        return (f"{row.ai:g}", f"{row.n1i:g}", f"{row.ci:g}", f"{row.n2i:g}")
    return tuple(f"{row[c]:.3g}" if c.startswith(("m", "sd")) else f"{row[c]:g}"
                 for c in ("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i") if arms)


def model_name(fit: PoolResult) -> str:
    """RevMan's name of the model: "Random, REML, HK", "Fixed, IV", "Fixed, M-H" or "Fixed, Peto"."""
    if fit.is_random:
        return f"Random, {fit.method}" + {"knha": ", HK", "adhoc": ", mHK"}.get(fit.test, "")
    return "Fixed, " + {"Mantel-Haenszel": "M-H", "Peto": "Peto"}.get(fit.model, "IV")


def _rows(studies: pd.DataFrame, random: PoolResult, fixed: PoolResult | None, groups: SubgroupResult | None,
          measure: str, arms: str | None, arm_labels: tuple[str, str]) -> list[_Row]:
    blanks = ("",) * {"binary": 4, "continuous": 6, None: 0}[arms]
    model = model_name(random)
    fixed_name = model_name(fixed) if fixed is not None else ""
    rows: list[_Row] = []
    max_weight = float(np.max(studies["weight"])) if len(studies) else 1.0

    def study_row(row: pd.Series) -> _Row:
        weights = (f"{row.weight:.1f}%", f"{row.weight_fixed:.1f}%" if np.isfinite(row.weight_fixed) else "")
        label = fit_label(row.study, LABEL_POINTS - MARK_ROOM, FONT)
        return _Row("study", (f"{label}{row.get('mark', '') or ''}", *_arm_cells(row, arms), *weights,
                              effect_text(measure, row.yi, row.ci_low, row.ci_high)),
                    float(row.yi), float(row.ci_low), float(row.ci_high), float(row.weight) / max_weight)

    def diamond(label: str, fit: PoolResult, members: pd.DataFrame, weight: str, weight_fixed: str) -> _Row:
        n1, n2 = (f"{members.n1i.sum():g}", f"{members.n2i.sum():g}") if arms else ("", "")
        totals = {"binary": ("", n1, "", n2), "continuous": ("", "", n1, "", "", n2), None: ()}[arms]
        return _Row("diamond", (label, *totals, weight, weight_fixed,
                                effect_text(measure, fit.estimate, fit.ci_low, fit.ci_high)),
                    float(fit.estimate), float(fit.ci_low), float(fit.ci_high), bold=True)

    if groups is not None and "group" in studies:
        for name, fit in groups.fits.items():
            members = studies[studies["group"].astype(str) == name]
            rows.append(_Row("group", (fit_label(name, LABEL_POINTS, FONT, "bold"),), bold=True))
            rows += [study_row(r) for _, r in members.iterrows()]
            rows.append(diamond(f"Subtotal ({random.level:g}% CI, {model})", fit, members,
                                f"{members.weight.sum():.1f}%",
                                f"{members.weight_fixed.sum():.1f}%" if members.weight_fixed.notna().all() else ""))
            rows.append(_Row("text", (heterogeneity_line(fit),)))
            rows.append(_Row("text", (overall_effect_line(fit),)))
        orphans = studies[~studies["group"].astype(str).isin(list(groups.fits))]
        if len(orphans):
            rows.append(_Row("group", ("Not classified (no subgroup test)",), bold=True))
            rows += [study_row(r) for _, r in orphans.iterrows()]
        rows.append(_Row("text"))
    else:
        rows += [study_row(r) for _, r in studies.iterrows()]
    rows.append(diamond(f"Total ({random.level:g}% CI, {model})", random, studies, "100.0%", ""))
    if fixed is not None:
        rows.append(diamond(f"Total ({fixed.level:g}% CI, {fixed_name})", fixed, studies, "", "100.0%"))
    if random.is_random and random.k > 2 and np.isfinite(random.pi_low):
        rows.append(_Row("pi", ("Prediction interval", *blanks, "", "",
                                effect_text(measure, random.estimate, random.pi_low, random.pi_high)),
                         float(random.estimate), float(random.pi_low), float(random.pi_high)))
    rows.append(_Row("text", (heterogeneity_line(random),)))
    rows.append(_Row("text", (overall_effect_line(random),)))
    if groups is not None:
        rows.append(_Row("text", (subgroup_difference_line(groups),)))
    return rows


def _limits(rows: list[_Row], measure: str) -> tuple[float, float]:
    values = [v for r in rows if r.kind in ("study", "diamond", "pi") for v in (r.low, r.high) if np.isfinite(v)]
    if measure in RATIO:
        extent = max([abs(v) for v in values] + [math.log(2)])
        extent = min(extent, math.log(100))
        decade = [math.log(x) for x in (1.5, 2, 5, 10, 20, 50, 100) if math.log(x) >= extent * 0.999]
        extent = decade[0] if decade else math.log(100)
        return -extent, extent
    low, high = (min(values + [0.0]), max(values + [0.0])) if values else (-1.0, 1.0)
    pad = 0.05 * (high - low or 1.0)
    return low - pad, high + pad


def _studies_of(fit: PoolResult, groups: SubgroupResult | None) -> pd.DataFrame:
    """The study table of a pooled result, from its per-study rows (:meth:`PoolResult.to_frame`): labels, yi, vi,
    intervals and weights (and subgroup labels)."""
    frame = fit.to_frame().iloc[:-1]  # the last row is the pooled one
    studies = pd.DataFrame({"study": frame.index.to_numpy(), "yi": fit.yi, "vi": fit.vi,
                            "ci_low": frame["ci_low"].to_numpy(), "ci_high": frame["ci_high"].to_numpy(),
                            "weight": frame["weight"].to_numpy()})
    if groups is not None and len(groups.groups) == len(studies):
        studies["group"] = list(groups.groups)
    return studies


def _with_intervals(studies: pd.DataFrame, random: PoolResult) -> pd.DataFrame:
    """The study table with each study's interval at ``random``'s level: its own ``ci_low`` and ``ci_high`` where it
    has them, else those of :meth:`PoolResult.to_frame` of ``random`` where it holds these studies, else of a
    fixed-effect fit of the table's yi and vi (Mantel-Haenszel and Peto results hold no per-study effects)."""
    if {"ci_low", "ci_high"} <= set(studies.columns):
        return studies
    holder = random if len(random.yi) == len(studies) else pool(
        studies["yi"].to_numpy(dtype=float), studies["vi"].to_numpy(dtype=float), method="EE", level=random.level)
    frame = holder.to_frame().iloc[: len(studies)]
    return studies.assign(ci_low=frame["ci_low"].to_numpy(), ci_high=frame["ci_high"].to_numpy())


def forest(
    studies: pd.DataFrame | PoolResult | SubgroupResult,
    random: PoolResult | None = None,
    fixed: PoolResult | None = None,
    groups: SubgroupResult | None = None,
    *,
    measure: str | None = None,
    title: str = "",
    arm_labels: tuple[str, str] = ("Experimental", "Control"),
) -> Figure:
    """Draw a RevMan-style forest plot.

    ``forest(fit)`` draws a pooled result (of :func:`metabac.pool`, or of :func:`metabac.subgroups` with a diamond
    per subgroup) from the effect sizes it holds; ``forest(studies, fit)`` draws a study table, e.g. with the arm
    data. A result without per-study effect sizes (Mantel-Haenszel, Peto, a batch) needs the study table.

    Parameters
    ----------
    studies : DataFrame, PoolResult or SubgroupResult
        One row per study: ``study``, ``yi``, ``vi``, optional ``weight`` (percent weight in ``random``; by
        default ``random.weights``), ``weight_fixed``, ``group`` (subgroup label) and ``mark`` (e.g. "†" for a
        derived number), and optional arm columns ``ai, n1i, ci, n2i`` (binary) or ``m1i, sd1i, n1i, m2i, sd2i,
        n2i`` (continuous). Or a pooled result, drawn from its own studies.
    random : PoolResult
        The main fit (overall diamond, prediction interval, heterogeneity line), usually random effects; not
        given when ``studies`` is a result.
    fixed : PoolResult, optional
        A fixed-effect fit (Mantel-Haenszel or inverse variance) drawn as a second overall diamond.
    groups : SubgroupResult, optional
        Subgroup fits (diamond per subgroup) and the test for subgroup differences.
    measure, title, arm_labels
        Effect measure (ratio measures get a log axis; by default the fit's), figure title and the two arm names.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    InputError
        For a result it cannot draw, or a study table that does not match the fit.
    """
    if isinstance(studies, (PoolResult, SubgroupResult)):
        if random is not None:
            raise InputError("forest: pass either a study table with its fit, or a pooled result alone")
        groups = studies if isinstance(studies, SubgroupResult) else groups
        random = pooled_studies(studies, "forest")
        studies = _studies_of(random, groups)
    elif not isinstance(studies, pd.DataFrame) or not isinstance(random, PoolResult):
        raise InputError(f"forest: cannot draw a {type(studies).__name__}; pass a pooled result (mb.pool, "
                         "mb.subgroups), or a study table and its pooled result")
    if "weight" not in studies:
        if np.ndim(random.weights) != 1 or len(random.weights) != len(studies):
            raise InputError(f"forest: the study table has {len(studies)} rows and no 'weight' column, and the fit "
                             f"has weights of shape {np.shape(random.weights)}")
        studies = studies.assign(weight=random.weights)
    studies = _with_intervals(studies, random)
    measure = measure or random.measure or ""
    arms = _arm_kind(studies)
    if "weight_fixed" not in studies:  # the fixed-effect fit's own weights when it holds one per study
        fixed_weights = np.asarray(fixed.weights) if fixed is not None else np.empty(0)
        holds_weights = fixed_weights.ndim == 1 and len(fixed_weights) == len(studies)
        studies = studies.assign(weight_fixed=fixed_weights if holds_weights else np.nan)
    rows = _rows(studies, random, fixed, groups, measure, arms, arm_labels)
    arm_cols = {"binary": ["Events", "Total"], "continuous": ["Mean", "SD", "Total"], None: []}[arms]
    header = ("Study or subgroup", *arm_cols, *arm_cols, "Weight\n(random)" if random.is_random else "Weight",
              "Weight\n(fixed)" if fixed is not None else "", f"{measure or 'Estimate'} [{random.level:g}% CI]")
    widths = ([LABEL_WIDTH] + [0.045 if arms == "binary" else 0.04] * (2 * len(arm_cols))
              + [0.055, 0.055, _effect_width(rows, len(header) - 1)])
    x_cols = np.concatenate([[0.01], 0.01 + np.cumsum(widths)[:-1]])
    left_graph = 0.01 + sum(widths) + 0.01
    n = len(rows) + 2
    height = 0.24 * n + 1.4
    fig = Figure(figsize=(WIDTH, height), dpi=100)
    bottom, top = 0.9 / height, 1 - 0.5 / height
    ax = fig.add_axes((left_graph, bottom, 0.985 - left_graph, top - bottom))
    ax.set_ylim(n - 0.5, -0.5)
    lo, hi = _limits(rows, measure)
    ax.set_xlim(lo, hi)
    text_tf = blended_transform_factory(fig.transFigure, ax.transData)
    if title:
        fig.text(0.01, 1 - 0.2 / height, title, fontsize=12, weight="bold", va="top", color=INK, **LITERAL)
    group_y = -0.2
    span = len(arm_cols)
    for label, start in ((arm_labels[0], 1), (arm_labels[1], 1 + span)) if span else ():
        x_mid = (x_cols[start] + x_cols[start + span - 1] + widths[start + span - 1]) / 2
        fig.text(x_mid, group_y, label, transform=text_tf, ha="center", va="center", fontsize=9, weight="bold",
                 **LITERAL)
    for x, w, cell, i in zip(x_cols, widths, header, range(len(header))):
        fig.text(x if i == 0 else x + w - 0.004, 0.75, cell, transform=text_tf, ha="left" if i == 0 else "right",
                 va="center", fontsize=FONT, weight="bold", color=INK, linespacing=1.0, **LITERAL)
    ax.axhline(1.3, color=GREY, lw=0.6, clip_on=False)
    for y, row in enumerate(rows, start=2):
        if row.kind in ("group", "text"):
            if row.cells:
                fig.text(x_cols[0], y, row.cells[0], transform=text_tf, va="center", fontsize=FONT,
                         weight="bold" if row.bold else "normal", color=INK if row.bold else GREY, **LITERAL)
            continue
        for i, (x, w, cell) in enumerate(zip(x_cols, widths, row.cells)):
            fig.text(x if i == 0 else x + w - 0.004, y, cell, transform=text_tf, ha="left" if i == 0 else "right",
                     va="center", fontsize=FONT, weight="bold" if row.bold else "normal", color=INK, **LITERAL)
        _draw_row(ax, row, y, lo, hi)
    ax.plot([0.0, 0.0], [1.3, n - 0.5], color=BLACK, lw=0.8)
    ax.spines[["left", "right", "top"]].set_visible(False)
    ax.set_yticks([])
    if measure in RATIO:
        ticks = [t for t in RATIO_TICKS if lo <= math.log(t) <= hi]
        ax.set_xticks([math.log(t) for t in ticks], [f"{t:g}" for t in ticks])
    ax.tick_params(axis="x", labelsize=8)
    ax.set_xlabel(f"← lower with {arm_labels[0].lower()}        higher with {arm_labels[0].lower()} →",
                  fontsize=FONT, color=INK, **LITERAL)
    return fig


def _effect_width(rows: list[_Row], column: int) -> float:
    """The effect column's width (a fraction of the figure): 0.105, or wider when a row's effect text (an interval
    such as ``1.60 [0.00, 20333.09]``) would otherwise reach into the weight column before it."""
    widest = max((text_width(row.cells[column], FONT, "bold" if row.bold else "normal")
                  for row in rows if len(row.cells) > column), default=0.0)
    return max(0.105, widest / (WIDTH * 72) + 0.008)


def _draw_row(ax, row: _Row, y: float, lo: float, hi: float) -> None:
    if not np.isfinite(row.estimate):
        return
    low, high = max(row.low, lo), min(row.high, hi)
    if row.kind == "study":
        ax.plot([low, high], [y, y], color=INK, lw=0.9, solid_capstyle="butt")
        for bound, edge, sign in ((row.low, lo, -1), (row.high, hi, 1)):
            if bound < lo or bound > hi:
                ax.annotate("", xy=(edge, y), xytext=(edge - sign * 0.02 * (hi - lo), y),
                            arrowprops={"arrowstyle": "->", "color": INK, "lw": 0.9})
        if lo <= row.estimate <= hi:
            ax.plot([row.estimate], [y], marker="s", markersize=3 + 9 * math.sqrt(max(row.size, 0.0)),
                    color=BLUE, lw=0)
    elif row.kind == "diamond":
        ax.add_patch(Polygon([(low, y), (min(max(row.estimate, lo), hi), y - 0.32), (high, y),
                              (min(max(row.estimate, lo), hi), y + 0.32)], closed=True, color=BLACK, lw=0))
    elif row.kind == "pi":
        ax.plot([low, high], [y, y], color=INK, lw=2.2, solid_capstyle="butt")
