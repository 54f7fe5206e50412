"""``metabac init DIR``: a new review folder for the user's own topic: a ``review.toml`` with the question, the
declared outcomes and the candidate predictors, a README, and example trial records that ``metabac trials check``
and ``metabac report`` accept.

The example records hold real published numbers, not made-up ones: four randomised trials of the BCG vaccine data
set of Colditz et al. (JAMA 1994;271(9):698-702) as distributed in R's metadat package (``dat.bcg``, the data set
metafor's documentation analyses), each number with that source and the data set's row as its quote.

The folder appears whole or not at all: everything is written into a hidden folder beside it, which is then
renamed into place; an existing folder that is not empty is refused, and nothing is ever overwritten.
"""

from __future__ import annotations

import os
import shlex
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import click

from metabac._checks import InputError, printable
from metabac.trial_schema import REVIEW_FILE

DAT_BCG_HEADER = "trial author year tpos tneg cpos cneg ablat alloc"


@dataclass(frozen=True)
class BcgTrial:
    """One row of metadat's ``dat.bcg``: TB cases (pos) and non-cases (neg) in the vaccinated (t) and control (c)
    groups."""

    id: str
    row: int
    author: str
    year: int
    tpos: int
    tneg: int
    cpos: int
    cneg: int
    ablat: int
    alloc: str

    @property
    def quote(self) -> str:
        """The data set's header and this trial's row as R prints them (``library(metadat); dat.bcg``), spaces
        collapsed."""
        row = f"{self.row} {self.author} {self.year} {self.tpos} {self.tneg} {self.cpos} {self.cneg} {self.ablat} " \
              f"{self.alloc}"
        return f"{DAT_BCG_HEADER} / {row}"


# Rows 1-4 of dat.bcg (metadat 1.2-0), the first four trials with random allocation.
EXAMPLE_TRIALS = (
    BcgTrial("aronson1948", 1, "Aronson", 1948, 4, 119, 11, 128, 44, "random"),
    BcgTrial("ferguson1949", 2, "Ferguson & Simes", 1949, 6, 300, 29, 274, 55, "random"),
    BcgTrial("rosenthal1960", 3, "Rosenthal et al", 1960, 3, 228, 11, 209, 42, "random"),
    BcgTrial("hart1977", 4, "Hart & Sutherland", 1977, 62, 13536, 248, 12619, 52, "random"),
)

REVIEW_TOML = '''\
# The review this folder answers (read by metabac, never as a trial record). Replace every text with your own
# topic's; as written it describes the example trials (BCG vaccine against tuberculosis) so that the folder works.
title = "Example review: BCG vaccine against tuberculosis (replace with your own title)"
question = "Does BCG vaccination, compared with no vaccination, prevent tuberculosis?"
population = "people taking part in randomised trials of BCG vaccination"
setting = "the trials' own settings, as listed in Colditz et al. 1994"
intervention = "BCG vaccine"
comparison = "no vaccination"
experimental = "BCG"     # short names of the two arms for tables and plots
control = "Control"

# The candidate effect modifiers the report tests (comparison columns; a subgroup analysis or a meta-regression
# each): severity, dose_group, detox, population, g_per_day, dose_mg, year, duration_weeks.
predictors = ["year", "population"]

# Population classes beyond the built-in ones (general, liver disease, cirrhosis, hepatitis C, smokers), for
# the records' `population` field, e.g. populations = ["children", "adults"].
populations = []

# Outcomes beyond the built-in ones (`metabac trials schema` lists those): each "binary" (events of n) or
# "continuous" (mean, SD, n), with an optional description. Records may use only built-in and declared outcomes.
[outcomes.tuberculosis]
kind = "binary"
description = "participants diagnosed with tuberculosis during the trial's follow-up"
'''

README = '''\
# {name}: a metabac review folder

Written by `metabac init`. It holds:

- `review.toml`: the question the review answers, the outcomes the records may use beyond metabac's built-in ones
  (`[outcomes.<name>]`, binary or continuous), extra population classes and the candidate predictors the report
  tests. Replace its texts with your own topic's.
- one file per trial (`<id>.toml`, the id being the file name): its design, arms and per-arm outcomes. Every number
  names its `source` (a key of the record's `[sources]`) and carries the verbatim `quote` it was read in; a
  `derived` text states any arithmetic (such as n = events + non-events).
- the example trials {examples}: {count} randomised trials of the BCG vaccine from Colditz et al. 1994 (JAMA
  271(9):698-702) as distributed in R's metadat package (`dat.bcg`). Their numbers are real; delete the files
  once your own records are in.

## Recording a trial

Copy an example record to `<id>.toml`, then replace each value with what the trial's report says. Fields that do
not apply to your topic (drinking at baseline, drink size, dose in mg/day, detoxification) are optional; leave
them out. `metabac trials schema` prints every field with its meaning, and `trials/README.md` in the metabac
repository explains the rules (nothing guessed, every number sourced, derived numbers say how).

## Checking and reporting

```bash
metabac trials check --trials {folder}             # validate every record, show which outcomes each reports
metabac report --trials {folder} --out {folder}-report   # pool each outcome with two or more usable trials
```

A record that uses an outcome neither built in nor declared in `review.toml` is refused with a one-line error
naming the file and the field.
'''

