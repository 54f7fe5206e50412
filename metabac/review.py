"""The review a report answers: its question (population, setting, intervention, comparison), the outcomes and
populations its records may use beyond the built-in ones, the candidate predictors to test, the author's GRADE
overrides, and the published across-trial findings on who responds.

A review folder holds the trial records (``*.toml``) and, beside them, ``review.toml`` (read here, never as a
trial record). Without it the report states a generic question built from the records. Published moderator
analyses (meta-regressions and subgroup findings of other reviews) live in ``published/moderators/*.toml``, each
with its source and quote like every other number; they are second-hand by nature and shown as such.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from metabac._checks import InputError
from metabac.certainty import DOMAINS, Override
from metabac.predictors import CANDIDATES
from metabac.trial_schema import OUTCOME_KINDS, REVIEW_FILE, Vocabulary

MODERATOR_FOLDER = Path("published") / "moderators"
_QUESTION_FIELDS = ("title", "question", "population", "setting", "intervention", "comparison")
_ARM_FIELDS = ("experimental", "control")  # short names of the arms, for tables and plots
_DECLARED_FIELDS = ("outcomes", "populations", "predictors", "overrides")
_NAME = r"^[a-z][a-z0-9_]*$"  # an outcome name, as a key of a record's [outcomes.<name>]
_FINDING_FIELDS = {"citation": True, "url": True, "quote": True, "modifier": True, "finding": True,
                   "kind": True, "estimate": False, "k": False, "note": False}


@dataclass(frozen=True)
class DeclaredOutcome:
    """An outcome the review declares: ``binary`` (events of n) or ``continuous`` (mean, SD, n)."""

    kind: str
    description: str | None = None


@dataclass(frozen=True)
class Review:
    """The question a report answers, the outcomes and populations declared for its records, the candidate
    predictors to test (None: the default set) and the author's overrides of GRADE domains by outcome."""

    title: str
    question: str
    population: str
    setting: str
    intervention: str
    comparison: str
    overrides: dict[str, dict[str, Override]] = field(default_factory=dict)
    experimental: str = "Experimental"
    control: str = "Control"
    outcomes: dict[str, DeclaredOutcome] = field(default_factory=dict)
    populations: tuple[str, ...] = ()
    predictors: tuple[str, ...] | None = None  # the columns the predictors table tests; None: the default set

    @property
    def vocabulary(self) -> Vocabulary:
        """The declared outcomes (with their kinds) and populations, for validating and loading the records."""
        return Vocabulary({name: o.kind for name, o in self.outcomes.items()}, self.populations)

    def to_dict(self) -> dict:
        return {**{name: getattr(self, name) for name in (*_QUESTION_FIELDS, *_ARM_FIELDS)},
                "outcomes": {name: o.__dict__ for name, o in self.outcomes.items()},
                "populations": list(self.populations),
                "predictors": None if self.predictors is None else list(self.predictors),
                "overrides": {outcome: {domain: {"levels": o.levels, "reason": o.reason} for domain, o in d.items()}
                              for outcome, d in self.overrides.items()}}


def _read_toml(path: Path) -> dict:
    if not path.is_file():
        raise InputError(f"{path}: not a regular file")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, RecursionError) as error:
        raise InputError(f"{path}: not valid TOML ({str(error).splitlines()[0]})") from None


def _text(data: dict, key: str, where: str, required: bool = True) -> str | None:
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{where}: {key}: must be a non-empty text")
    return value


def read_review(trials_dir: str | Path) -> Review:
    """The review of the folder ``trials_dir``: its ``review.toml``, or a generic question when there is none."""
    path = Path(trials_dir) / REVIEW_FILE
    if not path.exists():
        return Review(title=f"Meta-analysis of the trial records in {Path(trials_dir).name}",
                      question="What is the effect of the intervention compared with the control, on each outcome "
                               "the trial records report?",
                      population="as in the trial records", setting="as in the trial records",
                      intervention="the experimental arms of the records",
                      comparison="the control arms of the records")
    data = _read_toml(path)
    known = (*_QUESTION_FIELDS, *_ARM_FIELDS, *_DECLARED_FIELDS)
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise InputError(f"{path}: {unknown[0]}: unknown field (known: {', '.join(known)})")
    texts = {key: _text(data, key, str(path)) for key in _QUESTION_FIELDS}
    arms = {key: _text(data, key, str(path)) for key in _ARM_FIELDS if key in data}
    predictors = _names(data, "predictors", path)
    unknown = [name for name in predictors or () if name not in CANDIDATES]
    if unknown:
        raise InputError(f"{path}: predictors: {unknown[0]!r} is not a candidate predictor "
                         f"(known: {', '.join(CANDIDATES)})")
    return Review(**texts, **arms, overrides=_overrides(data.get("overrides", {}), path),  # type: ignore[arg-type]
                  outcomes=_outcomes(data.get("outcomes", {}), path),
                  populations=_names(data, "populations", path) or (), predictors=predictors)


