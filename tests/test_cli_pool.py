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


# (kind, file contents, options, fragment of the one-line message); the file is data.csv in the working folder.
# docs/bad_input.md lists these kinds (tests/test_bad_input.py keeps it current).
BINARY = "study,ai,n1i,ci,n2i\n"
CSV_CASES = [
    ("text in a number column", BINARY + "A,30,42,x,42\n", ["--measure", "RR"], "data.csv: row 2: ci: not a number: 'x'"),
    ("empty cell", "yi,vi\n0.1,0.2\n0.3,\n", [], "data.csv: row 3: vi: not a number: '(empty)'"),
    ("decimal comma", "yi;vi\n0,1;0,02\n", [], "data.csv: row 2: yi: not a number: '0,1' (decimal comma?"),
    ("NaN in a number column", "yi,vi\nnan,0.1\n", [], "data.csv: row 2: yi: must be finite, got 'nan'"),
    ("infinite value", "yi,vi\n0.1,inf\n", [], "data.csv: row 2: vi: must be finite, got 'inf'"),
    ("zero or negative variance", "yi,vi\n0.1,0.2\n0.1,-1\n", [], "data.csv: row 3: vi: must be positive, got -1"),
    ("events above group size", BINARY + "A,50,42,12,42\n", ["--measure", "RR"],
     'data.csv: row 2: study 1 ("A"): ai: 50 events exceed the group size n1i=42'),
    ("negative count", BINARY + "A,3,10,-1,10\n", ["--measure", "OR"],
     'data.csv: row 2: study 1 ("A"): ci: must not be negative, got -1'),
    ("non-integer count", BINARY + "A,2.5,10,1,10\n", ["--measure", "OR"],
     'data.csv: row 2: study 1 ("A"): ai: must be a whole number, got 2.5'),
    ("group size differs from events + non-events", "ai,bi,n1i,ci,di\n3,7,12,1,4\n", ["--measure", "OR"],
     "data.csv: row 2: study 1: n1i: 12 differs from ai + bi = 10"),
    ("zero SD", "m1i,sd1i,n1i,m2i,sd2i,n2i\n5,1,10,4,1,10\n5,0,10,4,1,10\n", ["--measure", "MD"],
     "data.csv: row 3: study 2: sd1i: must be positive, got 0"),
    ("missing yi/vi column", "yi\n0.1\n", [], "data.csv: missing column vi (or give --measure"),
    ("missing arm column", "study,ai,n1i\nA,3,10\n", ["--measure", "OR"],
     "data.csv: missing column ci, n2i (OR needs ai, ci with bi, di or with n1i, n2i"),
    ("missing continuous column", "m1i,sd1i,n1i,m2i,n2i\n5,1,10,4,10\n", ["--measure", "SMD"],
     "data.csv: missing column sd2i (SMD needs m1i, sd1i, n1i, m2i, sd2i, n2i"),
    ("different delimiter", "yi|vi\n0.1|0.2\n", [],
     "data.csv: missing column yi, vi (or give --measure with arm-level columns; the header has 'yi|vi'; columns are "
     "separated by commas, semicolons or tabs)"),
    ("row with more fields than the header", "yi,vi\n0.1,0.2,5\n", [], "data.csv: row 2: has 3 fields, the header has 2"),
    ("empty file", "", [], "data.csv: empty file"),
    ("header without rows", "yi,vi\n\n", [], "data.csv: no data rows (empty input)"),
    ("duplicate study ids", "study,yi,vi\nA,0.1,0.2\nB,0.2,0.1\nA,0.3,0.1\n", [],
     "data.csv: row 4: study: duplicate id 'A' (also on row 2)"),
    ("duplicate column", "yi,vi,vi\n0.1,0.2,0.3\n", [], "data.csv: column 3: 'vi' appears twice in the header"),
    ("values under an unnamed column", "yi,vi,\n0.1,0.2,7\n", [], "data.csv: column 3: has values but no name"),
    ("not UTF-8", "study,yi,vi\nM\u00fcller,0.1,0.2\n", [], "data.csv: not UTF-8 text (invalid"),
    ("unknown measure", "yi,vi\n0.1,0.2\n", ["--measure", "HR"],
     "measure: unknown value 'HR'; choose one of OR, RR, RD, PETO, MD, SMD, ROM"),
    ("unknown method", "yi,vi\n0.1,0.2\n", ["--method", "XYZ"], "method: unknown value 'XYZ'"),
    ("level outside (0, 100)", "yi,vi\n0.1,0.2\n", ["--level", "120"], "level: must be in (0, 100) percent, got 120"),
    ("escape code in a study name", BINARY + "A\x1b[2J,50,42,12,42\n", ["--measure", "RR"],
     'study 1 ("A\\x1b[2J"): ai: 50 events exceed'),
    ("digit group separator", "yi,vi\n1_000,0.2\n", [], "data.csv: row 2: yi: not a number: '1_000'"),
    ("digits of another script", "yi,vi\n0.1,\u0661\u0662\n", [], "data.csv: row 2: vi: not a number: '\u0661\u0662'"),
    ("file not found", None, [], "nope.csv: file not found"),
    ("--by names a column the file lacks", "yi,vi\n0.1,0.2\n", ["--by", "dose"],
     "data.csv: --by: no column 'dose' (the header has 'yi', 'vi')"),
    ("--mods names a column the file lacks", "yi,vi\n0.1,0.2\n", ["--mods", "dose"],
     "data.csv: --mods: no column 'dose' (the header has 'yi', 'vi')"),
    ("--label names a column the file lacks", "yi,vi\n0.1,0.2\n", ["--label", "name"],
     "data.csv: --label: no column 'name' (the header has 'yi', 'vi')"),
    ("--label column with a label twice", "yi,vi,year\n0.1,0.2,1990\n0.3,0.1,1990\n", ["--label", "year"],
     "data.csv: row 3: year: duplicate id '1990' (also on row 2)"),
    ("text in a --mods column", "yi,vi,alloc\n0.1,0.2,random\n0.3,0.1,random\n0.2,0.1,other\n",
     ["--mods", "alloc"], "data.csv: row 2: alloc: not a number: 'random'"),
    ("--plot with an unknown suffix", "yi,vi\n0.1,0.2\n", ["--plot", "forest.jpg"],
     "forest.jpg: --plot: unknown file type '.jpg'; use .png, .svg or .pdf"),
    ("--plot in a folder that does not exist", "yi,vi\n0.1,0.2\n", ["--plot", "figures/forest.png"],
     "figures/forest.png: --plot: folder figures not found"),
    ("--method MH on continuous data", "m1i,sd1i,n1i,m2i,sd2i,n2i\n5,1,10,4,1,10\n", ["--measure", "MD", "--method", "MH"],
     "--method MH: needs --measure OR or RR or RD with binary arm columns"),
    ("--method PETO with --by", BINARY + "A,3,10,1,10\n", ["--measure", "OR", "--method", "PETO", "--by", "study"],
     "--method PETO: --by and --mods fit inverse-variance models"),
]


