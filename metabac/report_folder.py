"""Own a report folder safely: prove what metabac wrote there, and replace a report in a recoverable switch-over.

The rules (docs/bad_input.md, "What `metabac report` may touch"):

- **Ownership is proven, never guessed.** Each report writes a manifest, ``.metabac-manifest.json``, listing every
  file it wrote (with its SHA-256) and every folder. An entry of the output folder named like a report entry
  (``data/``, ``figures/``, ``report.html|md|json``) is replaced or removed only if the manifest lists it and its
  content still matches: a file changed since, a file added to ``data/``, or a symlink (metabac writes none) makes
  the run refuse, naming the entry, before anything is written. Every other entry of the folder is never touched.
- **One switch-over, recoverable.** The new report is written to a staging folder ``.metabac-staging-*`` *inside*
  the output folder (so a writable output folder works under a read-only parent). The journal
  ``.metabac-journal.json`` names each staging folder before it is created and, during the switch, the entries
  being moved. The switch retires the old entries into the staging folder, moves the new ones in and replaces the
  manifest last. A run killed at any point is completed by the next run (roll forward: every step checks what is
  already done), and staging folders the journal names are removed then; a staging folder is never left by a run
  that ends normally, failed or not.
- **One writer at a time.** An exclusive lock on ``.metabac-lock`` (``fcntl.flock`` where the platform has it)
  is held from the ownership check to the end of the switch; a second writer is refused with a one-line error.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from metabac._checks import InputError

MANIFEST = ".metabac-manifest.json"
JOURNAL = ".metabac-journal.json"
LOCK = ".metabac-lock"
STAGING_PREFIX = ".metabac-staging-"
RETIRED = ".retired"
REPORT_ENTRIES = ("data", "figures", "report.html", "report.md", "report.json")
_STAGING_NAME = re.compile(re.escape(STAGING_PREFIX) + r"[0-9a-f]{16}")
_MANIFEST_KIND = "metabac report manifest"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Manifest:
    """What one report wrote: ``files`` maps each path (relative, with ``/``) to its SHA-256; ``folders`` lists
    the folders. Only top-level names in :data:`REPORT_ENTRIES` are ever recorded."""

    files: dict[str, str]
    folders: tuple[str, ...]

    @classmethod
    def of(cls, folder: Path) -> Manifest:
        """The manifest of the report entries written in ``folder`` (a staging folder)."""
        files: dict[str, str] = {}
        folders: list[str] = []
        for name in REPORT_ENTRIES:
            top = folder / name
            if top.is_dir():
                folders.append(name)
                for path in sorted(top.rglob("*")):
                    key = path.relative_to(folder).as_posix()
                    if path.is_dir():
                        folders.append(key)
                    else:
                        files[key] = _sha256(path)
            elif top.is_file():
                files[name] = _sha256(top)
        return cls(files, tuple(folders))

    def to_json(self) -> str:
        return json.dumps({"kind": _MANIFEST_KIND, "files": self.files, "folders": list(self.folders)}, indent=1,
                          sort_keys=True)

    @classmethod
    def read(cls, out: Path) -> Manifest | None:
        """The manifest in ``out``, None if there is none; InputError if it is not one metabac could have written."""
        path = out / MANIFEST
        if not path.exists() and not path.is_symlink():
            return None
        problem = f"{path}: not a manifest written by metabac; move it or choose another --out"
        if path.is_symlink() or not path.is_file():
            raise InputError(problem)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise InputError(problem) from error
        if not (isinstance(data, dict) and data.get("kind") == _MANIFEST_KIND
                and isinstance(data.get("files"), dict) and isinstance(data.get("folders"), list)
                and all(isinstance(k, str) and isinstance(v, str) for k, v in data["files"].items())
                and all(isinstance(f, str) for f in data["folders"])
                and all(_is_report_path(p) for p in [*data["files"], *data["folders"]])):
            raise InputError(problem)
        return cls(dict(data["files"]), tuple(data["folders"]))

    def proves(self, out: Path, name: str) -> str | None:
        """None if the entry ``out/name`` is exactly what this manifest records; else why it is not."""
        top = out / name
        if top.is_symlink():
            return f"{name} is a symlink, which metabac never writes"
        if top.is_file():
            return None if self.files.get(name) == _sha256(top) else f"{name} was not written by metabac or has " \
                "changed since"
        if not top.is_dir():
            return f"{name} is not a regular file or folder"
        if name not in self.folders:
            return f"{name}/ was not written by metabac"
        for path in sorted(top.rglob("*")):
            key = path.relative_to(out).as_posix()
            if path.is_symlink() or not (path.is_dir() and key in self.folders
                                         or path.is_file() and self.files.get(key) == _sha256(path)):
                return f"{key} was not written by metabac or has changed since"
        return None


def _is_report_path(path: str) -> bool:
    parts = path.split("/")
    return parts[0] in REPORT_ENTRIES and all(p not in ("", ".", "..") for p in parts)


def owned_entries(out: Path) -> tuple[str, ...]:
    """The report entries present in ``out``, each proven to be metabac's by the manifest; InputError naming the
    first entry that is not (a user's ``data/``, a changed ``report.md``, a symlink)."""
    present = [name for name in REPORT_ENTRIES if (out / name).exists() or (out / name).is_symlink()]
    if not present:
        return ()
    manifest = Manifest.read(out)
    for name in present:
        reason = (f"{name} exists and no metabac report was written here before ({MANIFEST} missing)"
                  if manifest is None else manifest.proves(out, name))
        if reason:
            raise InputError(f"{out}: --out: {reason}; it would be replaced, so move it or choose another --out")
    return tuple(present)


def check_replaceable(out: Path) -> None:
    """Read-only check, before any analysis runs, that a report may be written to ``out``: every report entry
    there is proven metabac's, or a switch-over the journal records is pending (the next write completes it
    first, then checks again under the lock)."""
    if _Journal.read(out).switch is None:
        owned_entries(out)


@dataclass
class _Journal:
    """The journal: staging folders created (so a killed run's are found) and the switch under way, if any."""

    out: Path
    staging: list[str]
    switch: dict | None

    @classmethod
    def read(cls, out: Path) -> _Journal:
        path = out / JOURNAL
        if not path.exists() and not path.is_symlink():
            return cls(out, [], None)
        problem = f"{path}: not a journal written by metabac; move it or choose another --out"
        try:
            data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() and not path.is_symlink() else None
        except (UnicodeDecodeError, json.JSONDecodeError):
            data = None
        if not (isinstance(data, dict) and isinstance(data.get("staging"), list)
                and all(isinstance(s, str) and _STAGING_NAME.fullmatch(s) for s in data["staging"])):
            raise InputError(problem)
        switch = data.get("switch")
        if switch is not None and not (
                isinstance(switch, dict) and switch.get("staging") in data["staging"]
                and all(isinstance(switch.get(k), list) and all(n in REPORT_ENTRIES for n in switch[k])
                        for k in ("old", "new"))):
            raise InputError(problem)
        return cls(out, list(data["staging"]), switch)

    def save(self) -> None:
        """Write the journal atomically (a new temporary file, created exclusively so that nothing of the user's is
        ever written through, renamed over it); remove it when it holds nothing."""
        path = self.out / JOURNAL
        if not self.staging and self.switch is None:
            path.unlink(missing_ok=True)
            return
        descriptor, temporary = tempfile.mkstemp(prefix=f"{JOURNAL}.", dir=self.out)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump({"staging": self.staging, "switch": self.switch}, handle)
        os.replace(temporary, path)


@contextmanager
def _exclusive_lock(out: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``out/.metabac-lock`` (created if missing, never followed if a symlink)."""
    try:
        import fcntl
    except ImportError:  # no flock on this platform: one writer at a time is then the user's to ensure
        yield
        return
    descriptor = os.open(out / LOCK, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(f"{out}: --out: another metabac report is being written here; wait for it to "
                             "finish") from None
        yield
    finally:
        os.close(descriptor)


def _retire(out: Path, staging: Path, name: str) -> None:
    (staging / RETIRED).mkdir(exist_ok=True)
    os.replace(out / name, staging / RETIRED / name)


def _roll_forward(journal: _Journal) -> None:
    """Complete the switch the journal records (idempotent: each step checks whether it was done)."""
    out, switch = journal.out, journal.switch
    assert switch is not None
    staging = out / switch["staging"]
    if not staging.is_dir():
        raise InputError(f"{out}: --out: an interrupted report's staging folder {staging.name} is missing; "
                         f"remove {JOURNAL} and the report entries by hand")
    new = set(switch["new"])
    for name in switch["old"]:
        not_yet_replaced = name not in new or (staging / name).exists()
        if not_yet_replaced and (out / name).exists() and not (staging / RETIRED / name).exists():
            _retire(out, staging, name)
    for name in switch["new"]:
        if (staging / name).exists():
            os.replace(staging / name, out / name)
    if (staging / MANIFEST).exists():
        os.replace(staging / MANIFEST, out / MANIFEST)
    journal.switch = None
    journal.save()


def _remove_staging(journal: _Journal, name: str) -> None:
    shutil.rmtree(journal.out / name, ignore_errors=True)
    journal.staging.remove(name)
    journal.save()


def _recover(journal: _Journal) -> None:
    """Finish an interrupted switch and remove every staging folder the journal names (all are stale: the lock
    is held)."""
    if journal.switch is not None:
        _roll_forward(journal)
    for name in list(journal.staging):
        _remove_staging(journal, name)


@contextmanager
def staged_report(out: Path) -> Iterator[Path]:
    """Yield an empty staging folder inside ``out``; when the block ends without error, the report written into
    it replaces the previous one in ``out`` (see the module docstring). ``out`` must exist.

    The old report's entries are proven to be metabac's before the block runs; on an error in the block the
    staging folder is removed and ``out`` is as it was.
    """
    with _exclusive_lock(out):
        journal = _Journal.read(out)
        _recover(journal)
        old = owned_entries(out)
        name = STAGING_PREFIX + os.urandom(8).hex()
        journal.staging.append(name)
        journal.save()
        staging = out / name
        try:
            staging.mkdir()
            yield staging
            (staging / MANIFEST).write_text(Manifest.of(staging).to_json(), encoding="utf-8")
        except BaseException:
            _remove_staging(journal, name)
            raise
        journal.switch = {"staging": name, "old": list(old),
                          "new": [n for n in REPORT_ENTRIES if (staging / n).exists()]}
        journal.save()
        _roll_forward(journal)
        _remove_staging(journal, name)
