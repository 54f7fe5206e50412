"""Sensitivity and small-study methods against tests/reference/metafor_sensitivity.json.

The file was made by tests/reference/make_sensitivity_reference.R (metafor 3.8-1 with a tight control, and R's
meta 6.5-0 for the Harbord and Peters cross-checks); each case keeps the R call that produced it in ``call``.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ATOL, RTOL_CLOSED, RTOL_ITERATIVE, load_reference

import metabac as mb

CASES = load_reference("metafor_sensitivity.json")
ITERATIVE = {"REML", "ML", "PM", "EB"}
# metabac's column -> metafor's name, for the tables of leave1out() and cumul().
REFIT_FIELDS = {"estimate": "estimate", "se": "se", "statistic": "zval", "pvalue": "pval", "ci_low": "ci_lb",
                "ci_high": "ci_ub", "q": "Q", "q_pvalue": "Qp", "tau2": "tau2", "i2": "I2", "h2": "H2"}


def cases(kind: str) -> list:
    return [pytest.param(c, id=c["id"]) for c in CASES if c["kind"] == kind]


def rtol(case: dict) -> float:
    return RTOL_ITERATIVE if (case.get("options") or {}).get("method") in ITERATIVE else RTOL_CLOSED


def method(case: dict) -> str:
    return {"FE": "EE"}.get(case["options"]["method"], case["options"]["method"])


def close(got, want, tolerance: float, name: str) -> None:
    want = np.asarray([np.nan if w is None else w for w in np.atleast_1d(want)], dtype=float)
    np.testing.assert_allclose(np.atleast_1d(np.asarray(got, dtype=float)), want, rtol=tolerance, atol=ATOL,
                               err_msg=name)


@pytest.mark.parametrize("case", cases("influence"))
def test_influence(case: dict) -> None:
    table = mb.influence(case["input"]["yi"], case["input"]["vi"], method=method(case))
    expected = case["expected"]
    for ours, theirs in (("rstudent", "rstudent"), ("dffits", "dffits"), ("cook_d", "cook_d"), ("cov_r", "cov_r"),
                         ("tau2_del", "tau2_del"), ("qe_del", "QE_del"), ("hat", "hat"), ("weight", "weight"),
                         ("dfbetas", "dfbetas")):
        close(table[ours], expected[theirs], rtol(case), ours)
    assert list(table["influential"]) == expected["inf"]


@pytest.mark.parametrize("case", cases("leave1out"))
def test_leave_one_out(case: dict) -> None:
    table = mb.leave_one_out(case["input"]["yi"], case["input"]["vi"], method=method(case))
    expected = case["expected"]
    for ours, theirs in REFIT_FIELDS.items():
        close(table[ours], expected[theirs], rtol(case), ours)


@pytest.mark.parametrize("case", cases("cumul"))
def test_cumulative(case: dict) -> None:
    order = case["input"].get("year") if case["options"].get("order") == "year" else None
    table = mb.cumulative(case["input"]["yi"], case["input"]["vi"], order=order, method=method(case))
    expected = case["expected"]
    if order is not None:
        assert list(np.argsort(order, kind="stable") + 1) == expected["order"]
    for ours, theirs in REFIT_FIELDS.items():
        close(table[ours], expected[theirs], rtol(case), ours)


@pytest.mark.parametrize("case", cases("baujat"))
def test_baujat(case: dict) -> None:
    table = mb.baujat(case["input"]["yi"], case["input"]["vi"], method=method(case))
    close(table["x"], case["expected"]["x"], rtol(case), "x")
    close(table["y"], case["expected"]["y"], rtol(case), "y")


@pytest.mark.parametrize("case", cases("gosh"))
def test_gosh(case: dict) -> None:
    result = mb.gosh(case["input"]["yi"], case["input"]["vi"], method=method(case))
    expected = case["expected"]
    assert result.incl.tolist() == expected["incl"]  # metafor's order of the subsets
    for ours, theirs in (("k", "k"), ("estimate", "estimate"), ("i2", "I2"), ("h2", "H2"), ("tau2", "tau2"),
                         ("q", "QE")):
        close(result.table[ours], expected[theirs], rtol(case), ours)


@pytest.mark.parametrize("case", cases("regtest"))
def test_egger_regression_test(case: dict) -> None:
    options, expected = case["options"], case["expected"]
    result = mb.egger(case["input"]["yi"], case["input"]["vi"], model=options["model"],
                      predictor=options["predictor"], method=method(case) if "method" in options else "REML")
    close(result.statistic, expected["zval"], rtol(case), "statistic")
    close(result.pvalue, expected["pval"], rtol(case), "pvalue")
    assert result.df == expected["dfs"]
    close([result.limit_estimate, result.ci_low, result.ci_high],
          [expected["est"], expected["ci_lb"], expected["ci_ub"]], rtol(case), "limit estimate")


@pytest.mark.parametrize("case", [c for c in cases("peters") if c.values[0]["options"]["weights"] == "peters"])
def test_peters(case: dict) -> None:
    arms = {name: case["input"][name] for name in ("ai", "bi", "ci", "di")}
    result = mb.peters(**arms)
    close(result.statistic, case["expected"]["zval"], RTOL_CLOSED, "statistic")
    close(result.pvalue, case["expected"]["pval"], RTOL_CLOSED, "pvalue")
    assert result.df == case["expected"]["dfs"]


@pytest.mark.parametrize("case", [c for c in cases("peters") if c.values[0]["options"]["weights"] != "peters"])
def test_one_over_n_predictor_with_inverse_variance_weights(case: dict) -> None:
    ni = np.add(case["input"]["n1i"], case["input"]["n2i"])
    result = mb.egger(case["input"]["yi"], case["input"]["vi"], predictor="ninv", ni=ni)
    close(result.statistic, case["expected"]["zval"], RTOL_CLOSED, "statistic")
    close(result.limit_estimate, case["expected"]["est"], RTOL_CLOSED, "limit estimate")


@pytest.mark.parametrize("case", cases("harbord"))
def test_harbord(case: dict) -> None:
    result = mb.harbord(**{name: case["input"][name] for name in ("ai", "bi", "ci", "di")})
    close(result.statistic, case["expected"]["zval"], RTOL_CLOSED, "statistic")
    close(result.pvalue, case["expected"]["pval"], RTOL_CLOSED, "pvalue")


@pytest.mark.parametrize("case", cases("meta_metabias"))
def test_r_meta_metabias_cross_check(case: dict) -> None:
    """R's meta package, a second implementation: Harbord, Peters, Egger (radial form) and Begg (normal)."""
    arms = {name: case["input"][name] for name in ("ai", "bi", "ci", "di")}
    kind, expected = case["options"]["method_bias"], case["expected"]
    if kind == "Harbord":
        result = mb.harbord(**arms)
    elif kind == "Peters":
        result = mb.peters(**arms)
    elif kind == "Egger":
        result = mb.egger(case["input"]["yi"], case["input"]["vi"])
    else:
        result = mb.begg(case["input"]["yi"], case["input"]["vi"], exact=False)
        close(result.pvalue, expected["pval"], RTOL_CLOSED, "pvalue")
        return
    close(result.statistic, expected["statistic"], RTOL_CLOSED, "statistic")
    close(result.pvalue, expected["pval"], RTOL_CLOSED, "pvalue")


