"""Reading users' study tables (CSV) into effect sizes, with errors that name the file, row and column."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from metabac._checks import InputError
from metabac.effects import BINARY_FIELDS, CONTINUOUS_FIELDS, MEASURES, effect_sizes


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
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except UnicodeDecodeError as error:
        raise InputError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    if not text.strip():
        raise InputError(f"{path}: empty file")
    try:
        dialect = csv.Sniffer().sniff(text.splitlines()[0], delimiters=",;\t")
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = ","
    rows = list(csv.reader(text.splitlines(), delimiter=delimiter))
    header = [name.strip() for name in rows[0]]
    body = [row for row in rows[1:] if any(cell.strip() for cell in row)]
    for number, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise InputError(f"{path}: row {number}: has {len(row)} fields, the header has {len(header)}")
    if not body:
        raise InputError(f"{path}: no data rows (empty input)")
    return pd.DataFrame(body, columns=header)


def _numeric(frame: pd.DataFrame, column: str, path: Path) -> np.ndarray:
    values = []
    for number, cell in enumerate(frame[column], start=2):
        try:
            values.append(float(cell.strip()))
        except ValueError:
            shown = cell.strip() or "(empty)"
            raise InputError(f"{path}: row {number}: {column}: not a number: {shown!r}") from None
    return np.asarray(values)


def _require_unique(labels: list[str], path: Path) -> None:
    """Study ids label results, plots and errors: each must name one row."""
    first: dict[str, int] = {}
    for number, label in enumerate(labels, start=2):
        if label in first:
            raise InputError(f"{path}: row {number}: study: duplicate id {label!r} (also on row {first[label]})")
        first[label] = number


def read_study_table(path: str | Path, measure: str | None = None) -> StudyTable:
    """Read a CSV of studies; compute ``yi, vi`` with ``measure`` unless the file has yi and vi columns.

    Errors name the file, the row (as numbered in a spreadsheet, header = row 1) and the column.
    """
    path = Path(path)
    frame = _read_csv(path)
    labels = [cell.strip() for cell in frame["study"]] if "study" in frame.columns else None
    if labels is not None:
        _require_unique(labels, path)
    if measure is None:
        missing = [name for name in ("yi", "vi") if name not in frame.columns]
        if missing:
            raise InputError(f"{path}: missing column {', '.join(missing)} (or give --measure with arm-level columns)")
        yi, vi = _numeric(frame, "yi", path), _numeric(frame, "vi", path)
        return StudyTable(yi, vi, labels, None, frame)
    measure = measure.upper()
    if measure not in MEASURES:
        raise InputError(f"measure: unknown value {measure!r}; choose one of {', '.join(MEASURES)}")
    fields = CONTINUOUS_FIELDS if measure in ("MD", "SMD", "ROM") else BINARY_FIELDS
    present = [name for name in fields if name in frame.columns]
    arms = {name: _numeric(frame, name, path) for name in present}
    try:
        es = effect_sizes(measure, labels=labels, **arms)
    except InputError as error:
        raise InputError(f"{path}: {error}") from None
    kept_labels = list(es["study"]) if "study" in es.columns else None
    return StudyTable(es["yi"].to_numpy(), es["vi"].to_numpy(), kept_labels, measure, frame)
