"""Reading users' study tables (CSV, TSV, Excel .xlsx) into effect sizes, with errors that name the file, row and
column.

A table is read into a :class:`TextTable` (text cells by column, no pandas); :func:`read_table` and
:attr:`StudyTable.arms` make a DataFrame of it when asked, so that ``metabac pool`` need not import pandas.
"""

from __future__ import annotations

import csv
import datetime
import io
import math
import re
import warnings
import zipfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

import numpy as np

from metabac._checks import InputError, read_regular_file, require_choice
from metabac.effects import BINARY_FIELDS, CONTINUOUS_FIELDS, CONTINUOUS_MEASURES, MEASURES, effect_arrays

if TYPE_CHECKING:
    import pandas as pd

EXCEL_SUFFIXES = (".xlsx", ".xlsm")
# Spreadsheet formats openpyxl cannot read: refused with the way out rather than read as garbled text.
OTHER_SPREADSHEETS = {".xls": "Excel 97-2003 .xls", ".ods": "OpenDocument .ods", ".numbers": "Apple Numbers"}


@dataclass(frozen=True, eq=False)
class TextTable:
    """A table as :func:`read_table` reads it, without pandas: the text cells of each named column in file order,
    the row numbers a spreadsheet shows (header = row 1) and ``attrs["path"]``, the file. It is read the way the
    functions of this module read a DataFrame of :func:`read_table` (``columns``, ``index``, ``attrs``,
    ``table[column]``), so they take either; :meth:`frame` is that DataFrame."""

    cells: dict[str, list[str]]
    index: list[int]
    attrs: dict[str, str] = field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        return list(self.cells)

    def __getitem__(self, column: str) -> list[str]:
        return self.cells[column]

    def frame(self) -> pd.DataFrame:
        """The table as :func:`read_table` returns it: text cells, index = spreadsheet row numbers."""
        import pandas as pd

        frame = pd.DataFrame(self.cells, index=self.index, columns=self.columns)
        frame.attrs.update(self.attrs)
        return frame


Table: TypeAlias = "pd.DataFrame | TextTable"  # a table read by read_table, with or without pandas


@dataclass(frozen=True)
class StudyTable:
    """Effect sizes read from a study table, one entry per row of the file (no row is dropped or reordered).

    Attributes
    ----------
    yi, vi : numpy arrays
        Effect sizes and sampling variances, computed with ``measure`` from the arm columns, or read from ``yi``
        and ``vi`` (``vi`` = ``sei``² when the file has ``sei`` instead).
    labels : list of str or None
        Study labels from the ``--label`` column, else the ``study`` column, else None.
    measure : str or None
        The effect measure (None for ready-made yi/vi).
    text : TextTable
        Every column of the file as text, including those the analysis does not use (moderators, subgroups).
    arms : pandas.DataFrame
        ``text`` as :func:`read_table` returns it (text cells, index = spreadsheet row numbers), made on first use.
    years : numpy array or None
        The ``year`` column as numbers, if the file has one.
    used : tuple of str
        The columns the effect sizes, labels and years were read from.
    path : Path or None
        The file read, for messages.
    """

    yi: np.ndarray
    vi: np.ndarray
    labels: list[str] | None
    measure: str | None
    text: TextTable
    years: np.ndarray | None = None
    used: tuple[str, ...] = ()
    path: Path | None = None

    @cached_property
    def arms(self) -> pd.DataFrame:
        return self.text.frame()

    def column(self, name: str, option: str) -> pd.Series:
        """The text cells of column ``name``; ``<file>: <option>: no column ...`` if the file has none."""
        return self.arms[require_column(self.text, name, option)]

    def numbers(self, name: str, option: str) -> np.ndarray:
        """Column ``name`` as finite floats, with the file, row and column of the first cell that is not one."""
        return numeric_column(self.text, require_column(self.text, name, option))

    def unused(self, *names: str) -> list[str]:
        """The file's columns that neither the effect sizes, labels and years nor ``names`` use, in file order."""
        return [column for column in self.text.columns if column not in {*self.used, *names}]


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a table of one row per study from a CSV or TSV file or an Excel workbook (.xlsx, .xlsm).

    Text files: UTF-8 (a byte-order mark is fine) with a comma, semicolon or tab between columns. Workbooks: the
    first sheet is read (any other sheet that holds values is named in a warning and ignored); a formula is read
    as the value the spreadsheet program last saved with the file (openpyxl does not calculate), and one without a
    saved value is refused; merged cells are refused; dates and booleans are read as text. The header is row 1.

    Returns
    -------
    pandas.DataFrame
        One row per non-empty row of the file, columns named by the header (stripped of spaces; unnamed empty
        columns dropped), every cell as text (``str``; an empty cell is ``""``; a number of a workbook as Python
        prints it, e.g. ``"0.1"``, ``"30"``), index = the row numbers a spreadsheet shows (header = row 1).
        ``frame.attrs["path"]`` is the file's path. :func:`numeric_column` turns a column into numbers.

    Raises
    ------
    InputError
        One line naming the file, and the row and column where there is one, e.g. ``data.csv: row 3: vi: ...``.
    """
    return read_text_table(path).frame()


def read_text_table(path: str | Path) -> TextTable:
    """:func:`read_table` without pandas: the same checks and errors, the table as a :class:`TextTable`."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in OTHER_SPREADSHEETS:
        raise InputError(f"{path}: {OTHER_SPREADSHEETS[suffix]} files are not read; save the sheet as .xlsx or CSV")
    data = read_regular_file(path)
    header, rows = _excel_rows(path, data) if suffix in EXCEL_SUFFIXES else _csv_rows(path, data)
    return _text_table(path, header, rows)


