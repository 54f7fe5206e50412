"""The review of the trials as numbers: ``build_report(options) -> Report``, a tree of frozen dataclasses.

Nothing here formats a string for display or computes a statistic itself: every number comes from the library
(:func:`metabac.pool`, :func:`metabac.mantel_haenszel`, :func:`metabac.subgroups`, :func:`metabac.leave_one_out`,
:func:`metabac.egger`, :func:`metabac.reproduce`, ...). The renderers in :mod:`metabac.render` turn a
:class:`Report` into Markdown, HTML and JSON; :mod:`metabac.report_files` writes it.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from metabac import __version__
from metabac._checks import InputError, require_choice
from metabac._result import to_jsonable
from metabac.bayes import BayesResult, bayes
from metabac.bias import (
    BeggResult,
    FailSafeResult,
    RegressionTestResult,
    TrimFillResult,
    begg,
    egger,
    failsafe_n,
    peters,
    trimfill,
)
from metabac.certainty import Override, grade_outcome
from metabac.defaults import (
    DEFAULT_METHOD,
    DEFAULT_SHARED_CONTROL,
    DEFAULT_TEST,
    DEFAULT_TIMEPOINT_CLASS,
    bundled_trials,
)
from metabac.effects import BINARY_MEASURES, CONTINUOUS_MEASURES, RATIO_MEASURES, effect_sizes
from metabac.interaction import pool_interactions, within_trial_interactions
from metabac.mantel_haenszel import mantel_haenszel, peto
from metabac.moderators import MetaRegResult, PermutationResult, SubgroupResult, metareg, subgroups
from metabac.pooling import ModelChoice, PoolResult, pool
from metabac.predictors import predictors
from metabac.report_sources import Source, measure_for, records_source, table_source
from metabac.reproduce import reproduce
from metabac.review import Review, published_moderator_findings
from metabac.rob import fit_comparisons, rob_table, without_high_risk
from metabac.sensitivity import baujat, cumulative, influence, leave_one_out
from metabac.summary_of_findings import SummaryOfFindings, summary_of_findings
from metabac.tau2 import METHODS, TESTS
from metabac.trials import TrialSet

Progress = Callable[[int, int, str], None]
BINARY_ARMS = ("ai", "n1i", "ci", "n2i")
FIXED_POOLING = ("EE", "FE", "MH", "PETO")  # --method values that make the fixed-effect model the main one
CONTINUOUS_ARMS = ("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i")
# Below this many trials, tests for funnel-plot asymmetry have too little power to tell asymmetry from chance
# (Cochrane Handbook 13.3.5.4; Sterne et al. 2011, BMJ 343:d4002): not run, the reason given instead.
ASYMMETRY_MIN_TRIALS = 10
# Below this many trials the report shows the Bayesian random-effects result beside the frequentist one (issue 20):
# with so few trials tau² is barely identified, and a weakly informative prior on tau is the recommended way in.
BAYES_MAX_TRIALS = 4
# The prior on tau for ratio measures: half-normal with scale 0.5 (Friede et al., Biom J 2017; Röver et al., Res
# Synth Methods 2021), which puts 95% of its mass below tau = 0.98 on the log scale: large heterogeneity between
# trials of one drug is possible, extreme heterogeneity is not. Other measures get no default prior (their scale
# is the outcome's own), so no Bayesian line.
BAYES_PRIOR = ("halfnormal", 0.5)
BAYES_PRIOR_TEXT = ("half-normal(0.5) on τ (Friede et al., Biom J 2017; Röver et al., Res Synth Methods 2021: "
                    "weakly informative for log ratios, 95% of its mass below τ = 0.98), flat prior on the mean")
# Columns of metabac.comparisons that make sense as subgroups (listed when --by names none of the columns).
GROUPING_COLUMNS = frozenset({"severity", "severity_basis", "dose_group", "detox", "population", "control",
                              "shared_control", "analysis_set", "timepoint", "timepoint_class", "year",
                              "dose_mg"})


@dataclass(frozen=True)
class ReportOptions:
    """The choices behind a report. Empty ``outcomes`` means every outcome reported by at least ``min_trials``."""

    outcomes: tuple[str, ...] = ()
    measures: tuple[str, ...] = ()  # at most one binary and one continuous; default RR and MD
    method: str = DEFAULT_METHOD
    test: str = DEFAULT_TEST
    by: str | None = None  # a column to stratify by; None: the source's own ("severity" for trial records); "none"
    trials_dir: Path = field(default_factory=bundled_trials)
    data: Path | None = None  # a spreadsheet of studies instead of trial records
    mods: tuple[str, ...] = ()  # columns to meta-regress on, one model each
    label: str | None = None  # the spreadsheet's study-label column (default "study")

    @property
    def tau2_method(self) -> str:
        """The tau² estimator of the inverse-variance fits: EE when the main model is a fixed-effect one."""
        return "EE" if self.method in FIXED_POOLING else self.method
    level: float = 95.0
    add: float = 0.5
    shared_control: str = DEFAULT_SHARED_CONTROL
    timepoint_class: str = DEFAULT_TIMEPOINT_CLASS
    min_trials: int = 2
    command: str = ""


@dataclass(frozen=True)
class OutcomeAnalysis:
    """One outcome pooled: the studies table, the random- and fixed-effect fits, subgroups and extras.

    ``studies`` has one row per comparison: study, arm data, yi, vi, weight (random, %), weight_fixed (%), group,
    mark ("†" derived, "‡" second-hand) and the provenance columns (source, quote, citation, url, derived).
    """

    outcome: str
    kind: str  # "binary" or "continuous"
    measure: str
    studies: pd.DataFrame
    random: PoolResult
    fixed: PoolResult
    groups: SubgroupResult | None
    sof: SummaryOfFindings
    predictors: Any | None = None
    sensitivity: Sensitivity | None = None
    excluded: tuple[tuple[str, str], ...] = ()  # (trial, reason) of the trials with this outcome left out
    appraisal: Appraisal | None = None
    moderators: tuple[Moderator, ...] = ()

    @property
    def main(self) -> PoolResult:
        """The fit the answer and the summary of findings report: random effects, or the fixed-effect model when
        the analysis has no random effects (``--method EE``, ``MH`` or ``PETO``)."""
        return self.random if self.random.is_random else self.fixed

    @property
    def timepoint(self) -> dict:
        """The timepoint class pooled and its window in weeks since randomisation (NaN where no trial says)."""
        weeks = self.studies["timepoint_weeks"] if "timepoint_weeks" in self.studies else pd.Series(dtype=float)
        classes = sorted(set(self.studies["timepoint_class"])) if "timepoint_class" in self.studies else []
        return {"class": " and ".join(classes) or None, "weeks_min": weeks.min(), "weeks_max": weeks.max(),
                "weeks_not_stated": int(weeks.isna().sum())}


@dataclass(frozen=True)
class Sensitivity:
    """Sensitivity analyses and small-study effects of one outcome, under the report's random-effects model.

    ``leave_one_out``, ``influence``, ``baujat`` and ``cumulative`` (by publication year) are the library's
    DataFrames. ``egger`` (classical weighted regression), ``begg``, ``peters`` (binary outcomes) and ``trimfill``
    and ``failsafe`` are None where they cannot be computed or are not run (below :data:`ASYMMETRY_MIN_TRIALS`
    trials), with the reason in ``not_computed``; ``low_power`` is true below that many trials.
    """

    leave_one_out: pd.DataFrame
    influence: pd.DataFrame
    baujat: pd.DataFrame
    cumulative: pd.DataFrame
    egger: RegressionTestResult | None
    begg: BeggResult | None
    peters: RegressionTestResult | None
    trimfill: TrimFillResult | None
    failsafe: FailSafeResult | None
    not_computed: tuple[tuple[str, str], ...]
    low_power: bool

    def to_dict(self) -> dict:
        frames = {name: _records(getattr(self, name).reset_index())
                  for name in ("leave_one_out", "influence", "baujat", "cumulative")}
        tests = {name: None if getattr(self, name) is None else getattr(self, name).to_dict()
                 for name in ("egger", "begg", "peters", "trimfill", "failsafe")}
        return {**frames, **tests, "not_computed": [{"method": m, "reason": r} for m, r in self.not_computed],
                "low_power": self.low_power}


@dataclass(frozen=True)
class Evidence:
    """How much of the eligible evidence one analysis uses: the trials and participants it pools against every
    randomised trial in the records with a placebo or no-intervention control (Cochrane Handbook 14.1.6: say what
    is missing)."""

    trials: int
    analysed: int                 # participants in the analysis (sum of the arms' n)
    eligible_trials: int
    eligible_randomised: int      # randomised in the eligible trials whose N is recorded
    eligible_unknown: int         # eligible trials whose N randomised is not recorded
    without_data: tuple[tuple[str, int], ...]   # eligible trials not in the analysis, largest first (study, N)


@dataclass(frozen=True)
class Appraisal:
    """The judgement around one outcome's numbers.

    ``heterogeneity`` is the Q-profile interval for tau², tau, I² and H² of the main fit; ``wald`` the same
    model with a Wald-type (z) interval, shown as a sensitivity line when the report uses Hartung-Knapp;
    ``itt_only`` the analysis restricted to trials analysed by intention to treat, where that changes k
    (``not_itt`` the trials it leaves out); ``rob`` the RoB 2 traffic-light table of the trials pooled,
    ``without_high_risk`` the re-run without trials at high risk of bias, ``certainty`` the GRADE rating;
    ``bayes`` the Bayesian random-effects result (prior :data:`BAYES_PRIOR`) of an outcome with at most
    :data:`BAYES_MAX_TRIALS` trials and a ratio measure, ``bayes_groups`` that of each such subgroup.
    """

    heterogeneity: Any | None
    wald: PoolResult | None
    itt_only: PoolResult | None
    not_itt: tuple[str, ...]
    rob: pd.DataFrame | None
    without_high_risk: Any | None
    certainty: Any | None
    evidence: Evidence | None
    bayes: BayesResult | None = None
    bayes_groups: tuple[tuple[str, BayesResult], ...] = ()

    def to_dict(self) -> dict:
        ci = self.heterogeneity
        return to_jsonable({
            "heterogeneity_ci": None if ci is None else {
                "level": 95, **{name: getattr(ci, name)._asdict() for name in ("tau2", "tau", "i2", "h2")},
                "lower_censored": ci.lower_censored, "upper_censored": ci.upper_censored, "empty": ci.empty},
            "wald": _fit_dict(self.wald), "itt_only": _fit_dict(self.itt_only), "not_itt": list(self.not_itt),
            "risk_of_bias": None if self.rob is None else _records(self.rob.rename_axis("study").reset_index()),
            "without_high_risk": None if self.without_high_risk is None else {
                "excluded": list(self.without_high_risk.excluded),
                "restricted": _fit_dict(self.without_high_risk.restricted)},
            "certainty": None if self.certainty is None else self.certainty.to_dict(),
            "evidence": None if self.evidence is None else self.evidence.__dict__,
            "bayes": None if self.bayes is None else {"prior": BAYES_PRIOR_TEXT, **_bayes_dict(self.bayes)},
            "bayes_subgroups": [{"group": g, **_bayes_dict(b)} for g, b in self.bayes_groups],
        })


def _bayes_dict(fit: BayesResult) -> dict:
    """The Bayesian result's summaries and the posterior probabilities that the mean effect lies above and below
    no effect."""
    return {**{k: v for k, v in fit.to_dict().items() if k not in ("yi", "vi", "theta")},
            "p_above_null": fit.prob("mu", lower=0.0), "p_below_null": fit.prob("mu", upper=0.0)}


def bayes_of(a: OutcomeAnalysis) -> tuple[BayesResult | None, tuple[tuple[str, BayesResult], ...]]:
    """The Bayesian random-effects results the report shows: the outcome's, and each subgroup's, with at most
    :data:`BAYES_MAX_TRIALS` trials and a ratio measure (prior :data:`BAYES_PRIOR`)."""
    if a.measure not in RATIO_MEASURES:
        return None, ()
    prior, scale = BAYES_PRIOR
    level = a.random.level
    fit = (bayes(a.studies["yi"], a.studies["vi"], tau_prior=prior, tau_scale=scale, measure=a.measure, level=level,
                 labels=a.studies["study"].astype(str).to_numpy()) if len(a.studies) <= BAYES_MAX_TRIALS else None)
    groups = []
    if a.groups is not None:
        for name in a.groups.fits:
            members = a.studies[a.studies["group"].astype(str) == name]
            if 1 < len(members) <= BAYES_MAX_TRIALS:
                groups.append((name, bayes(members["yi"], members["vi"], tau_prior=prior, tau_scale=scale,
                                           measure=a.measure, level=level)))
    return fit, tuple(groups)


def _fit_dict(fit: PoolResult | None) -> dict | None:
    return None if fit is None else {k: v for k, v in fit.to_dict().items() if k != "control"}


@dataclass(frozen=True)
class WhoResponds:
    """The evidence on effect modifiers, kept apart by strength (Fisher et al., BMJ 2017;356:j573).

    ``within`` holds the within-trial subgroup and interaction results of the records
    (:func:`metabac.within_trial_interactions`) and ``pooled`` their deft pooling per modifier; ``severity`` each
    trial's drinking-severity class with its ground (across-trial, observational); ``published`` the across-trial
    findings of other reviews (second-hand).
    """

    within: pd.DataFrame
    pooled: pd.DataFrame
    severity: pd.DataFrame
    published: pd.DataFrame

    @property
    def has_evidence(self) -> bool:
        """Anything to show: a within-trial result, a trial with a severity class or a published finding."""
        return bool(len(self.within) or self.severity["severity"].notna().any() or len(self.published))

    def to_dict(self) -> dict:
        return {name: _records(getattr(self, name)) for name in ("within", "pooled", "severity", "published")}


SEVERITY_TABLE = ["study", "severity", "g_per_day", "severity_basis", "severity_drink_size_g",
                  "severity_drink_size_assumed", "flip_drink_size_g", "severity_threshold", "severity_second_hand"]


def who_responds(trials: TrialSet, options: ReportOptions) -> WhoResponds:
    """Within-trial interactions (and their pooling), the severity classes and published moderator findings."""
    within = within_trial_interactions(trials)
    pooled = pool_interactions(within, method=options.tau2_method, level=options.level) if len(within) else \
        pd.DataFrame()
    return WhoResponds(within, pooled, trials.trials[SEVERITY_TABLE].reset_index(drop=True),
                       published_moderator_findings(options.trials_dir))


@dataclass(frozen=True)
class RunStamp:
    """What is needed to rerun the analysis: versions, the trials' hash and the command line."""

    metabac: str
    git: str | None
    trials_sha256: str
    numpy: str
    scipy: str
    statsmodels: str
    matplotlib: str
    command: str
    source_date_epoch: str | None


