"""The tables of bad input, one per kind of input, each a list of (kind, how to make it, ..., fragment of the
one-line message). Each table is run by the test file named above it; ``tests/test_bad_input.py`` lists every kind
of every table in docs/bad_input.md and keeps that page current."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

TRIALS = Path(__file__).resolve().parents[2] / "trials"
EXAMPLE = TRIALS / "addolorato2002.toml"

# --- CSV files: tests/test_cli_pool.py ---------------------------------------------------------------------------

# (kind, file contents, options, fragment of the one-line message); the file is data.csv in the working folder.
BINARY = "study,ai,n1i,ci,n2i\n"
CSV_CASES = [
    ("text in a number column", BINARY + "A,30,42,x,42\n", ["--measure", "RR"],
     "data.csv: row 2: ci: not a number: 'x'"),
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
    ("row with more fields than the header", "yi,vi\n0.1,0.2,5\n", [],
     "data.csv: row 2: has 3 fields, the header has 2"),
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
    ("--method MH on continuous data", "m1i,sd1i,n1i,m2i,sd2i,n2i\n5,1,10,4,1,10\n",
     ["--measure", "MD", "--method", "MH"],
     "--method MH: needs --measure OR or RR or RD with binary arm columns"),
    ("--method PETO with --by", BINARY + "A,3,10,1,10\n", ["--measure", "OR", "--method", "PETO", "--by", "study"],
     "--method PETO: --by and --mods fit inverse-variance models"),
]


# --- Excel workbooks: tests/test_cli_spreadsheet.py ---------------------------------------------------------------

# (kind, rows of the sheet, saved formula values, change to the workbook, options, fragment of the message); the
# file is data.xlsx in an empty working folder.
XLSX_CASES = [
    ("text cell in a number column", [["study", "yi", "vi"], ["A", 0.1, 0.02], ["B", "n/a", 0.03]], (), None, [],
     "data.xlsx: row 3: yi: not a number: 'n/a'"),
    ("empty required cell", [["yi", "vi"], [0.1, 0.02], [0.3, None]], (), None, [],
     "data.xlsx: row 3: vi: not a number: '(empty)'"),
    ("error value of a formula", [["yi", "vi"], [0.1, "=1/0"]], ["#DIV/0!"], None, [],
     "data.xlsx: row 2: vi: not a number: '#DIV/0!'"),
    ("formula without a saved value", [["yi", "vi"], [0.1, "=0.01*2"]], (), None, [],
     "data.xlsx: row 2: vi: formula '=0.01*2' has no saved value"),
    ("merged header cells", [["effect", None], ["yi", "vi"], [0.1, 0.02]], (),
     lambda book: book.active.merge_cells("A1:B1"), [], "data.xlsx: row 1: cells A1:B1 are merged (the header)"),
    ("a date in a number column", [["yi", "vi"], [pd.Timestamp("2020-01-02").to_pydatetime(), 0.02]], (), None, [],
     "data.xlsx: row 2: yi: not a number: '2020-01-02T00:00:00'"),
    ("missing column", [["yi", "var"], [0.1, 0.02]], (), None, [],
     "data.xlsx: missing column vi (or give --measure with arm-level columns; the header has 'yi', 'var')"),
]


# --- trial files: tests/test_trials.py ---------------------------------------------------------------------------

# (kind, text in addolorato2002.toml, its replacement, fragment of the message after "<file>: ").
BROKEN_CASES = [
    ("TOML syntax error", 'id = "addolorato2002"', 'id = "addolorato2002', "TOML syntax error"),
    ("key given twice", 'country = "Italy"', 'country = "Italy"\ncountry = "Spain"',
     "TOML syntax error: Cannot overwrite a value"),
    ("arm declared twice", "[arms.placebo]\nrole", "[arms.baclofen]\nrole",
     "TOML syntax error: Cannot declare ('arms', 'baclofen') twice"),
    ("unknown field", 'country = "Italy"', 'country = "Italy"\ncolour = "blue"', "colour: unknown field"),
    ("missing required field", 'title = "Baclofen efficacy', 'subtitle = "Baclofen efficacy',
     "subtitle: unknown field"),
    ("wrong type", "randomised = 20", 'randomised = "twenty"',
     "arms.baclofen.randomised: must be an integer, got 'twenty'"),
    ("value not among the choices", 'control = "placebo"', 'control = "homeopathy"',
     "design.control: 'homeopathy' is not one of placebo, active"),
    ("NaN number", "mean = 17.6", "mean = nan", "baseline[0].mean: must be finite, got nan"),
    ("negative value", "mean = 17.6", "mean = -17.6", "baseline[0].mean: -17.6 is below the minimum 0"),
    ("badly formed arm name", "[arms.placebo]", '[arms."Placebo!"]',
     "arms.Placebo!: names are lower case letters, digits and _"),
    ("arm name ending in a line break", "[arms.placebo]", '[arms."placebo\\n"]',
     "arms.placebo\\n: names are lower case letters, digits and _"),
    ("url ending in a line break", 'url = "http://pharmpdf.com/s/stratus.pe1.html"',
     'url = "http://pharmpdf.com/s/stratus.pe1.html\\n"',
     "sources.pdf.url: 'http://pharmpdf.com/s/stratus.pe1.html\\n' must match"),
    ("number without a source", 'events = 14\nn = 20\npercent = 70.0\nsource = "reprint_de"\n',
     "events = 14\nn = 20\npercent = 70.0\n", "outcomes.abstinence.arms.baclofen.source: missing"),
    ("source not declared", 'events = 14\nn = 20\npercent = 70.0\nsource = "reprint_de"',
     'events = 14\nn = 20\npercent = 70.0\nsource = "nowhere"', "'nowhere' is not a key of [sources]"),
    ("dose arm pointing at a missing placebo arm", 'compared_with = "placebo"', 'compared_with = "placebo_b"',
     "arms.baclofen.compared_with: 'placebo_b' is not a control arm of this trial"),
    ("no experimental arm", 'role = "experimental"\ndrug = "baclofen"\ncompared_with = "placebo"',
     'role = "control"\ndrug = "baclofen"', "arms: no experimental arm"),
    ("result for an unknown arm", "[outcomes.abstinence.arms.placebo]", "[outcomes.abstinence.arms.placebo2]",
     "'placebo2' is not an arm of this trial"),
    ("unknown outcome", "[outcomes.dropout]", "[outcomes.happiness]", "outcomes.happiness: unknown name"),
    ("events above n", "events = 14\nn = 20", "events = 24\nn = 20", "events: 24 is above n = 20"),
    ("percent disagrees with count", "percent = 70.0", "percent = 75.0",
     "percent: 75.0 does not match events/n = 14/20"),
    ("n above randomised", "events = 6\nn = 20", "events = 6\nn = 25", "n: 25 is above the 20 randomised"),
    ("id differs from file name", 'id = "addolorato2002"', 'id = "addolorato2003"', "differs from the file name"),
    ("integer beyond 1e308", "mean = 17.6", "mean = 1" + "0" * 400, "baseline[0].mean: a number beyond 1e308"),
    ("arrays nested too deeply", 'country = "Italy"', 'country = "Italy"\nx = ' + "[" * 5000 + "]" * 5000,
     "TOML syntax error: arrays or tables nested too deeply"),
]


def _not_utf8(folder: Path) -> None:
    (folder / "addolorato2002.toml").write_bytes(EXAMPLE.read_text(encoding="utf-8").encode("latin-1", "replace")
                                                 .replace(b"Abh", b"Abh\xe4"))


# (kind, how to make the folder, fragment of the message)
FOLDER_CASES = [
    ("trials folder missing", None, "nowhere: trials folder not found"),
    ("trials folder without records", lambda folder: (folder / "notes.txt").write_text("x"),
     "no trial records (*.toml)"),
    ("trial file not UTF-8", _not_utf8, "addolorato2002.toml: not UTF-8 text"),
    ("named pipe named like a trial file", lambda folder: os.mkfifo(folder / "pipe.toml"),
     "pipe.toml: not a regular file (a named pipe)"),
]


# --- report output folders: tests/test_report.py -----------------------------------------------------------------

def blocker(tmp_path: Path) -> Path:
    (tmp_path / "file").write_text("not a folder")
    return tmp_path / "file"


def _users_data(tmp_path: Path) -> Path:
    (tmp_path / "mine" / "data").mkdir(parents=True)
    (tmp_path / "mine" / "data" / "thesis.csv").write_text("my own numbers")
    return tmp_path / "mine"


def _inside_trials(tmp_path: Path) -> Path:
    (tmp_path / "no-trials").mkdir()
    return tmp_path / "elsewhere" / ".." / "no-trials" / "reports"


def _read_only(tmp_path: Path, monkeypatch) -> Path:
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "mkdir", refuse)   # tests run as root: chmod would not stop them
    return tmp_path / "reports"


def _users_notes(tmp_path: Path) -> Path:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "report.md").write_text("# My notes\nI pooled these trials with metabac.\n")
    return tmp_path / "mine"


def _around_trials(tmp_path: Path) -> Path:
    (tmp_path / "no-trials").mkdir()
    return tmp_path


ORIGINAL_WRITE_TEXT = Path.write_text


def _disk_full(tmp_path: Path, monkeypatch) -> Path:
    def full(self, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full)  # the first CSV; figures and folders exist by then
    return tmp_path / "reports"


# (kind, how to make the output path, fragment of the message after "<resolved out>: --out: "); the report is
# support.reports.crafted_report(tmp), whose trials folder is tmp/no-trials.
OUTPUT_CASES = [
    ("output folder under a file", lambda tmp, mp: blocker(tmp) / "reports", "/file is a file, not a folder"),
    ("output path is a file", lambda tmp, mp: blocker(tmp), "is a file, not a folder"),
    ("output folder inside the trials folder", lambda tmp, mp: _inside_trials(tmp),
     "is inside the input"),
    ("output folder containing the trials folder", lambda tmp, mp: _around_trials(tmp), "contains the input"),
    ("output folder holding other data", lambda tmp, mp: _users_data(tmp),
     "data exists and no metabac report was written here before"),
    ("output folder holding a report.md metabac did not write", lambda tmp, mp: _users_notes(tmp),
     "report.md exists and no metabac report was written here before"),
    ("output folder that cannot be written", _read_only, "cannot write the report (Permission denied)"),
    ("disk full while writing", _disk_full, "cannot write the report (No space left on device)"),
]


# --- the registry of published analyses: tests/test_reproduce.py -------------------------------------------------

# (kind, text in normand1999_hine.toml, its replacement, fragment of the message after "<file>: ").
HINE_FIXED = 'published = { estimate = "2.9444"'
REGISTRY_CASES = [
    ("published value infinite", HINE_FIXED, 'published = { estimate = "inf"',
     "analyses[0].published.estimate: not a printed number: 'inf'"),
    ("published value NaN", HINE_FIXED, 'published = { estimate = "nan"',
     "analyses[0].published.estimate: not a printed number: 'nan'"),
    ("published values not a table", HINE_FIXED + ', ci_low = "0.3831", ci_high = "5.5058" }', 'published = "2.9444"',
     "analyses[0].published: must be a table, got '2.9444'"),
    ("arm column shorter than the studies", "ai = [2, 4, 6, 7, 7, 11]", "ai = [2, 4, 6, 7, 7]",
     "inputs.ai: 5 values for 6 studies"),
    ("fewer study labels than arm data", 'study = ["1", "2", "3", "4", "5", "6"]', 'study = ["1", "2", "3", "4", "5"]',
     "inputs.ai: 6 values for 5 studies"),
    ("arm value given as text", "ai = [2, 4,", 'ai = ["2", 4,', "inputs.ai[0]: must be a finite number, got '2'"),
    ("unknown arm column", "n1i = [39,", "n1 = [39,", "inputs.n1: unknown key"),
    ("multiplier not a number", "multiplier = 100", 'multiplier = "100x"',
     "analyses[0].multiplier: must be a finite number, got '100x'"),
    ("measure not among the choices", 'measure = "RD"', "measure = 5",
     "measure: must be one of OR, RR, RD, PETO, MD, SMD, ROM, got 5"),
    ("level outside (0, 100)", 'model = "fixed"', 'model = "fixed"\nlevel = 150',
     "analyses[0].level: must be in (0, 100) percent, got 150"),
    ("unknown model", 'model = "fixed"', 'model = "mixed"',
     "analyses[0].model: must be one of random, fixed, got 'mixed'"),
    ("overrides not an array of tables", 'expect = "reproduced"', 'expect = "reproduced"\noverrides = "none"',
     "overrides: must be an array of tables ([[...]])"),
]
