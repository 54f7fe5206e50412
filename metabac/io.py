"""Reading users' study tables (CSV) into effect sizes, with errors that name the file, row and column."""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from metabac._checks import InputError, read_regular_file, require_choice
from metabac.effects import BINARY_FIELDS, CONTINUOUS_FIELDS, CONTINUOUS_MEASURES, MEASURES, effect_sizes


@dataclass(frozen=True)
class StudyTable:
    """Effect sizes read from a file: ``yi``, ``vi``, study labels and the measure (None for ready-made yi/vi)."""

    yi: np.ndarray
    vi: np.ndarray
    labels: list[str] | None
    measure: str | None
    arms: pd.DataFrame


def _read_csv(path: Path) -> pd.DataFrame:
    """Read a CSV with a comma, semicolon or tab delimiter and an optional byte-order mark."""
    try:
        text = read_regular_file(path).decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InputError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
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
    header = [name.strip() for name in rows[0]]
    numbered = [(number, row) for number, row in enumerate(rows[1:], start=2) if any(cell.strip() for cell in row)]
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
            raise InputError(f"{path}: column {column}: {name!r} appears twice in the header (also column {seen[name]})")
        seen[name] = column
    frame = pd.DataFrame([row for _, row in numbered], columns=header)
    frame = frame.loc[:, [bool(name) for name in header]]
    frame.index = [number for number, _ in numbered]  # row numbers as a spreadsheet shows them (header = 1)
    return frame


# What a cell may hold to be read as a number: ASCII digits with an optional sign, point and exponent, or nan/inf
# (refused next as not finite). Python's float() also reads "1_000" and other scripts' digits ("١٢" is 12).
_PLAIN_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?|[-+]?(nan|inf|infinity)", re.ASCII | re.IGNORECASE)


def _numeric(frame: pd.DataFrame, column: str, path: Path) -> np.ndarray:
    """The column as finite floats; the first cell that is not gives ``<file>: row <n>: <column>: <problem>``."""
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


def _require_unique(frame: pd.DataFrame, labels: list[str], path: Path) -> None:
    """Study ids label results, plots and errors: each must name one row."""
    first: dict[str, int] = {}
    for number, label in zip(frame.index, labels):
        if label in first:
            raise InputError(f"{path}: row {number}: study: duplicate id {label!r} (also on row {first[label]})")
        first[label] = number


def _require_columns(frame: pd.DataFrame, needed: list[str], path: Path, what: str) -> None:
    missing = [name for name in needed if name not in frame.columns]
    if missing:
        found = ", ".join(repr(name) for name in frame.columns)
        raise InputError(f"{path}: missing column {', '.join(missing)} ({what}; the header has {found}; columns are "
                         "separated by commas, semicolons or tabs)")


def _arm_columns(frame: pd.DataFrame, measure: str, path: Path) -> list[str]:
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


def read_study_table(path: str | Path, measure: str | None = None) -> StudyTable:
    """Read a CSV of studies; compute ``yi, vi`` with ``measure`` unless the file has yi and vi columns.

    Errors name the file, the row (as numbered in a spreadsheet, header = row 1) and the column.
    """
    path = Path(path)
    if measure is not None:
        measure = require_choice(measure, MEASURES, "measure")
    frame = _read_csv(path)
    labels = [cell.strip() for cell in frame["study"]] if "study" in frame.columns else None
    if labels is not None:
        _require_unique(frame, labels, path)
    if measure is None:
        _require_columns(frame, ["yi", "vi"], path, "or give --measure with arm-level columns")
        yi, vi = _numeric(frame, "yi", path), _numeric(frame, "vi", path)
        for number, value in zip(frame.index, vi):
            if value <= 0:
                raise InputError(f"{path}: row {number}: vi: must be positive, got {value:g}")
        return StudyTable(yi, vi, labels, None, frame)
    arms = {name: _numeric(frame, name, path) for name in _arm_columns(frame, measure, path)}
    try:
        es = effect_sizes(measure, labels=labels, **arms)
    except InputError as error:
        message = str(error)
        study = re.match(r"study (\d+)\b", message)
        if study:  # the library numbers studies from 1; a spreadsheet numbers rows
            message = f"row {frame.index[int(study.group(1)) - 1]}: {message}"
        raise InputError(f"{path}: {message}") from None
    kept_labels = list(es["study"]) if "study" in es.columns else None
    return StudyTable(es["yi"].to_numpy(), es["vi"].to_numpy(), kept_labels, measure, frame)