@dataclass(frozen=True)
class Report:
    """Everything a rendering shows; no display strings are formatted here."""

    options: ReportOptions
    coverage: pd.DataFrame | None  # trial x outcome table of the records; None for a spreadsheet
    analyses: tuple[OutcomeAnalysis, ...]
    skipped: tuple[tuple[str, str], ...]
    reproduction: pd.DataFrame | None
    reproduction_note: str | None
    stamp: RunStamp
    review: Review | None = None
    who_responds: WhoResponds | None = None

    @property
    def arm_names(self) -> tuple[str, str]:
        """The experimental and control arms' short names (the review's, else generic), for tables and plots."""
        return (self.review.experimental, self.review.control) if self.review else ("Experimental", "Control")

    def to_dict(self) -> dict:
        """JSON-ready: DataFrames become lists of records, NaN becomes None."""
        return to_jsonable({
            "options": {**self.options.__dict__, "trials_dir": str(self.options.trials_dir),
                        "data": None if self.options.data is None else str(self.options.data)},
            "coverage": None if self.coverage is None else _records(self.coverage.reset_index()),
            "analyses": [_analysis_dict(a) for a in self.analyses],
            "skipped": [{"outcome": o, "reason": r} for o, r in self.skipped],
            "reproduction": _records(self.reproduction),
            "reproduction_note": self.reproduction_note,
            "stamp": self.stamp.__dict__,
            "review": None if self.review is None else self.review.to_dict(),
            "who_responds": None if self.who_responds is None else self.who_responds.to_dict(),
        })


