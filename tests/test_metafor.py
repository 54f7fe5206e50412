"""Every case of tests/reference/metafor_reference.json (metafor 3.8-1, tight control), through the public API.

Each case id reads dataset-measure-kind-options, e.g. ``bcg-RR-pool-REML-knha``.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ATOL, ATOL_I2, RTOL_CLOSED, RTOL_ITERATIVE, load_reference

import metabac as mb

ITERATIVE = {"ML", "REML", "EB", "PM"}
FOUNDATION_KINDS = {"effect_sizes", "pool", "confint", "mantel_haenszel", "peto"}
POOL_FIELDS = {"estimate": "estimate", "se": "se", "ci_low": "ci_low", "ci_high": "ci_high", "pval": "pvalue",
               "tau2": "tau2", "i2": "i2", "h2": "h2", "q": "q", "q_pval": "q_pvalue", "pi_low": "pi_low",
               "pi_high": "pi_high", "k": "k"}


def case_id(case: dict) -> str:
    options = "-".join(str(v) for v in (case.get("options") or {}).values())
    return "-".join(filter(None, [case["dataset"], case["measure"], case["kind"], options]))


def cases_of(kinds: set[str]) -> list:
    return [pytest.param(c, id=case_id(c)) for c in load_reference() if c["kind"] in kinds]


def tolerance(case: dict) -> float:
    iterative = (case.get("options") or {}).get("method") in ITERATIVE or case["kind"] == "confint"
    return RTOL_ITERATIVE if iterative else RTOL_CLOSED


def assert_close(name: str, got, want, rtol: float) -> None:
    want = np.asarray([np.nan if w is None else w for w in np.atleast_1d(want)], dtype=float)
    got = np.atleast_1d(np.asarray(got, dtype=float))
    np.testing.assert_allclose(got, want, rtol=rtol, atol=ATOL_I2 if name == "i2" else ATOL, err_msg=name)


@pytest.mark.parametrize("case", cases_of(FOUNDATION_KINDS))
def test_foundation_case(case: dict) -> None:
    expected, rtol = case["expected"], tolerance(case)
    kind = case["kind"]
    if kind == "effect_sizes":
        es = mb.effect_sizes(case["measure"], **case["input"])
        assert_close("yi", es["yi"], expected["yi"], rtol)
        assert_close("vi", es["vi"], expected["vi"], rtol)
        return
    if kind == "confint":
        ci = mb.pool(case["yi"], case["vi"], method=case["options"]["method"]).confint()
        for name in ("tau2", "tau", "i2", "h2"):
            assert_close(name, list(getattr(ci, name)), expected[name], rtol)
        return
    if kind == "pool":
        fit = mb.pool(case["yi"], case["vi"], method=case["options"]["method"], test=case["options"]["test"])
    elif kind == "peto":
        fit = mb.peto(**case["input"])
    else:
        fit = mb.mantel_haenszel(case["options"]["measure"], **case["input"])
    for key, attribute in POOL_FIELDS.items():
        if expected.get(key) is not None:
            assert_close(key, getattr(fit, attribute), expected[key], rtol)


def test_reference_covers_every_estimator_and_test() -> None:
    """The grid is complete: every method with z, and DL/REML/PM with Knapp-Hartung, on every dataset."""
    grid = {(c["dataset"], c["measure"], c["options"]["method"], c["options"]["test"])
            for c in load_reference() if c["kind"] == "pool"}
    datasets = {(d, m) for d, m, _, _ in grid}
    for dataset in datasets:
        for method in ("EE", "DL", "HE", "HS", "SJ", "ML", "REML", "EB", "PM"):
            assert (*dataset, method, "z") in grid
        for method in ("DL", "REML", "PM"):
            assert (*dataset, method, "knha") in grid


@pytest.mark.parametrize("case", cases_of({"metareg"}))
def test_metareg_case(case: dict) -> None:
    expected, rtol = case["expected"], tolerance(case)
    fit = mb.metareg(case["yi"], case["vi"], mods=np.asarray(case["mods"], dtype=float),
                     method=case["options"]["method"])
    for key, attribute in {"coef": "coef", "se": "se", "pval": "pvalue", "tau2": "tau2", "qm": "qm",
                           "qm_pval": "qm_pvalue", "qe": "qe", "qe_pval": "qe_pvalue", "r2": "r2"}.items():
        assert_close(key, getattr(fit, attribute), expected[key], rtol)


@pytest.mark.parametrize("case", cases_of({"subgroups"}))
def test_subgroups_case(case: dict) -> None:
    expected, rtol = case["expected"], tolerance(case)
    fit = mb.subgroups(case["yi"], case["vi"], groups=case["groups"], method=case["options"]["method"])
    assert list(fit.table.index) == sorted(str(g) for g in expected["groups"])
    rows = fit.table.loc[[str(g) for g in expected["groups"]]]
    for name in ("estimate", "se", "tau2"):
        assert_close(name, rows[name], expected[name], rtol)
    assert_close("q_between", fit.q_between, expected["q_between"], rtol)
    assert_close("q_between_pval", fit.q_between_pvalue, expected["q_between_pval"], rtol)
    if expected.get("qm") is None:
        assert np.isnan(fit.qm) and fit.qm_reason
    else:
        assert_close("qm", fit.qm, expected["qm"], rtol)
        assert_close("qm_pval", fit.qm_pvalue, expected["qm_pval"], rtol)


@pytest.mark.parametrize("case", cases_of({"egger"}))
def test_egger_case(case: dict) -> None:
    """metafor: regtest(model = "lm")."""
    expected = case["expected"]
    result = mb.egger(case["yi"], case["vi"])
    assert result.df == expected["df"]
    assert_close("t", result.statistic, expected["t"], RTOL_CLOSED)
    assert_close("pval", result.pvalue, expected["pval"], RTOL_CLOSED)
    assert_close("limit_estimate", result.limit_estimate, expected["limit_estimate"], RTOL_CLOSED)


@pytest.mark.parametrize("case", cases_of({"begg"}))
def test_begg_case(case: dict) -> None:
    """metafor: ranktest()."""
    result = mb.begg(case["yi"], case["vi"])
    assert_close("tau", result.tau, case["expected"]["tau"], RTOL_CLOSED)
    assert_close("pval", result.pvalue, case["expected"]["pval"], RTOL_CLOSED)


@pytest.mark.parametrize("case", cases_of({"trimfill"}))
def test_trimfill_case(case: dict) -> None:
    """metafor: trimfill(rma(yi, vi, method = ...))."""
    expected, rtol = case["expected"], tolerance(case)
    result = mb.trimfill(case["yi"], case["vi"], method=case["options"]["method"])
    assert (result.k0, result.side) == (expected["k0"], expected["side"])
    for name in ("estimate", "se", "tau2"):
        assert_close(name, getattr(result, name), expected[name], rtol)


@pytest.mark.parametrize("case", cases_of({"leave_one_out"}))
def test_leave_one_out_case(case: dict) -> None:
    """metafor: leave1out(rma(yi, vi, method = ...))."""
    expected, rtol = case["expected"], tolerance(case)
    table = mb.leave_one_out(case["yi"], case["vi"], method=case["options"]["method"])
    for name in ("estimate", "se", "tau2", "i2"):
        assert_close(name, table[name], expected[name], rtol)


def test_every_reference_kind_is_tested() -> None:
    tested = FOUNDATION_KINDS | {"metareg", "subgroups", "egger", "begg", "trimfill", "leave_one_out"}
    assert {c["kind"] for c in load_reference()} <= tested
