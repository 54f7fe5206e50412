"""What every metabac figure shares: colours, the ratio-measure axis and a new pyplot-free figure."""

from __future__ import annotations

import math

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from metabac.effects import RATIO_MEASURES

INK, GREY, BLUE, BLACK, RED, LIGHT = "#222222", "#777777", "#1f4e9c", "#000000", "#b22222", "#e8ecf3"
RATIO_TICKS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100)


def new_figure(width: float = 6.4, height: float = 4.8, title: str = "") -> tuple[Figure, Axes]:
    """A figure with one axes and an optional bold title, built without pyplot (no global state)."""
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    if title:
        ax.set_title(title, fontsize=11, weight="bold", color=INK, loc="left")
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