def _records(frame: pd.DataFrame | None) -> list[dict] | None:
    if frame is None:
        return None
    return to_jsonable(frame.astype(object).where(frame.notna(), None).to_dict(orient="records"))


def _analysis_dict(a: OutcomeAnalysis) -> dict:
    return {
        "outcome": a.outcome, "kind": a.kind, "measure": a.measure, "studies": _records(a.studies),
        "random": _fit_dict(a.random), "fixed": _fit_dict(a.fixed),
        "subgroups": a.groups.to_dict() if a.groups is not None else None, "summary_of_findings": a.sof.to_dict(),
        "predictors": a.predictors.to_dict() if a.predictors is not None else None,
        "sensitivity": a.sensitivity.to_dict() if a.sensitivity is not None else None,
        "timepoint": a.timepoint, "excluded": [{"trial": t, "reason": r} for t, r in a.excluded],
        "appraisal": a.appraisal.to_dict() if a.appraisal is not None else None,
        "moderators": [m.to_dict() for m in a.moderators],
    }


def _kind(arms: pd.DataFrame) -> str | None:
    """binary or continuous arm data, or ready-made effect sizes ("effects": ``yi, vi`` without arm data)."""
    if all(c in arms for c in BINARY_ARMS) and arms[list(BINARY_ARMS)].notna().all(axis=None):
        return "binary"
    if all(c in arms for c in CONTINUOUS_ARMS) and arms[list(CONTINUOUS_ARMS)].notna().all(axis=None):
        return "continuous"
    if {"yi", "vi"} <= set(arms) and arms[["yi", "vi"]].notna().all(axis=None):
        return "effects"
    return None


