"""Security: data files are data, the report escapes what they say, and read commands write nothing.

Elsewhere: a trial record holding YAML, pickle, template and shell payloads is read as text and runs nothing
(tests/test_trials.py); where ``metabac report --out`` may write, with ``..`` and symlinks (tests/test_report.py);
control characters in data never reach the terminal raw (tests/test_bad_input.py, tests/test_properties.py).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

import metabac as mb
from metabac.cli import cli
from metabac.render import render_html, render_markdown
from metabac.report import ReportOptions, build_report

TRIALS = Path(__file__).resolve().parents[1] / "trials"
HOSTILE = '<script>alert(1)</script><img src=x onerror="alert(2)">&amp;'
HOSTILE_URL = 'https://example.org/"><script>alert(3)</script>'


def _tree(folder: Path) -> dict[str, tuple[int, str]]:
    return {p.relative_to(folder).as_posix(): (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def hostile_trials(tmp_path_factory) -> Path:
    """The shipped records with every quote, citation, title, definition and note carrying markup, and one URL
    that tries to break out of its attribute."""
    folder = tmp_path_factory.mktemp("hostile") / "trials"
    shutil.copytree(TRIALS, folder)
    for path in folder.glob("*.toml"):
        text = path.read_text(encoding="utf-8")
        text = re.sub(r'^(quote|citation|title|definition|notes|authors|population_detail) = "',
                      lambda m: f'{m.group(0)}{json.dumps(HOSTILE)[1:-1]} ', text, flags=re.M)
        text = re.sub(r'(authors = ")', lambda m: f"{m.group(1)}{json.dumps(HOSTILE)[1:-1]} ", text)
        text = re.sub(r'^url = "[^"]*"', f"url = {json.dumps(HOSTILE_URL)}", text, count=1, flags=re.M)
        path.write_text(text, encoding="utf-8")
    return folder


def test_report_escapes_every_text_from_the_trial_files(hostile_trials: Path) -> None:
    trials = mb.load_trials(hostile_trials)
    assert HOSTILE in trials.outcomes["quote"].iloc[0] and HOSTILE_URL in set(trials.outcomes["url"])
    report = build_report(ReportOptions(outcomes=("abstinence",), trials_dir=hostile_trials))
    page = render_html(report, {})
    assert HOSTILE.count("<") and page.count("&lt;script&gt;alert(1)&lt;/script&gt;") > 0
    lowered = page.lower()
    assert "<script" not in lowered and "<img" not in lowered and "onerror=\"" not in lowered
    assert 'href="https://example.org/&quot;&gt;&lt;script&gt;' in page   # the URL stays inside its attribute
    markdown = render_markdown(report)
    assert "<script" not in markdown.lower() and "<img" not in markdown.lower()


def test_urls_other_than_http_are_refused_in_trial_files(tmp_path: Path) -> None:
    text = (TRIALS / "addolorato2002.toml").read_text(encoding="utf-8")
    first = re.search(r'^url = "[^"]*"', text, flags=re.M).group(0)
    (tmp_path / "addolorato2002.toml").write_text(text.replace(first, 'url = "javascript:alert(1)"', 1),
                                                  encoding="utf-8")
    with pytest.raises(mb.InputError, match=r"sources\.reprint_en\.url: 'javascript:alert\(1\)' must match"):
        mb.load_trials(tmp_path)


READ_COMMANDS = [
    ["pool", "data.csv", "--measure", "RR"],
    ["pool", "data.csv", "--measure", "RR", "--json"],
    ["trials", "list", "--trials", "trials"],
    ["trials", "show", "hauser2017", "--trials", "trials"],
    ["trials", "check", "--trials", "trials"],
    ["trials", "schema"],
    ["predictors", "--trials", "trials"],
    ["reproduce", "duan2023_abstinence", "--trials", "trials"],
    ["pool", "../../etc/data.csv"],
    ["trials", "show", "../../addolorato2002", "--trials", "trials"],
    ["reproduce", "../published/duan2023_abstinence", "--trials", "trials"],
]


@pytest.mark.parametrize("args", READ_COMMANDS, ids=[" ".join(a) for a in READ_COMMANDS])
def test_read_commands_write_nothing(args: list[str], tmp_path: Path, monkeypatch) -> None:
    """Run in a folder holding a CSV and a copy of the trials: afterwards every file is as it was, and no file was
    added there or beside it (paths with .. in them name files to read, never places to write)."""
    work = tmp_path / "a" / "b"
    shutil.copytree(TRIALS, work / "trials")
    (work / "data.csv").write_text("study,ai,n1i,ci,n2i\nA,30,42,12,42\nB,6,88,9,92\n", encoding="utf-8")
    monkeypatch.chdir(work)
    before = _tree(tmp_path)
    result = CliRunner().invoke(cli, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    assert _tree(tmp_path) == before


def test_trials_show_and_list_escape_control_characters_from_records(tmp_path: Path) -> None:
    """A record cannot drive the terminal: an escape sequence in a quote or title is printed escaped."""
    text = (TRIALS / "addolorato2002.toml").read_text(encoding="utf-8")
    text = text.replace('title = "Baclofen', 'title = "\\u001b]0;pwned\\u0007Baclofen', 1)
    text = text.replace('quote = "Twenty', 'quote = "\\u001b[2JTwenty', 1)
    (tmp_path / "addolorato2002.toml").write_text(text, encoding="utf-8")
    for args in (["trials", "show", "addolorato2002"], ["trials", "list"]):
        result = CliRunner().invoke(cli, [*args, "--trials", str(tmp_path)])
        assert result.exit_code == 0, result.output
        assert "\x1b" not in result.output and "\x07" not in result.output
    assert "\\x1b]0;pwned\\x07Baclofen" in CliRunner().invoke(
        cli, ["trials", "show", "addolorato2002", "--trials", str(tmp_path)]).output
