"""Write a report to disk atomically: figures (PNG, SVG), numbers (CSV, JSON), Markdown and HTML.

Everything is written into a temporary folder beside the output folder and moved into place with ``os.replace``
at the end, so an interrupted run never leaves a half-written report. Figures are byte-for-byte reproducible: no
date or software metadata, and a fixed SVG hash salt.

What a run may touch (:func:`check_output`): only the entries it writes (``data/``, ``figures/``, ``report.*`` and
the marker ``.metabac-report``) inside the output folder, after ``..`` and symlinks in its path are resolved, plus
the temporary folder beside it. An entry of the output folder that is a symlink is replaced, never followed. It
refuses an output folder inside the trials folder, and one where ``data/``, ``figures/`` or ``report.*`` exist but
no earlier metabac report was written (so a user's own ``data/`` is never swapped out).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from metabac._checks import InputError
from metabac.render import render_html, render_markdown, slug
from metabac.report import Report
from metabac.report_figures import drawings, render_figures

FORMATS = ("html", "md", "json")
MARKER = ".metabac-report"
MARKER_TEXT = ("Written by `metabac report`. Each run replaces data/, figures/, report.html, report.md and "
               "report.json here and keeps every other file.\n")
REPLACED = ("data", "figures", "report.html", "report.md", "report.json")
def _numbers(report: Report) -> dict[str, str]:
    """The numbers as CSV files: one per outcome (studies), the summary of findings and the coverage table.

    Text cells (labels, quotes) that a spreadsheet would run as a formula are neutralised (:func:`csv_cell`);
    number columns are written as numbers."""
    import pandas as pd

    from metabac._checks import csv_cell

    def csv(frame: pd.DataFrame, index: bool) -> str:
        safe = frame.map(csv_cell).rename(index=csv_cell, columns=csv_cell)
        return safe.to_csv(index=index)

    files = {"coverage.csv": csv(report.coverage, index=True)}
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
    ``data/*.csv``; ``formats`` selects among html, md and json (figures and CSVs are always written). Everything
    is first written to a staging folder beside ``out``; only when all of it is written does each entry replace its
    namesake in ``out`` (``os.replace``, atomic per file and folder), so a failure leaves no partial file behind.
    Other files in ``out`` (e.g. its README) are kept. ``workers`` processes render the figures (default: one per
    available core where they can be forked; 1 renders them in this process, see :mod:`metabac.report_figures`).
    """
    formats = tuple(dict.fromkeys(formats))
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise InputError(f"--format: unknown {', '.join(bad)} (choose from {', '.join(FORMATS)})")
    out = check_output(out, report.options.trials_dir)
    staging = None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
        _write_all(report, staging, formats, progress, workers)
        (staging / MARKER).write_text(MARKER_TEXT, encoding="utf-8")
        out.mkdir(exist_ok=True)
        _move_into(staging, out)
    except OSError as error:
        raise InputError(f"{out}: --out: cannot write the report ({error.strerror or error})") from error
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    return out


def _written_by_metabac(folder: Path) -> bool:
    """The folder holds a report of an earlier run: the marker, or (before the marker) a report.* of metabac."""
    if (folder / MARKER).is_file():
        return True
    for name in ("report.json", "report.md", "report.html"):
        path = folder / name
        if path.is_file() and not path.is_symlink():
            with open(path, "rb") as handle:
                if b"metabac" in handle.read(4096):
                    return True
    return False


def check_output(out: str | os.PathLike, trials_dir: str | os.PathLike | None = None) -> Path:
    """The output folder a report may be written to, resolved (``..`` and symlinks in its path), or InputError.

    Refused: an existing file; the trials folder or a folder inside it (metabac never writes to the records); a
    folder holding ``data/``, ``figures/`` or ``report.*`` that no earlier metabac report wrote. Called by
    :func:`write_report`, and by the CLI before any analysis runs.
    """
    out = Path(out).resolve()
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: --out: is a file, not a folder")
    existing = next(parent for parent in out.parents if parent.exists())
    if not existing.is_dir():
        raise InputError(f"{out}: --out: {existing} is a file, not a folder")
    if trials_dir is not None:
        trials = Path(trials_dir).resolve()
        if out == trials or trials in out.parents:
            raise InputError(f"{out}: --out: is inside the trials folder {trials} (metabac never writes there)")
    if out.is_dir() and not _written_by_metabac(out):
        clash = [name for name in REPLACED if (out / name).exists() or (out / name).is_symlink()]
        if clash:
            raise InputError(f"{out}: --out: {clash[0]} exists and would be replaced, but no metabac report was "
                             f"written here before ({MARKER} missing); move it or choose another --out")
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
               progress: Callable[[int, int, str], None] | None, workers: int | None) -> None:
    (folder / "figures").mkdir()
    (folder / "data").mkdir()
    recipes = drawings(report)
    total = len(recipes) + len(formats) + 1
    png: dict[str, bytes] = {}
    for done, figure in enumerate(render_figures(recipes, workers), start=1):
        png[figure.stem] = figure.png
        (folder / "figures" / f"{figure.stem}.png").write_bytes(figure.png)
        (folder / "figures" / f"{figure.stem}.svg").write_bytes(figure.svg)
        if progress:
            progress(done, total, figure.stem)
    for name, text in _numbers(report).items():
        (folder / "data" / name).write_text(text, encoding="utf-8")
    done = len(recipes) + 1
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