def _names(data: dict, key: str, path: Path) -> tuple[str, ...] | None:
    """The optional list ``key`` of distinct non-empty texts; None when absent."""
    if key not in data:
        return None
    value = data[key]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value) \
            or len(set(value)) != len(value):
        raise InputError(f"{path}: {key}: must be a list of distinct non-empty texts")
    return tuple(value)


def _outcomes(data: Any, path: Path) -> dict[str, DeclaredOutcome]:
    """``[outcomes]``: name = "binary" or "continuous", or ``[outcomes.<name>]`` with ``kind`` and ``description``.
    A built-in outcome may be declared again (to describe it) with its own kind only."""
    if not isinstance(data, dict):
        raise InputError(f"{path}: outcomes: must be a table of outcome names")
    builtin = Vocabulary().kinds
    result = {}
    for name, spec in data.items():
        where = f"{path}: outcomes.{name}"
        spec = {"kind": spec} if isinstance(spec, str) else spec
        if not re.fullmatch(_NAME, name):
            raise InputError(f"{where}: names are lower case letters, digits and _, starting with a letter")
        if not isinstance(spec, dict) or not set(spec) <= {"kind", "description"}:
            raise InputError(f"{where}: must be \"binary\" or \"continuous\", or a table of kind and description")
        if spec.get("kind") not in OUTCOME_KINDS:
            raise InputError(f"{where}.kind: must be one of {', '.join(OUTCOME_KINDS)}, got {spec.get('kind')!r}")
        if builtin.get(name, spec["kind"]) != spec["kind"]:
            raise InputError(f"{where}.kind: {name} is a built-in {builtin[name]} outcome")
        result[name] = DeclaredOutcome(spec["kind"], _text(spec, "description", where, required=False))
    return result


def _overrides(data: Any, path: Path) -> dict[str, dict[str, Override]]:
    """``[overrides.<outcome>.<domain>]`` tables with ``levels`` (0, 1 or 2) and ``reason``."""
    if not isinstance(data, dict):
        raise InputError(f"{path}: overrides: must be a table of outcomes")
    result: dict[str, dict[str, Override]] = {}
    for outcome, domains in data.items():
        if not isinstance(domains, dict):
            raise InputError(f"{path}: overrides.{outcome}: must be a table of GRADE domains")
        result[outcome] = {}
        for key, value in domains.items():
            domain = key.replace("_", " ")
            if domain not in DOMAINS:
                raise InputError(f"{path}: overrides.{outcome}.{key}: not a GRADE domain "
                                 f"({', '.join(d.replace(' ', '_') for d in DOMAINS)})")
            if not isinstance(value, dict) or set(value) != {"levels", "reason"}:
                raise InputError(f"{path}: overrides.{outcome}.{key}: needs exactly levels and reason")
            try:
                result[outcome][domain] = Override(value["levels"], value["reason"])
            except InputError as error:
                raise InputError(f"{path}: overrides.{outcome}.{key}: {error}") from None
    return result


def published_moderator_findings(trials_dir: str | Path) -> pd.DataFrame:
    """Published across-trial analyses of who responds (e.g. meta-regression on baseline drinking), one row per
    ``published/moderators/*.toml`` file: name, kind (meta-regression or subgroup analysis), modifier, finding,
    estimate and k where published, citation, url, quote, note. Every row is second-hand: it reports another
    review's analysis, which metabac cannot recompute."""
    folder = Path(trials_dir) / MODERATOR_FOLDER
    rows = []
    for path in sorted(folder.glob("*.toml")) if folder.is_dir() else []:
        data = _read_toml(path)
        unknown = sorted(set(data) - set(_FINDING_FIELDS))
        if unknown:
            raise InputError(f"{path}: {unknown[0]}: unknown field (known: {', '.join(_FINDING_FIELDS)})")
        row: dict[str, Any] = {"name": path.stem}
        for key, required in _FINDING_FIELDS.items():
            row[key] = data.get("k") if key == "k" else _text(data, key, str(path), required)
        if row["k"] is not None and (not isinstance(row["k"], int) or isinstance(row["k"], bool) or row["k"] < 1):
            raise InputError(f"{path}: k: must be a whole number of trials, got {row['k']!r}")
        if not str(row["url"]).startswith(("http://", "https://")):
            raise InputError(f"{path}: url: must start with http:// or https://")
        rows.append({**row, "second_hand": True})
    return pd.DataFrame(rows, columns=["name", *_FINDING_FIELDS, "second_hand"])
