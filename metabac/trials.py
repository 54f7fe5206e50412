"""Trial records: read ``trials/*.toml`` into tidy DataFrames and turn one outcome into arm-level comparisons.

``load_trials(path)`` validates every file against :mod:`metabac.trial_schema` (one bad file stops the load with
``<file>: <field>: <problem>``; files are opened read-only) and returns a :class:`TrialSet`:

- ``trials``: one row per trial (design, population, detoxification, duration, sex mix, baseline g/day, severity);
- ``arms``: one row per trial x arm (role, drug, dose, dose group, N randomised);
- ``outcomes``: one row per trial x arm x outcome, every number with its source, quote and derivation;
- ``risk_of_bias``: one row per trial x assessed outcome x RoB 2 domain (and the overall), each judgement with its
  rationale and support (:mod:`metabac.rob`).

``comparisons(trial_set, outcome)`` gives one row per baclofen-vs-control comparison with the columns
:func:`metabac.effect_sizes` takes (``ai, n1i, ci, n2i`` or ``m1i, sd1i, n1i, m2i, sd2i, n2i``), the trial's
predictors and the provenance of both arms.
"""

from __future__ import annotations

import copy
import functools
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from metabac._checks import InputError, read_regular_file, require_choice
from metabac.defaults import DEFAULT_SHARED_CONTROL, DEFAULT_TIMEPOINT_CLASS, bundled_trials
from metabac.review import read_review
from metabac.rob import assessment_rows, rob_frame
from metabac.severity import (
    WHO_HIGH_RISK_MEN,
    WHO_HIGH_RISK_WOMEN,
    Severity,
    classify,
    classify_by_inclusion,
    flip_drink_size,
    grams_per_day,
    threshold_for,
)
from metabac.trial_schema import BUILT_IN, REVIEW_FILE, TIMEPOINT_CLASSES, Vocabulary, check_record

SHARED_CONTROL = ("combine", "split", "repeat")
LOW_DOSE_MAX_MG = 60.0  # Pierce et al. 2018: low <= 60 mg/day, high > 60 mg/day


@dataclass(frozen=True)
class TrialSet:
    """The trial records of one folder as tidy DataFrames, plus the parsed records by id."""

    path: Path
    records: dict[str, dict]
    trials: pd.DataFrame
    arms: pd.DataFrame
    outcomes: pd.DataFrame
    risk_of_bias: pd.DataFrame = field(default_factory=lambda: rob_frame([]))
    vocabulary: Vocabulary = BUILT_IN  # the outcomes (with their kinds) and populations the records may use

    def __len__(self) -> int:
        return len(self.records)


def read_record(path: Path, vocabulary: Vocabulary = BUILT_IN) -> dict:
    """Parse and validate one trial file (a regular file, UTF-8 with or without a byte-order mark) against the
    schema extended by the review's ``vocabulary``; never writes to it."""
    try:
        record = copy.deepcopy(_parsed(read_regular_file(path).decode("utf-8-sig")))
    except tomllib.TOMLDecodeError as error:
        raise InputError(f"{path}: TOML syntax error: {error}") from None
    except UnicodeDecodeError as error:
        raise InputError(f"{path}: not UTF-8 text: {error}") from None
    except RecursionError:
        raise InputError(f"{path}: TOML syntax error: arrays or tables nested too deeply") from None
    too_large = _too_large(record)
    if too_large:
        raise InputError(f"{path}: {too_large}: a number beyond 1e308 (not a finite float)")
    check_record(record, str(path), path.stem, vocabulary)
    return record


@functools.lru_cache(maxsize=256)
def _parsed(text: str) -> dict:
    """``tomllib.loads(text)``, kept for the process by the text itself (an edited file is parsed anew), so that a
    folder read again (a report and then its reproduction, a notebook, the test suite) is parsed once: parsing is
    most of what reading a record costs. Callers take a copy (:func:`read_record`); errors are not kept."""
    return tomllib.loads(text)


def _too_large(value: object, where: str = "") -> str | None:
    """The dotted key of the first integer too large for a float (it would overflow any check), or None."""
    if isinstance(value, int) and abs(value) > 2**1023:
        return where
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found = _too_large(item, f"{where}[{key}]" if isinstance(key, int) else f"{where}.{key}".lstrip("."))
        if found:
            return found
    return None


