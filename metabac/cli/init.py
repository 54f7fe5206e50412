"""``metabac init DIR``: a new review folder for the user's own topic (:mod:`metabac.new_review`)."""

from __future__ import annotations

from pathlib import Path

import click

from metabac._checks import printable


@click.command("init")
@click.argument("folder", type=click.Path(path_type=Path))
def init_command(folder: Path) -> None:
    """Write a new review folder FOLDER: review.toml (the question, the declared outcomes and predictors), a
    README and example trial records (real data: BCG vaccine trials from R's metadat dat.bcg) that `trials check`
    and `report` accept. FOLDER must not exist or be empty; nothing is ever overwritten.

    \b
    Example:
      metabac init my-review && metabac trials check --trials my-review
    """
    from metabac.new_review import new_review

    for path in new_review(folder):
        click.echo(printable(f"wrote {path}"))
    click.echo(printable(f"Next: edit {folder / 'review.toml'}, record your trials, then "
                         f"metabac trials check --trials {folder}"))
