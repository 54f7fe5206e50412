"""``metabac predictors``: which trial characteristics predict baclofen's effect on one outcome."""

from __future__ import annotations

import json

import click

from metabac.defaults import DEFAULT_METHOD, DEFAULT_SHARED_CONTROL, DEFAULT_TEST, bundled_trials
from metabac.tau2 import METHODS, TESTS


@click.command("predictors")
@click.option("--outcome", default="abstinence", show_default=True, help="Outcome name in the trial records.")
@click.option("--measure", default="RR", show_default=True, help="Effect measure (OR, RR, RD, MD, SMD, ...).")
@click.option("--method", default=DEFAULT_METHOD, show_default=True, help=f"tau² estimator: {', '.join(METHODS)}.")
@click.option("--test", default=DEFAULT_TEST, show_default=True, type=click.Choice(TESTS),
              help="z, knha (Hartung-Knapp-Sidik-Jonkman) or adhoc (modified Hartung-Knapp); as the report.")
@click.option("--trials", "trials_dir", default=bundled_trials, show_default="the bundled trials",
              help="Folder of trial records.")
@click.option("--shared-control", default=DEFAULT_SHARED_CONTROL, show_default=True,
              type=click.Choice(["combine", "split", "repeat"]),
              help="A placebo shared by several doses: combine the doses (as the report does), split it among the "
                   "doses (each dose its own comparison, so dose can be tested), or repeat it (counted twice).")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def predictors_command(outcome: str, measure: str, method: str, test: str, trials_dir: str, shared_control: str,
                       as_json: bool) -> None:
    """Test every candidate predictor of the effect (those the review.toml of --trials names, else severity, dose,
    detoxification, population, baseline drinking) on one outcome, with p-values adjusted for the number of
    predictors tried.

    \b
    Example:
      metabac predictors --outcome abstinence --measure RR --method REML
    """
    import metabac as mb
    from metabac.review import read_review

    arms = mb.comparisons(mb.load_trials(trials_dir), outcome=outcome, shared_control=shared_control)
    result = mb.predictors(arms, measure=measure, method=method, test=test, outcome=outcome,
                           columns=read_review(trials_dir).predictors)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, allow_nan=False))
    else:
        click.echo(result.summary())