def _male_fraction(record: dict) -> float | None:
    sample = record.get("sample", {})
    if "men" in sample and "women" in sample and sample["men"] + sample["women"] > 0:
        return sample["men"] / (sample["men"] + sample["women"])
    if "male_percent" in sample:
        return sample["male_percent"] / 100
    return None


def _second_hand(record: dict, tables: list[dict]) -> bool:
    """Whether any of these sourced tables was read in a secondary source."""
    return any(record["sources"][table["source"]]["kind"] == "secondary" for table in tables)


def _baseline(record: dict, drink_g: float | None) -> tuple[float | None, list[dict], str]:
    """The trial's baseline in g/day, the entries it rests on, and a scope note.

    Per-arm means covering every arm are averaged weighted by the arms' randomised numbers; else a whole-sample
    mean is used; else the arms that do have one (randomised arms are alike at baseline), said in the scope note
    (``baclofen arm only``).
    """
    arms = record["arms"]
    converted = [(e, grams_per_day(e["measure"], e["mean"], drink_g)) for e in record.get("baseline", [])]
    converted = [(e, g) for e, g in converted if g is not None]
    per_arm = [(e, g) for e, g in converted if e["arm"] != "all"]
    whole = [(e, g) for e, g in converted if e["arm"] == "all"]
    sizes = [arms[e["arm"]].get("randomised") for e, _ in per_arm]
    weighted = per_arm and all(n is not None for n in sizes)
    if weighted and len(per_arm) == len(arms):
        return sum(n * g for n, (_, g) in zip(sizes, per_arm)) / sum(sizes), [e for e, _ in per_arm], ""
    if whole:
        return whole[0][1], [whole[0][0]], ""
    if len(per_arm) == 1 or weighted:
        g = per_arm[0][1] if len(per_arm) == 1 else sum(n * g for n, (_, g) in zip(sizes, per_arm)) / sum(sizes)
        return g, [e for e, _ in per_arm], f"{', '.join(e['arm'] for e, _ in per_arm)} arm only"
    return None, [], ""


def trial_severity(record: dict, threshold: float = WHO_HIGH_RISK_MEN,
                   threshold_women: float = WHO_HIGH_RISK_WOMEN) -> Severity:
    """Severity of one trial from its baseline mean (see :func:`_baseline`), else its entry criterion.

    The basis names the ground (``baseline mean``, with ``<arm> arm only``, ``assumed drink size`` or ``stated drink
    size`` where they apply, or ``inclusion criterion``). When the baseline was converted from drinks with an
    assumed drink size, ``flip_drink_size_g`` is the size at which the class would change
    (:func:`metabac.severity.flip_drink_size`).
    """
    size = record.get("drink_size")
    drink_g = size["grams"] if size else None
    male = _male_fraction(record)
    limit = threshold_for(male, threshold, threshold_women)
    g_per_day, used, scope = _baseline(record, drink_g)
    if g_per_day is not None:
        in_drinks = any(e["measure"] != "g_per_day" for e in used)
        assumed = in_drinks and size is not None and "assumption" in size
        basis = ", ".join(filter(None, ["baseline mean", scope, ("assumed" if assumed else "stated") + " drink size"
                                        if in_drinks else ""]))
        flip = flip_drink_size(g_per_day, drink_g, limit) if assumed and drink_g is not None else None
        return Severity(g_per_day, classify(g_per_day, male, threshold, threshold_women), basis, limit,
                        drink_g if in_drinks else None, assumed, flip, _second_hand(record, used))
    inclusion = record.get("inclusion", {})
    sample = record.get("sample", {})
    any_women = not ("women" in sample and sample["women"] == 0)
    by_entry = classify_by_inclusion(inclusion.get("min_g_per_day"), inclusion.get("min_g_per_day_women"),
                                     any_women, threshold, threshold_women)
    if by_entry is None:
        return Severity(None, None, None, limit)
    return Severity(None, by_entry, "inclusion criterion", limit, second_hand=_second_hand(record, [inclusion]))


SEVERITY_COLUMNS = ("severity", "severity_basis", "g_per_day", "severity_threshold", "severity_drink_size_g",
                    "severity_drink_size_assumed", "flip_drink_size_g", "severity_second_hand")