def _marks(arms: pd.DataFrame) -> list[str]:
    derived = arms["derived"] if "derived" in arms else pd.Series([None] * len(arms), index=arms.index)
    kinds = arms["source_kind"] if "source_kind" in arms else pd.Series([None] * len(arms), index=arms.index)
    return [("†" if isinstance(d, str) and d else "") + ("‡" if k == "secondary" else "")
            for d, k in zip(derived, kinds)]


def analyse_outcome(arms: pd.DataFrame, outcome: str, options: ReportOptions) -> OutcomeAnalysis:
    """Pool one outcome: fixed effect (Mantel-Haenszel or inverse variance), random effects, subgroups, SoF."""
    kind = _kind(arms)
    if kind is None:
        raise InputError(f"{outcome}: the comparisons carry neither complete binary nor continuous arm data")
    labels = arms["study"].astype(str).to_numpy()
    if kind == "effects":  # yi, vi as given; the measure only names their scale
        measure = arms.attrs.get("measure") or (options.measures[0] if options.measures else "effect")
        data: dict[str, Any] = {}
        es = pd.DataFrame({"yi": arms["yi"].to_numpy(dtype=float), "vi": arms["vi"].to_numpy(dtype=float)})
    else:
        measure = measure_for(kind, outcome, options.measures)
        columns = BINARY_ARMS if kind == "binary" else CONTINUOUS_ARMS
        data = {c: arms[c].to_numpy(dtype=float) for c in columns}
        es = effect_sizes(measure, add=options.add, labels=labels, **data)
    random = pool(es.yi, es.vi, method=options.tau2_method, test=options.test,
                  level=options.level, measure=measure, labels=labels)
    if kind == "binary" and (measure == "PETO" or options.method == "PETO"):
        fixed = peto(level=options.level, add=options.add, labels=labels, **data)
    elif kind == "binary":
        fixed = mantel_haenszel(measure, level=options.level, add=options.add, labels=labels, **data)
    elif options.method in ("MH", "PETO"):
        raise InputError(f"{outcome}: --method {options.method} needs binary arm data (ai, n1i, ci, n2i)")
    else:
        fixed = pool(es.yi, es.vi, method="EE", level=options.level, measure=measure, labels=labels)
    studies = arms.reset_index(drop=True).copy()
    studies["yi"], studies["vi"] = es.yi.to_numpy(), es.vi.to_numpy()
    studies["weight"], studies["weight_fixed"] = random.weights, fixed.weights
    studies["mark"] = _marks(studies)
    groups = None
    if options.by and options.by in studies:
        studies["group"] = studies[options.by].where(studies[options.by].notna(), None)
        groups = subgroups(es.yi, es.vi, studies["group"].to_numpy(dtype=object), method=options.tau2_method,
                           test=options.test, level=options.level)
    participants = int(np.sum(data["n1i"]) + np.sum(data["n2i"])) if data else 0
    main = random if random.is_random else fixed
    sof = summary_of_findings(
        measure, float(main.estimate), float(main.ci_low), float(main.ci_high), participants=participants,
        k=int(random.k), control_events=data.get("ci"), control_n=data["n2i"] if kind == "binary" else None,
        control_means=data.get("m2i"))
    return OutcomeAnalysis(outcome, kind, measure, studies, random, fixed, groups, sof,
                           excluded=tuple(arms.attrs.get("excluded", ())))


