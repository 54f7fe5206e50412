"""`metabac pool FILE.csv`: summary, JSON, and one-line errors naming file, row and column."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from support.bad_input_cases import CSV_CASES

import metabac as mb
from metabac.cli import cli, main

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
    expected = mb.pool([0.1, 0.3], [0.02, 0.04], method="EE").estimate
    assert json.loads(result.output)["estimate"] == pytest.approx(expected)


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


def _main(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """Run ``main`` as the script would (its arguments in ``sys.argv``): exit code, stdout, stderr. The heap it
    freezes on the way out is unfrozen again, after checking that it was frozen."""
    import gc

    monkeypatch.setattr(sys, "argv", ["metabac", *args])
    try:
        with pytest.raises(SystemExit) as leaving:
            main()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
    out, err = capsys.readouterr()
    return leaving.value.code or 0, out, err


def test_the_script_entry_point_prints_and_exits_like_the_group(tmp_path: Path, monkeypatch, capsys) -> None:
    """``main`` (the installed ``metabac`` script) freezes the heap on the way out: output and exit codes stay."""
    (tmp_path / "data.csv").write_text(ROWS)
    code, out, _ = _main(monkeypatch, capsys, "pool", str(tmp_path / "data.csv"), "--measure", "RR", "--method", "DL")
    assert code == 0 and "RR 1.42 [95% CI 0.41, 4.92]" in out
    code, out, err = _main(monkeypatch, capsys, "pool", str(tmp_path / "missing.csv"))
    assert code == 1 and err.startswith("Error: ") and "missing.csv" in err and not out


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
