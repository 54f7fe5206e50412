"""Risk of bias (RoB 2) read from the trial records: tidy rows, the traffic-light table, and sensitivity to it.

Each trial record may hold a ``[risk_of_bias]`` table (schema and validation in :mod:`metabac.trial_schema`): the
randomisation domain (D1) once per trial, and per result (one or more outcomes) the domains D2-D5 and the overall
judgement (Sterne JAC et al. RoB 2: a revised tool for assessing risk of bias in randomised trials. BMJ
2019;366:l4898). A judgement carries the assessor's rationale and its support: ``facts``, paths of the record whose
numbers, sources and quotes are shown here rather than restated in the assessment (attrition per arm, analysis set,
second-hand sources, baseline imbalance), and/or a sourced quote. A judgement resting on a ``secondary`` source
(a news report, or a published review's own judgement) is flagged second-hand.

- :func:`assessment_rows` turns one record into tidy rows (trial x outcome x domain, plus the overall);
  :func:`metabac.load_trials` collects them as ``TrialSet.risk_of_bias``.
- :func:`rob_table` is the traffic-light table (one row per trial, one column per domain) of one outcome.
- :func:`study_overall` gives the overall judgement of each comparison of :func:`metabac.comparisons`.
- :func:`without_high_risk` re-runs an outcome's analysis without the trials at high risk (sensitivity analysis,
  Cochrane Handbook v6.3 section 8.8).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from metabac._checks import InputError
from metabac._result import Result
from metabac.effects import effect_sizes
from metabac.pooling import ModelChoice, PoolResult, pool
from metabac.tau2 import two_sided_p
from metabac.trial_schema import ROB_DOMAINS, ROB_JUDGEMENTS, overall_judgement, resolve_path

if TYPE_CHECKING:
    from metabac.trials import TrialSet

DOMAIN_KEYS = tuple(ROB_DOMAINS)
OVERALL = "overall"
LABELS = {**ROB_DOMAINS, OVERALL: "Overall"}
ROW_COLUMNS = ["trial", "outcome", "domain", "label", "judgement", "rule", "rationale", "support", "second_hand"]


def _sourced(record: dict, table: dict) -> str:
    source = record["sources"][table["source"]]
    flag = ", second-hand" if source["kind"] == "secondary" else ""
    return f'[{table["source"]}: {source["kind"]}{flag}] "{table["quote"]}"'


def _n(value: Any) -> str:
    return "?" if value is None else f"{value:g}"


def _describe_outcome(record: dict, name: str) -> str:
    """Analysis set and, per arm, the result over the analysed and the randomised numbers (attrition)."""
    spec = record["outcomes"][name]
    parts = []
    for arm, result in spec["arms"].items():
        randomised = record["arms"][arm].get("randomised")
        counted = f"{_n(result.get('events'))}/{_n(result.get('n'))}" if "events" in result else \
            f"mean {_n(result.get('mean'))} (n {_n(result.get('n'))})" if "mean" in result else \
            f"{_n(result.get('percent'))}%"
        share = f" ({100 * result['n'] / randomised:.0f}%)" if result.get("n") and randomised else ""
        parts.append(f"{arm} {counted}; {_n(result.get('n'))} of {_n(randomised)} randomised counted{share}")
    sources = sorted({_sourced(record, r) for r in spec["arms"].values()})
    derived = [r["derived"] for r in spec["arms"].values() if r.get("derived")]
    return (f"outcomes.{name} ({spec['timepoint']}; analysis set: {spec['analysis_set']}): " + "; ".join(parts)
            + " " + " ".join(sources) + (f" (derived: {' | '.join(derived)})" if derived else ""))


def baseline_imbalance(mean1: float, sd1: float, n1: int, mean2: float, sd2: float, n2: int) -> tuple[float, float]:
    """Standardised difference (pooled SD) and Welch's two-sided p-value of a baseline variable between two arms;
    a difference beyond chance at baseline answers RoB 2 signalling question 1.3 'yes'.

    Welch's test (Welch 1947), as scipy's ``ttest_ind_from_stats(..., equal_var=False)`` computes it: with
    a_j = sd_j²/n_j, t = (mean1 − mean2)/√(a_1 + a_2) on ν = (a_1 + a_2)² / (a_1²/(n1 − 1) + a_2²/(n2 − 1)) degrees
    of freedom (Welch-Satterthwaite), p = 2·F_t(−|t|; ν)."""
    pooled = math.sqrt(((n1 - 1) * sd1**2 + (n2 - 1) * sd2**2) / (n1 + n2 - 2))
    a1, a2 = sd1**2 / n1, sd2**2 / n2
    df = (a1 + a2) ** 2 / (a1**2 / (n1 - 1) + a2**2 / (n2 - 1))
    return (mean1 - mean2) / pooled, float(two_sided_p((mean1 - mean2) / math.sqrt(a1 + a2), np.asarray(df)))


def _describe_baseline(record: dict) -> str:
    entries = record.get("baseline", [])
    text = "; ".join(f"{e['arm']} {e['mean']:g}" + (f" (SD {e['sd']:g})" if "sd" in e else "") + f" {e['measure']} "
                     + _sourced(record, e) for e in entries)
    per_arm = [e for e in entries if e["arm"] != "all" and "sd" in e and record["arms"][e["arm"]].get("randomised")]
    if len(per_arm) == 2 and per_arm[0]["measure"] == per_arm[1]["measure"]:
        a, b = per_arm
        d, p = baseline_imbalance(a["mean"], a["sd"], record["arms"][a["arm"]]["randomised"],
                                  b["mean"], b["sd"], record["arms"][b["arm"]]["randomised"])
        text += f"; standardised difference {d:.2f}, Welch p = {p:.3f}"
    return "baseline: " + text


def describe_fact(record: dict, path: str) -> str:
    """One fact of a record as a line of support: its numbers with their source, kind and quote."""
    value = resolve_path(record, path)
    if path == "baseline":
        return _describe_baseline(record)
    if path.startswith("outcomes.") and path.count(".") == 1:
        return _describe_outcome(record, path.split(".")[1])
    if path.startswith("sources.") and path.count(".") == 1:
        return f"{path}: a {value['kind']} source, {value['citation']} ({value['url']})"
    if path == "design":
        return "design: " + ", ".join(f"{key} {item}" for key, item in value.items())
    if path == "citation":
        registry = value.get("registry", "no registry id recorded")
        return f"citation: {value['authors']} {value['year']}, {value['journal']}; registry: {registry}"
    if isinstance(value, dict) and "quote" in value:
        numbers = ", ".join(f"{k} {v}" for k, v in value.items() if k not in ("source", "quote", "derived", "note"))
        return f"{path}: {numbers} {_sourced(record, value)}"
    return f"{path}: {value}"


def _support(record: dict, domain: dict) -> tuple[list[str], bool]:
    lines = [describe_fact(record, path) for path in domain.get("facts", [])]
    kinds = [record["sources"][domain["source"]]["kind"]] if "source" in domain else []
    if "quote" in domain:
        lines.append(_sourced(record, domain))
    for path in domain.get("facts", []):
        kinds += _fact_source_kinds(record, path)
    return lines, "secondary" in kinds


def _fact_source_kinds(record: dict, path: str) -> list[str]:
    """The kinds of the sources a fact's numbers were read in (so a second-hand fact makes a second-hand
    judgement)."""
    value = resolve_path(record, path)
    tables = value["arms"].values() if path.startswith("outcomes.") and path.count(".") == 1 else \
        value if isinstance(value, list) else [value]
    if path.startswith("sources."):
        return [value["kind"]] if "kind" in value else []
    return [record["sources"][t["source"]]["kind"] for t in tables if isinstance(t, dict) and "source" in t
            and t["source"] in record["sources"]]


def _domain_row(record: dict, outcome: str, key: str, domain: dict) -> dict:
    lines, second_hand = _support(record, domain)
    return {"trial": record["id"], "outcome": outcome, "domain": key, "label": LABELS[key],
            "judgement": domain["judgement"], "rule": "", "rationale": domain["rationale"], "support": lines,
            "second_hand": second_hand}


def assessment_rows(record: dict) -> list[dict]:
    """Tidy rows of a record's RoB 2 assessment: per assessed outcome, one row per domain and one ``overall`` row.

    ``rule`` on the overall row is what :func:`metabac.trial_schema.overall_judgement` gives; ``rationale`` there
    is the assessor's ``overall_reason`` where the recorded overall departs from it, else the rule in words.
    """
    rob = record.get("risk_of_bias")
    if rob is None:
        return []
    rows = []
    for result in rob["results"]:
        domains = {"randomisation": rob["randomisation"], **{k: result[k] for k in DOMAIN_KEYS[1:]}}
        rule = overall_judgement(d["judgement"] for d in domains.values())
        for outcome in result["outcomes"]:
            domain_rows = [_domain_row(record, outcome, key, domain) for key, domain in domains.items()]
            reason = result.get("overall_reason", f"rule: worst domain; 'high' also with several domains at "
                                                  f"'some concerns' (gives {rule!r})")
            rows += domain_rows + [{
                "trial": record["id"], "outcome": outcome, "domain": OVERALL, "label": LABELS[OVERALL],
                "judgement": result["overall"], "rule": rule, "rationale": reason, "support": [],
                "second_hand": any(r["second_hand"] for r in domain_rows),
                "indirectness": result.get("indirectness", ""),
            }]
    return rows


def rob_frame(rows: list[dict]) -> pd.DataFrame:
    """The tidy RoB rows of all records as a DataFrame (empty with the columns when none is assessed)."""
    frame = pd.DataFrame(rows, columns=ROW_COLUMNS + ["indirectness"])
    frame["indirectness"] = frame["indirectness"].fillna("")
    return frame


def rob_table(trial_set: TrialSet, outcome: str) -> pd.DataFrame:
    """Traffic-light table of one outcome: one row per assessed trial (index: study label), one column per
    domain (D1-D5) and ``overall``, each a judgement."""
    rows = trial_set.risk_of_bias[trial_set.risk_of_bias.outcome == outcome]
    if rows.empty:
        raise InputError(f"{outcome}: no trial record assesses its risk of bias")
    table = rows.pivot(index="trial", columns="domain", values="judgement")[[*DOMAIN_KEYS, OVERALL]]
    table.index = [trial_set.trials.loc[t, "study"] for t in table.index]
    table.columns.name = None
    return table


def study_overall(trial_set: TrialSet, arms: pd.DataFrame, outcome: str) -> list[str]:
    """The overall RoB judgement of each comparison row of ``arms`` (``no information`` where not assessed)."""
    rows = trial_set.risk_of_bias
    overall = rows[(rows.outcome == outcome) & (rows.domain == OVERALL)].set_index("trial")["judgement"]
    return [str(overall.get(trial, "no information")) for trial in arms["trial"]]


@dataclass(frozen=True)
class RobSensitivity(Result):
    """An analysis with all trials and without those at high risk of bias.

    ``all`` and ``restricted`` are the two fits (``restricted`` is None when no trial is left); ``excluded`` the
    studies left out and ``judgements`` the overall judgement of every study.
    """

    outcome: str
    measure: str
    all: PoolResult
    restricted: PoolResult | None
    excluded: tuple[str, ...]
    judgements: dict[str, str]


def fit_comparisons(arms: pd.DataFrame, measure: str | None = None, method: str = "REML", test: str = "z",
                    level: float = 95) -> PoolResult:
    """Pool the comparisons ``arms`` of one outcome (RR for binary arms, MD for continuous ones by default)."""
    binary = "ai" in arms and arms["ai"].notna().all()
    measure = measure or ("RR" if binary else "MD")
    model = ModelChoice(method=method, test=test, level=level)
    columns = ("ai", "n1i", "ci", "n2i") if binary else ("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i")
    es = effect_sizes(measure, labels=arms["study"].astype(str).to_numpy(),
                      **{c: arms[c].to_numpy(dtype=float) for c in columns})
    return pool(es.yi, es.vi, measure=measure, labels=arms["study"].astype(str).to_numpy(), **model)


def without_high_risk(trial_set: TrialSet, arms: pd.DataFrame, *, measure: str | None = None,
                      method: str = "REML", test: str = "z", level: float = 95) -> RobSensitivity:
    """Re-run the analysis of the comparisons ``arms`` (from :func:`metabac.comparisons`) without the trials whose
    overall risk of bias for that outcome is ``high``.

    Trials without an assessment stay in (their judgement is 'no information'). ``measure`` defaults to RR for a
    binary outcome and MD for a continuous one, as in the report.
    """
    outcome = arms.attrs.get("outcome")
    if outcome is None or arms.empty:
        raise InputError("without_high_risk: needs the comparisons of one outcome (metabac.comparisons)")
    measure = measure or ("RR" if trial_set.vocabulary.kinds[outcome] == "binary" else "MD")
    model = ModelChoice(method=method, test=test, level=level)
    judgements = study_overall(trial_set, arms, outcome)
    keep = np.array([j != "high" for j in judgements])
    one_left: ModelChoice = {**model, "test": "z"}   # one trial left: its own Wald interval, said so by k = 1
    restricted = fit_comparisons(arms[keep], measure, **(one_left if keep.sum() == 1 else model)) \
        if keep.any() else None
    return RobSensitivity(outcome, measure, fit_comparisons(arms, measure, **model), restricted,
                          tuple(arms.loc[~keep, "study"]), dict(zip(arms["study"], judgements)))


__all__ = ["DOMAIN_KEYS", "LABELS", "OVERALL", "ROB_JUDGEMENTS", "RobSensitivity", "assessment_rows",
           "baseline_imbalance", "describe_fact", "fit_comparisons", "rob_frame", "rob_table", "study_overall",
           "without_high_risk"]