def _csv_rows(path: Path, data: bytes) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and the numbered rows of a CSV with a comma, semicolon or tab delimiter and an optional BOM."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        hint = "; it is an Excel workbook or other zip file: name it .xlsx" if data.startswith(b"PK\x03\x04") else ""
        raise InputError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start}){hint}") from None
    if not text.strip():
        raise InputError(f"{path}: empty file")
    try:
        dialect = csv.Sniffer().sniff(text.split("\n", 1)[0].rstrip("\r"), delimiters=",;\t")
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = ","
    # newline="" lets the csv module keep line breaks inside quoted cells; str.splitlines() would also break rows at
    # form feeds, \x1c-\x1e, \x85 and U+2028 inside cells.
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    return rows[0], list(enumerate(rows[1:], start=2))


def _excel_text(value: object) -> str:
    """A workbook cell as the text a CSV export would hold."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    return str(value)  # numbers as Python prints them (repr for floats: exact round trip)


def _excel_rows(path: Path, data: bytes) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and the numbered rows of the first sheet of an .xlsx workbook (see :func:`read_table`)."""
    import openpyxl  # imported here: only workbooks need it

    try:
        with warnings.catch_warnings():  # openpyxl warns about workbook features it skips (styles, validation)
            warnings.simplefilter("ignore")
            values = openpyxl.load_workbook(io.BytesIO(data), data_only=True)
            formulas = openpyxl.load_workbook(io.BytesIO(data), data_only=False)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as error:
        reason = (str(error).splitlines() or [type(error).__name__])[0]
        raise InputError(f"{path}: not an Excel .xlsx workbook ({reason})") from None
    sheet, formula_sheet = values.worksheets[0], formulas.worksheets[0]
    others = [ws.title for ws in values.worksheets[1:]
              if any(v is not None for row in ws.iter_rows(values_only=True) for v in row)]
    if others:
        warnings.warn(f"{path}: read the first sheet {sheet.title!r}; ignored the other sheet(s) "
                      f"{', '.join(map(repr, others))}", stacklevel=3)
    for merged in sorted(sheet.merged_cells.ranges, key=lambda r: (r.min_row, r.min_col)):
        where = "the header" if merged.min_row == 1 else "data"
        raise InputError(f"{path}: row {merged.min_row}: cells {merged.coord} are merged ({where}); give every "
                         "column its own cell")
    table = [list(row) for row in sheet.iter_rows(values_only=True)]
    if not table:
        raise InputError(f"{path}: empty file")
    header = [_excel_text(v) for v in table[0]]
    for cells in formula_sheet.iter_rows(min_row=2):
        for cell in cells:
            if cell.data_type == "f" and table[cell.row - 1][cell.column - 1] is None:
                name = header[cell.column - 1].strip() or cell.column_letter
                raise InputError(f"{path}: row {cell.row}: {name}: formula {cell.value!r} has no saved value (the "
                                 "file was written by a program that does not calculate); open and save it in a "
                                 "spreadsheet program, or type the value")
    return header, [(number, [_excel_text(v) for v in row]) for number, row in enumerate(table[1:], start=2)]


