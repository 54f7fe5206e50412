"""`metabac pool FILE.csv`: summary, JSON, and one-line errors naming file, row and column."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import metabac as mb
from metabac.cli import cli

ROWS = "study,ai,n1i,ci,n2i\nAddolorato 2007,30,42,12,42\nHauser 2017,6,88,9,92\n"


def run(tmp_path: Path, text: str, *args: str, encoding: str = "utf-8"):
    path = tmp_path / "data.csv"
    path.write_text(text, encoding=encoding)
    return CliRunner().invoke(cli, ["pool", str(path), *args]), path


def test_summary_matches_the_library(tmp_path: Path) -> None:
    result, _ = run(tmp_path, ROWS, "--measure", "RR", "--method", "DL")
    assert result.exit_code == 0, result.output
    assert "Random-Effects Model (k = 2; tau^2 estimator: DL)" in result.output
    assert "RR 1.42 [95% CI 0.41, 4.92]" in result.output  # Duan 2023's published pooled RR


def test_json_equals_the_library(tmp_path: Path) -> None:
    result, _ = run(tmp_path, ROWS, "--measure", "RR", "--method", "REML", "--test", "knha", "--json")
    data = json.loads(result.output)
    es = mb.effect_sizes("RR", ai=[30, 6], n1i=[42, 88], ci=[12, 9], n2i=[42, 92])
    fit = mb.pool(es.yi, es.vi, method="REML", test="knha")
    assert data["estimate"] == pytest.approx(fit.estimate, rel=1e-15)
    assert data["labels"] == ["Addolorato 2007", "Hauser 2017"]


def test_yi_vi_columns_with_bom_and_semicolons(tmp_path: Path) -> None:
    result, _ = run(tmp_path, "yi;vi\n0.1;0.02\n0.3;0.04\n", "--method", "EE", encoding="utf-8-sig")
    assert result.exit_code == 0, result.output
    assert "Equal-Effects Model (k = 2)" in result.output


@pytest.mark.parametrize(
    ("text", "args", "message"),
    [
        ("study,ai,n1i,ci,n2i\nA,30,42,x,42\n", ["--measure", "RR"], "row 2: ci: not a number: 'x'"),
        ("study,ai,n1i,ci,n2i\nA,50,42,12,42\n", ["--measure", "RR"], 'study 1 ("A"): ai: 50 events exceed'),
        ("yi\n0.1\n", [], "missing column vi"),
        ("yi,vi\n0.1,-1\n", [], "study 1: vi: must be positive, got -1"),
        ("yi,vi\n0.1,0.2,5\n", [], "row 2: has 3 fields, the header has 2"),
        ("", [], "empty file"),
        ("yi,vi\n", [], "no data rows"),
        ("yi,vi\n0.1,0.2\n", ["--method", "XYZ"], "method: unknown value 'XYZ'"),
        ("yi,vi\n0.1,0.2\n", ["--level", "120"], "level: must be in (0, 100)"),
        ("study,yi,vi\nA,0.1,0.2\nB,0.2,0.1\nA,0.3,0.1\n", [], "row 4: study: duplicate id 'A' (also on row 2)"),
        ("study,ai,n1i\nA,3,10\n", ["--measure", "OR"], "ci"),
    ],
)
def test_bad_input_gives_one_line_error(tmp_path: Path, text: str, args: list[str], message: str) -> None:
    result, path = run(tmp_path, text, *args)
    assert result.exit_code == 1
    assert message in result.output
    assert result.output.count("\n") == 1 and "Traceback" not in result.output


def test_missing_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["pool", str(tmp_path / "nope.csv")])
    assert result.exit_code == 1 and "file not found" in result.output


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("yi,vi\n0.1,-1\n")
    result = CliRunner().invoke(cli, ["--debug", "pool", str(path)])
    assert isinstance(result.exception, mb.InputError)


def test_version_and_help() -> None:
    runner = CliRunner()
    assert mb.__version__ in runner.invoke(cli, ["--version"]).output
    assert "Example:" in runner.invoke(cli, ["pool", "--help"]).output
