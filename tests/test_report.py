"""``metabac report``: files exist, JSON equals the library, HTML escapes, atomic write, reproducible figures,
and the page opens in headless Chromium (screenshot)."""

from __future__ import annotations

import csv
import json
import math
import re
import shutil
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner, Result
from support.bad_input_cases import ORIGINAL_WRITE_TEXT, OUTPUT_CASES, blocker
from support.reports import HOSTILE, TRIALS, crafted_report, files_of, tree

import metabac as mb
from metabac import report_files
from metabac.cli import cli
from metabac.render import render_html, render_markdown
from metabac.report import Report, ReportOptions, analyse_outcome, sensitivity_of
from metabac.report_figures import drawings, figure_bytes, figures, render_figures
from metabac.report_files import write_report
from metabac.summary_of_findings import summary_of_findings


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder the crafted report names as its (absent) trials folder's parent."""
    return tmp_path_factory.mktemp("crafted")


@pytest.fixture(scope="module")
def report(home: Path) -> Report:
    """The crafted report, built once for the module (a frozen result: no test can change it)."""
    return crafted_report(home)


@pytest.fixture(scope="module")
def written(report: Report, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The crafted report written once for the module, in every format with every figure (rendered in this
    process). Tests only read it; a test that changes the folder works on a copy."""
    return write_report(report, tmp_path_factory.mktemp("written") / "reports", workers=1)


def test_every_file_is_written(written: Path):
    out = written
    names = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert {"report.html", "report.md", "report.json", "data/coverage.csv", "data/summary_of_findings.csv",
            "data/studies-abstinence.csv", "data/studies-cad-days.csv", "figures/forest-abstinence.png",
            "figures/forest-abstinence.svg", "figures/forest-cad-days.png", "figures/forest-cad-days.svg"} <= names
    html_text = (out / "report.html").read_text()
    assert "data:image/svg+xml;base64," in html_text and "<script" not in html_text and "http" not in html_text.split(
        "<ol class=\"notes\">")[0]  # self-contained: no external resource before the source links
    assert list(out.parent.iterdir()) == [out]  # no staging folder left behind


def test_json_numbers_equal_the_library(written: Path):
    data = json.loads((written / "report.json").read_text())
    binary = data["analyses"][0]
    arms = dict(ai=[30, 6, 10, 20], n1i=[42, 88, 40, 100], ci=[12, 9, 9, 18], n2i=[42, 92, 40, 100])
    es = mb.effect_sizes("RR", **arms)
    random = mb.pool(es.yi, es.vi, method="REML", test="knha")   # the report's default: Cochrane's HKSJ
    fixed = mb.mantel_haenszel("RR", **arms)
    groups = mb.subgroups(es.yi, es.vi, ["heavy", "moderate", "moderate", "heavy"], test="knha")
    for key in ("estimate", "se", "ci_low", "ci_high", "tau2", "q", "i2", "pi_low", "pi_high", "pvalue"):
        assert binary["random"][key] == pytest.approx(float(getattr(random, key)), rel=1e-12, abs=1e-15), key
    for key in ("estimate", "ci_low", "ci_high", "q"):
        assert binary["fixed"][key] == pytest.approx(float(getattr(fixed, key)), rel=1e-12), key
    assert binary["subgroups"]["q_between"] == pytest.approx(groups.q_between, rel=1e-12)
    assert [row["weight"] for row in binary["studies"]] == pytest.approx(list(random.weights), rel=1e-12)
    sof = summary_of_findings("RR", random.estimate, random.ci_low, random.ci_high, participants=544, k=4,
                              control_events=arms["ci"], control_n=arms["n2i"])
    expected = sof.to_dict()
    assert binary["summary_of_findings"]["measure"] == expected.pop("measure") == "RR"
    got = binary["summary_of_findings"]
    for key, value in expected.items():  # NaN (no control mean for a binary outcome) is null in JSON
        assert got[key] == (None if value is None else pytest.approx(value, rel=1e-12)), key
    continuous = data["analyses"][1]
    es = mb.effect_sizes("MD", m1i=[62.8, 50.0, 40.0], sd1i=[35.0, 25.0, 22.0], n1i=[42, 40, 88],
                         m2i=[30.8, 45.0, 41.0], sd2i=[35.6, 24.0, 20.0], n2i=[42, 40, 92])
    assert continuous["measure"] == "MD"
    assert continuous["random"]["estimate"] == pytest.approx(float(mb.pool(es.yi, es.vi).estimate), rel=1e-12)
    assert continuous["fixed"]["estimate"] == pytest.approx(float(mb.pool(es.yi, es.vi, method="EE").estimate),
                                                            rel=1e-12)


def test_json_sensitivity_and_small_study_numbers_equal_the_library(written: Path):
    sensitivity = json.loads((written / "report.json").read_text())["analyses"][0]["sensitivity"]
    es = mb.effect_sizes("RR", ai=[30, 6, 10, 20], n1i=[42, 88, 40, 100], ci=[12, 9, 9, 18], n2i=[42, 92, 40, 100])
    loo = mb.leave_one_out(es.yi, es.vi, test="knha")
    assert [row["estimate"] for row in sensitivity["leave_one_out"]] == pytest.approx(list(loo.estimate), rel=1e-12)
    assert [row["ci_low"] for row in sensitivity["leave_one_out"]] == pytest.approx(list(loo.ci_low), rel=1e-12)
    cook = mb.influence(es.yi, es.vi, test="knha")["cook_d"]
    assert [row["cook_d"] for row in sensitivity["influence"]] == pytest.approx(list(cook), rel=1e-12)
    assert sensitivity["low_power"] is True
    # Four trials: no small-study number at all, only the reason (issue 16)
    assert all(sensitivity[name] is None for name in ("egger", "begg", "peters", "trimfill", "failsafe"))
    assert {row["method"] for row in sensitivity["not_computed"]} == {
        "Egger's test", "Begg's test", "Peters' test", "trim-and-fill", "fail-safe N"}
    assert all("fewer than 10" in row["reason"] for row in sensitivity["not_computed"])


def test_small_study_numbers_from_ten_trials_equal_the_library(tmp_path: Path):
    rng = np.random.default_rng(3)
    n = rng.integers(30, 200, size=10)
    arms = pd.DataFrame({"study": [f"T{i}" for i in range(10)], "ai": rng.binomial(n, 0.4), "n1i": n,
                         "ci": rng.binomial(n, 0.3), "n2i": n})
    options = ReportOptions(trials_dir=tmp_path)
    s = sensitivity_of(analyse_outcome(arms, "abstinence", options), options)
    es = mb.effect_sizes("RR", **{c: arms[c].to_numpy() for c in ("ai", "n1i", "ci", "n2i")})
    assert s.not_computed == () and not s.low_power
    assert s.egger.statistic == pytest.approx(mb.egger(es.yi, es.vi).statistic, rel=1e-12)
    assert s.trimfill.k0 == mb.trimfill(es.yi, es.vi, test="knha").k0
    assert s.failsafe.n == mb.failsafe_n(es.yi, es.vi, type="Rosenberg").n


def test_sensitivity_sections_and_plots_are_in_the_report(written: Path):
    out = written
    names = {p.name for p in (out / "figures").iterdir()}
    assert {"funnel-abstinence.png", "cumulative-abstinence.svg", "baujat-cad-days.png"} <= names
    text = (out / "report.md").read_text()
    for heading in ("### Sensitivity analyses (abstinence)", "### Small-study effects (cad_days)",
                    "Egger's test", "not computed: 3 trials, fewer than 10", "## Reproduction of published analyses",
                    "Not run: no registry of published analyses."):
        assert heading in text


def test_hostile_label_and_quote_are_escaped(tmp_path: Path):
    report = crafted_report(tmp_path, label=HOSTILE)
    page = render_html(report, {})
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    markdown = render_markdown(report)
    assert "<script" not in markdown.lower() and "&lt;script&gt;" in markdown


def test_every_study_number_links_to_its_source_quote(report: Report):
    page = render_html(report, {})
    assert 'title="Addolorato 2007, abstinence — “30 (71%) of 42 vs 12 (29%) of 42” — Lancet 2007"' in page
    assert 'href="#fn-addolorato-2007-abstinence"' in page and 'id="fn-addolorato-2007-abstinence"' in page
    assert "† derived: events from percent" in page and "‡ second-hand" in page
    markdown = render_markdown(report)
    assert "[^addolorato-2007-abstinence]: Addolorato 2007, abstinence — “30 (71%) of 42" in markdown


def test_header_states_the_convention(report: Report):
    page = render_markdown(report)
    for words in ("measure MD (mean difference), RR (risk ratio)", "τ² estimator REML", "prediction interval",
                  "I² = 100·τ²/(τ² + typical within-study variance)", "continuity correction 0.5"):
        assert words in page.split("## Methods")[1]   # the convention sits in Methods, the answer comes first
    assert "Mantel-Haenszel" in page and "Heterogeneity: Tau² = " in page and "Test for subgroup differences" in page


def test_interrupted_write_leaves_nothing_behind(report: Report, tmp_path: Path, monkeypatch, no_figures):
    def fail(*args, **kwargs):
        raise RuntimeError("disk full, say")

    monkeypatch.setattr(report_files, "render_html", fail)  # the CSVs are written by then
    with pytest.raises(RuntimeError):
        write_report(report, tmp_path / "reports")
    assert list(tmp_path.iterdir()) == []
    old = tmp_path / "old" / "reports"
    old.mkdir(parents=True)
    (old / "keep.txt").write_text("previous report")
    with pytest.raises(RuntimeError):
        write_report(report, old)
    assert [p.name for p in old.parent.iterdir()] == ["reports"] and (old / "keep.txt").exists()


def test_rewriting_keeps_other_files_of_the_folder(report: Report, written: Path, tmp_path: Path, no_figures):
    out = tmp_path / "reports"
    shutil.copytree(written, out)   # a report metabac wrote, with its manifest
    (out / "README.md").write_text("how to regenerate")
    write_report(report, out)
    assert (out / "README.md").read_text() == "how to regenerate"
    assert sorted(p.name for p in out.iterdir()) == [".metabac-lock", ".metabac-manifest.json", "README.md", "data",
                                                     "figures", "report.html", "report.json", "report.md"]
    assert [p.name for p in tmp_path.iterdir()] == ["reports"]


@pytest.mark.parametrize(("kind", "make", "expected"), OUTPUT_CASES, ids=[c[0] for c in OUTPUT_CASES])
def test_bad_output_folder_is_one_line_and_leaves_nothing(tmp_path: Path, no_figures, monkeypatch, kind, make,
                                                          expected):
    report = crafted_report(tmp_path)   # its trials folder, tmp_path/no-trials, is where some cases put --out
    out = make(tmp_path, monkeypatch)
    before = tree(tmp_path)
    with pytest.raises(mb.InputError) as error:
        write_report(report, out)
    monkeypatch.setattr(Path, "write_text", ORIGINAL_WRITE_TEXT)
    assert str(error.value).startswith(f"{out.resolve()}: --out: ") and expected in str(error.value)
    assert "\n" not in str(error.value)
    assert tree(tmp_path) == before   # no partial file, no staging folder, the user's files untouched


def test_dotdot_in_out_writes_only_the_resolved_folder(report: Report, tmp_path: Path, no_figures):
    out = write_report(report, tmp_path / "a" / ".." / "b")
    assert out == tmp_path / "b"
    assert [p.name for p in tmp_path.iterdir()] == ["b"]   # no folder a, no staging folder left


def test_symlinks_in_the_output_folder_are_refused_never_followed(report: Report, tmp_path: Path, no_figures):
    out = write_report(report, tmp_path / "reports")
    outside = tmp_path / "outside"
    (outside / "figures").mkdir(parents=True)
    (outside / "figures" / "precious.png").write_bytes(b"not yours")
    shutil.rmtree(out / "figures")
    (out / "figures").symlink_to(outside / "figures", target_is_directory=True)
    before = tree(tmp_path)
    with pytest.raises(mb.InputError, match="figures is a symlink, which metabac never writes"):
        write_report(report, out)
    assert tree(tmp_path) == before


def test_a_symlinked_entry_in_a_foreign_folder_is_refused(report: Report, tmp_path: Path, no_figures):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "figures").symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(mb.InputError, match="figures exists and no metabac report was written here before"):
        write_report(report, tmp_path / "mine")


def test_a_report_without_manifest_is_not_taken_for_metabac_s(report: Report, tmp_path: Path, no_figures):
    """The marker of older versions (and "metabac" inside report.html) proves nothing about data/: refused."""
    out = write_report(report, tmp_path / "reports")
    (out / ".metabac-manifest.json").unlink()
    (out / ".metabac-report").write_text("Written by `metabac report`.")
    before = tree(tmp_path)
    with pytest.raises(mb.InputError, match="no metabac report was written here before"):
        write_report(report, out)
    assert tree(tmp_path) == before


def test_cli_bad_out_fails_before_any_analysis(tmp_path: Path, monkeypatch):
    import metabac.report

    def never(*args, **kwargs):
        raise AssertionError("the report was built although --out is unusable")

    monkeypatch.setattr(metabac.report, "build_report", never)
    a_file = blocker(tmp_path)
    result = CliRunner().invoke(cli, ["report", "--trials", str(TRIALS), "--out", str(a_file), "--quiet"])
    assert result.exit_code == 1 and result.output == f"Error: {a_file}: --out: is a file, not a folder\n"
    result = CliRunner().invoke(cli, ["report", "--trials", str(TRIALS), "--out", str(TRIALS / "reports"), "--quiet"])
    assert result.exit_code == 1 and "is inside the input" in result.output
    assert not (TRIALS / "reports").exists()


def test_figures_are_byte_identical_across_runs_and_across_worker_processes(report: Report, written: Path,
                                                                           home: Path, tmp_path: Path):
    """A second write, its figures rendered by two worker processes, equals the module's, rendered in this process,
    byte for byte (figures and the page that embeds them); the workers hand the figures over in the report's order."""
    recipes = drawings(report)
    handed_over: list[str] = []
    second = write_report(crafted_report(home), tmp_path / "b", workers=2,
                          progress=lambda done, total, step: handed_over.append(step))
    assert handed_over[:len(recipes)] == list(recipes)
    assert sorted(p.name for p in (second / "figures").iterdir()) == sorted(
        f"{stem}.{kind}" for stem in recipes for kind in ("png", "svg"))
    for path in sorted((written / "figures").iterdir()):
        assert path.read_bytes() == (second / "figures" / path.name).read_bytes(), path.name
    for stem in recipes:
        assert (second / "figures" / f"{stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert b"<svg" in (second / "figures" / f"{stem}.svg").read_bytes()[:500]
    assert (written / "report.html").read_bytes() == (second / "report.html").read_bytes()
    fig = figures(report)["forest-abstinence"]
    assert figure_bytes(fig, "svg") == figure_bytes(fig, "svg")


@pytest.mark.parametrize("workers", [0, -2, 1.5])
def test_a_bad_number_of_workers_is_one_line(report: Report, tmp_path: Path, workers):
    with pytest.raises(mb.InputError, match=r"^workers: must be a whole number of processes, at least 1, got "):
        write_report(report, tmp_path / "reports", workers=workers)
    assert not (tmp_path / "reports").exists()


def test_a_failed_write_stops_the_rendering_workers(report: Report):
    """A caller that stops early (a write failed) leaves no worker behind and no figure rendering on."""
    import multiprocessing

    rendering = render_figures(dict(list(drawings(report).items())[:3]), workers=2)
    next(rendering)
    rendering.close()
    assert multiprocessing.active_children() == []


def test_chromium_opens_the_page_without_errors_and_takes_a_screenshot(written: Path, tmp_path: Path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium); the browser test needs it")
    out = written
    shot = tmp_path / "screenshot.png"
    run = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0", f"--screenshot={shot}",
         "--window-size=1280,1600", (out / "report.html").as_uri()],
        capture_output=True, text=True, timeout=120, check=False)
    assert shot.exists() and shot.stat().st_size > 50_000, run.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    console = [line for line in run.stderr.splitlines() if "Uncaught" in line or "CONSOLE" in line]
    assert console == []


