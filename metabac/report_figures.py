"""The figures of a report, drawn and rendered to PNG and SVG bytes on every available core.

Rendering is most of the time a report takes (text glyphs in Agg and SVG paths: about 0.1 s a figure, 12 figures
for the bundled trials), and the figures are independent, so they are drawn in worker processes of a
:class:`concurrent.futures.ProcessPoolExecutor`. Workers are forked, so they start with metabac and matplotlib
already imported (a spawned worker would spend longer importing them than it saves); where ``fork`` is not the
platform's safe choice (macOS, Windows) or only one core is available, figures are rendered one after the other in
this process. Either way the bytes are identical: figures carry no date or software metadata and a fixed SVG hash
salt, and each is drawn from the same picklable recipe.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from typing import NamedTuple

import matplotlib
import pandas as pd
from matplotlib.figure import Figure

from metabac._checks import InputError
from metabac.formatting import slug
from metabac.plots.bubble import bubble
from metabac.plots.diagnostics import baujat_plot, cumulative_forest
from metabac.plots.forest import forest
from metabac.plots.funnel import funnel
from metabac.plots.rob import summary_bars, traffic_light
from metabac.report import Report

SVG_SALT = "metabac"
PNG_DPI = 110
Drawing = Callable[[], Figure]


class RenderedFigure(NamedTuple):
    """One figure of the report as files: its stem (``forest-abstinence``) and PNG and SVG bytes."""

    stem: str
    png: bytes
    svg: bytes


def figure_bytes(fig: Figure, kind: str) -> bytes:
    """PNG or SVG bytes of ``fig``, identical for identical figures (no timestamps, fixed SVG ids)."""
    buffer = io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": SVG_SALT, "svg.fonttype": "path"}):
        if kind == "png":
            fig.savefig(buffer, format="png", dpi=PNG_DPI, metadata={"Software": None})
        else:
            fig.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()


def drawings(report: Report) -> dict[str, Drawing]:
    """Every figure of the report by file stem, as a picklable recipe (``functools.partial``) that draws it: per
    outcome a forest plot and, with its sensitivity analyses, a contour-enhanced funnel plot (with trim-and-fill), a
    cumulative forest plot by year and a Baujat plot; with a risk-of-bias assessment, the RoB 2 traffic-light table
    and the summary bars weighted by the random-effects weights."""
    made: dict[str, Drawing] = {}
    for a in report.analyses:
        stem = slug(a.outcome)
        made[f"forest-{stem}"] = partial(forest, a.studies, a.random, a.fixed, a.groups, measure=a.measure,
                                         arm_labels=report.arm_names,
                                         title=f"{a.outcome} ({a.measure})")
        if a.sensitivity is not None:
            made[f"funnel-{stem}"] = partial(funnel, a.random, a.sensitivity.trimfill,
                                             title=f"{a.outcome}: funnel plot")
            made[f"cumulative-{stem}"] = partial(cumulative_forest, a.sensitivity.cumulative, a.measure,
                                                 title=f"{a.outcome}: cumulative meta-analysis by year")
            made[f"baujat-{stem}"] = partial(baujat_plot, a.sensitivity.baujat, title=f"{a.outcome}: Baujat plot")
        for m in a.moderators:
            if m.fit.X.shape[1] == 2:  # a numeric moderator: one slope to draw
                made[f"bubble-{stem}-{slug(m.column)}"] = partial(bubble, m.fit, m.column, a.measure,
                                                                  title=f"{a.outcome}: meta-regression on {m.column}")
        rob = a.appraisal.rob if a.appraisal is not None else None
        if rob is not None and len(rob):
            weights = pd.Series(a.random.weights, index=a.studies["study"].astype(str).to_numpy())
            made[f"rob-{stem}"] = partial(traffic_light, rob, title=f"{a.outcome}: risk of bias (RoB 2)")
            made[f"robsummary-{stem}"] = partial(summary_bars, rob, weights.reindex(rob.index),
                                                 title=f"{a.outcome}: risk of bias, share of the weight")
    return made


def figures(report: Report) -> dict[str, Figure]:
    """Every figure of the report by file stem, drawn (see :func:`drawings`)."""
    return {stem: draw() for stem, draw in drawings(report).items()}


def _render(stem: str, draw: Drawing) -> RenderedFigure:
    fig = draw()
    return RenderedFigure(stem, figure_bytes(fig, "png"), figure_bytes(fig, "svg"))


def default_workers() -> int:
    """Worker processes for rendering: the cores this process may use where workers can be forked (Linux), else 1
    (rendering in this process)."""
    if not sys.platform.startswith("linux"):
        return 1
    return len(os.sched_getaffinity(0))


def render_figures(recipes: dict[str, Drawing], workers: int | None = None) -> Iterator[RenderedFigure]:
    """The figures of ``recipes`` (see :func:`drawings`) as PNG and SVG bytes, in order, each as soon as it and
    those before it are done. ``workers`` processes render them (default :func:`default_workers`); 1 renders
    here."""
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise InputError(f"workers: must be a whole number of processes, at least 1, got {workers!r}")
    workers = min(default_workers() if workers is None else workers, len(recipes))
    if workers <= 1:
        return (_render(stem, draw) for stem, draw in recipes.items())
    return _rendered_in_workers(recipes, workers)


def _rendered_in_workers(recipes: dict[str, Drawing], workers: int) -> Iterator[RenderedFigure]:
    executor = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
    try:
        yield from executor.map(_render, recipes.keys(), recipes.values())
    finally:  # also when the caller stops early (a failed write): figures not yet started are dropped
        executor.shutdown(cancel_futures=True)