def _text_table(path: Path, header: list[str], rows: list[tuple[int, list[str]]]) -> TextTable:
    """The checked table: rows as long as the header, named columns unique, empty rows left out."""
    header = [name.strip() for name in header]
    numbered = [(number, row) for number, row in rows if any(cell.strip() for cell in row)]
    for number, row in numbered:
        if len(row) != len(header):
            raise InputError(f"{path}: row {number}: has {len(row)} fields, the header has {len(header)}")
    if not numbered:
        raise InputError(f"{path}: no data rows (empty input)")
    seen: dict[str, int] = {}
    for column, name in enumerate(header, start=1):
        if not name:
            if any(row[column - 1].strip() for _, row in numbered):
                raise InputError(f"{path}: column {column}: has values but no name in the header")
            continue
        if name in seen:
            raise InputError(f"{path}: column {column}: {name!r} appears twice in the header (also column "
                             f"{seen[name]})")
        seen[name] = column
    cells = {name: [row[column - 1] for _, row in numbered] for name, column in seen.items()}
    return TextTable(cells, [number for number, _ in numbered], {"path": str(path)})  # index: spreadsheet rows


# What a cell may hold to be read as a number: ASCII digits with an optional sign, point and exponent, or nan/inf
# (refused next as not finite). Python's float() also reads "1_000" and other scripts' digits ("١٢" is 12).
_PLAIN_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?|[-+]?(nan|inf|infinity)", re.ASCII | re.IGNORECASE)


def numeric_column(frame: Table, column: str) -> np.ndarray:
    """Column ``column`` of a :func:`read_table` frame as finite floats (a numpy array, one per row).

    The first cell that is not a plain number gives ``<file>: row <n>: <column>: <problem>``.
    """
    path = frame.attrs.get("path", "table")
    values = []
    for number, cell in zip(frame.index, frame[column]):
        text = cell.strip()
        try:
            if not _PLAIN_NUMBER.fullmatch(text):
                raise ValueError(text)
            value = float(text)
        except ValueError:
            hint = " (decimal comma? write 0.5, not 0,5)" if re.fullmatch(r"[-+]?\d*,\d+", text) else ""
            raise InputError(f"{path}: row {number}: {column}: not a number: {text or '(empty)'!r}{hint}") from None
        if not math.isfinite(value):
            raise InputError(f"{path}: row {number}: {column}: must be finite, got {text!r}")
        values.append(value)
    return np.asarray(values)


def require_column(frame: Table, name: str, option: str) -> str:
    """``name`` if the :func:`read_table` frame has that column, else ``<file>: <option>: no column ...``."""
    if name not in frame.columns:
        found = ", ".join(repr(column) for column in frame.columns)
        raise InputError(f"{frame.attrs.get('path', 'table')}: {option}: no column {name!r} (the header has {found})")
    return name


def _require_unique(frame: Table, labels: list[str], path: Path, column: str) -> None:
    """Study ids label results, plots and errors: each must name one row."""
    first: dict[str, int] = {}
    for number, label in zip(frame.index, labels):
        if label in first:
            raise InputError(f"{path}: row {number}: {column}: duplicate id {label!r} (also on row {first[label]})")
        first[label] = number


def _require_columns(frame: Table, needed: list[str], path: Path, what: str) -> None:
    missing = [name for name in needed if name not in frame.columns]
    if missing:
        found = ", ".join(repr(name) for name in frame.columns)
        hint = "" if path.suffix.lower() in EXCEL_SUFFIXES else "; columns are separated by commas, semicolons or tabs"
        raise InputError(f"{path}: missing column {', '.join(missing)} ({what}; the header has {found}{hint})")


