"""The judgement of a report as text: the answer first, the GRADE summary of findings, each outcome's appraisal,
and who responds. Numbers come from :class:`metabac.report.Report`; nothing here computes a statistic.

Wording of the answers follows GRADE's informative statements (Santesso N et al. GRADE guidelines 26, J Clin
Epidemiol 2020;119:126-135): the certainty sets the verb ("reduces", "probably reduces", "may reduce", "the
evidence is very uncertain"), and an interval that includes no effect is never read as a benefit or a harm.
"""

from __future__ import annotations

import math
from typing import Any, SupportsFloat

import numpy as np
import pandas as pd

from metabac.certainty import APPRECIABLE_RR
from metabac.effects import RATIO_MEASURES
from metabac.formatting import effect_text, natural_scale, number, p_text, p_value, slug
from metabac.report import BAYES_PRIOR_TEXT, OutcomeAnalysis, Report

SYMBOLS = {"high": "⊕⊕⊕⊕", "moderate": "⊕⊕⊕◯", "low": "⊕⊕◯◯", "very low": "⊕◯◯◯"}
VERBS = {"high": ("increases", "reduces", "results in little to no difference in"),
         "moderate": ("probably increases", "probably reduces", "probably results in little to no difference in"),
         "low": ("may increase", "may reduce", "may result in little to no difference in")}
TESTS = {"knha": "Hartung-Knapp-Sidik-Jonkman", "adhoc": "modified Hartung-Knapp", "z": "Wald-type (z)"}


def outcome_name(outcome: str) -> str:
    return outcome.replace("_", " ")


def interval(measure: str, estimate: SupportsFloat, low: SupportsFloat, high: SupportsFloat, level: float) -> str:
    """An effect in a sentence, named and on the natural scale at its interval's level:
    ``RR 2.18 (95% CI 0.82 to 5.76)``."""
    return f"{measure} {effect_text(measure, estimate, low, high, level=level)}"


def certainty_text(level: str | None) -> str:
    return "not rated" if level is None else f"{SYMBOLS[level]} {level}"


def statement(a: OutcomeAnalysis, intervention: str = "the intervention") -> str:
    """GRADE's informative statement for the outcome, from its certainty and the main fit's interval."""
    certainty = a.appraisal.certainty.certainty if a.appraisal and a.appraisal.certainty else None
    name = outcome_name(a.outcome)
    if certainty is None:  # no trial records to rate (a spreadsheet): state the interval, claim no certainty
        fit = a.main
        includes = "includes" if fit.ci_low <= 0 <= fit.ci_high else "excludes"
        return f"The {fit.level:g}% confidence interval {includes} no effect; certainty not rated (no trial records)."
    if certainty == "very low":
        return f"The evidence is very uncertain about the effect of {intervention.lower()} on {name}."
    up, down, none = VERBS[certainty]
    fit, null = a.main, 0.0
    if fit.ci_low > null:
        return f"{intervention} {up} {name}."
    if fit.ci_high < null:
        return f"{intervention} {down} {name}."
    low, high = natural_scale(a.measure, fit.ci_low), natural_scale(a.measure, fit.ci_high)
    if a.measure in RATIO_MEASURES and APPRECIABLE_RR[0] <= low and high <= APPRECIABLE_RR[1]:
        return f"{intervention} {none} {name}."
    return (f"The interval includes both benefit and harm: {intervention.lower()} {up.split()[0]} increase or reduce "
            f"{name}"
            if certainty != "high" else f"The interval includes both benefit and harm for {name}") + "."


def timepoint_text(a: OutcomeAnalysis) -> str:
    t = a.timepoint
    if t["class"] is None:
        return "timepoint not recorded"
    weeks = ("" if not np.isfinite(t["weeks_min"]) else f", {t['weeks_min']:g} weeks" if t["weeks_min"] ==
             t["weeks_max"] else f", {t['weeks_min']:g} to {t['weeks_max']:g} weeks")
    unstated = f"; week not stated for {t['weeks_not_stated']} trial(s)" if t["weeks_not_stated"] else ""
    after = " after randomisation" if weeks else ""
    return f"{t['class']}{weeks}{after}{unstated}"


