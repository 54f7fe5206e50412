"""Write a report to disk atomically: figures (PNG, SVG), numbers (CSV, JSON), Markdown and HTML.

Everything is written into a temporary folder beside the output folder and moved into place with ``os.replace``
at the end, so an interrupted run never leaves a half-written report. Figures are byte-for-byte reproducible: no
date or software metadata, and a fixed SVG hash salt.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import matplotlib
from matplotlib.figure import Figure

from metabac._checks import InputError
from metabac.plots.diagnostics import baujat_plot, cumulative_forest
from metabac.plots.forest import forest
from metabac.plots.funnel import funnel
from metabac.render import render_html, render_markdown, slug
from metabac.report import Report

FORMATS = ("html", "md", "json")
SVG_SALT = "metabac"
PNG_DPI = 110


def figure_bytes(fig: Figure, kind: str) -> bytes:
    """PNG or SVG bytes of ``fig``, identical for identical figures (no timestamps, fixed SVG ids)."""
    buffer = io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": SVG_SALT, "svg.fonttype": "path"}):
        if kind == "png":
            fig.savefig(buffer, format="png", dpi=PNG_DPI, metadata={"Software": None})
        else:
            fig.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()


def figures(report: Report) -> dict[str, Figure]:
    """Every figure of the report by file stem: per outcome a forest plot and, with its sensitivity analyses, a
    contour-enhanced funnel plot (with trim-and-fill), a cumulative forest plot by year and a Baujat plot."""
    made = {}
    for a in report.analyses:
        stem = slug(a.outcome)
        made[f"forest-{stem}"] = forest(a.studies, a.random, a.fixed, a.groups, measure=a.measure,
                                        title=f"{a.outcome} ({a.measure})")
        if a.sensitivity is not None:
            made[f"funnel-{stem}"] = funnel(a.random, a.sensitivity.trimfill, title=f"{a.outcome}: funnel plot")
            made[f"cumulative-{stem}"] = cumulative_forest(a.sensitivity.cumulative, a.measure,
                                                           title=f"{a.outcome}: cumulative meta-analysis by year")
            made[f"baujat-{stem}"] = baujat_plot(a.sensitivity.baujat, title=f"{a.outcome}: Baujat plot")
    return made


def _numbers(report: Report) -> dict[str, str]:
    """The numbers as CSV files: one per outcome (studies), the summary of findings and the coverage table."""
    import pandas as pd

    files = {"coverage.csv": report.coverage.to_csv()}
    sof = pd.DataFrame([{"outcome": a.outcome, **a.sof.to_dict()} for a in report.analyses])
    files["summary_of_findings.csv"] = sof.to_csv(index=False)
    for a in report.analyses:
        files[f"studies-{slug(a.outcome)}.csv"] = a.studies.to_csv(index=False)
    return files


def write_report(
    report: Report,
    out: str | os.PathLike,
    formats: Iterable[str] = FORMATS,
    progress: Callable[[int, int, str], None] | None = None,
) -> Path:
    """Write ``report`` into the folder ``out``. Returns the folder's path.

    The folder gets ``report.html`` (self-contained), ``report.md``, ``report.json``, ``figures/*.png|svg`` and
    ``data/*.csv``; ``formats`` selects among html, md and json (figures and CSVs are always written). Everything
    is first written to a staging folder beside ``out``; only when all of it is written does each entry replace its
    namesake in ``out`` (``os.replace``, atomic per file and folder), so a failure leaves no partial file behind.
    Other files in ``out`` (e.g. its README) are kept.
    """
    formats = tuple(dict.fromkeys(formats))
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise InputError(f"--format: unknown {', '.join(bad)} (choose from {', '.join(FORMATS)})")
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        _write_all(report, staging, formats, progress)
        out.mkdir(exist_ok=True)
        _move_into(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def _move_into(staging: Path, out: Path) -> None:
    """Replace each top-level entry of ``out`` named like one in ``staging``; folders are swapped whole."""
    for entry in sorted(staging.iterdir()):
        target = out / entry.name
        if entry.is_dir() and target.exists():
            old = staging / f".old-{entry.name}"
            os.replace(target, old)
        os.replace(entry, target)


def _write_all(report: Report, folder: Path, formats: tuple[str, ...],
               progress: Callable[[int, int, str], None] | None) -> None:
    (folder / "figures").mkdir()
    (folder / "data").mkdir()
    made = figures(report)
    total = len(made) + len(formats) + 1
    png: dict[str, bytes] = {}
    for done, (stem, fig) in enumerate(made.items(), start=1):
        png[stem] = figure_bytes(fig, "png")
        (folder / "figures" / f"{stem}.png").write_bytes(png[stem])
        (folder / "figures" / f"{stem}.svg").write_bytes(figure_bytes(fig, "svg"))
        if progress:
            progress(done, total, stem)
    for name, text in _numbers(report).items():
        (folder / "data" / name).write_text(text, encoding="utf-8")
    done = len(made) + 1
    for kind in formats:
        if kind == "html":
            text = render_html(report, png)
        elif kind == "md":
            text = render_markdown(report, {stem: f"figures/{stem}.png" for stem in png})
        else:
            text = json.dumps(report.to_dict(), indent=2, allow_nan=False, ensure_ascii=False)
        (folder / f"report.{kind}").write_text(text, encoding="utf-8")
        done += 1
        if progress:
            progress(done, total, f"report.{kind}")
    if progress:
        progress(total, total, "done")