RECORD_TOML = '''\
# An example record written by `metabac init`: replace it with your own trials, one file per trial.
# Its numbers are dat.bcg's row {row} (R package metadat, from Colditz et al. 1994); nothing else is known here.
id = "{id}"
title = "BCG vaccine against tuberculosis: {author} {year} (trial {row} of dat.bcg)"
citation = {{ authors = "{author}", year = {year}, journal = "cited in Colditz GA et al. JAMA 1994;271(9):698-702 (the trial report itself was not read)" }}
population = "general"
notes = "Allocation {alloc} (dat.bcg's alloc column); the control group was not vaccinated (dat.bcg's documentation). Blinding, numbers randomised and the follow-up period are not in dat.bcg. The vaccine is given once and TB cases are counted over the trial's follow-up; that result is recorded in the class 'end of treatment', which the report pools by default."

[design]
randomised = true
blinding = "not stated"
control = "no intervention"

[sources.metadat]
kind = "secondary"
citation = "dat.bcg in the R package metadat (Viechtbauer W), from Colditz GA, Brewer TF, Berkey CS, et al. Efficacy of BCG vaccine in the prevention of tuberculosis: meta-analysis of the published literature. JAMA 1994;271(9):698-702; row as printed by library(metadat); dat.bcg"
url = "https://rdrr.io/pkg/metadat/man/dat.bcg.html"

[arms.bcg]
role = "experimental"
drug = "BCG vaccine"
compared_with = "control"
source = "metadat"
quote = "{quote}"

[arms.control]
role = "control"
drug = "none (not vaccinated)"
source = "metadat"
quote = "{quote}"

[outcomes.tuberculosis]
definition = "TB positive cases (dat.bcg: tpos in the vaccinated, cpos in the control group)"
timepoint = "the trial's follow-up (period not stated in dat.bcg)"
timepoint_class = "end of treatment"
analysis_set = "not stated"

[outcomes.tuberculosis.arms.bcg]
events = {tpos}
n = {n_bcg}
source = "metadat"
quote = "{quote}"
derived = "n = tpos + tneg = {tpos} + {tneg} = {n_bcg}"

[outcomes.tuberculosis.arms.control]
events = {cpos}
n = {n_control}
source = "metadat"
quote = "{quote}"
derived = "n = cpos + cneg = {cpos} + {cneg} = {n_control}"
'''


def example_record(trial: BcgTrial) -> str:
    """The trial record (TOML) of one example trial."""
    return RECORD_TOML.format(**trial.__dict__, quote=trial.quote, n_bcg=trial.tpos + trial.tneg,
                              n_control=trial.cpos + trial.cneg)


def folder_files(folder: Path) -> dict[str, str]:
    """What ``metabac init`` writes into ``folder``: file name -> text."""
    examples = ", ".join(f"`{t.id}.toml`" for t in EXAMPLE_TRIALS)
    readme = README.format(name=folder.name, folder=shlex.quote(str(folder)), examples=examples,
                           count=len(EXAMPLE_TRIALS))
    return {REVIEW_FILE: REVIEW_TOML, "README.md": readme,
            **{f"{t.id}.toml": example_record(t) for t in EXAMPLE_TRIALS}}


def new_review(folder: str | Path) -> list[Path]:
    """Write a new review folder at ``folder`` (created with its parents; an existing one must be empty) and
    return the files written.

    The files are written into a temporary folder beside ``folder`` and renamed into place in one step, so a
    failure leaves nothing behind (parents created for it are removed again); an existing folder that is not
    empty, or a file at that path, is an InputError and is left as it was.
    """
    folder = Path(folder)
    if folder.exists() or folder.is_symlink():
        if not folder.is_dir() or folder.is_symlink():
            raise InputError(f"{folder}: exists and is not a folder; metabac init writes a new folder")
        if any(folder.iterdir()):
            raise InputError(f"{folder}: exists and is not empty; metabac init never overwrites, so choose a new "
                             "or empty folder")
    files = folder_files(folder)
    missing_parents = [p for p in reversed(folder.absolute().parents) if not p.exists()]
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        for name, text in files.items():
            (staging / name).write_text(text, encoding="utf-8")
        os.chmod(staging, 0o777 & ~_umask())  # mkdtemp makes it private; the folder is the user's
        os.rename(staging, folder)  # replaces an empty folder; fails, writing nothing, if one appeared meanwhile
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        for parent in reversed(missing_parents):
            try:
                parent.rmdir()
            except OSError:
                break
        raise
    return [folder / name for name in files]


def _umask() -> int:
    """The process's file-creation mask (read by setting it, then restoring it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


@click.command("init")
@click.argument("folder", type=click.Path(path_type=Path))
def init_command(folder: Path) -> None:
    """Write a new review folder FOLDER: review.toml (the question, the declared outcomes and predictors), a
    README and example trial records (real data: BCG vaccine trials from R's metadat dat.bcg) that `trials check`
    and `report` accept. FOLDER must not exist or be empty; nothing is ever overwritten.

    \b
    Example:
      metabac init my-review && metabac trials check --trials my-review
    """
    for path in new_review(folder):
        click.echo(printable(f"wrote {path}"))
    click.echo(printable(f"Next: edit {folder / 'review.toml'}, record your trials, then "
                         f"metabac trials check --trials {folder}"))
