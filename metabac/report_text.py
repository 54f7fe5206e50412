"""The sentences and table rows of a report (convention, methods, summary of findings), shared by all renderers.

Every function formats numbers that :func:`metabac.report.build_report` computed; none computes a statistic.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from metabac.report import Report

RATIO = frozenset({"OR", "RR", "PETO", "ROM"})
MEASURE_NAMES = {"RR": "risk ratio", "OR": "odds ratio", "RD": "risk difference", "PETO": "Peto odds ratio",
                 "MD": "mean difference", "SMD": "standardised mean difference (Hedges' g)",
                 "ROM": "ratio of means"}
ESTIMATORS = {"REML": "restricted maximum likelihood (REML; Viechtbauer 2005)", "DL": "DerSimonian-Laird",
              "ML": "maximum likelihood", "PM": "Paule-Mandel", "EB": "empirical Bayes", "HE": "Hedges",
              "HS": "Hunter-Schmidt", "SJ": "Sidik-Jonkman", "EE": "none (equal effects)",
              "FE": "none (equal effects)"}
SHARED_CONTROL = {"combine": "dose arms sharing one control group were combined into a single baclofen arm "
                             "(counts summed; means and SDs by the Cochrane Handbook formula, Table 6.5.a), so no "
                             "control participant is counted twice",
                  "split": "the shared control group was divided between the dose comparisons by an integer rule"}


def slug(text: str) -> str:
    """A lower-case, hyphenated id for anchors and file names."""
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-") or "x"


def _measures(report: Report) -> str:
    used = sorted({a.measure for a in report.analyses}) or [report.options.measure or "RR"]
    return ", ".join(f"{m} ({MEASURE_NAMES.get(m, m)})" for m in used)


def _ci_method(test: str) -> str:
    return ("Hartung-Knapp-Sidik-Jonkman: standard error rescaled and t distribution with k − 1 df"
            if test == "knha" else "Wald-type, normal distribution (z)")


def convention(report: Report) -> str:
    """One sentence naming every convention the numbers follow, printed at the top of the report."""
    o = report.options
    crit = "t(k − 1)" if o.test == "knha" else "z"
    return (f"Convention: measure {_measures(report)}; random-effects τ² estimator {o.method}; "
            f"{o.level:g}% confidence intervals {_ci_method(o.test)}; {o.level:g}% prediction interval "
            f"estimate ± {crit}·√(se² + τ²), shown when k ≥ 3; I² = 100·τ²/(τ² + typical within-study variance) "
            f"(Higgins & Thompson 2002) for random effects, 100·(Q − df)/Q for fixed effect; Chi² is Cochran's Q; "
            f"continuity correction {o.add:g} added to every cell of a study with a zero cell (study effects and Q; "
            f"the Mantel-Haenszel estimate uses the raw cells); subgroups by {o.by or 'none'}; "
            f"ratio measures shown back-transformed.")


def methods_paragraph(report: Report) -> str:
    """A citable methods paragraph naming every analytic choice."""
    o, s = report.options, report.stamp
    kinds = {a.kind for a in report.analyses}
    fixed = []
    if "binary" in kinds:
        fixed.append("dichotomous outcomes with the Mantel-Haenszel method")
    if "continuous" in kinds:
        fixed.append("continuous outcomes by inverse-variance weighting")
    text = (f"Effects were expressed as {_measures(report)}. Fixed-effect estimates pooled "
            f"{' and '.join(fixed) or 'no outcome'}; random-effects estimates used inverse-variance weights with τ² "
            f"estimated by {ESTIMATORS.get(o.method, o.method)}"
            + (" and the Hartung-Knapp-Sidik-Jonkman adjustment" if o.test == "knha" else "")
            + f". Confidence intervals are {o.level:g}% ({_ci_method(o.test)}); the prediction interval is "
            "estimate ± crit·√(se² + τ²) (Higgins, Thompson & Spiegelhalter 2009). Heterogeneity is reported as "
            "Cochran's Q, τ² and I². For study-level effect sizes and the heterogeneity test, "
            f"{o.add:g} was added to every cell of studies with a zero cell (escalc's rule). ")
    if o.by:
        text += (f"Trials were stratified by {o.by} (heavy: baseline ≥ 60 g ethanol/day, the WHO high-risk level); "
                 "each subgroup was pooled with its own τ² and subgroup differences were tested with a fixed-effect "
                 "Q between subgroup estimates (Borenstein et al. 2009, ch. 19). ")
    text += (f"In multi-arm trials, {SHARED_CONTROL.get(o.shared_control, o.shared_control)}. Outcomes reported by "
             f"fewer than {o.min_trials} trials were not pooled. The assumed control risk of the summary of findings "
             "is the median control-arm risk of the pooled trials; absolute effects per 1000 follow the Cochrane "
             "Handbook (§14.1.5). ")
    text += (f"Computed with metabac {s.metabac}{f' ({s.git})' if s.git else ''} (numpy {s.numpy}, scipy {s.scipy}, "
             f"statsmodels {s.statsmodels}, matplotlib {s.matplotlib}) on trials sha256:{s.trials_sha256[:16]}.")
    return text


def _n(value: float, digits: int = 2) -> str:
    return "NA" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def sof_rows(report: Report) -> tuple[tuple[str, ...], list[tuple[tuple[str, ...], str]]]:
    """Header and rows (with the outcome anchor each links to) of the GRADE-ready summary of findings."""
    header = ("Outcome", "Relative effect (95% CI)", "Participants (trials)", "Assumed risk with control",
              "Corresponding risk with baclofen (95% CI)", "Absolute effect (95% CI)", "Model")
    rows = []
    for a in report.analyses:
        s = a.sof
        model = (f"random effects, {a.random.method}" + (", HK" if a.random.test == "knha" else "")
                 if a.random.is_random else "fixed effect")
        relative = f"{s.measure} {_n(s.relative)} ({_n(s.relative_low)} to {_n(s.relative_high)})"
        people = f"{s.participants} ({s.k})"
        if np.isfinite(s.assumed_control_risk):
            assumed = f"{1000 * s.assumed_control_risk:.0f} per 1000 (median control-arm risk)"
            corresponding = (f"{s.corresponding_risk:.0f} per 1000 ({s.corresponding_low:.0f} to "
                             f"{s.corresponding_high:.0f})" + (" (capped at 1000)" if s.capped else ""))
            absolute = f"{_signed(s.absolute)} per 1000 ({_signed(s.absolute_low)} to {_signed(s.absolute_high)})"
        else:
            assumed = f"median control mean {_n(s.assumed_control_mean)}" if np.isfinite(s.assumed_control_mean) \
                else "not stated"
            corresponding = "—"
            absolute = f"{s.measure} {_n(s.absolute)} ({_n(s.absolute_low)} to {_n(s.absolute_high)})"
        rows.append(((a.outcome, relative, people, assumed, corresponding, absolute, model),
                     f"outcome-{slug(a.outcome)}"))
    return header, rows


def _signed(value: float) -> str:
    if not np.isfinite(value):
        return "NA"
    rounded = round(value)
    return f"{abs(rounded):.0f} more" if rounded > 0 else f"{abs(rounded):.0f} fewer" if rounded < 0 else "0 more"


def predictor_rows(result: Any) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    table: pd.DataFrame = result.table
    header = ("Predictor", "Analysis", "Trials", "Per level", "p", "Holm-adjusted p", "Finding")
    rows = [(str(r.predictor), str(r.kind), str(r.k), str(r.k_per_level),
             _n(r.pvalue, 3) if pd.notna(r.pvalue) else "—", _n(r.p_adjusted, 3) if pd.notna(r.p_adjusted) else "—",
             str(r.finding)) for r in table.itertuples()]
    return header, rows
