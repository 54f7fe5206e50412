"""Which trial characteristics predict baclofen's effect? One table over every candidate predictor.

Categorical predictors (drinking severity, dose group, detoxification before treatment, population) get a subgroup
analysis with the test for subgroup differences; continuous ones (baseline grams of ethanol per day, dose in mg/day,
and on request year of publication and treatment duration) get a meta-regression. A review names the ones to test
(``predictors`` in its ``review.toml``); by default the six of :data:`DEFAULT_COLUMNS`. p-values are adjusted for
the number of predictors tried (Holm, via statsmodels' ``multipletests``). Predictors with too few trials are listed
as not estimable, never hidden.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import get_args

import numpy as np
import pandas as pd

from metabac._checks import InputError, require_choice, require_fraction, require_whole_number
from metabac._result import Result
from metabac.effects import RATIO_MEASURES, Measure, effect_sizes
from metabac.formatting import effect_text, number, p_text
from metabac.moderators import metareg, subgroups

CATEGORICAL = {
    "severity": "drinking severity (heavy vs moderate)",
    "dose_group": "dose group (low <= 60 vs high > 60 mg/day)",
    "detox": "detoxified before treatment",
    "population": "population",
}
CONTINUOUS = {
    "g_per_day": "baseline drinking (g ethanol/day)",
    "dose_mg": "baclofen dose (mg/day)",
    "year": "year of publication",
    "duration_weeks": "treatment duration (weeks)",
}
DEFAULT_COLUMNS = ("severity", "dose_group", "detox", "population", "g_per_day", "dose_mg")  # tested by default
CANDIDATES = {**CATEGORICAL, **CONTINUOUS}  # the columns a review may name as its candidate predictors
UNKNOWN = {"unknown", "", "nan", "None"}
# statsmodels' multipletests methods (it raises a bare ValueError for any other name)
ADJUSTMENTS = ("bonferroni", "sidak", "holm-sidak", "holm", "simes-hochberg", "hommel", "fdr_bh", "fdr_by",
               "fdr_tsbh", "fdr_tsbky")


def adjusted_pvalues(pvalues: np.ndarray, adjustment: str) -> np.ndarray:
    """The p-values adjusted for the number of tests by ``adjustment``, one of :data:`ADJUSTMENTS`.

    Holm's step-down procedure (Holm 1979), the default, is computed here as statsmodels' ``multipletests``
    computes it: over the p-values in ascending order p_(1) <= ... <= p_(m), p̃_(i) = min(1, max_{j <= i}
    (m − j + 1)·p_(j)), returned in the input order. The other methods are statsmodels', imported only for them: it
    imports scipy.stats, about 0.5 s that the report would otherwise not spend.
    """
    if adjustment == "holm":
        order = np.argsort(pvalues)
        adjusted = np.empty(len(pvalues))
        adjusted[order] = np.minimum(np.maximum.accumulate(pvalues[order] * np.arange(len(pvalues), 0, -1)), 1.0)
        return adjusted
    from statsmodels.stats.multitest import multipletests

    return multipletests(pvalues, method=adjustment)[1]


@dataclass(frozen=True, repr=False)
class PredictorsResult(Result):
    """The predictors table and the settings it was computed with."""

    table: pd.DataFrame
    outcome: str | None
    measure: str
    method: str
    test: str
    adjustment: str

    def to_dict(self) -> dict:
        from metabac._result import to_jsonable

        return to_jsonable({"outcome": self.outcome, "measure": self.measure, "method": self.method,
                            "test": self.test, "adjustment": self.adjustment,
                            "table": self.table.to_dict(orient="records")})

    def summary(self) -> str:
        lines = [f"Predictors of the effect ({self.measure}, {self.method} tau², test {self.test}; estimates with 95% "
                 f"confidence intervals; p adjusted by {self.adjustment} over the predictors tested)"]
        for row in self.table.itertuples():
            lines.append(f"- {row.predictor}: {row.finding}")
        return "\n".join(lines)


def _known(values: pd.Series) -> np.ndarray:
    return ~values.isna().to_numpy() & ~values.astype(str).isin(UNKNOWN).to_numpy()


def _categorical_row(es: pd.DataFrame, column: str, measure: str, method: str, test: str,
                     min_per_level: int) -> dict:
    known = _known(es[column])
    labels = es.loc[known, column].map(lambda v: ("yes" if v else "no") if isinstance(v, (bool, np.bool_))
                                       else v).astype(str)
    counts = labels.value_counts().sort_index()
    row = {"predictor": CATEGORICAL[column], "column": column, "kind": "subgroups",
           "k": int(known.sum()), "k_unknown": int((~known).sum()),
           "k_per_level": "; ".join(f"{level}: {n}" for level, n in counts.items())}
    few = [f"{level!r} has {n}" for level, n in counts.items() if n < min_per_level]
    if len(counts) < 2 or few:
        why = "only one level" if len(counts) < 2 else ", ".join(few) + f" trial(s), fewer than {min_per_level}"
        return {**row, "estimable": False, "finding": f"not estimable ({why})"}
    fit = subgroups(es.yi[known], es.vi[known], labels, method=method, test=test)
    parts = [f"{level} {effect_text(measure, r.estimate, r.ci_low, r.ci_high)}, k={int(r.k)}"
             for level, r in fit.table.iterrows()]
    return {**row, "estimable": True, "estimates": "; ".join(parts), "test": "Q between subgroups",
            "statistic": fit.q_between, "df": fit.q_between_df, "pvalue": fit.q_between_pvalue}


def _continuous_row(es: pd.DataFrame, column: str, measure: str, method: str, test: str, min_studies: int) -> dict:
    values = pd.to_numeric(es[column], errors="coerce")
    known = values.notna().to_numpy()
    row = {"predictor": CONTINUOUS[column], "column": column, "kind": "meta-regression", "k": int(known.sum()),
           "k_unknown": int((~known).sum()), "k_per_level": f"{int(known.sum())} with a value"}
    distinct = values[known].nunique()
    if known.sum() < min_studies or distinct < 2:
        why = (f"{int(known.sum())} trial(s) with a value, fewer than {min_studies}" if known.sum() < min_studies
               else "every trial has the same value")
        return {**row, "estimable": False, "finding": f"not estimable ({why})"}
    fit = metareg(es.yi[known], es.vi[known], values[known].to_numpy(), method=method, test=test)
    slope = f"slope {fit.coef[1]:.4g} per unit ({fit.ci_low[1]:.4g} to {fit.ci_high[1]:.4g})"
    if measure in RATIO_MEASURES:
        slope += f", i.e. {measure} x{np.exp(fit.coef[1]):.4g} per unit"
    return {**row, "estimable": True, "estimates": slope, "test": "QM (meta-regression)",
            "statistic": fit.qm, "df": fit.qm_df[0], "pvalue": fit.qm_pvalue}


def _finding(row: dict, adjusted: float, alpha: float) -> str:
    word = "differs" if adjusted < alpha else "no clear difference"
    verdict = ("the effect changes with it" if adjusted < alpha else "no clear association") \
        if row["kind"] == "meta-regression" else word
    return (f"{row['estimates']}; {row['test']} = {number(row['statistic'], 2)} (df {int(row['df'])}), "
            f"{p_text(row['pvalue'])}, {p_text(adjusted, 'adjusted p')}: {verdict}"
            + (f"; {row['k_unknown']} trial(s) without a value left out" if row["k_unknown"] else ""))


def _columns(comparisons: pd.DataFrame, columns: Sequence[str] | None) -> list[str]:
    """The predictor columns to test, subgroup ones first: those asked for (each a candidate and a column of the
    comparisons), or the default ones the comparisons carry."""
    if columns is None:
        found = [c for c in DEFAULT_COLUMNS if c in comparisons.columns]
        if not found:
            raise InputError("predictors: the comparisons carry none of the predictor columns "
                             f"{', '.join(DEFAULT_COLUMNS)}")
        return found
    for column in columns:
        if column not in CANDIDATES:
            raise InputError(f"predictors: {column!r} is not a candidate predictor (known: {', '.join(CANDIDATES)})")
        if column not in comparisons.columns:
            raise InputError(f"predictors: the comparisons have no column {column!r}")
    return sorted(dict.fromkeys(columns), key=lambda c: c not in CATEGORICAL)


def predictors(
    comparisons: pd.DataFrame,
    measure: str = "RR",
    method: str = "REML",
    test: str = "z",
    *,
    outcome: str | None = None,
    min_per_level: int = 2,
    min_studies: int = 4,
    alpha: float = 0.05,
    adjustment: str = "holm",
    columns: Sequence[str] | None = None,
) -> PredictorsResult:
    """Test every candidate predictor available in ``comparisons`` (one row per baclofen-vs-control comparison).

    Parameters
    ----------
    comparisons : DataFrame
        Arm-level columns for :func:`metabac.effect_sizes` (e.g. from :func:`metabac.comparisons`) plus any of
        the predictor columns ``severity, dose_group, detox, population, g_per_day, dose_mg``.
    measure, method, test
        Effect measure, tau² estimator and z or Knapp-Hartung tests.
    min_per_level, min_studies
        A subgroup predictor needs at least two levels with ``min_per_level`` trials each; a meta-regression
        predictor needs ``min_studies`` trials with a value. Others are listed as not estimable.
    adjustment
        Multiple-testing correction over the estimable predictors (any ``multipletests`` method).
    columns
        The predictors to test, from :data:`CANDIDATES` (a review's ``predictors``); each must be a column of
        ``comparisons``. Default: those of :data:`DEFAULT_COLUMNS` that ``comparisons`` carries.

    Returns
    -------
    PredictorsResult
        ``table`` has one row per predictor: predictor, kind, k, k per level, estimable, estimates, test,
        statistic, df, pvalue, p_adjusted, finding (a plain-language line).
    """
    chosen: Measure = require_choice(measure, get_args(Measure), "measure")  # "rr" is RR: back-transformed like it
    alpha = require_fraction(alpha, "alpha")
    min_per_level = require_whole_number(min_per_level, "min_per_level")
    min_studies = require_whole_number(min_studies, "min_studies", minimum=3)
    adjustment = require_choice(adjustment, ADJUSTMENTS, "adjustment")
    labels = comparisons["study"] if "study" in comparisons.columns else None
    arm_columns = [c for c in ("ai", "bi", "ci", "di", "n1i", "n2i", "m1i", "sd1i", "m2i", "sd2i")
                   if c in comparisons.columns]
    es = effect_sizes(chosen, labels=labels, **{c: comparisons[c].to_numpy() for c in arm_columns})
    es = es.reset_index(drop=True)
    tested = _columns(comparisons, columns)
    for column in tested:
        es[column] = comparisons[column].to_numpy()
    rows = [_categorical_row(es, c, chosen, method, test, min_per_level) if c in CATEGORICAL
            else _continuous_row(es, c, chosen, method, test, min_studies) for c in tested]
    table = pd.DataFrame(rows)
    for column in ("estimates", "test", "statistic", "df", "pvalue", "finding"):
        if column not in table:
            table[column] = np.nan
    table["finding"] = table["finding"].astype(object)
    estimable = table["estimable"].to_numpy(dtype=bool)
    table["p_adjusted"] = np.nan
    if estimable.any():
        table.loc[estimable, "p_adjusted"] = adjusted_pvalues(table.loc[estimable, "pvalue"].to_numpy(dtype=float),
                                                              adjustment)
        table.loc[estimable, "finding"] = [_finding(row, row["p_adjusted"], alpha)
                                           for row in table[estimable].to_dict(orient="records")]
    columns = ["predictor", "column", "kind", "k", "k_unknown", "k_per_level", "estimable", "estimates", "test",
               "statistic", "df", "pvalue", "p_adjusted", "finding"]
    return PredictorsResult(table[columns], outcome, chosen, method, test, adjustment)
