"""`metabac pool` on a user's spreadsheet: CSV, TSV and .xlsx tables, subgroups, meta-regression, Mantel-Haenszel
and Peto, labels, ignored columns and the forest plot, against metafor on the BCG trials
(tests/reference/metafor_bcg_cli.json, made by tests/reference/make_bcg_cli_reference.R)."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import REFERENCE_DIR, RTOL_ITERATIVE
from support.bad_input_cases import XLSX_CASES
from support.bcg import BCG_CSV, CNEG, CPOS, TNEG, TPOS, bcg_xlsx

import metabac as mb
from metabac.cli import cli
from metabac.io import numeric_column, read_study_table, read_table

REFERENCE = json.loads((REFERENCE_DIR / "metafor_bcg_cli.json").read_text(encoding="utf-8"))
BCG_ARGS = ["--measure", "RR", "--method", "REML", "--by", "alloc", "--mods", "ablat"]


def workbook(path: Path, rows: list[list], saved: list[str] = (), build=None) -> Path:
    """A one-sheet workbook of ``rows``; ``saved`` are the values a spreadsheet program would have stored for its
    formulas (openpyxl writes formulas without them); ``build(workbook)`` changes it before saving."""
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    if build is not None:
        build(book)
    buffer = io.BytesIO()
    book.save(buffer)
    data = buffer.getvalue()
    if saved:
        source = zipfile.ZipFile(io.BytesIO(data))
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as target:
            for item in source.infolist():
                content = source.read(item)
                if item.filename == "xl/worksheets/sheet1.xml":
                    values = iter(saved)

                    def cached(match: re.Match, values=values) -> bytes:
                        value = next(values)
                        kind = ' t="e"' if value.startswith("#") else ""  # an error value such as #DIV/0!
                        return f'<c r="{match[1].decode()}"{kind}><f>{match[2].decode()}</f><v>{value}</v>'.encode()

                    content = re.sub(rb'<c r="(\w+)"><f>(.*?)</f><v ?/>', cached, content)
                target.writestr(item, content)
        data = out.getvalue()
    path.write_bytes(data)
    return path


def pool_json(path: Path, *args: str) -> dict:
    result = CliRunner().invoke(cli, ["pool", str(path), *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_the_bcg_fixture_is_metafors_dat_bcg() -> None:
    """tests/data/bcg.csv (the one copy of the BCG trials in the tests) holds dat.bcg's counts as R gave them."""
    table = pd.read_csv(BCG_CSV)
    for column, name in (("ai", "tpos"), ("bi", "tneg"), ("ci", "cpos"), ("di", "cneg")):
        assert table[column].tolist() == REFERENCE["dat_bcg"][name]


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_pool_by_and_mods_equal_metafor(kind: str, tmp_path: Path) -> None:
    """rma(measure="RR", ...), each alloc subgroup, rma(mods = ~ factor(alloc)) and rma(mods = ~ ablat)."""
    path = BCG_CSV if kind == "csv" else bcg_xlsx(tmp_path / "bcg.xlsx")
    data = pool_json(path, *BCG_ARGS)
    close = lambda value, expected: value == pytest.approx(expected, rel=RTOL_ITERATIVE)  # noqa: E731
    for key in ("estimate", "se", "tau2", "ci_low", "ci_high", "q"):
        assert close(data[key], REFERENCE["pool"][key]), key
    groups = {row["group"]: row for row in data["subgroups"]["table"]}
    assert set(groups) == set(REFERENCE["subgroups"])
    for name, expected in REFERENCE["subgroups"].items():
        assert groups[name]["k"] == expected["k"]
        for key in ("estimate", "se", "tau2"):
            assert close(groups[name][key], expected[key]), (name, key)
    assert close(data["subgroups"]["qm"], REFERENCE["alloc_qm"]["qm"])
    assert close(data["subgroups"]["qm_pvalue"], REFERENCE["alloc_qm"]["qm_pvalue"])
    reg, ablat = data["metareg"], REFERENCE["ablat"]
    assert reg["names"] == ["intercept", "ablat"]
    assert close(reg["coef"][0], ablat["intercept"]) and close(reg["coef"][1], ablat["slope"])
    assert close(reg["se"][1], ablat["slope_se"]) and close(reg["pvalue"][1], ablat["slope_pvalue"])
    assert close(reg["tau2"], ablat["tau2"]) and close(reg["qm"], ablat["qm"])


