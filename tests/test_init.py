"""``metabac init DIR``: a review folder for the user's own topic, whose review declares its outcomes, populations
and candidate predictors (issue 18, item 2)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import metabac as mb
from metabac.cli import cli
from metabac.cli.init import EXAMPLE_TRIALS, new_review
from metabac.report import ReportOptions, build_report


def run(*args: str):
    return CliRunner().invoke(cli, [*args])


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "review"
    new_review(path)
    return path


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_init_then_check_and_report_pool_the_declared_outcome(tmp_path: Path, no_figures):
    folder, out = tmp_path / "a" / "b" / "review", tmp_path / "out"
    made = run("init", str(folder))
    assert made.exit_code == 0, made.output
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["review.toml", "README.md", *(f"{t.id}.toml" for t in EXAMPLE_TRIALS)])
    assert all(f"wrote {folder / p.name}" in made.output for p in folder.iterdir())
    checked = run("trials", "check", "--trials", str(folder))
    assert checked.exit_code == 0, checked.output
    assert f"{len(EXAMPLE_TRIALS)} trial records" in checked.output and "tuberculosis" in checked.output
    reported = run("report", "--trials", str(folder), "--out", str(out), "--format", "json", "--quiet")
    assert reported.exit_code == 0, reported.output
    analysis, = json.loads((out / "report.json").read_text())["analyses"]
    assert (analysis["outcome"], analysis["kind"], analysis["measure"]) == ("tuberculosis", "binary", "RR")
    # the same counts pooled directly: dat.bcg rows 1-4, the vaccinated (t) and control (c) groups
    tpos, tneg, cpos, cneg = (np.array([getattr(t, key) for t in EXAMPLE_TRIALS]) for key in
                              ("tpos", "tneg", "cpos", "cneg"))
    es = mb.effect_sizes("RR", ai=tpos, n1i=tpos + tneg, ci=cpos, n2i=cpos + cneg)
    fit = mb.pool(es.yi, es.vi, method="REML", test="knha")
    for key in ("estimate", "ci_low", "ci_high", "tau2"):
        assert analysis["random"][key] == pytest.approx(float(getattr(fit, key)), rel=1e-12, abs=1e-15)
    # metafor: rma(measure="RR", ai=tpos, bi=tneg, ci=cpos, di=cneg, data=dat.bcg[1:4,], method="REML")
    assert analysis["random"]["estimate"] == pytest.approx(-1.422044, abs=1e-6)


def test_each_number_of_the_examples_is_the_data_sets_row(folder: Path):
    outcomes = mb.load_trials(folder).outcomes.set_index(["trial", "arm"])
    for trial in EXAMPLE_TRIALS:
        bcg, control = outcomes.loc[(trial.id, "bcg")], outcomes.loc[(trial.id, "control")]
        assert (bcg.events, bcg.n, control.events, control.n) == (
            trial.tpos, trial.tpos + trial.tneg, trial.cpos, trial.cpos + trial.cneg)
        assert bcg.quote.endswith(f"{trial.author} {trial.year} {trial.tpos} {trial.tneg} {trial.cpos} {trial.cneg} "
                                  f"{trial.ablat} {trial.alloc}") and bcg.second_hand


def test_a_folder_that_is_not_empty_is_refused_and_left_unchanged(tmp_path: Path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_bytes(b"my own notes")
    result = run("init", str(folder))
    assert result.exit_code == 1 and "exists and is not empty" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]
    assert (folder / "notes.txt").read_bytes() == b"my own notes"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]  # no staging folder left beside it
    (tmp_path / "file").write_text("x")
    assert "is not a folder" in run("init", str(tmp_path / "file")).output


def test_an_empty_folder_is_filled(tmp_path: Path):
    (tmp_path / "empty").mkdir()
    assert run("init", str(tmp_path / "empty")).exit_code == 0
    assert (tmp_path / "empty" / "review.toml").is_file()


def test_a_failure_midway_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    written = []
    real = Path.write_text

    def failing(self: Path, *args, **kwargs):
        if len(written) == 2:
            raise OSError("disk full")
        written.append(self)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", failing)
    with pytest.raises(OSError, match="disk full"):
        new_review(tmp_path / "new" / "review")
    assert len(written) == 2 and list(tmp_path.iterdir()) == []  # the parent made for it is gone too


def test_an_undeclared_outcome_is_an_error_naming_file_and_field(folder: Path):
    record = folder / f"{EXAMPLE_TRIALS[0].id}.toml"
    edit(record, "[outcomes.tuberculosis", "[outcomes.leprosy")
    with pytest.raises(mb.InputError) as error:
        mb.load_trials(folder)
    message = str(error.value)
    assert message.startswith(f"{record}: outcomes.leprosy: unknown name") and "\n" not in message
    result = run("trials", "check", "--trials", str(folder))
    assert result.exit_code == 1 and "outcomes.leprosy: unknown name" in result.output
    (folder / "review.toml").write_text((folder / "review.toml").read_text() + '\n[outcomes]\nleprosy = "binary"\n')
    assert mb.load_trials(folder).outcomes.query("trial == @EXAMPLE_TRIALS[0].id").outcome.eq("leprosy").all()


def test_the_declared_kind_decides_binary_or_continuous(folder: Path):
    edit(folder / "review.toml", 'kind = "binary"', 'kind = "continuous"')
    with pytest.raises(mb.InputError, match=r"arms\.bcg\.events: tuberculosis is a continuous outcome"):
        mb.load_trials(folder)


@pytest.mark.parametrize(("declaration", "message"), [
    ('[outcomes.abstinence]\nkind = "continuous"\n', "outcomes.abstinence.kind: abstinence is a built-in binary"),
    ('[outcomes.leprosy]\nkind = "count"\n', "outcomes.leprosy.kind: must be one of binary, continuous"),
    ('[outcomes.Leprosy]\nkind = "binary"\n', "outcomes.Leprosy: names are lower case"),
    ('[outcomes.leprosy]\nkind = "binary"\nunit = "cases"\n', "outcomes.leprosy: must be"),
])
def test_a_bad_outcome_declaration_is_a_one_line_error(folder: Path, declaration: str, message: str):
    path = folder / "review.toml"
    path.write_text(path.read_text() + declaration)
    with pytest.raises(mb.InputError, match=message) as error:
        mb.load_trials(folder)
    assert str(error.value).startswith(str(path)) and "\n" not in str(error.value)


def test_a_population_class_may_be_declared(folder: Path):
    record = folder / f"{EXAMPLE_TRIALS[0].id}.toml"
    edit(record, 'population = "general"', 'population = "children"')
    with pytest.raises(mb.InputError, match=r"population: 'children' is not one of general"):
        mb.load_trials(folder)
    edit(folder / "review.toml", "populations = []", 'populations = ["children"]')
    assert mb.load_trials(folder).trials.loc[EXAMPLE_TRIALS[0].id, "population"] == "children"


def test_the_reviews_predictors_decide_which_predictors_the_report_tests(folder: Path):
    def tested() -> list[str]:
        analysis, = build_report(ReportOptions(trials_dir=folder)).analyses
        return list(analysis.predictors.table["column"])

    assert tested() == ["population", "year"]  # subgroup predictors first, then meta-regressions
    edit(folder / "review.toml", 'predictors = ["year", "population"]', 'predictors = ["duration_weeks", "detox"]')
    assert tested() == ["detox", "duration_weeks"]
    edit(folder / "review.toml", 'predictors = ["duration_weeks", "detox"]\n', "")
    assert tested() == ["severity", "dose_group", "detox", "population", "g_per_day", "dose_mg"]  # the default set


def test_an_unknown_predictor_is_refused(folder: Path):
    edit(folder / "review.toml", '"population"]', '"latitude"]')
    with pytest.raises(mb.InputError, match="predictors: 'latitude' is not a candidate predictor"):
        mb.load_trials(folder)
    arms = mb.comparisons(mb.load_trials(Path(__file__).resolve().parents[1] / "trials"), "abstinence")
    with pytest.raises(mb.InputError, match="not a candidate predictor"):
        mb.predictors(arms, columns=["latitude"])
    assert list(mb.predictors(arms, columns=["year"]).table["column"]) == ["year"]
