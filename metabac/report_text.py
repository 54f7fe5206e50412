"""The sentences and table rows of a report (convention, methods, summary of findings), shared by all renderers.

Every function formats numbers that :func:`metabac.report.build_report` computed; none computes a statistic.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np
import pandas as pd

from metabac.effects import MEASURE_NAMES
from metabac.formatting import effect_text, number, p_value, printed_decimals
from metabac.report import Report

ESTIMATORS = {"REML": "restricted maximum likelihood (REML; Viechtbauer 2005)", "DL": "DerSimonian-Laird",
              "ML": "maximum likelihood", "PM": "Paule-Mandel", "EB": "empirical Bayes", "HE": "Hedges",
              "HS": "Hunter-Schmidt", "SJ": "Sidik-Jonkman", "EE": "none (equal effects)",
              "FE": "none (equal effects)"}
SHARED_CONTROL = {"combine": "dose arms sharing one control group were combined into a single baclofen arm "
                             "(counts summed; means and SDs by the Cochrane Handbook formula, Table 6.5.a), so no "
                             "control participant is counted twice",
                  "split": "the shared control group was divided between the dose comparisons by an integer rule"}


def _measures(report: Report) -> str:
    used = sorted({a.measure for a in report.analyses}) or list(report.options.measures) or ["RR"]
    return ", ".join(f"{m} ({MEASURE_NAMES.get(m, m)})" for m in used)


def _ci_method(test: str) -> str:
    if test == "adhoc":
        return ("modified Hartung-Knapp (Röver et al. 2015): standard error rescaled by max(1, s²) and t distribution "
                "with k − 1 df")
    return ("Hartung-Knapp-Sidik-Jonkman: standard error rescaled and t distribution with k − 1 df"
            if test == "knha" else "Wald-type, normal distribution (z)")


def convention(report: Report) -> str:
    """One sentence naming every convention the numbers follow, printed at the top of the report."""
    o = report.options
    crit = "z" if o.test == "z" else "t(k − 1)"
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
            + ({"knha": " and the Hartung-Knapp-Sidik-Jonkman adjustment",
                "adhoc": " and the modified Hartung-Knapp adjustment"}.get(o.test, ""))
            + f". Confidence intervals are {o.level:g}% ({_ci_method(o.test)}); the prediction interval is "
            f"estimate ± {'z' if o.test == 'z' else 't(k − 1)'}·√(se² + τ²) (Higgins, Thompson & Spiegelhalter "
            "2009), the Wald-type interval is shown beside it as a sensitivity analysis. Heterogeneity is reported as "
            "Cochran's Q, τ² with its Q-profile confidence interval (Viechtbauer 2007) and I² computed from τ², "
            "with the interval that follows from τ²'s (Cochrane Handbook chapter 10). For study-level effect sizes "
            f"and the heterogeneity test, {o.add:g} was added to every cell of studies with a zero cell (escalc's "
            f"rule). Each analysis pools one timepoint class ({o.timepoint_class}); results measured at another "
            "timepoint, and results recorded as the complement of another outcome of the same trial (e.g. relapse "
            "as randomised minus abstinent), are left out and listed with the reason. Sensitivity analyses re-run "
            "each outcome with the trials analysed by intention to treat only and without the trials at high risk "
            "of bias (RoB 2); certainty follows GRADE by the rules stated with each rating. Below 10 trials no test "
            "for funnel-plot asymmetry, trim-and-fill or fail-safe N is computed (Cochrane Handbook 13.3.5.4). ")
    if o.by:
        text += (f"Trials were stratified by {o.by}. Severity: heavy when the trial's baseline intake is at or above "
                 "the WHO high-risk level, 60 g ethanol/day for men and 40 g/day for women, the threshold weighted "
                 "by the trial's share of men where reported (60 g where not); drinks were converted to grams with "
                 "the trial's standard drink, or an assumed size where it is not stated (listed per trial, with the "
                 "size at which the class would flip, under Who responds?); a trial without a baseline daily intake "
                 "(or an entry criterion admitting only heavy drinkers) is not classified and takes no part in the "
                 "subgroup test. Each subgroup was pooled with its own τ² and subgroup differences were tested with "
                 "a fixed-effect Q between the classified subgroups' estimates (Borenstein et al. 2009, ch. 19). ")
    text += (f"In multi-arm trials, {SHARED_CONTROL.get(o.shared_control, o.shared_control)}. Outcomes reported by "
             f"fewer than {o.min_trials} trials were not pooled. The assumed control risk of the summary of findings "
             "is the median control-arm risk of the pooled trials; absolute effects per 1000 follow the Cochrane "
             "Handbook (§14.1.5). ")
    text += (f"Computed with metabac {s.metabac}{f' ({s.git})' if s.git else ''} (numpy {s.numpy}, scipy {s.scipy}, "
             f"statsmodels {s.statsmodels}, matplotlib {s.matplotlib}) on trials sha256:{s.trials_sha256[:16]}.")
    return text


def predictor_rows(result: Any) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """One row per candidate predictor: its analysis, trials, p and Holm-adjusted p ("—" where not estimable)."""
    table: pd.DataFrame = result.table
    header: tuple[str, ...] = ("Predictor", "Analysis", "Trials", "Per level", "p", "Holm-adjusted p", "Finding")
    rows: list[tuple[str, ...]] = [
        (str(r.predictor), str(r.kind), str(r.k), str(r.k_per_level),
         p_value(r.pvalue) if pd.notna(r.pvalue) else "—", p_value(r.p_adjusted) if pd.notna(r.p_adjusted) else "—",
         str(r.finding)) for r in table.itertuples()]
    return header, rows


def leave_one_out_rows(a: Any) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """One row per omitted trial: the pooled effect without it, τ², I², and its influence diagnostics."""
    s = a.sensitivity
    header: tuple[str, ...] = ("Trial omitted", f"{a.measure} [{a.random.level:g}% CI] without it", "p", "τ²", "I²",
                               "Standardised residual", "Cook's distance", "Influential")
    rows: list[tuple[str, ...]] = []
    for (study, loo), (_, inf) in zip(s.leave_one_out.iterrows(), s.influence.iterrows()):
        rows.append((str(study), effect_text(a.measure, loo.estimate, loo.ci_low, loo.ci_high), p_value(loo.pvalue),
                     number(loo.tau2, 3), f"{loo.i2:.0f}%", number(inf.rstudent, 2), number(inf.cook_d, 2),
                     "yes" if inf.influential else "no"))
    return header, rows


def _asymmetry(pvalue: float, low_power: bool) -> str:
    if low_power:
        return "not interpretable with fewer than 10 trials"
    return "funnel asymmetry (p < 0.10)" if pvalue < 0.1 else "no evidence of asymmetry"


def small_study_rows(a: Any) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """Egger, Begg, Peters, trim-and-fill and fail-safe N, one row each."""
    s = a.sensitivity
    header: tuple[str, ...] = ("Method", "Result", "p", "Reads as")
    rows: list[tuple[str, ...]] = []
    if s.egger is not None:
        rows.append(("Egger's regression (weighted, t test of the standard-error slope)",
                     f"t({s.egger.df}) = {number(s.egger.statistic, 2)}; limit estimate "
                     f"{effect_text(a.measure, s.egger.limit_estimate, s.egger.ci_low, s.egger.ci_high)}",
                     p_value(s.egger.pvalue), _asymmetry(s.egger.pvalue, s.low_power)))
    if s.begg is not None:
        rows.append(("Begg's rank correlation", f"Kendall's τ = {number(s.begg.tau, 2)}", p_value(s.begg.pvalue),
                     _asymmetry(s.begg.pvalue, s.low_power)))
    if s.peters is not None:
        rows.append(("Peters' regression on 1/N (binary)", f"t({s.peters.df}) = {number(s.peters.statistic, 2)}",
                     p_value(s.peters.pvalue), _asymmetry(s.peters.pvalue, s.low_power)))
    if s.trimfill is not None:
        t = s.trimfill
        rows.append((f"Trim-and-fill ({t.estimator}, {a.random.method})",
                     f"k0 = {t.k0} trial(s) imputed on the {t.side}; adjusted {a.measure} "
                     f"{effect_text(a.measure, t.estimate, t.ci_low, t.ci_high)}", p_value(t.pvalue),
                     "no missing trials estimated" if t.k0 == 0 else "adjusted estimate, under its assumptions"))
    f = s.failsafe
    if f is not None:
        rows.append(("Fail-safe N (Rosenberg)", f"N = {f.n:g} null trials of average size", p_value(f.pvalue),
                     f"the fixed-effect estimate would lose significance (α = {f.alpha:g}) beyond N added null "
                     "trials" if f.pvalue < f.alpha else "nothing to overturn: the fixed-effect estimate is not "
                                                         f"significant (α = {f.alpha:g})"))
    rows += [(method, f"not computed: {reason}", "—", "—") for method, reason in s.not_computed]
    return header, rows


VERDICT_ORDER = ("differs", "consistent only with inputs derived from the target", "inputs incomplete",
                 "reproduced (derived inputs)", "reproduced")


def _printed(value: Any, like: str) -> str:
    """``value`` with as many decimals as the published string ``like``."""
    if value is None or not np.isfinite(value):
        return "—"
    # Half away from zero, as papers round: 6.25 prints as 6.3 where Python's format gives 6.2.
    exact = Decimal(f"{float(value):.12g}")  # drop float noise (exp(log(6.25)) = 6.2499999999999991)
    return str(exact.quantize(Decimal(1).scaleb(-printed_decimals(like)), rounding=ROUND_HALF_UP))


def reproduction_rows(table: pd.DataFrame) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """One row per published analysis: the published and the reproduced numbers, the worst verdict and why."""
    header: tuple[str, ...] = ("Published analysis", "Analysis", "Published", "Reproduced", "Verdict",
                               "Reason or missing inputs")
    rows: list[tuple[str, ...]] = []
    for (entry, analysis), group in table.groupby(["entry", "analysis"], sort=False):
        published = "; ".join(f"{q} {p}" for q, p in zip(group.quantity, group.published))
        reproduced = "; ".join(f"{q} {_printed(r, str(p).lstrip('<'))}" for q, r, p in
                               zip(group.quantity, group.reproduced, group.published))
        verdict = min(group.verdict, key=VERDICT_ORDER.index)
        reasons = "; ".join(dict.fromkeys(r for r in group.reason if isinstance(r, str) and r))
        rows.append((str(entry), str(analysis), published, reproduced, verdict, reasons or "—"))
    return header, rows