@pytest.mark.parametrize("case", cases("ranktest"))
def test_rank_correlation(case: dict) -> None:
    result = mb.begg(case["input"]["yi"], case["input"]["vi"], exact=case["options"]["exact"])
    close(result.tau, case["expected"]["tau"], RTOL_CLOSED, "tau")
    close(result.pvalue, case["expected"]["pval"], RTOL_CLOSED, "pvalue")


@pytest.mark.parametrize("case", cases("trimfill"))
def test_trimfill(case: dict) -> None:
    expected = case["expected"]
    result = mb.trimfill(case["input"]["yi"], case["input"]["vi"], method=method(case),
                         estimator=case["options"]["estimator"])
    assert (result.k0, result.side) == (expected["k0"], expected["side"])
    close(result.se_k0, expected["se_k0"], RTOL_CLOSED, "se_k0")
    for ours, theirs in (("estimate", "estimate"), ("se", "se"), ("pvalue", "pval"), ("ci_low", "ci_lb"),
                         ("ci_high", "ci_ub"), ("tau2", "tau2")):
        close(getattr(result, ours), expected[theirs], rtol(case), ours)
    if result.k0:
        close(result.filled["yi"], expected["filled_yi"], rtol(case), "filled yi")
        close(result.filled["vi"], expected["filled_vi"], RTOL_CLOSED, "filled vi")
        close(result.fit.q, expected["QE"], rtol(case), "QE")


@pytest.mark.parametrize("case", cases("fsn"))
def test_failsafe_n(case: dict) -> None:
    options, expected = case["options"], case["expected"]
    weighted = options.get("weighted", True)
    target = None if options.get("target", "default") == "default" else expected["target"]
    result = mb.failsafe_n(case["input"]["yi"], case["input"]["vi"] if weighted else None, type=options["type"],
                           alpha=expected["alpha"], target=target)
    assert result.n == expected["fsnum"]
    if expected["pval"] is not None:
        close(result.pvalue, expected["pval"], RTOL_CLOSED, "pvalue")
    if expected["meanes"] is not None:
        close(result.estimate, expected["meanes"], RTOL_CLOSED, "mean effect")


@pytest.mark.parametrize("case", [c for c in cases("permutest") if c.values[0]["options"]["mods"] != "none"])
def test_permutation_test_within_monte_carlo_error(case: dict) -> None:
    """metabac's and metafor's Monte Carlo permutation p-values differ only by sampling error: each estimates
    the exact p with variance p(1 − p)/n, so their difference has SE √(p(1 − p)(1/n₁ + 1/n₂)); allow 4 SE."""
    expected = case["expected"]
    fit = mb.metareg(case["input"]["yi"], case["input"]["vi"], mods=case["input"]["ablat"], method="REML")
    close(fit.coef, expected["beta"], RTOL_ITERATIVE, "coefficients")
    n_ours, n_theirs = 4000, expected["iter"]
    result = fit.permutation_test(n=n_ours, seed=2024)
    for ours, theirs in ((result.pvalue[1], expected["pval"][1]), (result.qm_pvalue, expected["QMp"]),
                         (result.pvalue[0], expected["pval"][0])):
        p = max(theirs, 1 / n_theirs)
        allowed = 4 * np.sqrt(p * (1 - p) * (1 / n_ours + 1 / n_theirs))
        assert abs(ours - theirs) <= allowed, (ours, theirs, allowed)
