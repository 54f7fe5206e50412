"""``metabac reproduce [NAME ...]``: recompute published pooled estimates and compare at the printed precision."""

from __future__ import annotations

import json

import click

from metabac.defaults import bundled_trials
from metabac.formatting import number, printed_decimals
from metabac.profiles import PROFILE_NAMES


def _number(value: float, published: str) -> str:
    """The reproduced value with two more decimals than were printed ("NA" where there is none)."""
    return number(value, printed_decimals(published) + 2)


@click.command("reproduce",
               epilog="\b\nExample:\n  metabac reproduce duan2023_abstinence normand1999_hine --trials trials")
@click.argument("names", nargs=-1)
@click.option("--trials", "trials_dir", default=bundled_trials, show_default="the bundled trials",
              type=click.Path(file_okay=False, path_type=str), help="Trials folder; the registry is its published/.")
@click.option("--profile", type=click.Choice(PROFILE_NAMES), default=None,
              help="Convention profile for every entry (default: each entry's own).")
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON records.")
def reproduce_command(names: tuple[str, ...], trials_dir: str, profile: str | None, as_json: bool) -> None:
    """Reproduce the published analyses in TRIALS/published (all, or the NAMEs given).

    Each published number is compared at the precision it was printed with. Verdicts: reproduced, reproduced
    (derived inputs), consistent only with inputs derived from the target (the records' own inputs differ; only
    inputs back-solved from the published number give it), differs (with the registry's reason) and inputs
    incomplete (with what is missing). The exit code is 1 only when an entry marked expect = "reproduced" differs.
    """
    from metabac._result import table
    from metabac.profiles import get_profile
    from metabac.reproduce import failures, reproduce

    result = reproduce(list(names) or None, trials_dir=trials_dir, profile=profile)
    if as_json:
        records = json.loads(result.to_json(orient="records"))
        click.echo(json.dumps(records, indent=2, allow_nan=False))
    else:
        for name in dict.fromkeys(result.profile):
            click.echo(get_profile(name).label())
        click.echo("")
        header = ["entry", "analysis", "quantity", "published", "reproduced", "verdict", "profile"]
        rows = [[r.entry, r.analysis, r.quantity, r.published, _number(r.reproduced, r.published), r.verdict,
                 r.profile] for r in result.itertuples()]
        click.echo(table(header, rows))
        fallback = result[result.inputs.str.startswith("inline fallback")][["entry", "inputs"]].drop_duplicates()
        notes = result[result.reason != ""][["entry", "verdict", "reason"]].drop_duplicates()
        if len(notes):
            click.echo("")
            for r in notes.itertuples():
                click.echo(f"{r.entry} ({r.verdict}): {r.reason}")
        for r in fallback.itertuples():
            click.echo(f"{r.entry}: inputs: {r.inputs}")
    broken = failures(result)
    if len(broken):
        raise SystemExit(1)