def effect_line(a: OutcomeAnalysis) -> str:
    fit = a.main
    if not fit.is_random:
        return f"{interval(a.measure, fit.estimate, fit.ci_low, fit.ci_high, fit.level)}, fixed effect ({fit.model})"
    pi = "" if fit.k < 3 else (f"; {fit.level:g}% prediction interval {_natural(a.measure, fit.pi_low)} "
                               f"to {_natural(a.measure, fit.pi_high)}")
    return (f"{interval(a.measure, fit.estimate, fit.ci_low, fit.ci_high, fit.level)}, random effects ({fit.method}, "
            f"{TESTS.get(fit.test, fit.test)}){pi}")


def _natural(measure: str, value: SupportsFloat) -> str:
    """A bound of an interval on the natural scale, two decimals."""
    return number(natural_scale(measure, value), 2)


def bayes_text(measure: str, fit: Any, intervention: str, outcome: str) -> str:
    """The Bayesian result as one phrase: the posterior median with its central credible interval, the
    predictive interval for a new trial and the probability that the effect lies above no effect."""
    mu, new = fit.mu, fit.prediction
    above = float(fit.prob("mu", lower=0.0))
    return (f"{measure} {_natural(measure, mu.median)} ({fit.level:g}% credible interval "
            f"{_natural(measure, mu.low)} to {_natural(measure, mu.high)}; a new trial "
            f"{_natural(measure, new.low)} to {_natural(measure, new.high)}); posterior probability "
            f"that {intervention.lower()} increases {outcome_name(outcome)} ({measure} above "
            f"{'1' if measure in RATIO_MEASURES else '0'}): {above:.2f}")


def missing_text(a: OutcomeAnalysis) -> str:
    """What the analysis does not hold: eligible trials and participants without usable data, the largest named."""
    e = a.appraisal.evidence if a.appraisal else None
    if e is None:
        return ""
    unknown = f"; N randomised not recorded for {e.eligible_unknown}" if e.eligible_unknown else ""
    large = [f"{study} ({n} randomised)" for study, n in e.without_data if n >= 100]
    named = f"; without usable data: {', '.join(large)}" if large else ""
    randomised = (f" of at least {e.eligible_randomised:,} randomised" if e.eligible_randomised else "")
    return (f"{e.trials} of {e.eligible_trials} controlled trials in the records contribute, "
            f"{e.analysed} participants analysed{randomised}{unknown}{named}")


def published_beside(report: Report, outcome: str) -> list[str]:
    """Published pooled estimates of the outcome (reproduction registry), each with its verdict."""
    table = report.reproduction
    if table is None or "outcome" not in table:
        return []
    mine = table[(table.outcome == outcome) & ~table.analysis.str.startswith("single trial")]
    lines = []
    for entry, rows in mine.groupby("entry", sort=True):
        values = rows.set_index("quantity")["published"]
        if "estimate" not in values:
            continue
        ci = f" ({values['ci_low']} to {values['ci_high']})" if {"ci_low", "ci_high"} <= set(values.index) else ""
        k = f", {values['k']} trials" if "k" in values else ""
        verdict = rows.set_index("quantity").loc["estimate", "verdict"]
        author = str(rows["citation"].iloc[0]).split(",")[0].split()[0]
        year = "".join(ch for ch in str(entry) if ch.isdigit())[:4]
        lines.append(f"{author} {year}: {rows['measure'].iloc[0]} {values['estimate']}{ci}{k} [{verdict}]")
    return lines


def answer_rows(report: Report) -> tuple[tuple[str, ...], list[tuple[tuple[str, ...], str]]]:
    """One row per pooled outcome: the answer, the effect, the certainty, what is missing, published estimates."""
    header = ("Outcome", "Answer", "Effect", "Certainty", "Evidence used and missing", "Published pooled estimates")
    rows: list[tuple[tuple[str, ...], str]] = []
    for a in report.analyses:
        certainty = a.appraisal.certainty.certainty if a.appraisal and a.appraisal.certainty else None
        bayes = a.appraisal.bayes if a.appraisal else None
        bayesian = "" if bayes is None else \
            f". Bayesian, few trials: {bayes_text(a.measure, bayes, report.arm_names[0], a.outcome)}"
        effect = effect_line(a) + bayesian
        rows.append(((f"{outcome_name(a.outcome)} ({timepoint_text(a)})", statement(a, report.arm_names[0]),
                      effect,
                      certainty_text(certainty), missing_text(a),
                      "; ".join(published_beside(report, a.outcome)) or "none in the registry"),
                     f"outcome-{slug(a.outcome)}"))
    for outcome, reason in report.skipped:   # an outcome others pooled is named even where we cannot pool it
        published = published_beside(report, outcome)
        if published:
            rows.append(((outcome_name(outcome), f"Not pooled here: {reason}.", "—", "not rated", "—",
                          "; ".join(published)), "coverage"))
    return header, rows


