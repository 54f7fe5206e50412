"""``metabac pool FILE``: pool any user's study table (CSV, TSV or .xlsx with escalc-named columns or ``yi, vi``),
with subgroups, meta-regression, Mantel-Haenszel or Peto pooling and a forest plot."""

from __future__ import annotations

import io
import json
from pathlib import Path

import click

from metabac._checks import InputError, printable
from metabac.tau2 import METHODS, TESTS

FIXED_METHODS = ("MH", "PETO")  # fixed-effect methods on the 2x2 tables themselves
PLOT_FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}


@click.command("pool")
@click.argument("data_file", metavar="FILE", type=click.Path(dir_okay=False, path_type=str))
@click.option("--measure", default=None, help="OR, RR, RD, PETO, MD, SMD or ROM (not needed for yi/vi columns).")
@click.option("--method", default="REML", show_default=True,
              help=f"tau² estimator: {', '.join(METHODS)}; or MH (Mantel-Haenszel) or PETO, fixed-effect methods "
                   "on binary data.")
@click.option("--test", default="z", show_default=True, type=click.Choice(TESTS),
              help="z, knha (Hartung-Knapp-Sidik-Jonkman) or adhoc (modified Hartung-Knapp, max(1, s²)).")
@click.option("--level", default=95.0, show_default=True, help="Confidence level in percent (0.95 also means 95%).")
@click.option("--label", metavar="COLUMN", default=None, help="Column of study labels (default: 'study', if any).")
@click.option("--by", metavar="COLUMN", default=None,
              help="Pool each subgroup of this column and test for subgroup differences.")
@click.option("--mods", metavar="COLUMN", multiple=True,
              help="Moderator for a meta-regression (repeatable; numeric columns).")
@click.option("--plot", metavar="FILE", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="Write a forest plot: .png, .svg or .pdf by the suffix. An existing file is never replaced "
                   "unless --force is given.")
@click.option("--force", is_flag=True, help="Let --plot replace an existing file.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON instead of the summary.")
def pool_command(data_file: str, measure: str | None, method: str, test: str, level: float, label: str | None,
                 by: str | None, mods: tuple[str, ...], plot: Path | None, force: bool, as_json: bool) -> None:
    """Pool the studies of FILE (CSV, TSV or Excel .xlsx, one row per study) and print the result.

    The columns are escalc's names (ai, bi, ci, di or ai, n1i, ci, n2i for binary data; m1i, sd1i, n1i, m2i,
    sd2i, n2i for continuous data) or ready-made yi and vi (or yi and sei). A column ``study`` (or the --label
    column) labels the rows and a column ``year`` is read as the year; any other column is left out unless --by
    or --mods names it, and is listed on stderr as ignored. Of a workbook the first sheet is read; formulas give
    the values the spreadsheet saved.

    \b
    Example:
      metabac pool trials.csv --measure RR --method REML --test knha
      metabac pool bcg.xlsx --measure RR --by alloc --mods ablat --plot forest.svg
    """
    import metabac as mb
    from metabac.io import read_study_table

    fixed = method.upper() in FIXED_METHODS
    if fixed and (by or mods):
        raise InputError(f"--method {method}: --by and --mods fit inverse-variance models; use a tau² estimator "
                         "such as REML or EE with them")
    if fixed and test != "z":
        raise InputError(f"--test {test}: not available with --method {method} (a fixed-effect method)")
    if plot is not None:
        _check_plot_target(plot, force)
    table = read_study_table(data_file, measure, label=label)
    groups = list(table.column(by, "--by")) if by else None
    moderators = {name: table.numbers(name, "--mods") for name in mods}
    ignored = table.unused(*([by] if by else []), *mods)
    if ignored:
        click.echo(printable(f"ignored columns: {', '.join(ignored)}"), err=True)
    if fixed:
        result = _fixed_effect(table, method.upper(), level)
    else:
        result = mb.pool(table.yi, table.vi, method=method, test=test, level=level, measure=table.measure,
                         labels=table.labels)
    sub = mb.subgroups(table.yi, table.vi, groups, method=method, test=test, level=level,
                       labels=table.labels) if groups is not None else None
    reg = _metareg(table, moderators, method, test, level) if mods else None
    if plot is not None:
        _write_forest(plot, force, table, result, sub)
    if as_json:
        data = result.to_dict()
        data.update({"subgroups": sub.to_dict()} if sub else {})
        data.update({"metareg": reg.to_dict()} if reg else {})
        click.echo(json.dumps(data, indent=2, allow_nan=False))
        return
    _echo(result.summary())
    if sub is not None:
        _echo(f"\nSubgroups by {by}:\n{sub.summary()}")
    if reg is not None:
        _echo(f"\nMeta-regression on {', '.join(mods)}:\n{reg.summary()}")