def test_pool_prints_the_subgroups_and_the_regression_after_the_pooled_result() -> None:
    result = CliRunner().invoke(cli, ["pool", str(BCG_CSV), *BCG_ARGS])
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert text.index("RR 0.49 [95% CI 0.34, 0.70]") < text.index("Subgroups by alloc:") < text.index(
        "Meta-regression on ablat:")
    assert "QM = 1.7675" in text and re.search(r"ablat\s+-0\.0291", text)
    assert result.stderr == ""  # every column is used


@pytest.mark.parametrize(("method", "measure", "key"), [("MH", "RR", "mantel_haenszel"), ("PETO", "OR", "peto")])
def test_mantel_haenszel_and_peto_equal_metafor(method: str, measure: str, key: str) -> None:
    data = pool_json(BCG_CSV, "--measure", measure, "--method", method)
    assert data["estimate"] == pytest.approx(REFERENCE[key]["estimate"], rel=1e-10)
    assert data["se"] == pytest.approx(REFERENCE[key]["se"], rel=1e-10)
    assert data["model"] == {"MH": "Mantel-Haenszel", "PETO": "Peto"}[method]


def test_columns_no_option_uses_are_listed_on_stderr() -> None:
    result = CliRunner().invoke(cli, ["pool", str(BCG_CSV), "--measure", "RR", "--by", "alloc"])
    assert result.exit_code == 0
    assert result.stderr == "ignored columns: ablat\n"
    result = CliRunner().invoke(cli, ["pool", str(BCG_CSV), "--measure", "RR"])
    assert result.stderr == "ignored columns: ablat, alloc\n"