def severity_answer(report: Report, pointer: bool = True) -> str:
    """The one-line answer on heavy vs moderate drinkers; empty where no trial has a severity class (a review of
    another topic)."""
    who = report.who_responds
    if who is None or who.severity["severity"].isna().all():
        return ""
    classes = who.severity["severity"].dropna()
    counts = classes.value_counts()
    if len(counts) < 2:
        only = ", ".join(f"{n} {level}" for level, n in counts.items()) or "none"
        return (f"Heavy vs moderate drinkers: not estimable. Of {len(who.severity)} trials, {len(classes)} have a "
                f"severity class ({only}); no trial in the records is classified "
                f"{'moderate' if 'heavy' in counts else 'heavy'}, so no comparison between levels can be made."
                + (" The within-trial evidence on who responds is in the section “Who responds?”." if pointer else ""))
    return f"Heavy vs moderate drinkers: {counts.get('heavy', 0)} heavy and {counts.get('moderate', 0)} moderate " \
           "trials; see Who responds? (across-trial comparisons are observational)."


def sof_rows(report: Report) -> tuple[tuple[str, ...], list[tuple[str, ...]], list[str]]:
    """The summary of findings in GRADE layout (Cochrane Handbook 14.1.6): rows, and footnotes giving the reason
    for every level the certainty was rated down. Outcomes not pooled (harms included) are listed with why."""
    experimental, control = (name if name.isupper() else name.lower() for name in report.arm_names)
    level = f"{report.options.level:g}%"
    header = ("Outcome (timepoint)", f"Risk with {control}", f"Risk with {experimental} ({level} CI)",
              f"Relative effect ({level} CI)", "Participants analysed (studies)", "Certainty", "Comments")
    rows: list[tuple[str, ...]] = []
    notes: list[str] = []
    for a in report.analyses:
        s = a.sof
        marks = []
        certainty = a.appraisal.certainty if a.appraisal else None
        for d in certainty.domains if certainty else ():
            if d.levels:
                notes.append(f"{len(notes) + 1}. {outcome_name(a.outcome)}, {d.domain} (−{d.levels}, "
                             f"{d.basis}): {d.reason}")
                marks.append(str(len(notes)))
        if np.isfinite(s.assumed_control_risk):
            with_control = f"{1000 * s.assumed_control_risk:.0f} per 1000"
            with_experimental = (f"{s.corresponding_risk:.0f} per 1000 ({s.corresponding_low:.0f} to "
                                 f"{s.corresponding_high:.0f}): {signed(s.absolute)} per 1000 "
                                 f"({signed(s.absolute_low)} to {signed(s.absolute_high)})")
        else:
            with_control = f"mean {number(s.assumed_control_mean, 2)}" if np.isfinite(s.assumed_control_mean) else "—"
            with_experimental = (f"{s.measure} {number(s.absolute, 2)} ({number(s.absolute_low, 2)} to "
                                 f"{number(s.absolute_high, 2)})")
        rating = certainty.certainty if certainty else None
        rows.append((f"{outcome_name(a.outcome)} ({timepoint_text(a)})", with_control, with_experimental,
                     f"{s.measure} {number(s.relative, 2)} ({number(s.relative_low, 2)} to "
                     f"{number(s.relative_high, 2)})",
                     f"{s.participants} ({s.k} RCTs)",
                     certainty_text(rating) + (f" (notes {', '.join(marks)})" if marks else ""),
                     statement(a, report.arm_names[0])))
    for outcome, reason in report.skipped:
        rows.append((outcome_name(outcome), "—", "—", "—", "—", "not rated", f"Not pooled: {reason}"))
    return header, rows, notes


