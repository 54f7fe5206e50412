"""Risk-of-bias figures in robvis's style (McGuinness LA, Higgins JPT. Risk-of-bias VISualization (robvis).
Res Synth Methods 2021;12:55-61): the traffic-light table and the weighted summary bar chart.

Both take the table of :func:`metabac.rob.rob_table` (one row per trial, columns D1-D5 and ``overall``, each a
RoB 2 judgement) and return a matplotlib ``Figure`` built without pyplot.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from metabac.plots.style import INK, axis_titles, new_figure
from metabac.rob import LABELS
from metabac.trial_schema import ROB_JUDGEMENTS

# robvis's colours, and a symbol in each circle so the figure also reads in grey print
COLOURS = {"low": "#02C100", "some concerns": "#E2DF07", "high": "#BF0000", "no information": "#4EA1F7"}
SYMBOLS = {"low": "+", "some concerns": "−", "high": "×", "no information": "?"}


def _short(column: str) -> str:
    return "Overall" if column == "overall" else LABELS[column].split()[0]


def _check(table: pd.DataFrame) -> None:
    unknown = set(np.unique(table.to_numpy(dtype=str))) - set(ROB_JUDGEMENTS)
    if unknown:
        raise ValueError(f"rob table: unknown judgement(s) {', '.join(sorted(unknown))}")


def traffic_light(table: pd.DataFrame, title: str = "Risk of bias (RoB 2)") -> Figure:
    """Trials x domains, each judgement a coloured circle with its symbol (+ low, − some concerns, × high,
    ? no information); the domains' names and the key are printed below."""
    _check(table)
    rows, cols = table.shape
    label_width = 0.09 * max(len(str(s)) for s in table.index) + 0.3
    width, height = label_width + 0.65 * cols + 0.4, 0.42 * rows + 1.75
    fig, ax = new_figure(width, height, title, left=label_width, bottom=1.05)
    for i, study in enumerate(table.index):
        for j, column in enumerate(table.columns):
            judgement = table.loc[study, column]
            ax.scatter(j, i, s=420, color=COLOURS[judgement], edgecolors=INK, linewidths=0.6, zorder=2)
            ax.text(j, i, SYMBOLS[judgement], ha="center", va="center", fontsize=11, weight="bold", color="white"
                    if judgement != "some concerns" else INK, zorder=3)
    ax.set_xlim(-0.6, cols - 0.4)
    ax.set_ylim(rows - 0.5, -0.5)
    ax.set_xticks(range(cols), [_short(c) for c in table.columns])
    ax.xaxis.tick_top()
    ax.set_yticks(range(rows), list(table.index))
    ax.tick_params(length=0, labelsize=8.5)
    for side in ax.spines.values():
        side.set_visible(False)
    ax.axvline(cols - 1.5, color="#bbbbbb", linewidth=0.8)
    key = "\n".join(LABELS[c] for c in table.columns if c != "overall")
    fig.text(0.02, 0.02, key, fontsize=7.5, color=INK, va="bottom")
    handles = [Patch(facecolor=COLOURS[j], edgecolor=INK, label=f"{SYMBOLS[j]} {j}") for j in ROB_JUDGEMENTS]
    fig.legend(handles=handles, loc="lower right", fontsize=7.5, frameon=False, bbox_to_anchor=(0.99, 0.01))
    return fig


def summary_bars(table: pd.DataFrame, weights: pd.Series | None = None,
                 title: str = "Risk of bias, share of the weight") -> Figure:
    """Per domain, a bar split by the share of the analysis weight from trials with each judgement (robvis's
    weighted summary plot); without ``weights`` (a Series indexed like ``table``) every trial counts equally."""
    _check(table)
    w = pd.Series(1.0, index=table.index) if weights is None else weights.reindex(table.index).astype(float)
    if w.isna().any() or (w < 0).any() or w.sum() <= 0:
        raise ValueError("rob summary: a non-negative weight is needed for every trial")
    share = 100 * w / w.sum()
    columns = list(table.columns)[::-1]
    fig, ax = new_figure(7.2, 0.45 * len(columns) + 1.7, title, left=2.9, bottom=1.0)
    for y, column in enumerate(columns):
        left = 0.0
        for judgement in ROB_JUDGEMENTS:
            part = float(share[table[column] == judgement].sum())
            if part > 0:
                ax.barh(y, part, left=left, color=COLOURS[judgement], edgecolor=INK, linewidth=0.5, height=0.7)
                if part >= 8:
                    ax.text(left + part / 2, y, f"{part:.0f}%", ha="center", va="center", fontsize=7.5,
                            color="white" if judgement in ("high", "low") else INK)
                left += part
    ax.set_yticks(range(len(columns)), ["Overall" if c == "overall" else LABELS[c] for c in columns])
    ax.set_xlim(0, 100)
    ax.tick_params(length=0)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    axis_titles(ax, "share of the weight (%)" if weights is not None else "share of trials (%)")
    handles = [Patch(facecolor=COLOURS[j], edgecolor=INK, label=j) for j in ROB_JUDGEMENTS]
    fig.legend(handles=handles, loc="lower center", ncol=4, fontsize=7.5, frameon=False,
               bbox_to_anchor=(0.6, 0.0))
    return fig