def severity_columns(severity: Severity) -> dict:
    """The severity of a trial as the columns of :data:`SEVERITY_COLUMNS` (the trials table and comparisons)."""
    values = (severity.severity, severity.basis, severity.g_per_day, severity.threshold, severity.drink_size_g,
              severity.drink_size_assumed, severity.flip_drink_size_g, severity.second_hand)
    return dict(zip(SEVERITY_COLUMNS, values))


def dose_group(dose_mg: float | None) -> str | None:
    """``low`` (<= 60 mg/day) or ``high`` (> 60 mg/day), as in Pierce et al. 2018; None without a dose."""
    if dose_mg is None or (isinstance(dose_mg, float) and math.isnan(dose_mg)):
        return None
    return "low" if dose_mg <= LOW_DOSE_MAX_MG else "high"


def _label(record: dict) -> str:
    author = record["citation"]["authors"].split()[0].rstrip(",")
    return f"{author} {record['citation']['year']}"


def _trial_row(record: dict, path: Path, threshold: float, threshold_women: float) -> dict:
    severity = trial_severity(record, threshold, threshold_women)
    design, detox = record["design"], record.get("detoxification")
    arms = record["arms"].values()
    experimental_doses = [a["dose_mg_day"] for a in arms if a["role"] == "experimental" and "dose_mg_day" in a]
    randomised = [a.get("randomised") for a in arms]
    size = record.get("drink_size")
    return {
        "trial": record["id"], "study": _label(record), "title": record["title"],
        "authors": record["citation"]["authors"], "year": record["citation"]["year"],
        "journal": record["citation"]["journal"], "doi": record["citation"].get("doi"),
        "registry": record["citation"].get("registry"), "country": record.get("country"),
        "population": record["population"], "randomised": design["randomised"], "blinding": design["blinding"],
        "control": design["control"], "n_arms": len(record["arms"]),
        "n_randomised": sum(randomised) if all(n is not None for n in randomised) else None,
        "duration_weeks": record.get("duration", {}).get("weeks"),
        "detox": None if detox is None else ("yes" if detox["required"] else "no"),
        "male_fraction": _male_fraction(record), "dose_mg_max": max(experimental_doses, default=None),
        "drink_size_g": size["grams"] if size else None,
        "drink_size_assumed": bool(size and "assumption" in size),
        "inclusion": record.get("inclusion", {}).get("criterion"),
        **severity_columns(severity), "file": str(path),
    }


def _provenance(record: dict, table: dict) -> dict:
    source = record["sources"][table["source"]]
    return {"source": table["source"], "source_kind": source["kind"], "citation": source["citation"],
            "url": source["url"], "quote": table["quote"], "derived": table.get("derived", ""),
            "second_hand": source["kind"] == "secondary"}


def _outcome_rows(record: dict, kinds: dict[str, str]) -> list[dict]:
    rows = []
    for outcome, spec in record.get("outcomes", {}).items():
        for arm_key, result in spec["arms"].items():
            row = {"trial": record["id"], "arm": arm_key, "role": record["arms"][arm_key]["role"],
                   "outcome": outcome, "type": kinds[outcome],
                   "timepoint": spec["timepoint"], "timepoint_weeks": spec.get("timepoint_weeks", math.nan),
                   "timepoint_class": spec["timepoint_class"], "complement_of": spec.get("complement_of"),
                   "analysis_set": spec["analysis_set"], "definition": spec["definition"],
                   **{key: result.get(key) for key in ("events", "n", "percent", "mean", "sd", "se")},
                   **_provenance(record, result)}
            if row["sd"] is None and row["se"] is not None:
                row["sd"] = row["se"] * math.sqrt(row["n"])
                step = f"SD = SE x sqrt(n) = {row['se']:g} x sqrt({row['n']}) = {row['sd']:.4g}"
                row["derived"] = "; ".join(filter(None, [row["derived"], step]))
            rows.append(row)
    return rows


def _arm_rows(record: dict) -> list[dict]:
    return [{"trial": record["id"], "arm": key, "role": arm["role"], "drug": arm["drug"],
             "compared_with": arm.get("compared_with"), "dose_mg_day": arm.get("dose_mg_day"),
             "dose_group": dose_group(arm.get("dose_mg_day")) if arm["role"] == "experimental" else None,
             "randomised": arm.get("randomised"), **_provenance(record, arm)}
            for key, arm in record["arms"].items()]