def test_cli_unknown_trials_folder_is_one_line_error(tmp_path: Path):
    result = CliRunner().invoke(cli, ["report", "--trials", str(tmp_path / "nowhere"), "--out",
                                      str(tmp_path / "r"), "--quiet"])
    assert result.exit_code == 1 and result.output.startswith("Error: ") and result.output.count("\n") == 1
    assert not (tmp_path / "r").exists()


@dataclass(frozen=True)
class BundledReview:
    """One run of ``metabac report --quiet`` with no other option, in an empty folder outside the repository."""

    result: Result
    folder: Path                          # the working folder it ran in
    trials_before: dict[Path, tuple]      # the bundled records (bytes, mtime) before and after the run
    trials_after: dict[Path, tuple]

    @property
    def out(self) -> Path:
        return self.folder / "reports"


@pytest.fixture(scope="module")
def bundled_review(tmp_path_factory: pytest.TempPathFactory) -> BundledReview:
    """The review of the bundled trials, written once for the module by the ``report`` command run in this process
    (:class:`click.testing.CliRunner`; the installed entry point itself is tested in tests/test_install.py)."""
    folder = tmp_path_factory.mktemp("anywhere")
    before = files_of(TRIALS)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        result = CliRunner().invoke(cli, ["report", "--quiet"])
    return BundledReview(result, folder, before, files_of(TRIALS))