def _arm_columns(frame: Table, measure: str, path: Path) -> list[str]:
    """The arm-level columns ``measure`` reads, after checking that a complete set is present."""
    if measure in CONTINUOUS_MEASURES:
        _require_columns(frame, list(CONTINUOUS_FIELDS), path, f"{measure} needs {', '.join(CONTINUOUS_FIELDS)}")
        return list(CONTINUOUS_FIELDS)
    what = f"{measure} needs ai, ci with bi, di or with n1i, n2i"
    columns = set(frame.columns)
    counts = "n" if {"n1i", "n2i"} & columns and not {"bi", "di"} & columns else "cells"  # the form to suggest
    needed = ["ai", "ci"]
    for cell, total in (("bi", "n1i"), ("di", "n2i")):
        needed.append(cell if cell in columns else total if total in columns or counts == "n" else cell)
    _require_columns(frame, needed, path, what)
    return [name for name in BINARY_FIELDS if name in frame.columns]


def read_study_table(path: str | Path | TextTable, measure: str | None = None, *, label: str | None = None
                     ) -> StudyTable:
    """Read a study table (CSV, TSV or .xlsx, see :func:`read_table`; or a table :func:`read_text_table` has
    already read) and compute its effect sizes.

    With ``measure``, ``yi, vi`` are computed as escalc does from the arm columns ``ai, bi, ci, di`` or
    ``ai, n1i, ci, n2i`` (binary) or ``m1i, sd1i, n1i, m2i, sd2i, n2i`` (continuous); without, they are read from
    the columns ``yi`` and ``vi`` (or ``yi`` and ``sei``, the standard error). Study labels come from the column
    named by ``label``, else from a column ``study`` (each must be unique); a column ``year`` is read as numbers.

    Returns
    -------
    StudyTable
        ``yi``, ``vi``, ``labels``, ``measure``, ``years``, the whole table as text (``arms``) and the columns
        used (``used``), one entry per row of the file in file order.

    Raises
    ------
    InputError
        One line naming the file, the row (as numbered in a spreadsheet, header = row 1) and the column.
    """
    if measure is not None:
        measure = require_choice(measure, MEASURES, "measure")
    frame = path if isinstance(path, TextTable) else read_text_table(path)
    path = Path(frame.attrs.get("path", "table"))
    label_column = require_column(frame, label, "--label") if label is not None else (
        "study" if "study" in frame.columns else None)
    labels = None
    if label_column is not None:
        labels = [cell.strip() for cell in frame[label_column]]
        _require_unique(frame, labels, path, label_column)
    years = numeric_column(frame, "year") if "year" in frame.columns else None
    named = tuple(name for name in (label_column, "year") if name is not None and name in frame.columns)
    if measure is None:
        variance = "sei" if "sei" in frame.columns and "vi" not in frame.columns else "vi"
        _require_columns(frame, ["yi", variance], path, "or give --measure with arm-level columns")
        yi, spread = numeric_column(frame, "yi"), numeric_column(frame, variance)
        for number, value in zip(frame.index, spread):
            if value <= 0:
                raise InputError(f"{path}: row {number}: {variance}: must be positive, got {value:g}")
        vi = spread**2 if variance == "sei" else spread
        return StudyTable(yi, vi, labels, None, frame, years, ("yi", variance, *named), path)
    columns = _arm_columns(frame, measure, path)
    arms = {name: numeric_column(frame, name) for name in columns}
    try:
        yi, vi, _, measure = effect_arrays(measure, arms, labels)
    except InputError as error:
        message = str(error)
        study = re.match(r"study (\d+)\b", message)
        if study:  # the library numbers studies from 1; a spreadsheet numbers rows
            message = f"row {frame.index[int(study.group(1)) - 1]}: {message}"
        raise InputError(f"{path}: {message}") from None
    return StudyTable(yi, vi, labels, measure, frame, years, (*columns, *named), path)