OUTCOME_COLUMNS = ["trial", "arm", "role", "outcome", "type", "timepoint", "timepoint_weeks", "timepoint_class",
                   "complement_of", "analysis_set", "definition", "events",
                   "n", "percent", "mean", "sd", "se", "source", "source_kind", "citation", "url", "quote",
                   "derived", "second_hand"]


def load_trials(path: str | Path | None = None, threshold: float = WHO_HIGH_RISK_MEN,
                threshold_women: float = WHO_HIGH_RISK_WOMEN) -> TrialSet:
    """Read and validate every ``*.toml`` trial record in ``path`` (not its subfolders; ``review.toml`` is the
    review's question, :mod:`metabac.review`, whose declared outcomes and populations the records may use).

    Parameters
    ----------
    path : folder of trial records; by default the trials bundled with metabac (:func:`metabac.bundled_trials`).
    threshold, threshold_women : the high-risk levels in g/day for the severity class (see
        :mod:`metabac.severity`; default WHO: 60 for men, 40 for women).

    Raises
    ------
    InputError
        ``<file>: <field.path>: <problem>`` for the first invalid file; no file is skipped silently.
    """
    folder = bundled_trials() if path is None else Path(path)
    if not folder.is_dir():
        raise InputError(f"{folder}: trials folder not found")
    vocabulary = read_review(folder).vocabulary
    files = sorted(path for path in folder.glob("*.toml") if path.name != REVIEW_FILE)
    if not files:
        raise InputError(f"{folder}: no trial records (*.toml)")
    records: dict[str, dict] = {}
    trial_rows, arm_rows, outcome_rows, rob_rows = [], [], [], []
    for file in files:
        record = read_record(file, vocabulary)
        records[record["id"]] = record
        trial_rows.append(_trial_row(record, file, threshold, threshold_women))
        arm_rows += _arm_rows(record)
        outcome_rows += _outcome_rows(record, vocabulary.kinds)
        rob_rows += assessment_rows(record)
    trials = pd.DataFrame(trial_rows).set_index("trial", drop=False).rename_axis(None)
    return TrialSet(folder, records, trials, pd.DataFrame(arm_rows),
                    pd.DataFrame(outcome_rows, columns=OUTCOME_COLUMNS), rob_frame(rob_rows), vocabulary)


def _complete(row: pd.Series, kind: str) -> bool:
    needed = ("events", "n") if kind == "binary" else ("mean", "sd", "n")
    return all(pd.notna(row[key]) for key in needed)


def coverage(trial_set: TrialSet) -> pd.DataFrame:
    """Which outcomes each trial reports: ``usable`` (every arm complete), ``partial`` (a percent without a
    count, a mean without SD or N, or an arm missing), or empty; one row per trial, one column per outcome."""
    outcomes = [o for o in trial_set.vocabulary.kinds if o in set(trial_set.outcomes["outcome"])]
    table = pd.DataFrame("", index=trial_set.trials.index, columns=outcomes)
    for (trial, outcome), rows in trial_set.outcomes.groupby(["trial", "outcome"]):
        arms = trial_set.arms[trial_set.arms.trial == trial]
        complete = all(_complete(r, r["type"]) for _, r in rows.iterrows()) and set(rows.arm) == set(arms.arm)
        table.loc[trial, outcome] = "usable" if complete else "partial"
    table.index.name = "trial"
    return table


def _combine_continuous(n: np.ndarray, mean: np.ndarray, sd: np.ndarray) -> tuple[float, float, float]:
    """Pool groups into one (Cochrane Handbook 6.5.2.10, Table 6.5.a), applied pairwise:
    N = N1 + N2, M = (N1 M1 + N2 M2)/N, SD² = [(N1−1)SD1² + (N2−1)SD2² + N1 N2/N (M1 − M2)²] / (N − 1)."""
    total_n, total_mean, total_sd = float(n[0]), float(mean[0]), float(sd[0])
    for n2, m2, s2 in zip(n[1:], mean[1:], sd[1:]):
        n1, m1, s1 = total_n, total_mean, total_sd
        total_n = n1 + n2
        total_mean = (n1 * m1 + n2 * m2) / total_n
        total_sd = math.sqrt(((n1 - 1) * s1**2 + (n2 - 1) * s2**2 + n1 * n2 / total_n * (m1 - m2) ** 2)
                             / (total_n - 1))
    return total_n, total_mean, total_sd


