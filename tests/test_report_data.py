"""`metabac report DATA`: a user's own spreadsheet through the same report engine as the trial records (issue 18),
checked against metafor on the BCG vaccine trials (tests/reference/make_bcg_report_reference.R)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from support.bcg import BCG_CSV, CNEG, CPOS, TNEG, TPOS, bcg_xlsx

import metabac as mb
from metabac import report_files
from metabac.cli import cli
from metabac.report import ReportOptions, build_report

DATA = BCG_CSV
REFERENCE = json.loads((Path(__file__).parent / "reference" / "metafor_bcg_report.json").read_text())["cases"]


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> Path:
    """The report of issue 18's command, written once for the module."""
    out = tmp_path_factory.mktemp("report") / "out"
    result = CliRunner().invoke(cli, ["report", str(DATA), "--measure", "RR", "--method", "REML", "--by", "alloc",
                                      "--mods", "ablat", "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    return out


def test_pooled_estimate_subgroup_test_and_slope_equal_metafor(written: Path):
    data = json.loads((written / "report.json").read_text())
    (a,) = data["analyses"]
    ref = REFERENCE["knha"]   # the report's default test: Hartung-Knapp-Sidik-Jonkman
    assert a["outcome"] == "bcg" and a["measure"] == "RR" and a["random"]["k"] == 13
    for key in ("estimate", "ci_low", "ci_high", "tau2"):
        assert a["random"][key] == pytest.approx(ref[key], rel=1e-6), key
    assert a["subgroups"]["qm"] == pytest.approx(ref["alloc_qm"], rel=1e-6)
    assert a["subgroups"]["qm_pvalue"] == pytest.approx(ref["alloc_qm_p"], rel=1e-6)
    (m,) = a["moderators"]
    assert m["column"] == "ablat"
    assert m["fit"]["coef"][1] == pytest.approx(ref["ablat_slope"], rel=1e-6)
    assert m["fit"]["se"][1] == pytest.approx(ref["ablat_se"], rel=1e-6)
    assert m["fit"]["qm"] == pytest.approx(ref["ablat_qm"], rel=1e-6)
    assert 0 < m["permutation"]["qm_pvalue"] < 0.05


def test_the_wald_numbers_equal_metafor_s_default_test():
    report = build_report(ReportOptions(data=DATA, measures=("RR",), by="alloc", mods=("ablat",), test="z"))
    a, ref = report.analyses[0], REFERENCE["z"]
    assert float(a.random.ci_low) == pytest.approx(ref["ci_low"], rel=1e-6)
    assert a.groups.qm == pytest.approx(ref["alloc_qm"], rel=1e-6)
    assert float(a.moderators[0].fit.pvalue[1]) == pytest.approx(ref["ablat_p"], rel=1e-6)


def test_the_report_has_the_figures_and_no_section_that_needs_trial_records(written: Path):
    figures = {p.name for p in (written / "figures").iterdir()}
    assert {"forest-bcg.svg", "funnel-bcg.svg", "bubble-bcg-ablat.svg", "cumulative-bcg.svg"} <= figures
    page = (written / "report.html").read_text()
    assert page.count("data:image/svg+xml;base64,") >= 5
    markdown = (written / "report.md").read_text()
    for absent in ("## Data coverage", "Risk of bias", "Certainty of the evidence", "## Who responds?",
                   "Reproduction of published"):
        assert absent not in markdown
    assert "certainty not rated (no trial records)" in markdown
    assert "Test for subgroup differences: Chi²" in markdown and "### Meta-regression on ablat (bcg)" in markdown
    assert not (written / "data" / "coverage.csv").exists() and (written / "data" / "studies-bcg.csv").exists()


def test_effect_sizes_as_given_and_mantel_haenszel_as_the_main_model(tmp_path: Path):
    es = mb.effect_sizes("RR", ai=TPOS[:4], bi=TNEG[:4], ci=CPOS[:4], di=CNEG[:4])
    csv = tmp_path / "effects.csv"
    csv.write_text("study,yi,vi\n" + "".join(f"S{i},{y!r},{v!r}\n" for i, (y, v) in enumerate(zip(es.yi, es.vi))))
    report = build_report(ReportOptions(data=csv, measures=("RR",), test="z"))
    fit = mb.pool(es.yi, es.vi, method="REML")
    assert float(report.analyses[0].random.estimate) == pytest.approx(float(fit.estimate), rel=1e-12)
    mh = build_report(ReportOptions(data=DATA, measures=("RR",), method="MH"))
    expected = mb.mantel_haenszel("RR", ai=TPOS, bi=TNEG, ci=CPOS, di=CNEG)
    assert mh.analyses[0].sof.relative == pytest.approx(float(pytest.importorskip("numpy").exp(expected.estimate)),
                                                        rel=1e-12)
    with pytest.raises(mb.InputError, match="--method MH needs binary arm data"):
        build_report(ReportOptions(data=csv, measures=("RR",), method="MH"))


@pytest.mark.parametrize(("args", "message"), [
    (["--by", "allocation"], "no column 'allocation'"),
    (["--mods", "latitude"], "no column 'latitude'"),
    (["--measure", "MD"], "MD"),
])
def test_an_option_that_does_not_fit_the_spreadsheet_is_a_one_line_error(tmp_path: Path, args, message):
    result = CliRunner().invoke(cli, ["report", str(DATA), *args, "--out", str(tmp_path / "out"), "--quiet"])
    assert result.exit_code == 1 and message in result.output and result.output.count("\n") == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("table", "args", "message"), [
    ("study,yi,vi,grp\nA,0.1,0.02,\nB,0.3,0.03,\n", ["--by", "grp"], "--by grp: every cell is empty"),
    ("study,yi,vi\nA,0.1,0.02\n", [], "one: 1 study row(s) in the table, fewer than 2"),
    ("study,yi,vi,x\nA,0.1,0.02,a\nB,0.3,0.03,b\n", ["--mods", "x"], "row 2: x: not a number: 'a'"),
])
def test_a_table_that_cannot_be_reported_says_why_in_one_line(tmp_path: Path, table, args, message):
    (tmp_path / "one.csv").write_text(table)
    result = CliRunner().invoke(cli, ["report", str(tmp_path / "one.csv"), *args, "--out", str(tmp_path / "out"),
                                      "--quiet"])
    assert result.exit_code == 1 and message in result.output and result.output.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_the_spreadsheet_is_an_input_the_report_never_writes_near(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(report_files, "drawings", lambda report: {})
    shutil.copy(DATA, tmp_path / "bcg.csv")
    result = CliRunner().invoke(cli, ["report", str(tmp_path / "bcg.csv"), "--measure", "RR", "--out",
                                      str(tmp_path), "--quiet"])   # the folder holding the input
    assert result.exit_code == 1 and "contains the input" in result.output


def test_the_same_report_from_an_excel_copy(tmp_path: Path, monkeypatch):
    """Issue 18: `metabac report` reads an .xlsx as it reads the CSV (first sheet, saved values)."""
    bcg_xlsx(tmp_path / "bcg.xlsx")
    monkeypatch.setattr(report_files, "drawings", lambda report: {})
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["report", str(tmp_path / "bcg.xlsx"), "--measure", "RR", "--by", "alloc",
                                      "--mods", "ablat", "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    (a,) = json.loads((out / "report.json").read_text())["analyses"]
    assert a["random"]["estimate"] == pytest.approx(REFERENCE["knha"]["estimate"], rel=1e-6)
    assert a["moderators"][0]["fit"]["coef"][1] == pytest.approx(REFERENCE["knha"]["ablat_slope"], rel=1e-6)


def test_every_interval_is_labelled_with_the_level_it_has(tmp_path: Path, monkeypatch):
    """A 90% report must never print "95%" beside its intervals (a silently wrong label)."""
    monkeypatch.setattr(report_files, "drawings", lambda report: {})
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["report", str(DATA), "--measure", "RR", "--by", "alloc", "--mods", "ablat",
                                      "--level", "90", "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    markdown = (out / "report.md").read_text()
    assert "95%" not in markdown.replace("95% of its mass", "")
    assert "90% CI" in markdown and "90% prediction interval" in markdown and "RR [90% CI]" in markdown
    (a,) = json.loads((out / "report.json").read_text())["analyses"]
    fit = mb.pool(*(
        [row[key] for row in a["studies"]] for key in ("yi", "vi")), method="REML", test="knha", level=90)
    assert a["random"]["ci_low"] == pytest.approx(float(fit.ci_low), rel=1e-12)