def test_the_report_of_the_bundled_review_is_written_from_any_directory(bundled_review: BundledReview) -> None:
    """Issue 18: `metabac report` with no options, run outside the repository, writes the bundled review into
    ./reports there (and nothing else). The command runs in this process; the entry point's own start from any
    directory is tested in tests/test_install.py."""
    assert bundled_review.result.exit_code == 0, bundled_review.result.output
    assert [p.name for p in bundled_review.folder.iterdir()] == ["reports"]
    assert "abstinence" in (bundled_review.out / "report.json").read_text()


def test_cli_report_on_the_bundled_trials(bundled_review: BundledReview):
    """``metabac report --quiet`` (the bundled trials, ./reports) equals the library and reads as issue 16 asks."""
    out, result = bundled_review.out, bundled_review.result
    assert bundled_review.trials_after == bundled_review.trials_before   # the records are never touched
    assert result.exit_code == 0, result.output
    assert result.output == ""  # --quiet: no progress bar, no summary line
    data = json.loads((out / "report.json").read_text())
    assert data["analyses"], "no outcome pooled on the bundled trials"
    trials = mb.load_trials(TRIALS)
    for analysis in data["analyses"]:
        arms = mb.comparisons(trials, outcome=analysis["outcome"])
        columns = ("ai", "n1i", "ci", "n2i") if analysis["kind"] == "binary" else \
            ("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i")
        es = mb.effect_sizes(analysis["measure"], **{c: arms[c].to_numpy(dtype=float) for c in columns})
        fit = mb.pool(es.yi, es.vi, method="REML")
        assert analysis["random"]["estimate"] == pytest.approx(float(fit.estimate), rel=1e-10)
        assert analysis["random"]["k"] == len(arms) >= 2
    assert (out / "report.html").exists() and (out / "report.md").exists()
    rows = {(row["entry"], row["quantity"]): row for row in data["reproduction"]}
    assert rows[("duan2023_abstinence", "estimate")]["verdict"] == "consistent only with inputs derived from the target"
    assert "| duan2023_abstinence | random effects (DL) |" in (out / "report.md").read_text()
    _the_review_a_methodologist_would_sign(data, (out / "report.md").read_text(), (out / "report.html").read_text())


