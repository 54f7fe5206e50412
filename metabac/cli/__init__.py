"""The ``metabac`` command line: a click group whose commands live one per module in this package.

Commands only parse options, call the public library and print or write; they compute nothing themselves.
Errors from the library (:class:`metabac.InputError`) and from the file system become one line on stderr and exit
code 1; ``--debug`` shows the full traceback instead.
"""

from __future__ import annotations

import click

from metabac import __version__
from metabac._checks import InputError


class _OneLineErrors(click.Group):
    """A click group that turns library and file errors into click's one-line ``Error: ...`` and exit code 1."""

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except (InputError, OSError) as error:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            message = str(error).replace("\n", " ")
            raise click.ClickException(message) from None


@click.group(cls=_OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="metabac")
@click.option("--debug", is_flag=True, help="Show the full traceback on errors instead of one line.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """metabac: meta-analysis of clinical trials, validated against R's metafor.

    \b
    Example:
      metabac pool data.csv --measure RR --method REML
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def _register_commands() -> None:
    """Attach the commands; each lives in its own module of this package."""
    from metabac.cli.pool import pool_command
    from metabac.cli.predictors import predictors_command
    from metabac.cli.report import report_command
    from metabac.cli.reproduce import reproduce_command
    from metabac.cli.trials import trials_command

    cli.add_command(pool_command)
    cli.add_command(report_command)
    cli.add_command(reproduce_command)
    cli.add_command(predictors_command)
    cli.add_command(trials_command)


_register_commands()

main = cli