def signed(value: float) -> str:
    """An absolute difference per 1000 as GRADE prints it: "264 more", "40 fewer"."""
    if not np.isfinite(value):
        return "NA"
    rounded = round(value)
    return f"{abs(rounded):.0f} more" if rounded > 0 else f"{abs(rounded):.0f} fewer" if rounded < 0 else "0 more"


def appraisal_lines(a: OutcomeAnalysis, intervention: str = "the intervention") -> list[str]:
    """The lines under an outcome's pooled result (whose heterogeneity line carries the Q-profile intervals):
    timepoint and left-out trials, the Wald and ITT-only sensitivity lines, the Bayesian result with few trials,
    the re-run without trials at high risk of bias."""
    lines = [f"Timepoint pooled: {timepoint_text(a)}."]
    lines += [f"Left out: {trial}: {reason}." for trial, reason in a.excluded]
    ap = a.appraisal
    if ap is None:
        return lines
    if ap.wald is not None:
        w = ap.wald
        lines.append(f"Sensitivity, Wald-type (z) interval: "
                     f"{interval(a.measure, w.estimate, w.ci_low, w.ci_high, w.level)}, {p_text(w.pvalue)}.")
    if ap.itt_only is not None:
        f = ap.itt_only
        lines.append(f"Sensitivity, trials analysed by intention to treat only (without {', '.join(ap.not_itt)}):"
                     f" {interval(a.measure, f.estimate, f.ci_low, f.ci_high, f.level)}, k = {f.k}.")
    if ap.bayes is not None:
        lines.append(f"Bayesian random effects ({len(a.studies)} trials; prior {BAYES_PRIOR_TEXT}): "
                     f"{bayes_text(a.measure, ap.bayes, intervention, a.outcome)}; τ median "
                     f"{number(ap.bayes.tau.median, 3)} ({ap.bayes.level:g}% credible interval "
                     f"{number(ap.bayes.tau.low, 3)} to {number(ap.bayes.tau.high, 3)}).")
    for group, fit in ap.bayes_groups:
        lines.append(f"Bayesian random effects, subgroup {group} ({int(fit.k)} trials, same prior): "
                     f"{bayes_text(a.measure, fit, intervention, a.outcome)}.")
    r = ap.without_high_risk
    if r is not None and r.excluded:
        if r.restricted is None:
            lines.append(f"Sensitivity, without trials at high risk of bias ({', '.join(r.excluded)}): no trial left.")
        else:
            f = r.restricted
            lines.append(f"Sensitivity, without trials at high risk of bias ({', '.join(r.excluded)}): "
                         f"{interval(a.measure, f.estimate, f.ci_low, f.ci_high, f.level)}, k = {f.k}"
                         + (" (one trial: its own Wald interval)" if f.k == 1 else "") + ".")
    elif r is not None:
        lines.append("Sensitivity, without trials at high risk of bias: none is at high risk.")
    return lines


def grade_rows(a: OutcomeAnalysis) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    header = ("GRADE domain", "Rated down", "Basis", "Reason")
    certainty = a.appraisal.certainty if a.appraisal else None
    rows: list[tuple[str, ...]] = [(d.domain, f"−{d.levels}" if d.levels else "0", d.basis, d.reason)
                                   for d in (certainty.domains if certainty else ())]
    return header, rows


def moderator_rows(m: Any, measure: str) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """One meta-regression: each coefficient with its interval and p, then the omnibus and permutation tests."""
    fit, perm = m.fit, m.permutation
    header = ("Coefficient", f"Estimate ({fit.level:g}% CI)", "p", "Permutation p")
    rows: list[tuple[str, ...]] = [
        (name, f"{number(b, 4)} ({number(lo, 4)} to {number(hi, 4)})", p_value(p),
         p_value(perm.pvalue[i]) if perm is not None else "—")
        for i, (name, b, lo, hi, p) in enumerate(zip(fit.names, fit.coef, fit.ci_low, fit.ci_high, fit.pvalue))]
    test = "F" if fit.test != "z" else "QM"
    rows.append((f"omnibus ({test}, df {', '.join(map(str, fit.qm_df))})", number(fit.qm, 3), p_value(fit.qm_pvalue),
                 p_value(perm.qm_pvalue) if perm is not None else "—"))
    rows.append(("residual heterogeneity", f"τ² = {number(fit.tau2, 4)}, I² = {fit.i2:.0f}%, R² = {fit.r2:.0f}%",
                 "", ""))
    return header, rows


