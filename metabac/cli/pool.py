"""``metabac pool FILE.csv``: pool any user's data from a CSV with escalc-named columns (or ``yi, vi``)."""

from __future__ import annotations

import json

import click

from metabac.tau2 import METHODS, TESTS


@click.command("pool")
@click.argument("csv_file", type=click.Path(dir_okay=False, path_type=str))
@click.option("--measure", default=None, help="OR, RR, RD, PETO, MD, SMD or ROM (not needed for yi/vi columns).")
@click.option("--method", default="REML", show_default=True, help=f"tau² estimator: {', '.join(METHODS)}.")
@click.option("--test", default="z", show_default=True, type=click.Choice(TESTS),
              help="z, knha (Hartung-Knapp-Sidik-Jonkman) or adhoc (modified Hartung-Knapp, max(1, s²)).")
@click.option("--level", default=95.0, show_default=True, help="Confidence level in percent (0.95 also means 95%).")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON instead of the summary.")
def pool_command(csv_file: str, measure: str | None, method: str, test: str, level: float, as_json: bool) -> None:
    """Pool the studies of CSV_FILE and print the result.

    The CSV has one row per study, with escalc-named columns (ai, bi, ci, di or ai, n1i, ci, n2i for binary
    data; m1i, sd1i, n1i, m2i, sd2i, n2i for continuous data) or ready-made yi and vi. An optional column
    ``study`` labels the rows.

    \b
    Example:
      metabac pool trials.csv --measure RR --method REML --test knha
    """
    from metabac.io import read_study_table

    from metabac import pool

    table = read_study_table(csv_file, measure)
    result = pool(table.yi, table.vi, method=method, test=test, level=level, measure=table.measure,
                  labels=table.labels)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, allow_nan=False))
    else:
        click.echo(result.summary())