@pytest.mark.parametrize(("kind", "text", "args", "message"), CSV_CASES, ids=[c[0] for c in CSV_CASES])
def test_bad_csv_gives_one_line_error_and_writes_nothing(tmp_path: Path, monkeypatch, kind: str, text: str | None,
                                                         args: list[str], message: str) -> None:
    monkeypatch.chdir(tmp_path)
    name = "nope.csv" if text is None else "data.csv"
    if text is not None:
        Path("data.csv").write_bytes(text.encode("latin-1" if kind == "not UTF-8" else "utf-8"))
    before = sorted(tmp_path.iterdir())
    result = CliRunner().invoke(cli, ["pool", name, *args])
    assert sorted(tmp_path.iterdir()) == before
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: ") and message in result.output, result.output
    assert result.output.count("\n") == 1 and "Traceback" not in result.output


@pytest.mark.parametrize(("text", "encoding"), [
    ("yi\tvi\n0.1\t0.02\n0.3\t0.04\n", "utf-8-sig"),               # tab-separated with a byte-order mark
    ("yi,vi\r\n0.1,0.02\r\n0.3,0.04\r\n", "utf-8"),                 # Windows line ends
    ("yi,vi,,\n0.1,0.02,,\n0.3,0.04,,\n\n", "utf-8"),                 # a spreadsheet's empty trailing columns
    ('"yi","vi"\n"0.1","0.02"\n" 0.3 ",0.04\n', "utf-8"),             # quoted cells, stray spaces
    ('study,yi,vi\n"Smith,\nJones\f2001",0.1,0.02\nB,0.3,0.04\n', "utf-8"),  # a line break, a form feed in a cell
])
def test_spreadsheet_exports_are_read(tmp_path: Path, text: str, encoding: str) -> None:
    result, _ = run(tmp_path, text, "--method", "EE", "--json", encoding=encoding)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["estimate"] == pytest.approx(mb.pool([0.1, 0.3], [0.02, 0.04], method="EE").estimate)