def test_label_column_and_yi_sei_and_tsv(tmp_path: Path) -> None:
    path = tmp_path / "data.tsv"
    path.write_text("name\tyear\tyi\tsei\tnote\nA\t2001\t0.1\t0.2\tx\nB\t2003\t0.3\t0.1\ty\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["pool", str(path), "--label", "name", "--method", "EE", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["labels"] == ["A", "B"]
    assert data["estimate"] == pytest.approx(mb.pool([0.1, 0.3], [0.04, 0.01], method="EE").estimate)
    assert result.stderr == "ignored columns: note\n"  # year is recognised
    table = read_study_table(path, label="name")
    assert table.years.tolist() == [2001, 2003] and table.used == ("yi", "sei", "name", "year")


@pytest.mark.parametrize("suffix", [".png", ".svg", ".pdf"])
def test_plot_writes_the_forest_plot_in_the_suffixs_format(suffix: str, tmp_path: Path) -> None:
    target = tmp_path / f"forest{suffix}"
    result = CliRunner().invoke(cli, ["pool", str(BCG_CSV), *BCG_ARGS, "--plot", str(target)])
    assert result.exit_code == 0, result.output
    magic = {".png": b"\x89PNG", ".svg": b"<?xml", ".pdf": b"%PDF"}[suffix]
    assert target.read_bytes().startswith(magic)


def test_plot_never_replaces_a_file_without_force(tmp_path: Path) -> None:
    target = tmp_path / "forest.png"
    target.write_bytes(b"mine")
    args = ["pool", str(BCG_CSV), "--measure", "RR", "--plot", str(target)]
    refused = CliRunner().invoke(cli, args)
    assert refused.exit_code == 1 and "the file exists; pass --force" in refused.output
    assert target.read_bytes() == b"mine"
    assert "--force" in CliRunner().invoke(cli, ["pool", "--help"]).output
    forced = CliRunner().invoke(cli, [*args, "--force"])
    assert forced.exit_code == 0 and target.read_bytes().startswith(b"\x89PNG")


def test_read_table_numbers_rows_as_a_spreadsheet_and_keeps_text(tmp_path: Path) -> None:
    path = workbook(tmp_path / "d.xlsx", [["study", "yi", "vi"], ["A", 0.1, 0.02], [None, None, None],
                                           ["B", 0.3, "0.04"]])
    frame = read_table(path)
    assert frame.index.tolist() == [2, 4] and frame.columns.tolist() == ["study", "yi", "vi"]
    assert frame.loc[4].tolist() == ["B", "0.3", "0.04"] and frame.attrs["path"] == str(path)
    assert numeric_column(frame, "vi").tolist() == [0.02, 0.04]  # a number stored as text reads as in a CSV


def test_formulas_give_the_values_the_spreadsheet_saved(tmp_path: Path) -> None:
    path = workbook(tmp_path / "d.xlsx", [["yi", "vi"], [0.1, "=0.01*2"], [0.3, "=B2*2"]], saved=["0.02", "0.04"])
    assert pool_json(path, "--method", "EE")["estimate"] == pytest.approx(
        mb.pool([0.1, 0.3], [0.02, 0.04], method="EE").estimate)


def test_only_the_first_sheet_is_read_and_the_others_are_named(tmp_path: Path) -> None:
    def notes(book):
        book.create_sheet("Notes").append(["yi", "vi"])
        book.create_sheet("Empty")

    path = workbook(tmp_path / "d.xlsx", [["yi", "vi"], [0.1, 0.02], [0.3, 0.04]], build=notes)
    result = CliRunner().invoke(cli, ["pool", str(path), "--method", "EE"])
    assert result.exit_code == 0
    assert result.stderr == f"Warning: {path}: read the first sheet 'Sheet'; ignored the other sheet(s) 'Notes'\n"


@pytest.mark.parametrize(("kind", "rows", "saved", "build", "args", "message"), XLSX_CASES,
                         ids=[c[0] for c in XLSX_CASES])
def test_bad_workbook_gives_one_line_error(tmp_path: Path, monkeypatch, kind, rows, saved, build, args, message):
    monkeypatch.chdir(tmp_path)
    workbook(Path("data.xlsx"), rows, saved, build)
    result = CliRunner().invoke(cli, ["pool", "data.xlsx", *args])
    assert result.exit_code == 1 and result.output.startswith("Error: ") and message in result.output, result.output
    assert result.output.count("\n") == 1 and sorted(p.name for p in tmp_path.iterdir()) == ["data.xlsx"]


def test_a_workbook_named_csv_and_an_xls_are_refused_with_the_way_out(tmp_path: Path) -> None:
    disguised = bcg_xlsx(tmp_path / "bcg.xlsx").rename(tmp_path / "bcg.csv")
    with pytest.raises(mb.InputError, match=r"bcg\.csv: not UTF-8 text .*an Excel workbook .*name it \.xlsx"):
        read_table(disguised)
    (tmp_path / "old.xls").write_bytes(b"\xd0\xcf\x11\xe0")
    with pytest.raises(mb.InputError, match=r"old\.xls: Excel 97-2003 \.xls files are not read; save"):
        read_table(tmp_path / "old.xls")
    (tmp_path / "broken.xlsx").write_bytes(b"not a zip")
    with pytest.raises(mb.InputError, match=r"broken\.xlsx: not an Excel \.xlsx workbook"):
        read_table(tmp_path / "broken.xlsx")


def test_study_table_rows_stay_aligned_with_the_file() -> None:
    table = read_study_table(BCG_CSV, "RR")
    es = mb.effect_sizes("RR", ai=TPOS, bi=TNEG, ci=CPOS, di=CNEG)
    np.testing.assert_allclose(table.yi, es.yi, rtol=1e-15)
    assert table.labels[0] == "Aronson 1948" and table.arms.index[0] == 2
    assert table.unused("alloc") == ["ablat"]