def _attempt(name: str, compute: Callable[[], Any], failures: list[tuple[str, str]]) -> Any | None:
    """``compute()``, or None with the method's name and the reason appended to ``failures``."""
    try:
        return compute()
    except InputError as error:
        failures.append((name, str(error)))
        return None


def sensitivity_of(a: OutcomeAnalysis, options: ReportOptions) -> Sensitivity:
    """Leave-one-out, influence, Baujat, cumulative (by year) and small-study methods for one outcome.

    Below :data:`ASYMMETRY_MIN_TRIALS` trials the small-study methods (Egger, Begg, Peters, trim-and-fill,
    fail-safe N) are not run at all: their numbers cannot be interpreted there (Cochrane Handbook 13.3.5.4), so
    the report gives only the reason, never a number a reader could quote.
    """
    yi, vi = a.studies["yi"].to_numpy(), a.studies["vi"].to_numpy()
    model = ModelChoice(method=options.tau2_method, test=options.test, level=options.level)
    labels = a.studies["study"].astype(str).to_numpy()
    failures: list[tuple[str, str]] = []
    binary = {c: a.studies[c].to_numpy(dtype=float) for c in BINARY_ARMS} if a.kind == "binary" else None
    common = dict(
        leave_one_out=leave_one_out(yi, vi, **model, labels=labels),
        influence=influence(yi, vi, **model, labels=labels),
        baujat=baujat(yi, vi, labels=labels),
        cumulative=cumulative(yi, vi, order=a.studies["year"] if "year" in a.studies else None, **model,
                              labels=labels),
        low_power=len(yi) < ASYMMETRY_MIN_TRIALS)
    if len(yi) < ASYMMETRY_MIN_TRIALS:
        reason = (f"{len(yi)} trials, fewer than {ASYMMETRY_MIN_TRIALS}: too few to tell funnel-plot asymmetry from "
                  "chance (Cochrane Handbook 13.3.5.4), so no number is given")
        methods = ("Egger's test", "Begg's test", *(("Peters' test",) if binary else ()), "trim-and-fill",
                   "fail-safe N")
        return Sensitivity(**common, egger=None, begg=None, peters=None, trimfill=None, failsafe=None,
                           not_computed=tuple((method, reason) for method in methods))
    return Sensitivity(
        **common,
        egger=_attempt("Egger's test", lambda: egger(yi, vi, level=options.level), failures),
        begg=_attempt("Begg's test", lambda: begg(yi, vi), failures),
        peters=_attempt("Peters' test", lambda: peters(level=options.level, **binary), failures) if binary else None,
        trimfill=_attempt("trim-and-fill", lambda: trimfill(yi, vi, **model, labels=labels), failures),
        failsafe=failsafe_n(yi, vi, type="Rosenberg"),
        not_computed=tuple(failures),
    )