def test_cli_warnings_are_one_line(tmp_path: Path) -> None:
    result, _ = run(tmp_path, "yi,vi\n0.3,0.1\n", "--test", "knha")
    assert result.exit_code == 0
    assert "Warning: Setting test='z' since k = 1 (as metafor does)." in result.output
    assert "warnings.warn" not in result.output and ".py:" not in result.output


def test_an_unexpected_exception_is_one_line_naming_it(tmp_path: Path, monkeypatch) -> None:
    import metabac.io

    def broken(*args, **kwargs):
        raise ZeroDivisionError("float division by zero")

    monkeypatch.setattr(metabac.io, "read_study_table", broken)
    result, path = run(tmp_path, "yi,vi\n0.3,0.1\n")
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert result.output.startswith("Error: internal error: ZeroDivisionError: float division by zero")
    assert "--debug" in result.output
    debug = CliRunner().invoke(cli, ["--debug", "pool", str(path)])
    assert isinstance(debug.exception, ZeroDivisionError)


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("yi,vi\n0.1,-1\n")
    result = CliRunner().invoke(cli, ["--debug", "pool", str(path)])
    assert isinstance(result.exception, mb.InputError)


def test_version_and_help() -> None:
    runner = CliRunner()
    assert mb.__version__ in runner.invoke(cli, ["--version"]).output
    assert "Example:" in runner.invoke(cli, ["pool", "--help"]).output


def test_the_script_entry_point_prints_and_exits_like_the_group(tmp_path: Path) -> None:
    """``main`` (the installed ``metabac`` script) freezes the heap on the way out: output and exit codes stay."""
    import subprocess
    import sys

    (tmp_path / "data.csv").write_text(ROWS)
    script = "from metabac.cli import main; main()"
    ok = subprocess.run([sys.executable, "-c", script, "pool", str(tmp_path / "data.csv"), "--measure", "RR",
                         "--method", "DL"], capture_output=True, text=True, check=False)
    assert ok.returncode == 0 and "RR 1.42 [95% CI 0.41, 4.92]" in ok.stdout
    bad = subprocess.run([sys.executable, "-c", script, "pool", str(tmp_path / "missing.csv")],
                         capture_output=True, text=True, check=False)
    assert bad.returncode == 1 and bad.stderr.startswith("Error: ") and "missing.csv" in bad.stderr and not bad.stdout


@pytest.mark.parametrize("kind", ["named pipe", "device", "folder"])
def test_a_pipe_device_or_folder_is_refused_before_reading(tmp_path: Path, kind: str) -> None:
    """A named pipe would block the read forever and /dev/zero never ends: only regular files are read."""
    import os

    path = {"named pipe": tmp_path / "data.csv", "device": Path("/dev/zero"), "folder": tmp_path}[kind]
    if kind == "named pipe":
        os.mkfifo(path)
    with pytest.raises(mb.InputError, match="not a regular file"):
        from metabac.io import read_study_table
        read_study_table(path)
    result = CliRunner().invoke(cli, ["pool", str(path)])
    if kind != "folder":  # click itself refuses a folder (dir_okay=False)
        assert result.exit_code == 1 and result.output.startswith(f"Error: {path}: not a regular file (a {kind})")


def test_level_below_one_is_a_proportion(tmp_path: Path) -> None:
    """metafor reads level=0.95 as 95%; --level 0.95 gave a 0.95% interval."""
    result, _ = run(tmp_path, ROWS, "--measure", "RR", "--method", "DL", "--level", "0.95")
    assert "RR 1.42 [95% CI 0.41, 4.92]" in result.output and "(95% confidence interval" in result.output
