"""``metabac report``: write the complete, self-contained review of the trials into a folder."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from click._termui_impl import ProgressBar

from metabac._checks import printable
from metabac.defaults import DEFAULT_METHOD, DEFAULT_TEST, bundled_trials
from metabac.tau2 import METHODS, TESTS


class _Bar:
    """A click progress bar created on the first report of progress (when the number of steps is known)."""

    def __init__(self, label: str, quiet: bool) -> None:
        self.label, self.quiet, self.done = label, quiet, 0
        self.bar: ProgressBar[str] | None = None  # shows the current step's name

    def __call__(self, done: int, total: int, item: str) -> None:
        if self.quiet:
            return
        if self.bar is None:
            self.bar = click.progressbar(length=total, label=self.label, file=sys.stderr,
                                         item_show_func=lambda step: step)
            self.bar.__enter__()
        self.bar.update(done - self.done, item)
        self.done = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar, self.done = None, 0


@click.command("report", epilog="\b\nExamples:\n  metabac report --outcome abstinence --test knha --out reports/\n"
                                 "  metabac report bcg.csv --measure RR --by alloc --mods ablat --out out/")
@click.argument("data", required=False, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--outcome", "outcomes", multiple=True,
              help="Outcome to analyse (repeatable); default: every outcome reported by at least 2 trials.")
@click.option("--measure", "measures", multiple=True, help="Effect measure, case-insensitive (repeatable: at most one "
              "for binary outcomes, OR, RR, RD or PETO, and one for continuous ones, MD, SMD or ROM); default RR and "
              "MD. A measure that does not fit an analysed outcome is an error.")
@click.option("--method", default=DEFAULT_METHOD, show_default=True,
              help=f"tau² estimator ({', '.join(METHODS)}), or MH / PETO: Mantel-Haenszel or Peto fixed effect as the "
                   "main model (binary data).")
@click.option("--level", default=95.0, show_default=True, type=float,
              help="Confidence level in percent (0.95 is read as 95%).")
@click.option("--test", default=DEFAULT_TEST, show_default=True, type=click.Choice(TESTS),
              help="knha: Hartung-Knapp-Sidik-Jonkman interval and t(k-1) prediction interval, Cochrane's current "
                   "method (the Wald result is shown beside it); adhoc: modified Hartung-Knapp (max(1, s²)); z: "
                   "Wald-type interval.")
@click.option("--by", default=None,
              help="Column to stratify by (subgroup diamonds and the test for subgroup differences); 'none' for "
                   "no subgroups. Default: severity for trial records, none for a spreadsheet.")
@click.option("--mods", multiple=True, help="Column to meta-regress on (repeatable: one model each, with the "
              "permutation test and a bubble plot).")
@click.option("--label", default=None, help="The spreadsheet's column of study labels (default: study).")
@click.option("--trials", "trials_dir", default=bundled_trials, show_default="the bundled baclofen review",
              type=click.Path(path_type=Path), help="Folder of trial records (a review folder, see metabac init).")
@click.option("--out", default="reports", show_default=True, type=click.Path(path_type=Path),
              help="Output folder (replaced atomically).")
@click.option("--format", "formats", multiple=True, type=click.Choice(["html", "md", "json"]),
              help="Report format (repeatable); default all three. Figures and CSVs are always written.")
@click.option("--quiet", is_flag=True, help="No progress bar and no summary line.")
def report_command(data: Path | None, outcomes: tuple[str, ...], measures: tuple[str, ...], method: str, test: str,
                   by: str | None, mods: tuple[str, ...], label: str | None, level: float, trials_dir: Path, out: Path,
                   formats: tuple[str, ...], quiet: bool) -> None:
    """Write a self-contained review: HTML (figures embedded), Markdown, JSON, PNG/SVG plots and CSV tables.

    Without DATA, the review of the trial records in --trials (forest plots by drinking severity, risk of bias,
    GRADE summary of findings, the source of every number). With DATA, a CSV, TSV or Excel (.xlsx) file with one
    row per study (escalc-named columns ai, bi, ci, di / ai, n1i, ci, n2i / m1i, sd1i, n1i, m2i, sd2i, n2i, or
    yi, vi; optional study and year): the same report of that one outcome, without the sections that need trial
    records.
    """
    from metabac.report import ReportOptions, build_report
    from metabac.report_files import FORMATS, check_output, write_report

    options = ReportOptions(
        outcomes=outcomes, measures=measures, method=method, test=test, by=by, mods=mods, label=label, level=level,
        trials_dir=trials_dir, data=data,
        command=shlex.join(["metabac", *sys.argv[1:]]) if sys.argv else "metabac report")
    check_output(out, data if data is not None else trials_dir)  # before the analyses: a bad --out costs nothing
    bar = _Bar("Analysing", quiet)
    try:
        report = build_report(options, progress=bar)
    finally:
        bar.close()
    bar = _Bar("Writing  ", quiet)
    try:
        folder = write_report(report, out, formats or FORMATS, progress=bar)
    finally:
        bar.close()
    for outcome, reason in report.skipped:  # always for an outcome asked for by name, else unless --quiet
        if outcome in outcomes or not quiet:
            click.echo(printable(f"Not pooled: {outcome}: {reason}"), err=True)
    if not quiet:
        click.echo(f"Report written to {folder} ({len(report.analyses)} outcome(s) pooled)")