def _the_review_a_methodologist_would_sign(data: dict, markdown: str, page: str) -> None:
    """Issue 16's rules, on the bundled report: one timepoint class, no complement outcome, HKSJ with a t
    prediction interval and tau2/I2 intervals, subgroup tests between classified levels only, the answer first."""
    analyses = {a["outcome"]: a for a in data["analyses"]}
    assert set(analyses) == {"abstinence", "dropout"}          # relapse = n - abstinent is not a second finding
    assert any(o == "relapse" and "complement of abstinence" in r for o, r in
               ((s["outcome"], s["reason"]) for s in data["skipped"]))
    dropout = analyses["dropout"]
    assert dropout["timepoint"]["class"] == "end of treatment" and dropout["timepoint"]["weeks_max"] == 16
    assert any(e["trial"] == "ponizovsky2015" and "follow-up" in e["reason"] for e in dropout["excluded"])
    for a in analyses.values():
        assert a["random"]["test"] == "knha" and a["random"]["df"] == a["random"]["k"] - 1
        ci = a["appraisal"]["heterogeneity_ci"]
        assert ci["tau2"]["ci_low"] <= a["random"]["tau2"] <= ci["tau2"]["ci_high"]
        assert ci["i2"]["ci_low"] <= a["random"]["i2"] <= ci["i2"]["ci_high"]
        assert a["appraisal"]["wald"]["test"] == "z"
        assert a["appraisal"]["certainty"]["certainty"] in ("high", "moderate", "low", "very low")
        assert {row["group"] for row in a["subgroups"]["table"]} <= {"heavy", "moderate"}   # never "not classified"
    # Issue 20: with at most 4 trials, the Bayesian result (half-normal(0.5) prior on tau) beside the frequentist one
    abstinence = analyses["abstinence"]
    studies = abstinence["studies"]
    bayes = mb.bayes([s["yi"] for s in studies], [s["vi"] for s in studies], tau_prior="halfnormal", tau_scale=0.5)
    shown = abstinence["appraisal"]["bayes"]
    assert "half-normal(0.5)" in shown["prior"]
    assert shown["mu"]["median"] == pytest.approx(float(bayes.mu.median), rel=1e-9)
    assert shown["p_above_null"] == pytest.approx(float(bayes.prob("mu", lower=0.0)), rel=1e-9)
    assert [g["group"] for g in abstinence["appraisal"]["bayes_subgroups"]] == ["heavy"]
    assert "posterior probability that baclofen increases abstinence" in markdown
    assert markdown.index("## Answer") < markdown.index("## Contents") < markdown.index("## Summary of findings")
    assert "The evidence is very uncertain about the effect of baclofen on abstinence." in markdown
    assert "Heavy vs moderate drinkers: not estimable" in markdown and "## Who responds?" in markdown
    assert "(a) Within-trial evidence" in markdown and "second-hand: Pierce M" in markdown
    assert "Test for subgroup differences: not estimable (one classified subgroup, heavy; 2 trial(s) not classified)" \
        in markdown
    assert "| Fixed effect (Mantel-Haenszel) | 2.18 [1.52, 3.11] |  | &lt; 0.0001 |" in markdown   # not 0.0000
    first_screen = page[:page.index('id="summary-of-findings"')]
    assert "Question:" in first_screen and '<h2 id="answer">Answer</h2>' in first_screen
    assert '<nav class="contents">' in first_screen


