"""Write a report to disk: figures (PNG, SVG), numbers (CSV, JSON), Markdown and HTML.

Figures are byte-for-byte reproducible: no date or software metadata, and a fixed SVG hash salt. Where the files
go, and what a run may replace, is :mod:`metabac.report_folder`'s job: only the report entries (``data/``,
``figures/``, ``report.*``) that an earlier report's manifest proves metabac wrote, inside the output folder after
``..`` and symlinks in its path are resolved, plus metabac's own manifest, journal, lock and staging folder there.
The output folder may neither contain nor lie inside the trials folder (:func:`check_output`).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from metabac._checks import InputError
from metabac.render import render_html, render_markdown, slug
from metabac.report import Report
from metabac.report_figures import drawings, render_figures
from metabac.report_folder import JOURNAL, LOCK, MANIFEST, check_replaceable, staged_report

FORMATS = ("html", "md", "json")


def _numbers(report: Report) -> dict[str, str]:
    """The numbers as CSV files: one per outcome (studies), the summary of findings and the coverage table.

    Text cells (labels, quotes) that a spreadsheet would run as a formula are neutralised (:func:`csv_cell`);
    number columns are written as numbers."""
    import pandas as pd

    from metabac._checks import csv_cell

    def csv(frame: pd.DataFrame, index: bool) -> str:
        safe = frame.map(csv_cell).rename(index=csv_cell, columns=csv_cell)
        return safe.to_csv(index=index)

    files = {} if report.coverage is None else {"coverage.csv": csv(report.coverage, index=True)}
    sof = pd.DataFrame([{"outcome": a.outcome, **a.sof.to_dict()} for a in report.analyses])
    files["summary_of_findings.csv"] = csv(sof, index=False)
    for a in report.analyses:
        files[f"studies-{slug(a.outcome)}.csv"] = csv(a.studies, index=False)
    return files


def write_report(
    report: Report,
    out: str | os.PathLike,
    formats: Iterable[str] = FORMATS,
    progress: Callable[[int, int, str], None] | None = None,
    workers: int | None = None,
) -> Path:
    """Write ``report`` into the folder ``out``. Returns the folder's path.

    The folder gets ``report.html`` (self-contained), ``report.md``, ``report.json``, ``figures/*.png|svg`` and
    ``data/*.csv``; ``formats`` selects among html, md and json (figures and CSVs are always written). The report
    is written to a staging folder inside ``out`` and then replaces the previous report in one recoverable
    switch-over (:func:`metabac.report_folder.staged_report`): only entries that the previous report's manifest
    proves metabac wrote are replaced or removed, every other file in ``out`` is kept, and a failure leaves ``out``
    as it was. ``workers`` processes render the figures (default: one per available core where they can be
    forked; 1 renders them in this process, see :mod:`metabac.report_figures`).
    """
    formats = tuple(dict.fromkeys(formats))
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise InputError(f"--format: unknown {', '.join(bad)} (choose from {', '.join(FORMATS)})")
    o = report.options
    out = check_output(out, o.data if o.data is not None else o.trials_dir)
    created = [folder for folder in (out, *out.parents) if not folder.exists()]
    try:
        out.mkdir(parents=True, exist_ok=True)
        with staged_report(out) as staging:
            _write_all(report, staging, formats, progress, workers)
    except OSError as error:
        pending = " (the next run completes the switch-over)" if (out / JOURNAL).exists() else ""
        raise InputError(f"{out}: --out: cannot write the report ({error.strerror or error}){pending}") from error
    finally:
        if created and not (out / MANIFEST).exists():  # nothing written: remove what this run created
            with contextlib.suppress(OSError):
                (out / LOCK).unlink()
            for folder in created:
                with contextlib.suppress(OSError):
                    folder.rmdir()
    return out


def check_output(out: str | os.PathLike, *inputs: str | os.PathLike | None) -> Path:
    """The output folder a report may be written to, resolved (``..`` and symlinks in its path), or InputError.

    Refused: an existing file or other non-folder; a folder that contains, or lies inside, the trials folder or
    any other input (``inputs``, resolved too: metabac never writes where it reads); a folder holding a report
    entry (``data/``, ``figures/``, ``report.*``) that the manifest of an earlier report does not prove metabac
    wrote (:func:`metabac.report_folder.check_replaceable`). Writes nothing; called by :func:`write_report`, and by the
    CLI before any analysis runs.
    """
    out = Path(out).resolve()
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: --out: is a file, not a folder")
    existing = next(folder for folder in (out, *out.parents) if folder.exists())
    if not existing.is_dir():
        raise InputError(f"{out}: --out: {existing} is a file, not a folder")
    for given in inputs:
        if given is None:
            continue
        source = Path(given).resolve()
        if out == source or source in out.parents:
            raise InputError(f"{out}: --out: is inside the input {source} (metabac never writes where it reads)")
        if out in source.parents:
            raise InputError(f"{out}: --out: contains the input {source} (metabac never writes where it reads)")
    if out.is_dir():
        check_replaceable(out)
    return out


def _write_all(report: Report, folder: Path, formats: tuple[str, ...],
               progress: Callable[[int, int, str], None] | None, workers: int | None) -> None:
    (folder / "figures").mkdir()
    (folder / "data").mkdir()
    recipes = drawings(report)
    total = len(recipes) + len(formats) + 1
    svg: dict[str, bytes] = {}
    for done, figure in enumerate(render_figures(recipes, workers), start=1):
        svg[figure.stem] = figure.svg
        (folder / "figures" / f"{figure.stem}.png").write_bytes(figure.png)
        (folder / "figures" / f"{figure.stem}.svg").write_bytes(figure.svg)
        if progress:
            progress(done, total, figure.stem)
    for name, text in _numbers(report).items():
        (folder / "data" / name).write_text(text, encoding="utf-8")
    done = len(recipes) + 1
    for kind in formats:
        if kind == "html":
            text = render_html(report, svg)
        elif kind == "md":
            text = render_markdown(report, {stem: f"figures/{stem}.png" for stem in svg})
        else:
            text = json.dumps(report.to_dict(), indent=2, allow_nan=False, ensure_ascii=False)
        (folder / f"report.{kind}").write_text(text, encoding="utf-8")
        done += 1
        if progress:
            progress(done, total, f"report.{kind}")
    if progress:
        progress(total, total, "done")
