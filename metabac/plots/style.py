"""What every metabac figure shares: colours, the ratio-measure axis, a new pyplot-free figure, and labels drawn
as the literal text they are (never mathtext or TeX), cut to fit with an ellipsis."""

from __future__ import annotations

import math
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.textpath import TextToPath
from matplotlib.transforms import Affine2D

from metabac._checks import InputError
from metabac.effects import RATIO_MEASURES
from metabac.moderators import SubgroupResult
from metabac.pooling import PoolBatch, PoolResult

INK, GREY, BLUE, BLACK, RED, LIGHT = "#222222", "#777777", "#1f4e9c", "#000000", "#b22222", "#e8ecf3"
RATIO_TICKS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100)
# Text properties for every string a figure draws: "$x$" in a study label is drawn as typed, not parsed as
# mathtext (which crashes on "$\frac{$" and silently typesets "$x$"), also when rcParams turn on usetex.
LITERAL: dict[str, Any] = {"parse_math": False, "usetex": False}
_MEASURE = TextToPath()


def text_width(text: str, fontsize: float, weight: str = "normal") -> float:
    """Width in points of ``text`` drawn literally in the default font at ``fontsize``."""
    font = FontProperties(size=fontsize, weight=weight)
    return _MEASURE.get_text_width_height_descent(text, font, ismath=False)[0]


def fit_label(label: object, width: float, fontsize: float, weight: str = "normal") -> str:
    """``label`` on one line (whitespace runs, line breaks included, become one space), cut at the end with an
    ellipsis ("…") so that it is at most ``width`` points wide at ``fontsize``."""
    text = " ".join(str(label).split())
    if text_width(text, fontsize, weight) <= width:
        return text
    low, high = 0, len(text)  # the longest prefix that fits with its ellipsis has between low and high characters
    while low < high:
        middle = (low + high + 1) // 2
        if text_width(text[:middle].rstrip() + "…", fontsize, weight) <= width:
            low = middle
        else:
            high = middle - 1
    return text[:low].rstrip() + "…"


def new_figure(width: float = 6.4, height: float = 4.8, title: str = "", *, left: float = 0.8,
               bottom: float = 0.6) -> tuple[Figure, Axes]:
    """A figure with one axes and an optional bold title, built without pyplot (no global state).

    Margins are fixed in inches (``left``, ``bottom``; 0.2 right, 0.45 top) rather than solved by matplotlib's
    constrained layout, which doubles the time to draw a small figure.
    """
    fig = Figure(figsize=(width, height), dpi=100)
    fig.subplots_adjust(left=left / width, right=1 - 0.2 / width, bottom=bottom / height, top=1 - 0.45 / height)
    ax = fig.add_subplot()
    if title:
        ax.set_title(title, fontsize=11, weight="bold", color=INK, loc="left", **LITERAL)
    ax.tick_params(labelsize=8)
    return fig, ax


def effect_axis(ax: Axes, measure: str | None, axis: str = "x") -> None:
    """Label a log-scale effect axis with back-transformed ratio ticks (1, 2, 5, ...) for ratio measures."""
    if measure not in RATIO_MEASURES:
        return
    low, high = ax.get_xlim() if axis == "x" else ax.get_ylim()
    ticks = [t for t in RATIO_TICKS if low <= math.log(t) <= high]
    if len(ticks) < 2:
        return
    setter = ax.set_xticks if axis == "x" else ax.set_yticks
    setter([math.log(t) for t in ticks], [f"{t:g}" for t in ticks])


def axis_label(measure: str | None) -> str:
    """The effect axis title: "RR (log scale)" for ratio measures, the measure name otherwise."""
    if measure in RATIO_MEASURES:
        return f"{measure} (log scale)"
    return measure or "effect size"


def axis_titles(ax: Axes, x: str, y: str | None = None) -> None:
    """The x (and y) axis titles in the figures' common size and colour."""
    ax.set_xlabel(x, fontsize=9, color=INK, **LITERAL)
    if y is not None:
        ax.set_ylabel(y, fontsize=9, color=INK, **LITERAL)


def label_points(ax: Axes, x, y, labels, fontsize: float = 7.5, width: float = 110) -> None:
    """Name each point, placing its label right-above, right-below, left-above or left-below it, whichever first
    stays inside the axes and clear of the labels already placed. Labels are cut to ``width`` points (see
    :func:`fit_label`). A label that fits nowhere is left out rather than drawn over another."""
    ax.autoscale_view()
    to_points = ax.transData + ax.figure.dpi_scale_trans.inverted() + Affine2D().scale(72)
    frame = ax.get_position().transformed(ax.figure.transFigure + ax.figure.dpi_scale_trans.inverted()).extents * 72
    placed: list[tuple[float, float, float, float]] = []
    candidates = ((4, 3, "left"), (4, -11, "left"), (-4, 3, "right"), (-4, -11, "right"))
    names = [fit_label(label, width, fontsize) for label in labels]
    for xi, yi, label in sorted(zip(x, y, names), key=lambda item: -item[1]):
        px, py = to_points.transform((xi, yi))
        box_width, height = text_width(label, fontsize), fontsize
        for dx, dy, align in candidates:
            left = px + dx if align == "left" else px + dx - box_width
            box = (left, py + dy, left + box_width, py + dy + height)
            inside = frame[0] <= box[0] and box[2] <= frame[2] and frame[1] <= box[1] and box[3] <= frame[3]
            if inside and not any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3]
                                  for b in placed):
                placed.append(box)
                ax.annotate(label, (xi, yi), xytext=(dx, dy), textcoords="offset points", fontsize=fontsize,
                            color=INK, ha=align, **LITERAL)
                break


def pooled_studies(result: object, plot: str) -> PoolResult:
    """The pooled analysis a plot draws from ``result`` (a :class:`PoolResult`, or the overall fit of a
    :class:`SubgroupResult`), after checking that it is one analysis that holds its studies' yi and vi; anything
    else is a one-line :class:`metabac.InputError` naming the plot."""
    fit = result.overall if isinstance(result, SubgroupResult) else result
    if isinstance(fit, PoolBatch):
        raise InputError(f"{plot}: cannot draw a batch of {len(fit.estimate)} meta-analyses; pool one")
    if not isinstance(fit, PoolResult):
        raise InputError(f"{plot}: cannot draw a {type(result).__name__}; pass a pooled result (mb.pool, "
                         "mb.subgroups)")
    if len(fit.yi) == 0:
        raise InputError(f"{plot}: the {fit.model} result holds no per-study effect sizes; draw a fit of "
                         "mb.pool (or, for a forest plot, pass the study table with this result)")
    return fit
