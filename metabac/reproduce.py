"""Reproduce published pooled estimates from the registry ``trials/published/*.toml``.

Each registry file holds one published meta-analysis: its citation (page and table), the outcome, the effect measure
and model the authors stated, the per-study inputs (trial ids for baclofen, inline arm data otherwise) and the
published numbers as strings, so that the printed precision survives. :func:`reproduce` recomputes every number
under the entry's convention profile and compares it at that precision: |reproduced − printed| ≤ ½ unit in the
last printed place.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from metabac._checks import InputError
from metabac.defaults import bundled_trials
from metabac.effects import BINARY_FIELDS, CONTINUOUS_FIELDS, MEASURES, RATIO_MEASURES
from metabac.formatting import printed_decimals
from metabac.pooling import pool
from metabac.profiles import PROFILE_NAMES, ProfiledResult, analyse, apply_conventions, get_profile
from metabac.tau2 import METHODS
from metabac.trials import TrialSet, comparisons, load_trials

BACK_SOLVED = "consistent only with inputs derived from the target"
VERDICTS = ("reproduced", "reproduced (derived inputs)", BACK_SOLVED, "differs", "inputs incomplete")
QUANTITIES = ("estimate", "ci_low", "ci_high", "se", "z", "pvalue", "tau2", "tau", "i2", "q", "k", "participants")
_ARM_KEYS = set(BINARY_FIELDS) | set(CONTINUOUS_FIELDS) | {"yi", "vi"}
# A number as a journal prints it: optional "<" or ">", a sign, digits with an optional decimal point. No exponent,
# and no "inf" or "nan", which would compare as reproduced (or never) whatever the data.
_PRINTED = re.compile(r"(?P<relation>[<>]?)\s*(?P<number>[-+]?(?:\d+(?:\.\d*)?|\.\d+))")


@dataclass(frozen=True)
class Inputs:
    """Arm data for one analysis, with where they came from and what was derived."""

    arms: dict[str, list]
    labels: list[str]
    origin: str
    derived: tuple[str, ...] = field(default=())


def load_published(trials_dir: str | Path | None = None, names: list[str] | None = None) -> list[dict]:
    """Read and check ``<trials_dir>/published/*.toml`` (all, or the entries in ``names``), sorted by name."""
    folder = Path(bundled_trials() if trials_dir is None else trials_dir) / "published"
    if not folder.is_dir():
        raise InputError(f"{folder}: no registry of published analyses (directory not found)")
    entries = {}
    for path in sorted(folder.glob("*.toml")):
        with open(path, "rb") as handle:
            try:
                entry = tomllib.load(handle)
            except tomllib.TOMLDecodeError as error:
                raise InputError(f"{path}: not valid TOML: {error}") from None
        _check_entry(entry, path)
        entries[entry["name"]] = entry
    if names:
        unknown = [name for name in names if name not in entries]
        if unknown:
            raise InputError(f"{folder}: no entry named {', '.join(unknown)}; known: {', '.join(entries)}")
        return [entries[name] for name in names]
    return list(entries.values())


# --- the registry's schema: every field's check, each raising a one-line InputError naming the field -----------

Check = Callable[[Any, str], None]


def _text(value: Any, where: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{where}: must be non-empty text, got {value!r}")


def _list_of(item_check: Check, what: str) -> Check:
    """A TOML array whose every item passes ``item_check`` (errors name the item: ``field[2]``)."""
    def check(value: Any, where: str) -> None:
        if not isinstance(value, list):
            raise InputError(f"{where}: must be a list of {what}, got {value!r}")
        for i, item in enumerate(value):
            item_check(item, f"{where}[{i}]")
    return check


_texts = _list_of(_text, "text")


def _one_of(*choices: str) -> Check:
    def check(value: Any, where: str) -> None:
        if value not in choices:
            raise InputError(f"{where}: must be one of {', '.join(choices)}, got {value!r}")
    return check


def _number(value: Any, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"{where}: must be a finite number, got {value!r}")


_numbers = _list_of(_number, "numbers")


def _level(value: Any, where: str) -> None:
    _number(value, where)
    if not 0 < value < 100:
        raise InputError(f"{where}: must be in (0, 100) percent, got {value!r}")


def _flag(value: Any, where: str) -> None:
    if not isinstance(value, bool):
        raise InputError(f"{where}: must be true or false, got {value!r}")


def _published(value: Any, where: str) -> None:
    _table(value, where)
    for quantity, printed in value.items():
        if quantity not in QUANTITIES:
            raise InputError(f"{where}.{quantity}: unknown quantity; choose one of {', '.join(QUANTITIES)}")
        if not isinstance(printed, str):
            raise InputError(f"{where}.{quantity}: give the number as printed, as a string (e.g. \"1.42\"), got "
                             f"{printed!r}")
        try:
            printed_precision(printed)
        except InputError as error:
            raise InputError(f"{where}.{quantity}: {error}") from None


def _table(value: Any, where: str, fields: dict[str, Check] | None = None, required: tuple[str, ...] = (),
           join: str = ".") -> None:
    """A TOML table; with ``fields``, only those keys, each passing its check, and the ``required`` ones present.
    A field is named ``<where><join><key>`` (``analyses[1].label``; ``<file>: label`` at the top level)."""
    if not isinstance(value, dict):
        raise InputError(f"{where}: must be a table, got {value!r}")
    if fields is None:
        return
    for key in required:
        if key not in value:
            raise InputError(f"{where}{join}{key}: required")
    for key, item in value.items():
        if key not in fields:
            raise InputError(f"{where}{join}{key}: unknown key")
        fields[key](item, f"{where}{join}{key}")


def _tables(fields: dict[str, Check], required: tuple[str, ...] = (), at_least_one: bool = False) -> Check:
    """An array of tables ([[...]]), each checked by :func:`_table`."""
    def check(value: Any, where: str) -> None:
        if not isinstance(value, list) or (at_least_one and not value):
            raise InputError(f"{where}: must be an array of {'one or more ' if at_least_one else ''}tables ([[...]])")
        for i, item in enumerate(value):
            _table(item, f"{where}[{i}]", fields, required)
    return check


def _arm_data(value: Any, where: str) -> None:
    """Inline inputs: ``study`` labels and arm columns of one length each, every value a finite number."""
    arms = {key: _numbers for key in _ARM_KEYS}
    _table(value, where, {"study": _texts, "quote": _texts, "derived": _texts, **arms}, required=("study",))
    columns = sorted(set(value) & _ARM_KEYS)
    if not columns:
        raise InputError(f"{where}: no arm data (give {', '.join(sorted(_ARM_KEYS))} columns)")
    for key in columns:
        if len(value[key]) != len(value["study"]):
            raise InputError(f"{where}.{key}: {len(value[key])} values for {len(value['study'])} studies")


_ANALYSIS: dict[str, Check] = {
    "label": _text, "model": _one_of("random", "fixed"), "pooling": _one_of("IV", "MH", "PETO"),
    "method": _one_of(*METHODS), "scale": _one_of("ratio", "identity"), "multiplier": _number, "pooled_sd": _flag,
    "published": _published, "where": _text, "reason": _text, "level": _level,
}
_OVERRIDE: dict[str, Check] = {"study": _text, "derived": _text, "back_solved": _flag,
                               **{key: _number for key in _ARM_KEYS}}
_ENTRY: dict[str, Check] = {
    "name": _text, "citation": _text, "where": _text, "verified_from": _text, "outcome": _text,
    "measure": _one_of(*MEASURES), "model_stated": _text, "profile": _one_of(*PROFILE_NAMES),
    "expect": _one_of("reproduced", "partial"), "reason": _text, "note": _text, "studies": _texts,
    "inputs": _arm_data, "fallback": _arm_data, "missing": _texts,
    "overrides": _tables(_OVERRIDE, required=("study", "derived")),
    "analyses": _tables(_ANALYSIS, required=("published",), at_least_one=True),
}


def _check_entry(entry: dict, path: Path) -> None:
    """Every field of a registry entry, type and value, before anything is computed from it: a bad value is a
    one-line InputError naming the file and the field (``analyses[1].multiplier``), never a crash of the report."""
    _table(entry, f"{path}:", _ENTRY, ("name", "citation", "where", "measure", "expect", "analyses"), join=" ")
    if entry["name"] != path.stem:
        raise InputError(f"{path}: name: {entry['name']!r} differs from the file name {path.stem!r}")
    if "inputs" not in entry and "studies" not in entry:
        raise InputError(f"{path}: inputs: need inline [inputs] or studies = [trial ids]")


def printed_precision(text: str) -> tuple[float, float, str]:
    """Parse a printed number: (value, half a unit in its last place, relation "=" or "<" or ">").

    Only numbers as printed are read (``1.42``, ``−0.03``, ``<0.0001``); ``inf``, ``nan`` and exponents are refused.
    """
    printed = _PRINTED.fullmatch(text.strip().replace("−", "-"))
    if printed is None:
        raise InputError(f"not a printed number: {text!r} (write it as printed, e.g. \"1.42\" or \"<0.001\")")
    number = printed["number"]
    return float(number), 0.5 * 10.0 ** -printed_decimals(number), printed["relation"] or "="


def _inline_inputs(table: dict, origin: str) -> Inputs:
    labels = [str(x) for x in table.get("study", [])]
    arms = {key: list(value) for key, value in table.items() if key in _ARM_KEYS}
    return Inputs(arms, labels, origin)


class TrialComparisons:
    """The trial records of one folder, read once, and their comparisons per outcome, built once (a reproduction
    run asks for the same outcome for several registry entries)."""

    def __init__(self, trials_dir: str | Path | None = None, trial_set: TrialSet | None = None) -> None:
        self.trials_dir = Path(bundled_trials() if trials_dir is None else trials_dir)
        self._trials: TrialSet | None = trial_set
        self._by_outcome: dict[str, pd.DataFrame] = {}

    def rows(self, outcome: str) -> pd.DataFrame:
        """:func:`metabac.trials.comparisons` for ``outcome``; raises InputError or OSError as loading does."""
        if outcome not in self._by_outcome:
            if self._trials is None:
                self._trials = load_trials(self.trials_dir)
            # a published analysis chose its own results: every timepoint, complements included
            self._by_outcome[outcome] = comparisons(self._trials, outcome=outcome, timepoint_class=None,
                                                    include_complements=True)
        return self._by_outcome[outcome]


def _trial_inputs(entry: dict, trials: TrialComparisons) -> tuple[Inputs | None, str]:
    """Arm data for ``studies`` from the trial records; (None, why) when the records cannot supply them."""
    try:
        rows = trials.rows(entry["outcome"])
    except (InputError, OSError) as error:
        return None, f"trial records unreadable: {error}"
    id_column = next((c for c in ("trial", "trial_id", "id", "study") if c in rows.columns), None)
    if id_column is None:
        return None, "comparisons() gave no trial id column"
    wanted = list(entry["studies"])
    found = rows[rows[id_column].isin(wanted)]
    absent = [s for s in wanted if s not in set(found[id_column])]
    if absent:
        return None, f"no {entry['outcome']} record for {', '.join(absent)} in {trials.trials_dir}"
    found = found.set_index(id_column).loc[wanted].reset_index()
    fields = BINARY_FIELDS if entry["measure"].upper() in ("OR", "RR", "RD", "PETO") else CONTINUOUS_FIELDS
    arms = {f: found[f].tolist() for f in fields if f in found.columns}
    derived = tuple(f"{row[id_column]}: {row['derived']}" for _, row in found.iterrows()
                    if "derived" in found.columns and isinstance(row["derived"], str) and row["derived"])
    return Inputs(arms, wanted, f"trial records in {trials.trials_dir}", derived), ""


def entry_inputs(entry: dict, trials: str | Path | TrialComparisons | None = None, back_solved: bool = True) -> Inputs:
    """The arm data of a registry entry: inline, or the trial records (with overrides), or the inline fallback.

    ``trials`` is the trials folder, or a :class:`TrialComparisons` of it shared between entries. With
    ``back_solved=False`` the overrides marked ``back_solved`` (inputs inferred from the published result itself)
    are not applied, so the records' own numbers are used."""
    if "inputs" in entry:
        return _inline_inputs(entry["inputs"], "inline in the registry file")
    if not entry["studies"]:
        return Inputs({}, [], "no shipped trial has these data")
    if not isinstance(trials, TrialComparisons):
        trials = TrialComparisons(trials)
    inputs, why = _trial_inputs(entry, trials)
    if inputs is None:
        if "fallback" not in entry:
            raise InputError(f"{entry['name']}: studies: {why}, and the entry has no [fallback] inputs")
        inputs = _inline_inputs(entry["fallback"], f"inline fallback copied from shared/evidence ({why})")
        inputs = Inputs(inputs.arms, inputs.labels, inputs.origin,
                        tuple(entry["fallback"].get("derived", [])))
    derived = list(inputs.derived)
    arms = {key: list(value) for key, value in inputs.arms.items()}
    for override in entry.get("overrides", []):
        if override.get("back_solved") and not back_solved:
            continue
        if override["study"] not in inputs.labels:
            raise InputError(f"{entry['name']}: overrides: study {override['study']!r} is not among the inputs")
        i = inputs.labels.index(override["study"])
        for key, value in override.items():
            if key in _ARM_KEYS:
                arms.setdefault(key, [math.nan] * len(inputs.labels))[i] = value
        derived.append(f"{override['study']}: {override['derived']}")
    return Inputs(arms, inputs.labels, inputs.origin, tuple(dict.fromkeys(derived)))


def _pooled_sd(arms: dict) -> dict:
    """Both arms' SD replaced by the pooled SD (Normand 1999, Table VIII), as metafor's example does."""
    n1, n2 = np.asarray(arms["n1i"], float), np.asarray(arms["n2i"], float)
    s1, s2 = np.asarray(arms["sd1i"], float), np.asarray(arms["sd2i"], float)
    pooled = np.sqrt(((n1 - 1) * s1**2 + (n2 - 1) * s2**2) / (n1 + n2 - 2))
    return {**arms, "sd1i": pooled, "sd2i": pooled}


def _quantities(fit: ProfiledResult, analysis: dict, measure: str, arms: dict) -> dict[str, float]:
    """Every comparable number of one fit, on the published scale."""
    r = fit.result
    ratio = analysis.get("scale", "ratio" if measure in RATIO_MEASURES else "identity") == "ratio"
    c = float(analysis.get("multiplier", 1))
    back = (lambda x: math.exp(x)) if ratio else (lambda x: c * x)
    participants = float(np.nansum(arms.get("n1i", [np.nan])) + np.nansum(arms.get("n2i", [np.nan])))
    return {
        "estimate": back(r.estimate), "ci_low": back(r.ci_low), "ci_high": back(r.ci_high), "se": c * r.se,
        "z": r.statistic, "pvalue": r.pvalue, "tau2": c**2 * r.tau2, "tau": c * math.sqrt(r.tau2),
        "i2": r.i2, "q": r.q, "k": float(r.k), "participants": participants,
    }


def _fit(entry: dict, analysis: dict, inputs: Inputs, profile: str) -> ProfiledResult:
    arms = _pooled_sd(inputs.arms) if analysis.get("pooled_sd") else inputs.arms
    usable = [i for i in range(len(inputs.labels)) if all(not _is_missing(arms[f][i]) for f in arms)]
    arms = {key: [value[i] for i in usable] for key, value in arms.items()}
    labels = [inputs.labels[i] for i in usable] if inputs.labels else None
    if "yi" in arms:  # published effect sizes: straight to inverse-variance pooling
        prof = get_profile(profile)
        method = "EE" if analysis.get("model", "random") == "fixed" else analysis.get("method") or prof.method
        result = pool(arms["yi"], arms["vi"], method=method, level=analysis.get("level", 95), labels=labels)
        return ProfiledResult(apply_conventions(result, prof), prof)
    return analyse(entry["measure"], model=analysis.get("model", "random"), pooling=analysis.get("pooling", "IV"),
                   method=analysis.get("method"), profile=profile, level=analysis.get("level", 95),
                   labels=labels, **arms)


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _verdict(published: str, reproduced: float, entry: dict, analysis: dict, derived: tuple[str, ...]
             ) -> tuple[str, float, str]:
    value, half_unit, relation = printed_precision(published)
    if entry.get("missing"):
        difference = reproduced - value if math.isfinite(reproduced) else math.nan
        return "inputs incomplete", difference, "missing: " + "; ".join(entry["missing"])
    if not math.isfinite(reproduced):
        return "inputs incomplete", math.nan, "not computable from the inputs given"
    difference = reproduced - value
    slack = 1e-9 * max(1.0, abs(value))  # binary floating point at the rounding boundary
    if relation == "<":
        ok = reproduced < value + slack
    elif relation == ">":
        ok = reproduced > value - slack
    else:
        ok = abs(difference) <= half_unit + slack
    if ok:
        if derived:
            return "reproduced (derived inputs)", difference, "derived inputs: " + "; ".join(derived)
        return "reproduced", difference, ""
    reason = analysis.get("reason") or entry.get("reason") or "no reason recorded in the registry"
    return "differs", difference, reason


def reproduce(
    names: list[str] | tuple[str, ...] | None = None,
    trials_dir: str | Path | None = None,
    profile: str | None = None,
    *,
    trial_set: TrialSet | None = None,
) -> pd.DataFrame:
    """Recompute the published analyses of ``<trials_dir>/published`` and compare at the printed precision.

    Parameters
    ----------
    names : list of str, optional
        Registry entries (file stems) to run; all by default.
    trials_dir : path
        The trials folder; the registry is its ``published`` subfolder, baclofen inputs its trial records. By
        default the trials bundled with metabac (:func:`metabac.bundled_trials`).
    profile : {"metafor", "revman5", "meta"}, optional
        Convention profile for every entry; by default each entry's own ``profile`` (metafor if absent).
    trial_set : TrialSet, optional
        The records of ``trials_dir`` already loaded (the report passes its own, so they are read once).

    Returns
    -------
    pandas.DataFrame
        One row per published number: ``entry, analysis, quantity, published, reproduced, difference, verdict,
        reason, profile, expect, where, inputs, outcome, measure, citation``. ``verdict`` is one of
        ``reproduced``, ``reproduced (derived inputs)``, ``consistent only with inputs derived from the target``
        (the records' inputs give ``reproduced`` and differ; only overrides marked ``back_solved`` give the
        published number), ``differs`` (reason from the registry) or ``inputs incomplete`` (what is missing).

    Notes
    -----
    Comparison rule: |reproduced − printed| ≤ ½·10^−d, d the number of decimals printed; "<x" means below x.

    Examples
    --------
    >>> table = reproduce(["normand1999_hine"], trials_dir="trials")
    >>> set(table.verdict)
    {'reproduced'}
    """
    if profile is not None:
        get_profile(profile)
    rows = []
    trials = TrialComparisons(trials_dir, trial_set)
    for entry in load_published(trials_dir, list(names) if names else None):
        used = profile or entry.get("profile", "metafor")
        inputs = entry_inputs(entry, trials)
        solved = any(o.get("back_solved") for o in entry.get("overrides", []))
        records = entry_inputs(entry, trials, back_solved=False) if solved else inputs
        for analysis in entry["analyses"]:
            numbers = _numbers_of(entry, analysis, records, used)
            with_solved = _numbers_of(entry, analysis, inputs, used) if solved else numbers
            for quantity, published in analysis.get("published", {}).items():
                reproduced = float(numbers.get(quantity, math.nan))
                verdict, difference, reason = _verdict(published, reproduced, entry, analysis, records.derived)
                if solved and verdict == "differs":
                    verdict, reason = _back_solved(published, float(with_solved.get(quantity, math.nan)),
                                                   reproduced, entry, analysis, inputs, verdict, reason)
                rows.append({
                    "entry": entry["name"], "analysis": analysis.get("label", ""), "quantity": quantity,
                    "published": published, "reproduced": reproduced, "difference": difference,
                    "verdict": verdict, "reason": reason, "profile": used, "expect": entry["expect"],
                    "where": analysis.get("where", entry["where"]), "inputs": inputs.origin,
                    "outcome": entry.get("outcome", ""), "measure": entry["measure"].upper(),
                    "citation": entry["citation"],
                })
    columns = ["entry", "analysis", "quantity", "published", "reproduced", "difference", "verdict", "reason",
               "profile", "expect", "where", "inputs", "outcome", "measure", "citation"]
    return pd.DataFrame(rows, columns=columns)


def _numbers_of(entry: dict, analysis: dict, inputs: Inputs, profile: str) -> dict[str, float]:
    try:
        return _quantities(_fit(entry, analysis, inputs, profile), analysis, entry["measure"].upper(), inputs.arms)
    except InputError as error:
        if not entry.get("missing"):
            raise InputError(f"{entry['name']}: {analysis.get('label', 'analysis')}: {error}") from None
        return {}


def _back_solved(published: str, solved: float, records: float, entry: dict, analysis: dict, inputs: Inputs,
                 verdict: str, reason: str) -> tuple[str, str]:
    """The verdict where the records' inputs do not give the published number: ``BACK_SOLVED`` when only the
    overrides inferred from that number do, never "reproduced" (they were chosen to give it)."""
    if _verdict(published, solved, entry, analysis, ())[0] != "reproduced":
        return verdict, reason
    overrides = "; ".join(f"{o['study']}: {o['derived']}" for o in entry["overrides"] if o.get("back_solved"))
    return BACK_SOLVED, (f"the trial records give {records:.4g}; the published {published} follows only from "
                         f"inputs back-solved from it ({overrides})")


def failures(table: pd.DataFrame) -> pd.DataFrame:
    """Rows that break a promise: ``differs`` on an entry marked ``expect = "reproduced"``."""
    return table[(table.verdict == "differs") & (table.expect == "reproduced")]