@dataclass(frozen=True)
class Moderator:
    """A meta-regression of the outcome on one column (``--mods``), with its permutation test (1,000
    permutations, seed 1; Higgins & Thompson 2004)."""

    column: str
    fit: MetaRegResult
    permutation: PermutationResult | None

    def to_dict(self) -> dict:
        return {"column": self.column, "fit": self.fit.to_dict(),
                "permutation": None if self.permutation is None else self.permutation.to_dict()}


def moderators_of(a: OutcomeAnalysis, columns: tuple[str, ...], options: ReportOptions) -> tuple[Moderator, ...]:
    """One meta-regression per moderator column: numbers as they are, text as dummy columns (first level the
    reference); studies without a value are an error naming the column, never dropped silently."""
    found = []
    for column in columns:
        values = a.studies[column]
        if values.isna().any():
            raise InputError(f"--mods {column}: {int(values.isna().sum())} studies have no value")
        numeric = pd.api.types.is_numeric_dtype(values)
        mods = values.to_frame(column).astype(float) if numeric else \
            pd.get_dummies(values.astype(str), prefix=column, drop_first=True, dtype=float)
        fit = metareg(a.studies["yi"], a.studies["vi"], mods=mods, method=options.tau2_method, test=options.test,
                      level=options.level)
        found.append(Moderator(column, fit, fit.permutation_test(n=1000, seed=1)))
    return tuple(found)


def _extras(analysis: OutcomeAnalysis, arms: pd.DataFrame, options: ReportOptions,
            records: bool = True, predictor_columns: tuple[str, ...] | None = None) -> OutcomeAnalysis:
    """Sensitivity analyses, the meta-regressions of ``options.mods`` and, for trial records, the predictors table
    (the review's ``predictor_columns``; by default severity, dose, detoxification, population, baseline g/day,
    dose)."""
    analysis = replace(analysis, sensitivity=sensitivity_of(analysis, options),
                       moderators=moderators_of(analysis, options.mods, options))
    if not records:
        return analysis
    try:
        table = predictors(arms, measure=analysis.measure, method=options.tau2_method, test=options.test,
                           outcome=analysis.outcome, columns=predictor_columns)
    except InputError:
        return analysis  # the comparisons carry no predictor column for this outcome
    return replace(analysis, predictors=table)


def evidence_of(a: OutcomeAnalysis, trials: TrialSet) -> Evidence:
    """The trials and participants ``a`` pools against all randomised trials of the records with a placebo or
    no-intervention control."""
    eligible = trials.trials[(trials.trials["control"] != "active") & trials.trials["randomised"].astype(bool)]
    pooled = set(a.studies["trial"]) if "trial" in a.studies else set()
    missing = eligible[~eligible.index.isin(pooled)]
    known = missing["n_randomised"].dropna().sort_values(ascending=False)
    return Evidence(
        trials=len(a.studies), analysed=int(a.studies["n1i"].sum() + a.studies["n2i"].sum()),
        eligible_trials=len(eligible), eligible_randomised=int(eligible["n_randomised"].sum()),
        eligible_unknown=int(eligible["n_randomised"].isna().sum()),
        without_data=tuple((str(missing.loc[t, "study"]), int(n)) for t, n in known.items()))


def _pooled(arms: pd.DataFrame, a: OutcomeAnalysis, options: ReportOptions, test: str) -> PoolResult:
    return fit_comparisons(arms, measure=a.measure, method=options.tau2_method, test=test, level=options.level)