def _yes(value: Any) -> bool:
    return bool(value) and not (isinstance(value, float) and math.isnan(value))


def within_rows(report: Report) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """Within-trial results in the manner of SWiM (Campbell et al., BMJ 2020): what each trial published on an
    effect modifier, its direction and its interaction test, with the source's strength."""
    header = ("Trial", "Modifier", "Outcome", "Subgroup results (as published)", "Interaction", "Direction",
              "Source")
    who = report.who_responds
    rows: list[tuple[str, ...]] = []
    if who is None:
        return header, rows
    for r in who.within.itertuples():
        test = " ".join(x for x in (str(r.interaction_test or ""), str(r.interaction_p_text or "")) if x and
                        x != "nan")
        if r.estimable:
            est = (f"ratio {effect_text(None, r.ratio, r.ratio_ci_lower, r.ratio_ci_upper, level=95)}"
                   if np.isfinite(r.ratio) else
                   effect_text(None, r.interaction, r.interaction_ci_lower, r.interaction_ci_upper, level=95))
            test = "; ".join(x for x in (test, f"{r.contrast}: {est}") if x)
        rows.append((str(r.study), outcome_name(str(r.modifier)), str(r.outcome), str(r.subgroups) or "none",
                     test or "not published", str(r.direction),
                     ("second-hand: " if _yes(r.second_hand) else "") + str(r.citation)))
    return header, rows


def pooled_interaction_lines(report: Report) -> list[str]:
    who = report.who_responds
    if who is None or who.pooled.empty:
        return ["No trial record holds a within-trial result on an effect modifier."]
    lines = []
    for r in who.pooled.itertuples():
        name = outcome_name(str(r.modifier))
        if r.estimable:
            lines.append(f"{name} ({r.contrast}), pooled within-trial interaction over {r.k} trials: "
                         f"{interval(str(r.measure), r.estimate, r.ci_lower, r.ci_upper, report.options.level)}, "
                         f"{p_text(r.pvalue)}.")
        else:
            lines.append(f"{name}: pooled within-trial interaction not estimable: {r.reason}.")
    return lines


def severity_rows(report: Report) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """Each trial's severity class with its ground: grams/day, basis, drink size used and the size at which the
    class would flip, where it rests on an assumed drink size."""
    header = ("Trial", "Severity", "g/day", "Basis", "Drink size used", "Class flips below", "Threshold (g/day)")
    who = report.who_responds
    rows: list[tuple[str, ...]] = []
    for r in (who.severity.itertuples() if who is not None else ()):
        size = "—" if not _number_like(r.severity_drink_size_g) else (
            f"{r.severity_drink_size_g:g} g" + (" (assumed)" if _yes(r.severity_drink_size_assumed) else ""))
        flip = f"{r.flip_drink_size_g:.1f} g" if _yes(r.severity_drink_size_assumed) and _number_like(
            r.flip_drink_size_g) else "—"
        rows.append((str(r.study), str(r.severity) if isinstance(r.severity, str) else "not classified",
                     number(r.g_per_day, 0) if _number_like(r.g_per_day) else "—",
                     (str(r.severity_basis) if isinstance(r.severity_basis, str) else "no baseline intake")
                     + (" (second-hand)" if _yes(r.severity_second_hand) else ""), size, flip,
                     number(r.severity_threshold, 0)))
    return header, rows


def _number_like(value: Any) -> bool:
    return isinstance(value, (int, float, np.floating)) and not isinstance(value, bool) and np.isfinite(value)


def published_rows(report: Report) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    header = ("Review", "Analysis", "Modifier", "Finding", "Quote", "Note")
    who = report.who_responds
    frame = who.published if who is not None else pd.DataFrame()
    rows: list[tuple[str, ...]] = [
        (f"second-hand: {r.citation}", str(r.kind), str(r.modifier), str(r.finding), f"“{r.quote}”",
         str(r.note) if isinstance(r.note, str) else "") for r in frame.itertuples()]
    return header, rows
