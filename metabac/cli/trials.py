"""``metabac trials list | show ID | check | schema``: browse and validate the trial records (read-only)."""

from __future__ import annotations

import click
import pandas as pd

from metabac._checks import InputError, printable
from metabac.defaults import bundled_trials
from metabac.severity import NOT_CLASSIFIED

TRIALS_OPTION = click.option("--trials", "trials_dir", default=bundled_trials, show_default="the bundled trials",
                             type=click.Path(file_okay=False), help="Folder of trial records (*.toml).")


@click.group("trials")
def trials_command() -> None:
    """Browse and validate the trial records. Nothing here writes to the records.

    \b
    Example:
      metabac trials check --trials trials
    """


def _cell(value: object) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    return printable(value)


def _echo(text: str) -> None:
    """Print text from the records with control characters escaped (a record cannot drive the terminal)."""
    click.echo(printable(text))


@trials_command.command("list")
@TRIALS_OPTION
def list_command(trials_dir: str) -> None:
    """One line per trial: year, population, control, N, dose, detoxification, severity and its basis."""
    from metabac._result import table
    from metabac.trials import load_trials

    frame = load_trials(trials_dir).trials
    columns = ["trial", "year", "population", "control", "n_randomised", "dose_mg_max", "detox", "g_per_day",
               "severity", "severity_basis"]
    rows = [[_cell(row[c]) for c in columns] for _, row in frame.iterrows()]
    click.echo(table(columns, rows))


@trials_command.command("show")
@click.argument("trial_id")
@TRIALS_OPTION
def show_command(trial_id: str, trials_dir: str) -> None:
    """Everything recorded for one trial, every number with its source and quote."""
    from metabac.trials import load_trials

    trial_set = load_trials(trials_dir)
    if trial_id not in trial_set.records:
        raise InputError(f"{trial_id}: no such trial in {trials_dir} (known: {', '.join(trial_set.records)})")
    info = trial_set.trials.loc[trial_id]
    _echo(f"{info['study']}: {info['title']}")
    _echo(f"  {info['authors']} {info['journal']}" + (f", doi {info['doi']}" if isinstance(info["doi"], str) else "")
          + (f", {info['registry']}" if isinstance(info["registry"], str) else ""))
    g, basis = info["g_per_day"], info["severity_basis"]
    flip = info["flip_drink_size_g"]
    severity = NOT_CLASSIFIED if pd.isna(info["severity"]) else info["severity"] + (
        f" ({basis}, {g:.0f} g/day)" if pd.notna(g) else f" ({basis})") + (
        f", would flip with a drink of {flip:.1f} g" if pd.notna(flip) else "")
    _echo(f"  population {info['population']}; control {info['control']}; detoxified {_cell(info['detox'])}; "
          f"severity {severity}")
    for _, arm in trial_set.arms[trial_set.arms.trial == trial_id].iterrows():
        dose = f" {arm['dose_mg_day']:g} mg/day" if pd.notna(arm["dose_mg_day"]) else ""
        _echo(f"  arm {arm['arm']}: {arm['drug']}{dose}"
              + f", randomised {_cell(arm['randomised'])}  [{arm['source']}: \"{arm['quote']}\"]")
    for _, row in trial_set.outcomes[trial_set.outcomes.trial == trial_id].iterrows():
        numbers = ", ".join(f"{key} {_cell(row[key])}" for key in ("events", "n", "percent", "mean", "sd", "se")
                            if pd.notna(row[key]))
        flags = ((" [derived: " + row["derived"] + "]" if row["derived"] else "")
                 + (" [second-hand]" if row["second_hand"] else ""))
        _echo(f"  {row['outcome']} ({row['timepoint']}, {row['analysis_set']}) {row['arm']}: {numbers}{flags}")
        _echo(f"      {row['source']} ({row['source_kind']}): \"{row['quote']}\"")
    record = trial_set.records[trial_id]
    if record.get("notes"):
        _echo(f"  notes: {record['notes']}")


@trials_command.command("check")
@TRIALS_OPTION
def check_command(trials_dir: str) -> None:
    """Validate every record against the schema and print which outcomes each trial reports
    (usable: all arms complete; partial: a percent without a count, a mean without SD or N)."""
    from metabac.trials import coverage, load_trials

    trial_set = load_trials(trials_dir)
    cover = coverage(trial_set)
    click.echo(f"{len(trial_set)} trial records in {trials_dir}: all valid.")
    click.echo(cover.replace("", "-").to_string())


@trials_command.command("schema")
def schema_command() -> None:
    """Print the fields a trial record may hold, with their types and meaning."""
    from metabac.trial_schema import TRIAL, describe

    click.echo(describe(TRIAL))