def appraise(a: OutcomeAnalysis, arms: pd.DataFrame, trials: TrialSet | None, options: ReportOptions,
             overrides: Mapping[str, Override] | None = None) -> Appraisal:
    """Heterogeneity intervals, the Wald and ITT-only sensitivity lines, RoB 2, the re-run without trials at high
    risk of bias, GRADE certainty (rated on the report's main fit) and the evidence used, for one outcome.
    Without trial records (a spreadsheet) only the first two: nothing to judge risk of bias or certainty from."""
    fit = a.random
    heterogeneity = fit.confint() if fit.is_random and fit.k > 1 else None
    wald = pool(a.studies["yi"], a.studies["vi"], method=options.tau2_method, level=options.level,
                measure=a.measure, labels=a.studies["study"].astype(str).to_numpy()) \
        if options.test != "z" and fit.is_random else None
    fit_bayes, groups_bayes = bayes_of(a)
    if trials is None:
        return Appraisal(heterogeneity, wald, None, (), None, None, None, None, fit_bayes, groups_bayes)
    itt = arms[arms["analysis_set"] == "ITT"] if "analysis_set" in arms else arms
    itt_only = _pooled(itt, a, options, options.test) if 0 < len(itt) < len(arms) else None
    not_itt = tuple(arms.loc[~arms.index.isin(itt.index), "study"].astype(str))
    try:
        table = rob_table(trials, a.outcome)
        rob = table[table.index.isin(a.studies["study"])]
    except InputError:
        rob = None
    model = ModelChoice(method=options.tau2_method, test=options.test, level=options.level)
    return Appraisal(
        heterogeneity=heterogeneity, wald=wald, itt_only=itt_only, not_itt=not_itt if itt_only else (), rob=rob,
        without_high_risk=without_high_risk(trials, arms, measure=a.measure, **model) if rob is not None else None,
        certainty=grade_outcome(trials, arms, fit, overrides=overrides), evidence=evidence_of(a, trials),
        bayes=fit_bayes, bayes_groups=groups_bayes)


def check_grouping(by: str | None, analyses: list[OutcomeAnalysis]) -> None:
    """``by`` must be a column of the pooled comparisons (or None): an unknown one is an error, never ignored."""
    columns = [set(a.studies.columns) for a in analyses]
    if by and columns and not any(by in c for c in columns):
        known = sorted(c for c in set.intersection(*columns) if c in GROUPING_COLUMNS)
        raise InputError(f"--by: no column {by!r} in the comparisons; choose one of {', '.join(known)} or none")


def reproduction_of(options: ReportOptions, trials: TrialSet | None = None) -> tuple[pd.DataFrame | None, str | None]:
    """The published analyses of ``<trials>/published`` recomputed (:func:`metabac.reproduce`, on the records
    already loaded when ``trials`` is given), or the reason there are none."""
    if not (Path(options.trials_dir) / "published").is_dir():
        return None, f"{Path(options.trials_dir) / 'published'}: no registry of published analyses"
    return reproduce(trials_dir=options.trials_dir, trial_set=trials), None


