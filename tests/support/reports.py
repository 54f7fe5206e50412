"""A report over made-up comparisons (:func:`crafted_report`), the bundled trials folder, and a snapshot of a
folder (:func:`tree`), for the tests of ``metabac report`` and of its output folder."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pandas as pd

from metabac.report import Report, ReportOptions, analyse_outcome, run_stamp, sensitivity_of

HOSTILE = "<script>alert(1)</script>"
TRIALS = Path(__file__).resolve().parents[2] / "trials"


def crafted_report(tmp_path: Path, label: str = "Hauser 2017") -> Report:
    """A report over made-up comparisons (one binary, one continuous outcome) with full provenance columns."""
    binary = pd.DataFrame({
        "study": ["Addolorato 2007", label, "Garbutt 2010", "Beraha 2016"],
        "ai": [30, 6, 10, 20], "n1i": [42, 88, 40, 100], "ci": [12, 9, 9, 18], "n2i": [42, 92, 40, 100],
        "severity": ["heavy", "moderate", "moderate", "heavy"],
        "quote": ["30 (71%) of 42 vs 12 (29%) of 42", f"quote {HOSTILE}", "10/40 vs 9/40", "20/100 vs 18/100"],
        "citation": ["Lancet 2007", "c2", "c3", "c4"], "url": ["https://example.org/a", "", "", ""],
        "derived": [None, "events from percent", None, None],
        "source_kind": ["abstract", "primary", "primary", "secondary"]})
    continuous = pd.DataFrame({
        "study": ["Addolorato 2007", "Garbutt 2010", label], "m1i": [62.8, 50.0, 40.0], "sd1i": [35.0, 25.0, 22.0],
        "n1i": [42, 40, 88], "m2i": [30.8, 45.0, 41.0], "sd2i": [35.6, 24.0, 20.0], "n2i": [42, 40, 92],
        "severity": ["heavy", "moderate", "moderate"], "quote": ["mean 62.8 [SE 5.4] vs 30.8 [5.5]", "q", "q"]})
    options = ReportOptions(trials_dir=tmp_path / "no-trials", by="severity")
    analyses = tuple(replace(a, sensitivity=sensitivity_of(a, options)) for a in (
        analyse_outcome(binary, "abstinence", options), analyse_outcome(continuous, "cad_days", options)))
    coverage = pd.DataFrame({"abstinence": [True, True, True, True], "cad_days": [True, True, False, True]},
                            index=pd.Index(["Addolorato 2007", "Garbutt 2010", "Beraha 2016", label], name="trial"))
    return Report(options, coverage, analyses, (("pda", "1 trial(s) report it, fewer than 2"),), None,
                  "no registry of published analyses", run_stamp(options))


def tree(folder: Path) -> dict[str, bytes | str]:
    """Every entry below ``folder`` (not following symlinks): file bytes, link targets, folders."""
    entries: dict[str, bytes | str] = {}
    for path in sorted(folder.rglob("*")):
        key = path.relative_to(folder).as_posix()
        entries[key] = (f"-> {os.readlink(path)}" if path.is_symlink() else "dir" if path.is_dir()
                        else path.read_bytes())
    return entries


def files_of(folder: Path) -> dict[Path, tuple[bytes, int]]:
    """Every file below ``folder`` (``__pycache__`` aside) with its bytes and modification time."""
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts}