def test_cli_unwritable_output_is_one_line_error(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = CliRunner().invoke(cli, ["report", "--trials", str(TRIALS), "--out", str(blocker / "r"), "--quiet",
                                      "--format", "json"])
    assert result.exit_code == 1 and result.output.startswith("Error: ") and result.output.count("\n") == 1


def test_natural_scale_is_shown_for_ratios(report: Report):
    page = render_markdown(report)
    fit = report.analyses[0].random
    assert f"{math.exp(fit.estimate):.2f} [{math.exp(fit.ci_low):.2f}, {math.exp(fit.ci_high):.2f}]" in page
    assert np.isfinite(report.analyses[0].sof.assumed_control_risk)


def test_progress_bar_is_silent_with_quiet(capsys):
    from metabac.cli.report import _Bar

    for quiet in (True, False):
        bar = _Bar("Analysing", quiet)
        for step in range(1, 4):
            bar(step, 3, f"outcome {step}")
        bar.close()
        err = capsys.readouterr().err
        assert (err == "") if quiet else ("Analysing" in err)


def test_measures_are_case_insensitive_in_the_report():
    """`report --measure or` silently pooled RR (the lower-case name was not recognised)."""
    from metabac.report import build_report

    report = build_report(ReportOptions(outcomes=("abstinence",), measures=("or",), trials_dir=TRIALS))
    assert [a.measure for a in report.analyses] == ["OR"] and report.options.measures == ("OR",)


def test_a_measure_that_does_not_fit_an_outcome_is_an_error_naming_it(tmp_path: Path):
    """`report --measure MD` on binary outcomes pooled RR while the footer said MD."""
    result = CliRunner().invoke(cli, ["report", "--trials", str(TRIALS), "--outcome", "abstinence", "--measure", "MD",
                                      "--out", str(tmp_path / "out"), "--quiet"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: abstinence: --measure MD does not fit its binary data")
    assert not (tmp_path / "out").exists()
    result = CliRunner().invoke(cli, ["report", "--trials", str(TRIALS), "--measure", "OR", "--measure", "rr",
                                      "--out", str(tmp_path / "out"), "--quiet"])
    assert result.exit_code == 1 and "OR and RR are both binary measures" in result.output


def test_an_outcome_that_cannot_be_pooled_says_so(tmp_path: Path):
    """`--outcome adverse_events` wrote a report whose summary table was only headers, exit 0."""
    result = CliRunner().invoke(cli, ["report", "--trials", str(TRIALS), "--outcome", "adverse_events",
                                      "--out", str(tmp_path / "out"), "--quiet"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: no outcome could be pooled: adverse_events: 0 controlled trial")
    assert "ponizovsky2015: measured at follow-up" in result.output
    assert not (tmp_path / "out").exists()


def test_an_outcome_with_only_events_in_every_arm_is_a_clear_error_not_a_crash(tmp_path: Path):
    """Adverse events that every participant had: the Mantel-Haenszel RR has variance 0 (it divided by zero)."""
    arms = pd.DataFrame({"study": ["A 2001", "B 2002"], "ai": [10, 20], "n1i": [10, 20], "ci": [8, 15],
                         "n2i": [8, 15]})
    with pytest.raises(mb.InputError, match="^RR: Mantel-Haenszel risk ratio is not estimable"):
        analyse_outcome(arms, "adverse_events", ReportOptions(trials_dir=tmp_path))


def _notes_section(markdown: str) -> list[str]:
    return [line for line in markdown.splitlines() if line.startswith("[^")]


def test_two_trials_with_one_label_keep_their_own_footnotes(tmp_path: Path):
    """Both studies labelled "Addolorato 2007" (no trial ids): two footnotes, each with its own quote."""
    report = crafted_report(tmp_path, label="Addolorato 2007")
    notes = [n for n in _notes_section(render_markdown(report)) if ", abstinence — " in n]
    assert len(notes) == 4
    assert any("30 (71%) of 42" in n for n in notes) and any("quote &lt;script&gt;" in n for n in notes)
    page = render_html(report, {})
    assert "30 (71%) of 42" in page.split('<ol class="notes">')[1] and page.count('<li id="fn-') == 7


def test_footnote_ids_come_from_the_trial_id(tmp_path: Path):
    """Labels that differ only in non-ASCII letters slug alike ("m-ller-2015"); the trial ids tell them apart."""
    report = crafted_report(tmp_path)
    binary = report.analyses[0]
    studies = binary.studies.assign(study=["Müller 2015", "Möller 2015", "Garbutt 2010", "Beraha 2016"],
                                    trial=["muller2015", "moller2015", "garbutt2010", "beraha2016"])
    report = replace(report, analyses=(replace(binary, studies=studies), *report.analyses[1:]))
    notes = _notes_section(render_markdown(report))
    assert any(n.startswith("[^muller2015-abstinence]: Müller 2015, abstinence — “30 (71%) of 42") for n in notes)
    assert any(n.startswith("[^moller2015-abstinence]: Möller 2015, abstinence — “quote &lt;") for n in notes)
    page = render_html(report, {})
    assert 'id="fn-muller2015-abstinence"' in page and 'id="fn-moller2015-abstinence"' in page


MARKDOWN_ATTACK = "![x](https://evil.example/x.png) [click](javascript:alert(1)) `code`\r<b>"


def _unescaped_links(markdown: str) -> bool:
    """Whether the Markdown holds a link or image: "](" not produced by an escaped "\\]", other than the table of
    contents' own links to the report's sections (``](#slug)``)."""
    return re.search(r"\]\((?!#[a-z0-9-]+\))", markdown.replace("\\](", "")) is not None


def test_markdown_escapes_links_images_and_line_breaks_from_trial_text_and_the_run_line(tmp_path: Path):
    report = crafted_report(tmp_path, label=MARKDOWN_ATTACK)
    command = "metabac report --out '/tmp/r](javascript:alert(2))\r\n# heading'"
    report = replace(report, stamp=replace(report.stamp, command=command))
    markdown = render_markdown(report)
    assert not _unescaped_links(markdown) and "\r" not in markdown and "<b>" not in markdown
    run = markdown.rstrip("\n").splitlines()[-1]
    assert run.startswith("_Run: ") and "/tmp/r\\](javascript:alert(2))" in run   # one line, the path literal
    assert "[click\\](javascript:alert(1))" in markdown   # shown as typed
    page = render_html(report, {})
    assert 'href="javascript' not in page and "<b>" not in page and "&lt;b&gt;" in page


def test_csv_files_neutralise_formulas_in_text_but_keep_negative_numbers(tmp_path: Path, no_figures):
    label = '=HYPERLINK("http://evil.example","open")'
    report = crafted_report(tmp_path, label=label)
    out = write_report(report, tmp_path / "reports", formats=["json"])
    with open(out / "data" / "studies-abstinence.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    attacked = next(row for row in rows if "HYPERLINK" in row["study"])
    assert attacked["study"] == "'" + label
    assert float(attacked["yi"]) < 0 and attacked["yi"].startswith("-")   # log RR 0.70 stays a number
    with open(out / "data" / "coverage.csv", newline="", encoding="utf-8") as handle:
        assert ["'" + label] == [row["trial"] for row in csv.DictReader(handle) if "HYPERLINK" in row["trial"]]


@pytest.mark.parametrize(("value", "written"), [
    ("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"), ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"), ("\rx", "'\rx"),
    ("Smith 2001", "Smith 2001"), (-1.5, -1.5), (-2, -2), (None, None),
])
def test_csv_cell_prefixes_only_text_that_a_spreadsheet_would_run(value, written):
    assert mb._checks.csv_cell(value) == written