def _inputs_hash(inputs: tuple[Path, ...]) -> str:
    """SHA-256 over the inputs: a spreadsheet's bytes, or a folder's ``*.toml`` files with their relative names."""
    digest = hashlib.sha256()
    for given in inputs:
        files = [given] if given.is_file() else sorted(given.rglob("*.toml")) if given.is_dir() else []
        for path in files:
            digest.update(str(path.relative_to(given) if path != given else path.name).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _git(folder: Path, *args: str) -> str | None:
    """The output of a read-only git command in ``folder`` (``--no-optional-locks``: git never rewrites the
    index for it), or None where git is missing or fails."""
    try:
        done = subprocess.run(["git", "--no-optional-locks", *args], capture_output=True, text=True, cwd=folder,
                              timeout=5, check=False, env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"})
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_revision(package: Path = Path(__file__).parent) -> str | None:
    """The commit metabac runs from (``git describe --always``, "-dirty" when tracked files changed), or None when
    ``package`` is not the ``metabac`` folder of a git checkout (an installed copy inside some other repository
    must not report that repository's commit).

    Read-only: ``git describe --dirty`` refreshes and rewrites ``.git/index``; the changed files come from
    ``git status --porcelain`` under ``--no-optional-locks`` instead, which writes nothing.
    """
    top = _git(package, "rev-parse", "--show-toplevel")
    if not top or Path(top).resolve() / "metabac" != package.resolve():
        return None
    described = _git(package, "describe", "--always")
    if not described:
        return None
    changed = _git(package, "status", "--porcelain", "--untracked-files=no")
    return described + ("-dirty" if changed else "")


def run_stamp(options: ReportOptions, inputs: tuple[Path, ...] | None = None) -> RunStamp:
    import matplotlib
    import scipy
    import statsmodels

    return RunStamp(__version__, git_revision(), _inputs_hash(inputs or (Path(options.trials_dir),)), np.__version__,
                    scipy.__version__, statsmodels.__version__, matplotlib.__version__, options.command,
                    os.environ.get("SOURCE_DATE_EPOCH"))


def check_options(options: ReportOptions) -> ReportOptions:
    """``options`` with every choice in its canonical spelling (choices are case-insensitive), or InputError."""
    measures = tuple(require_choice(m, (*BINARY_MEASURES, *CONTINUOUS_MEASURES), "measure")
                     for m in options.measures)
    for kind, valid in (("binary", BINARY_MEASURES), ("continuous", CONTINUOUS_MEASURES)):
        same_kind = [m for m in dict.fromkeys(measures) if m in valid]
        if len(same_kind) > 1:
            raise InputError(f"--measure: {' and '.join(same_kind)} are both {kind} measures; give at most one "
                             "binary and one continuous measure")
    if options.data is None and not Path(options.trials_dir).is_dir():
        raise InputError(f"{options.trials_dir}: trials folder not found")
    method = require_choice(options.method, (*METHODS, "MH", "PETO"), "method")
    return replace(options, measures=measures, method=method, test=require_choice(options.test, TESTS, "test"))


def build_report(options: ReportOptions = ReportOptions(), progress: Progress | None = None) -> Report:
    """Run every analysis of the review and return its numbers.

    One engine for both ways in: the trial records of ``options.trials_dir``, or the spreadsheet
    ``options.data`` (:mod:`metabac.report_sources`). Sections whose inputs a source lacks are left empty.

    Parameters
    ----------
    options : ReportOptions
        Outcomes, measures, tau² estimator, test, subgroup column, moderators and the input.
    progress : callable, optional
        Called as ``progress(done, total, label)`` after each step (the CLI draws a progress bar with it).
    """
    options = check_options(options)
    source = source_of(options)
    options = replace(options, by=source.default_by if options.by is None else
                      None if options.by.lower() == "none" else options.by)
    wanted = list(options.outcomes) if options.data is None and options.outcomes else list(source.outcomes)
    unknown = [o for o in wanted if o not in source.outcomes]
    if unknown:
        raise InputError(f"--outcome: no trial reports {', '.join(unknown)} (available: "
                         f"{', '.join(source.outcomes)})")
    analyses, skipped = [], []
    for done, outcome in enumerate(wanted, start=1):
        arms = source.comparisons(outcome)
        if len(arms) < options.min_trials:
            left_out = "".join(f"; {trial}: {reason.removeprefix(outcome + ': ')}"
                               for trial, reason in arms.attrs.get("excluded", ()))
            usable = (f"controlled trial(s) with usable {options.timepoint_class} data" if source.trials is not None
                      else "study row(s) in the table")
            skipped.append((outcome, f"{len(arms)} {usable}, fewer than {options.min_trials}{left_out}"))
        else:
            kind = _kind(arms)
            if kind in ("binary", "continuous"):
                measure_for(kind, outcome, options.measures)  # a measure that does not fit is an error, not a skip
            try:
                analysis = _extras(analyse_outcome(arms, outcome, options), arms, options, source.trials is not None,
                                   source.review.predictors if source.review else None)
                overrides = source.review.overrides.get(outcome) if source.review else None
                analyses.append(replace(analysis, appraisal=appraise(analysis, arms, source.trials, options,
                                                                     overrides)))
            except InputError as error:
                if source.trials is None:
                    raise  # one outcome, the user's own: an error, not a skipped section
                skipped.append((outcome, str(error)))
        if progress:
            progress(done, len(wanted), outcome)
    if not analyses:
        raise InputError("no outcome could be pooled: " + "; ".join(f"{o}: {r}" for o, r in skipped))
    check_grouping(options.by, analyses)
    reproduction, note = reproduction_of(options, source.trials) if source.trials is not None else (None, None)
    return Report(options, source.coverage, tuple(analyses), tuple(skipped), reproduction, note,
                  run_stamp(options, source.inputs), source.review,
                  who_responds(source.trials, options) if source.trials is not None else None)


def source_of(options: ReportOptions) -> Source:
    """The trial records of ``options.trials_dir``, or the spreadsheet ``options.data``."""
    if options.data is None:
        return records_source(Path(options.trials_dir), options.shared_control, options.timepoint_class)
    by = None if options.by is None or options.by.lower() == "none" else options.by
    return table_source(Path(options.data), options.outcomes[0] if options.outcomes else None, options.measures,
                        options.label, by, options.mods)
