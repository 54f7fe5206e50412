"""What ``metabac report`` may touch: ownership proven by the manifest, one recoverable switch-over, one writer at
a time, nothing written outside ``--out`` (issue 15, data loss)."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from support.reports import TRIALS, crafted_report, tree

import metabac as mb
from metabac import report_files, report_folder
from metabac.cli import cli
from metabac.report import git_revision
from metabac.report_files import write_report


@pytest.fixture
def report(tmp_path: Path):
    return crafted_report(tmp_path)


pytestmark = pytest.mark.usefixtures("no_figures")   # where files go, not what the figures show


def _report_entries(out: Path) -> dict[str, bytes | str]:
    return {k: v for k, v in tree(out).items() if k.split("/")[0] in report_folder.REPORT_ENTRIES}


def test_manifest_lists_every_file_written_with_its_hash(report, tmp_path: Path):
    out = write_report(report, tmp_path / "reports")
    manifest = json.loads((out / ".metabac-manifest.json").read_text())
    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()
             and p.name not in (".metabac-manifest.json", ".metabac-lock")}
    assert set(manifest["files"]) == files
    assert manifest["files"]["report.md"] == report_folder._sha256(out / "report.md")
    assert sorted(manifest["folders"]) == ["data", "figures"]


@pytest.mark.parametrize("change", ["edit report.md", "add a file to data/", "add a folder to figures/"])
def test_an_entry_changed_since_metabac_wrote_it_is_never_replaced(report, tmp_path: Path, change: str):
    out = write_report(report, tmp_path / "reports")
    if change == "edit report.md":
        (out / "report.md").write_text("my edits")
    elif change == "add a file to data/":
        (out / "data" / "thesis.csv").write_text("my own numbers")
    else:
        (out / "figures" / "drafts").mkdir()
    before = tree(tmp_path)
    with pytest.raises(mb.InputError, match="was not written by metabac or has changed since"):
        write_report(report, out)
    assert tree(tmp_path) == before


def test_a_forged_manifest_path_is_refused(report, tmp_path: Path):
    out = write_report(report, tmp_path / "reports")
    manifest = json.loads((out / ".metabac-manifest.json").read_text())
    manifest["files"]["../elsewhere.txt"] = "0" * 64
    (out / ".metabac-manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(mb.InputError, match="not a manifest written by metabac"):
        write_report(report, out)


def test_fewer_formats_remove_the_previous_run_s_entries(report, tmp_path: Path):
    out = write_report(report, tmp_path / "reports")
    write_report(report, out, formats=["json"])
    assert not (out / "report.html").exists() and not (out / "report.md").exists()
    assert (out / "report.json").is_file()


def test_the_trials_folder_inside_an_earlier_report_is_never_deleted(tmp_path: Path):
    """`report --trials proj/data/trials --out proj` deleted every record (exit 0)."""
    project = tmp_path / "proj"
    shutil.copytree(TRIALS, project / "data" / "trials")
    before = tree(tmp_path)
    result = CliRunner().invoke(cli, ["report", "--trials", str(project / "data" / "trials"), "--out",
                                      str(project), "--quiet"])
    assert result.exit_code == 1 and "contains the input" in result.output
    assert tree(tmp_path) == before


def test_root_as_out_is_a_one_line_error(tmp_path: Path):
    result = CliRunner().invoke(cli, ["report", "--trials", str(TRIALS), "--out", "/", "--quiet"])
    assert result.exit_code == 1 and result.output.startswith("Error: /: --out: contains the input")
    assert "internal error" not in result.output


def _interrupt_after(monkeypatch, calls: int) -> None:
    """Make the ``calls``-th os.replace of the switch-over raise KeyboardInterrupt (a kill between renames)."""
    real, seen = os.replace, {"n": 0}

    def replace(source, target):
        if report_folder.STAGING_PREFIX in str(source) + str(target) and Path(target).name != report_folder.MANIFEST:
            seen["n"] += 1
            if seen["n"] == calls:
                raise KeyboardInterrupt
        return real(source, target)

    monkeypatch.setattr(report_folder.os, "replace", replace)


@pytest.mark.parametrize("calls", [1, 4, 6, 9])  # 4 entries retired, then 5 moved in
def test_a_switch_over_killed_between_renames_is_completed_by_the_next_run(report, tmp_path: Path, monkeypatch,
                                                                          calls: int):
    out = write_report(report, tmp_path / "reports", formats=["md", "json"])
    (out / "README.md").write_text("kept")
    _interrupt_after(monkeypatch, calls)
    with pytest.raises(KeyboardInterrupt):
        write_report(report, out)
    assert (out / ".metabac-journal.json").is_file()   # the switch is recorded, so it can be finished
    monkeypatch.undo()
    monkeypatch.setattr(report_files, "drawings", lambda report: {})
    write_report(report, out, formats=["html"])
    names = sorted(p.name for p in out.iterdir())
    assert names == [".metabac-lock", ".metabac-manifest.json", "README.md", "data", "figures", "report.html"]
    assert (out / "README.md").read_text() == "kept"
    manifest = report_folder.Manifest.read(out)
    assert all(manifest.proves(out, name) is None for name in ("data", "figures", "report.html"))


def test_a_staging_folder_of_a_killed_run_is_removed_by_the_next(report, tmp_path: Path, monkeypatch):
    out = tmp_path / "reports"
    monkeypatch.setattr(report_folder, "_remove_staging", lambda journal, name: None)  # as after SIGKILL

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(report_files, "_write_all", killed)
    with pytest.raises(KeyboardInterrupt):
        write_report(report, out)
    assert [p.name for p in out.iterdir() if p.name.startswith(report_folder.STAGING_PREFIX)]
    monkeypatch.undo()
    monkeypatch.setattr(report_files, "drawings", lambda report: {})
    write_report(report, out)
    assert not [p for p in out.iterdir() if p.name.startswith(report_folder.STAGING_PREFIX)]
    assert not (out / ".metabac-journal.json").exists()


def test_the_staging_folder_is_inside_out_so_a_read_only_parent_does_not_matter(report, tmp_path: Path,
                                                                               monkeypatch):
    folders = []
    real = report_files._write_all
    monkeypatch.setattr(report_files, "_write_all",
                        lambda rep, folder, *a: (folders.append(folder), real(rep, folder, *a)))
    out = write_report(report, tmp_path / "reports")
    assert [f.parent for f in folders] == [out]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reports"]


def test_a_second_writer_is_refused_while_the_first_holds_the_folder(report, tmp_path: Path):
    out = write_report(report, tmp_path / "reports")
    before = tree(tmp_path)
    descriptor = os.open(out / ".metabac-lock", os.O_RDWR)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        with pytest.raises(mb.InputError, match="another metabac report is being written here"):
            write_report(report, out)
    finally:
        os.close(descriptor)
    assert tree(tmp_path) == before


def test_a_failure_in_the_writing_leaves_the_previous_report_whole(report, tmp_path: Path, monkeypatch):
    out = write_report(report, tmp_path / "reports")
    before = tree(tmp_path)

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(report_files, "render_html", fail)
    with pytest.raises(mb.InputError, match="No space left on device"):
        write_report(report, out)
    assert tree(tmp_path) == before


def _git(folder: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=folder, check=True,
                   capture_output=True)


def test_the_git_stamp_never_rewrites_the_index(tmp_path: Path):
    """`git describe --dirty` refreshes .git/index; the stamp uses read-only commands."""
    package = tmp_path / "metabac"
    package.mkdir()
    (package / "x.py").write_text("a\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "x")
    stamp = os.stat(package / "x.py").st_mtime_ns
    (package / "x.py").write_text("a\n")                       # same content, new stat data: the index is stale
    os.utime(package / "x.py", ns=(stamp + 10**9, stamp + 10**9))
    index = (tmp_path / ".git" / "index").read_bytes()
    assert git_revision(package) is not None and not git_revision(package).endswith("-dirty")
    assert (tmp_path / ".git" / "index").read_bytes() == index
    (package / "x.py").write_text("b\n")
    assert git_revision(package).endswith("-dirty")
    assert (tmp_path / ".git" / "index").read_bytes() == index


def test_a_package_inside_another_repository_reports_no_commit(tmp_path: Path):
    _git(tmp_path, "init", "-q")
    (tmp_path / "site-packages" / "metabac").mkdir(parents=True)
    assert git_revision(tmp_path / "site-packages" / "metabac") is None
