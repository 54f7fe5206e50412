"""Where a review's comparisons come from: the trial records of a review folder, or a user's spreadsheet.

Both give the report engine (:func:`metabac.report.build_report`) the same thing, a :class:`Source`: the outcomes,
one comparison table per outcome (one row per study, escalc-named arm columns or ``yi, vi``, and any other column
to stratify or regress on), and what else is known. Everything downstream is the same for both; the sections
whose inputs a spreadsheet lacks (coverage, provenance, severity, risk of bias, certainty, reproduction, who
responds) are left out because those inputs are None, never special-cased (DESIGN.md section 12).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from metabac._checks import InputError
from metabac.effects import BINARY_MEASURES, CONTINUOUS_MEASURES
from metabac.io import numeric_column, read_study_table, read_text_table
from metabac.review import Review, read_review
from metabac.trials import TrialSet, comparisons, load_trials
from metabac.trials import coverage as trial_coverage


@dataclass(frozen=True)
class Source:
    """The comparisons a report analyses. ``comparisons(outcome)`` gives one outcome's table (left-out trials in
    its ``attrs["excluded"]``); ``inputs`` are the files and folders read (hashed into the run stamp, never
    written); ``trials``, ``coverage`` and ``review`` are None for a spreadsheet."""

    outcomes: tuple[str, ...]
    comparisons: Callable[[str], pd.DataFrame]
    inputs: tuple[Path, ...]
    trials: TrialSet | None = None
    coverage: pd.DataFrame | None = None
    review: Review | None = None
    default_by: str | None = None


def records_source(trials_dir: Path, shared_control: str, timepoint_class: str) -> Source:
    """The trial records of ``trials_dir``: every outcome a record reports, each experimental arm compared with its
    control; stratified by drinking severity by default where any trial is classed."""
    trials = load_trials(trials_dir)
    table = trial_coverage(trials)

    def outcome_comparisons(outcome: str) -> pd.DataFrame:
        return comparisons(trials, outcome=outcome, shared_control=shared_control, timepoint_class=timepoint_class)

    by = "severity" if trials.trials["severity"].notna().any() else None  # no trial classed: nothing to stratify
    return Source(tuple(str(o) for o in table.columns), outcome_comparisons, (Path(trials_dir),), trials, table,
                  read_review(trials_dir), default_by=by)


def table_source(path: Path, outcome: str | None, measures: tuple[str, ...], label: str | None, by: str | None,
                 mods: tuple[str, ...]) -> Source:
    """A spreadsheet with one row per study (CSV, TSV or .xlsx, :func:`metabac.io.read_study_table`): one outcome,
    named ``outcome`` or after the file. ``label`` names the study-label column (default ``study``); ``by`` and
    ``mods`` are the columns the options use, each required: an unknown column is an error, never ignored. A
    moderator must be numbers; a subgroup column is text (blank cells are missing, not a level)."""
    text = read_text_table(path)
    header = set(text.columns)
    table = read_study_table(text, None if {"yi", "vi"} <= header or {"yi", "sei"} <= header
                             else _arm_measure(header, measures), label=label)
    frame = table.arms
    studies = pd.DataFrame({"study": table.labels or [f"study {i + 1}" for i in range(len(table.yi))]})
    if table.measure is not None:
        for column in ("ai", "bi", "ci", "di", "n1i", "n2i", "m1i", "sd1i", "m2i", "sd2i"):
            if column in frame.columns:
                studies[column] = numeric_column(frame, column)
    if {"ai", "bi"} <= set(studies) and "n1i" not in studies:
        studies["n1i"], studies["n2i"] = studies["ai"] + studies["bi"], studies["ci"] + studies["di"]
    studies["yi"], studies["vi"] = table.yi, table.vi
    if table.years is not None:
        studies["year"] = table.years
    if by is not None:
        cells = table.column(by, "--by").str.strip()
        if (cells == "").all():
            raise InputError(f"{path}: --by {by}: every cell is empty (missing values are not a subgroup)")
        studies[by] = cells.where(cells != "", None).to_numpy(dtype=object)
    for column in mods:
        studies[column] = table.numbers(column, "--mods")
    studies.attrs["excluded"] = []
    studies.attrs["measure"] = table.measure or (measures[0] if measures else None)
    return Source((outcome or Path(path).stem,), lambda _: studies, (Path(path),))


def measure_for(kind: str, outcome: str, measures: tuple[str, ...]) -> str:
    """The measure of an outcome of ``kind`` ("binary" or "continuous"): the one of ``measures`` that fits that
    kind, RR or MD when ``measures`` is empty. A choice of measures none of which fits is an InputError naming the
    outcome, never replaced by a default."""
    valid = BINARY_MEASURES if kind == "binary" else CONTINUOUS_MEASURES
    fitting = [m for m in measures if m in valid]
    if fitting:
        return fitting[0]
    if measures:
        raise InputError(f"{outcome}: --measure {', '.join(measures)} does not fit its {kind} data (give one of "
                         f"{', '.join(valid)} too, or leave the outcome out with --outcome)")
    return "RR" if kind == "binary" else "MD"


def _arm_measure(header: set[str], measures: tuple[str, ...]) -> str:
    """The measure for arm-level columns: the one given that fits them, else the report's default (RR for
    binary, MD for continuous arms); one that does not fit is an error."""
    kind = "continuous" if {"m1i", "sd1i", "m2i", "sd2i"} <= header else "binary"
    return measure_for(kind, "the spreadsheet", measures)