def _metareg(table, moderators: dict, method: str, test: str, level: float):
    """The meta-regression on the --mods columns (pandas is imported only for it)."""
    import pandas as pd

    import metabac as mb

    return mb.metareg(table.yi, table.vi, mods=pd.DataFrame(moderators), method=method, test=test, level=level)


def _echo(text: str) -> None:
    """Print text line by line with control characters from the file's labels escaped."""
    for line in text.split("\n"):
        click.echo(printable(line))


def _fixed_effect(table, method: str, level: float):
    """Mantel-Haenszel or Peto pooling of the file's 2x2 tables."""
    import metabac as mb
    from metabac.effects import BINARY_FIELDS

    allowed = ("OR", "RR", "RD") if method == "MH" else ("OR", "PETO")
    if table.measure not in allowed:
        raise InputError(f"--method {method}: needs --measure {' or '.join(allowed)} with binary arm columns "
                         f"(ai, bi, ci, di or ai, n1i, ci, n2i), got --measure {table.measure}")
    arms = {name: table.numbers(name, "--measure") for name in table.used if name in BINARY_FIELDS}
    if method == "MH":
        return mb.mantel_haenszel(table.measure, level=level, labels=table.labels, **arms)
    return mb.peto(level=level, labels=table.labels, **arms)


def _check_plot_target(path: Path, force: bool) -> None:
    """Refuse an unknown suffix, a missing folder and (without --force) an existing file, before any work."""
    if path.suffix.lower() not in PLOT_FORMATS:
        raise InputError(f"{path}: --plot: unknown file type {path.suffix or '(none)'!r}; use .png, .svg or .pdf")
    if not path.parent.is_dir():
        raise InputError(f"{path}: --plot: folder {path.parent} not found")
    if path.exists() and not force:
        raise InputError(f"{path}: --plot: the file exists; pass --force to replace it, or choose another name")


def _write_forest(path: Path, force: bool, table, fit, sub) -> None:
    """Draw the forest plot with the arm data of the file and write it; without --force the file is created
    exclusively, so an existing file is never replaced."""
    import pandas as pd

    from metabac.effects import BINARY_FIELDS, CONTINUOUS_FIELDS, cells_from_arms
    from metabac.plots.forest import forest

    studies = pd.DataFrame({"study": table.labels or [f"study {i + 1}" for i in range(len(table.yi))],
                            "yi": table.yi, "vi": table.vi, "weight": fit.weights})
    arms = {name: table.numbers(name, "--measure") for name in table.used
            if name in (*BINARY_FIELDS, *CONTINUOUS_FIELDS)}
    if "ai" in arms:
        cells = cells_from_arms(arms)
        studies = studies.assign(ai=cells.a, n1i=cells.n1, ci=cells.c, n2i=cells.n2)
    elif "m1i" in arms:
        studies = studies.assign(**arms)
    if sub is not None:
        studies["group"] = list(sub.groups)
    figure = forest(studies, fit, groups=sub, measure=table.measure, arm_labels=("Treatment", "Control"))
    buffer = io.BytesIO()
    figure.savefig(buffer, format=PLOT_FORMATS[path.suffix.lower()])
    try:
        with open(path, "wb" if force else "xb") as handle:
            handle.write(buffer.getvalue())
    except FileExistsError:
        raise InputError(f"{path}: --plot: the file exists; pass --force to replace it, or choose another "
                         "name") from None
