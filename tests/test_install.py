"""Works anywhere: the bundled trial records are found from any directory, and `python -m metabac` runs."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import metabac as mb

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = Path(sys.executable).parent / "metabac"  # the installed entry point of the environment running the tests


def test_bundled_trials_are_the_repository_records_in_a_checkout() -> None:
    """The editable install (and a source checkout) reads the canonical trials/ folder itself."""
    assert mb.bundled_trials() == ROOT / "trials"


def test_the_installed_entry_point_lists_the_bundled_trials_from_any_directory(tmp_path: Path) -> None:
    result = subprocess.run([str(SCRIPT), "trials", "list"], cwd=tmp_path, capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert "hauser2017" in result.stdout and len(result.stdout.splitlines()) == 1 + len(mb.load_trials())
    assert list(tmp_path.iterdir()) == []


def test_python_dash_m_runs_the_command_line(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "metabac", "reproduce", "normand1999_hine", "--json"],
                            cwd=tmp_path, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert '"verdict": "reproduced"' in result.stdout


def test_library_defaults_use_the_bundled_trials(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert list(mb.load_trials().records) == list(mb.load_trials(ROOT / "trials").records)
    assert set(mb.reproduce(["normand1999_hine"]).verdict) == {"reproduced"}


def test_every_trial_file_is_package_data() -> None:
    """pyproject.toml installs trials/ as metabac.bundled: its globs must cover every file (a new subfolder of
    published/ would otherwise be missing from a regular install)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    assert config["package-dir"]["metabac.bundled"] == "trials"
    patterns = config["package-data"]["metabac.bundled"]
    folder = ROOT / "trials"
    covered = {path for pattern in patterns for path in folder.glob(pattern)}
    assert covered == {path for path in folder.rglob("*") if path.is_file() and "__pycache__" not in path.parts}
    packages = {".".join(path.parent.relative_to(ROOT).parts) for path in (ROOT / "metabac").rglob("*.py")}
    assert packages | {"metabac.bundled"} == set(config["packages"])