def split_count(total: int, parts: int) -> list[int]:
    """Split a count into ``parts`` integers as evenly as possible, the remainder going to the first parts
    (7 into 2 -> [4, 3]); used to share a control group among comparisons (Cochrane Handbook 23.3.4)."""
    base, extra = divmod(int(total), parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def _arm_values(row: pd.Series, kind: str) -> dict:
    if kind == "binary":
        return {"events": row["events"], "n": row["n"]}
    return {"mean": row["mean"], "sd": row["sd"], "n": row["n"]}


def _merged(rows: list[pd.Series], kind: str) -> dict:
    """The experimental arms of one comparison as one arm (sum of counts, or Table 6.5.a)."""
    if len(rows) == 1:
        return _arm_values(rows[0], kind)
    if kind == "binary":
        return {"events": sum(r["events"] for r in rows), "n": sum(r["n"] for r in rows)}
    n, mean, sd = _combine_continuous(*(np.array([r[key] for r in rows], dtype=float) for key in ("n", "mean", "sd")))
    return {"mean": mean, "sd": sd, "n": n}


def _joined(rows: list[pd.Series], key: str) -> str:
    return " | ".join(dict.fromkeys(f"{r['arm']}: {r[key]}" for r in rows if isinstance(r[key], str) and r[key]))


def _comparison_row(trial: pd.Series, experimental: list[pd.Series], control: pd.Series, control_values: dict,
                    kind: str, arms: pd.DataFrame, shared: str) -> dict:
    doses = [arms.loc[arms.arm == r["arm"], "dose_mg_day"].iloc[0] for r in experimental]
    dose = doses[0] if len(doses) == 1 else None
    groups = {dose_group(d) for d in doses}
    study = trial["study"] if shared in ("", "combined") or dose is None else f"{trial['study']} ({dose:g} mg)"
    exp_values = _merged(experimental, kind)
    if kind == "binary":
        cells = {"ai": exp_values["events"], "n1i": exp_values["n"], "ci": control_values["events"],
                 "n2i": control_values["n"]}
    else:
        cells = {"m1i": exp_values["mean"], "sd1i": exp_values["sd"], "n1i": exp_values["n"],
                 "m2i": control_values["mean"], "sd2i": control_values["sd"], "n2i": control_values["n"]}
    all_rows = [*experimental, control]
    kinds = [r["source_kind"] for r in all_rows]
    return {
        "trial": trial["trial"], "study": study, "arm": "+".join(r["arm"] for r in experimental),
        "control_arm": control["arm"], **cells,
        "dose_mg": dose if dose is not None else np.nan,
        "dose_group": groups.pop() if len(groups) == 1 else "mixed",
        "shared_control": shared, **{key: control[key] for key in ("timepoint", "timepoint_weeks", "timepoint_class",
                                                                   "complement_of", "analysis_set")},
        **{key: trial[key] for key in ("year", "population", "detox", *SEVERITY_COLUMNS, "control", "randomised",
                                       "duration_weeks")},
        "derived": _joined(all_rows, "derived"), "quote": _joined(all_rows, "quote"),
        "source_kind": "secondary" if "secondary" in kinds else kinds[0],
        "second_hand": "secondary" in kinds, "citation": experimental[0]["citation"],
        "url": experimental[0]["url"],
    }


def _timepoint_problem(results: pd.DataFrame, outcome: str, timepoint_class: str | None,
                       include_complements: bool) -> str | None:
    """Why a trial's result for ``outcome`` is not pooled with the others (None if it is): it is the complement
    of another outcome of the same trial, or it was measured in another timepoint class."""
    first = results.iloc[0]
    if not include_complements and isinstance(first["complement_of"], str):
        return (f"{outcome}: the complement of {first['complement_of']} in this trial (n minus its events), not a "
                "separate finding")
    if timepoint_class is not None and first["timepoint_class"] != timepoint_class:
        return (f"{outcome}: measured at {first['timepoint_class']} ({first['timepoint']}); the analysis pools "
                f"{timepoint_class} results")
    return None


def comparisons(trial_set: TrialSet, outcome: str, shared_control: str = DEFAULT_SHARED_CONTROL, *,
                include_active: bool = False, include_nonrandomised: bool = False,
                timepoint_class: str | None = DEFAULT_TIMEPOINT_CLASS,
                include_complements: bool = False) -> pd.DataFrame:
    """One row per baclofen-vs-control comparison for ``outcome``, ready for :func:`metabac.effect_sizes`.

    Parameters
    ----------
    outcome : an outcome name of the schema (e.g. ``abstinence``) or one the review folder declares.
    shared_control : how a control arm shared by several baclofen arms enters
        - ``combine`` (default, Cochrane Handbook 23.3.4 first choice): the baclofen arms are merged into one
          (counts summed; means and SDs by Handbook Table 6.5.a), one comparison per trial;
        - ``split``: one comparison per baclofen arm, the control's events and N divided among them as evenly as
          integers allow (:func:`split_count`), so no participant is counted twice;
        - ``repeat``: one comparison per baclofen arm, each with the whole control arm; the control is counted
          more than once, and the ``shared_control`` column says so.
    include_active, include_nonrandomised : keep trials with an active control or non-randomised allocation
        (left out by default: the analysis is of randomised trials against placebo or no intervention).
    timepoint_class : pool only results of this class ("end of treatment", the default, or "follow-up"); None
        keeps every timepoint. One analysis, one timepoint class (Cochrane Handbook 9.3.4 and 10.2.2).
    include_complements : keep results recorded as the complement of another outcome of the same trial (e.g.
        relapse = n minus abstinent); left out by default, since they restate that outcome.

    Returns
    -------
    DataFrame with ``trial, study, arm, control_arm``, the arm columns, the predictors (``severity,
    severity_basis, g_per_day, dose_mg, dose_group, detox, population, year``), ``shared_control`` and the
    provenance (``derived, quote, source_kind, second_hand, citation, url``). Trials whose arms are incomplete for
    this outcome are listed in ``result.attrs["excluded"]`` as (trial, reason).
    """
    kinds = trial_set.vocabulary.kinds
    outcome = require_choice(outcome, tuple(kinds), "outcome")
    if timepoint_class is not None:
        timepoint_class = require_choice(timepoint_class, TIMEPOINT_CLASSES, "timepoint_class")
    shared_control = require_choice(shared_control, SHARED_CONTROL, "shared_control")
    kind = kinds[outcome]
    rows, excluded = [], []
    data = trial_set.outcomes[trial_set.outcomes.outcome == outcome]
    for trial_id, results in data.groupby("trial", sort=True):
        trial = trial_set.trials.loc[trial_id]
        if not include_active and trial["control"] == "active":
            excluded.append((trial_id, f"control is {trial['control']}, not placebo"))
            continue
        if not include_nonrandomised and not trial["randomised"]:
            excluded.append((trial_id, "not randomised"))
            continue
        problem = _timepoint_problem(results, outcome, timepoint_class, include_complements)
        if problem:
            excluded.append((trial_id, problem))
            continue
        arms = trial_set.arms[trial_set.arms.trial == trial_id]
        by_arm = {r["arm"]: r for _, r in results.iterrows()}
        for control_key in arms.loc[arms.role == "control", "arm"]:
            experimental_keys = list(arms.loc[arms.compared_with == control_key, "arm"])
            missing = [k for k in [*experimental_keys, control_key]
                       if k not in by_arm or not _complete(by_arm[k], kind)]
            if missing:
                excluded.append((trial_id, f"{outcome}: no complete result for arm(s) {', '.join(missing)}"))
                continue
            control = by_arm[control_key]
            experimental = [by_arm[k] for k in experimental_keys]
            if len(experimental) == 1 or shared_control == "combine":
                label = "combined" if len(experimental) > 1 else ""
                rows.append(_comparison_row(trial, experimental, control, _arm_values(control, kind), kind, arms,
                                            label))
                continue
            parts = len(experimental)
            ns = split_count(control["n"], parts)
            events = split_count(control["events"], parts) if kind == "binary" else [None] * parts
            for i, arm in enumerate(experimental):
                values = _arm_values(control, kind)
                if shared_control == "split":
                    values["n"] = ns[i]
                    if kind == "binary":
                        values["events"] = events[i]
                note = "split" if shared_control == "split" else "repeated (control counted more than once)"
                rows.append(_comparison_row(trial, [arm], control, values, kind, arms, note))
    result = pd.DataFrame(rows)
    result.attrs["excluded"] = excluded
    result.attrs["outcome"] = outcome
    return result
