"""Numerical edge cases against metafor: k = 1 and k = 2 for every estimator, tau² exactly on the boundary, very
large heterogeneity, sampling variances from 1e-12 to 1e12 in one analysis, Q-profile bounds at 0 and beyond
tau2.max, non-convergence, and double-zero studies with each binary measure.

The expected values are in tests/reference/metafor_edge_cases.json, written by tests/reference/make_edge_cases.R
(metafor 3.8-1, run by hand; CI never runs R). Where metabac deliberately differs, the test says so and README.md
("Agreement with metafor") lists it.
"""

from __future__ import annotations

import json
import math
from fractions import Fraction

import numpy as np
import pytest
from conftest import ATOL, ATOL_I2, REFERENCE_DIR, RTOL_CLOSED, RTOL_ITERATIVE

import metabac as mb

with open(REFERENCE_DIR / "metafor_edge_cases.json") as handle:
    CASES = json.load(handle)["cases"]
POOL = [c for c in CASES if c["kind"] == "pool"]
CONFINT = [c for c in CASES if c["kind"] == "confint"]
NONCONVERGENCE = [c for c in CASES if c["kind"] == "nonconvergence"]
DOUBLE_ZERO = [c for c in CASES if c["kind"] == "double_zero"]
ITERATIVE = {"ML", "REML", "EB", "PM"}
FIELDS = ("estimate", "se", "ci_low", "ci_high", "statistic", "pvalue", "tau2", "q", "i2", "h2", "pi_low", "pi_high")


def _id(case: dict) -> str:
    return "-".join(str(case[key]) for key in ("dataset", "method", "test", "measure", "tau2_max") if key in case)


def _fit(case: dict) -> mb.PoolResult:
    if case["test"] == "knha" and len(case["yi"]) == 1:
        with pytest.warns(UserWarning, match="k = 1"):
            return mb.pool(case["yi"], case["vi"], method=case["method"], test="knha")
    return mb.pool(np.atleast_1d(case["yi"]), np.atleast_1d(case["vi"]), method=case["method"], test=case["test"])


# With sampling variances from 1e-12 to 1e12 metafor's Q (a quadratic form in a 1e24-conditioned weight matrix,
# after its warning "Ratio of largest to smallest sampling variance extremely large") is off by 2.6e-8 relative,
# and so is everything DL and HS derive from Q. metabac's sums are exact to rounding: those fields are checked
# against rational arithmetic at 1e-12, and against metafor only to 1e-6.
FROM_Q = {"EE": {"q", "h2"}, "DL": set(FIELDS) - {"i2"}, "HS": set(FIELDS)}


@pytest.mark.parametrize("case", POOL, ids=[_id(c) for c in POOL])
def test_pool_matches_metafor(case: dict) -> None:
    fit = _fit(case)
    rtol = RTOL_ITERATIVE if case["method"] in ITERATIVE else RTOL_CLOSED
    loose = FROM_Q.get(case["method"], {"q", "h2"}) if case["dataset"] == "tiny_and_huge_variances" else set()
    for name in FIELDS:
        expected = case["expected"][name]
        got = float(getattr(fit, name))
        atol = ATOL_I2 if name == "i2" else ATOL * max(1.0, abs(case["expected"]["estimate"]))
        assert got == pytest.approx(expected, rel=1e-6 if name in loose else rtol, abs=atol), name


def _exact_moment_fit(y: list[float], v: list[float], method: str) -> dict[str, float]:
    """EE, DL and HS in rational arithmetic: Q, tau², the estimate and its variance, H²."""
    y, v = [Fraction(x) for x in y], [Fraction(x) for x in v]
    k, w = len(y), [1 / x for x in v]
    mean = sum(a * b for a, b in zip(w, y)) / sum(w)
    q = sum(a * (b - mean) ** 2 for a, b in zip(w, y))
    trace_p = sum(w) - sum(a * a for a in w) / sum(w)
    tau2 = {"EE": Fraction(0), "DL": max(Fraction(0), (q - (k - 1)) / trace_p),
            "HS": max(Fraction(0), (q - k) / sum(w))}[method]
    w_star = [1 / (x + tau2) for x in v]
    h2 = q / (k - 1) if method == "EE" else tau2 * trace_p / (k - 1) + 1
    return {"q": float(q), "tau2": float(tau2), "estimate": float(sum(a * b for a, b in zip(w_star, y)) / sum(w_star)),
            "se": math.sqrt(float(1 / sum(w_star))), "h2": float(h2)}


@pytest.mark.parametrize("method", ["EE", "DL", "HS"])
def test_tiny_and_huge_variances_are_exact(method: str) -> None:
    y, v = [0.1, 0.2, 0.5, 3.0], [1e-12, 1e-6, 1.0, 1e12]
    fit, exact = mb.pool(y, v, method=method), _exact_moment_fit(y, v, method)
    for name, value in exact.items():
        assert float(getattr(fit, name)) == pytest.approx(value, rel=1e-12, abs=1e-300), name


@pytest.mark.parametrize("method", [m for m in mb.METHODS if m not in ("SJ",)])
def test_boundary_tau2_is_exactly_zero(method: str) -> None:
    """y = (−1, 0, 1), v = 1: Q = k − 1 exactly, so DL, HE, REML, PM and EB sit exactly on the boundary (and ML, HS
    below it); the result is the equal-effects one to the last bit, as in metafor."""
    fit = mb.pool([-1.0, 0.0, 1.0], [1.0, 1.0, 1.0], method=method)
    ee = mb.pool([-1.0, 0.0, 1.0], [1.0, 1.0, 1.0], method="EE")
    assert fit.tau2 == 0.0 and fit.i2 == 0.0 and fit.h2 == 1.0
    assert (fit.estimate, fit.se) == (ee.estimate, ee.se)


@pytest.mark.parametrize("case", CONFINT, ids=[_id(c) for c in CONFINT])
def test_q_profile_matches_metafor(case: dict) -> None:
    fit = mb.pool(case["yi"], case["vi"], method=case["method"])
    ci = fit.confint() if case["tau2_max"] is None else fit.confint(tau2_max=case["tau2_max"])
    expected = case["expected"]
    for name in ("tau2", "i2", "h2"):
        got = [float(x) for x in getattr(ci, name)]
        assert got == pytest.approx(expected[name], rel=RTOL_ITERATIVE, abs=ATOL_I2 if name == "i2" else ATOL), name
    assert ci.upper_censored == (expected["ub_sign"] == ">")
    assert not ci.lower_censored
    # metafor prints both bounds as "<0" when they fall below 0 ("the CIs are equal to the null/empty set");
    # metabac reports them as 0 and flags the interval as empty.
    assert ci.empty == (expected["lb_sign"] == "<")
    if ci.empty:
        assert ci.tau2.ci_low == 0 and ci.tau2.ci_high == 0


def test_q_profile_lower_bound_zero_upper_bracketed() -> None:
    """Q(0) = 2 lies below the upper χ² quantile: the lower bound is exactly 0, the upper one solves Q = χ²_{0.025}."""
    ci = mb.pool([-1.0, 0.0, 1.0], [1.0, 1.0, 1.0], method="REML").confint()
    assert ci.tau2.ci_low == 0.0 and not ci.upper_censored and ci.tau2.ci_high == pytest.approx(38.4978902052072)


def test_q_profile_upper_bound_not_bracketed_is_censored_then_widened() -> None:
    fit = mb.pool([0.0, 30.0, -25.0], [1.0, 1.0, 1.0], method="DL")
    capped, exact = fit.confint(), fit.confint(tau2_max=math.inf)
    assert capped.upper_censored and capped.tau2.ci_high == capped.tau2_max == pytest.approx(10 * fit.tau2)
    assert not exact.upper_censored and exact.tau2.ci_high == pytest.approx(29951.5667389488, rel=RTOL_ITERATIVE)


@pytest.mark.parametrize("case", NONCONVERGENCE, ids=[c["method"] for c in NONCONVERGENCE])
def test_nonconvergence_is_reported_with_the_iterations_tried(case: dict) -> None:
    """metafor stops Fisher scoring (ML, REML, EB) with an error; for PM its uniroot only warns and returns the
    unconverged value (45.36 here). metabac raises ConvergenceError for all four, naming method and iterations."""
    if case["method"] == "PM":
        assert case["expected"]["error"] is None and case["expected"]["tau2"] > 40
    else:
        assert "did not converge" in case["expected"]["error"]
    with pytest.raises(mb.ConvergenceError, match=f"^{case['method']}: tau2 did not converge after 1 iterations$"):
        mb.pool(case["yi"], case["vi"], method=case["method"], control=mb.Control(maxiter=1))
    converged = mb.pool(case["yi"], case["vi"], method=case["method"])   # the default control reaches the root
    assert converged.tau2 > 0 and converged.iterations < mb.Control().maxiter


def test_nonconvergence_in_the_q_profile_is_reported() -> None:
    fit = mb.pool([0.1, 0.5, 0.9, -0.3, 0.7], [0.02, 0.03, 0.05, 0.01, 0.04], method="DL")
    stingy = fit.__class__(**{**fit.__dict__, "control": mb.Control(maxiter=1)})
    with pytest.raises(mb.ConvergenceError, match="^Q-profile: tau2 did not converge after 1 iterations$"):
        stingy.confint()


@pytest.mark.parametrize("case", DOUBLE_ZERO, ids=[c["measure"] for c in DOUBLE_ZERO])
def test_double_zero_studies_with_each_measure(case: dict) -> None:
    arms, measure, expected = case["input"], case["measure"], case["expected"]
    es = mb.effect_sizes(measure, **arms)   # escalc's default: 1/2 added to every cell of the double-zero study
    np.testing.assert_allclose(es.yi, expected["yi"], rtol=RTOL_CLOSED, atol=ATOL)
    np.testing.assert_allclose(es.vi, expected["vi"], rtol=RTOL_CLOSED)
    dropped = mb.effect_sizes(measure, drop00=True, **arms)
    assert list(dropped.index) == [1, 2]
    np.testing.assert_allclose(dropped.yi, expected["yi_drop00"][1:], rtol=RTOL_CLOSED)
    fixed = mb.peto(**arms) if measure == "PETO" else mb.mantel_haenszel(measure, **arms)
    assert fixed.estimate == pytest.approx(expected["fixed_estimate"], rel=RTOL_CLOSED)
    assert fixed.se == pytest.approx(expected["fixed_se"], rel=RTOL_CLOSED)
    assert fixed.q == pytest.approx(expected["fixed_q"], rel=RTOL_CLOSED)
    if measure != "RD":   # RD with add=0 is estimable: 0 with variance 0, as escalc
        with pytest.raises(mb.InputError, match=f"study 1: {measure}: effect size is not estimable"):
            mb.effect_sizes(measure, add=0, **arms)
    # Every study double-zero: metafor gives NA (OR, RR), 0 with se 0 (RD) or an error (Peto); metabac always
    # raises InputError saying the estimate is not estimable.
    everything_zero = dict(ai=[0, 0], n1i=[5, 5], ci=[0, 0], n2i=[5, 5])
    with pytest.raises(mb.InputError, match="not estimable"):
        mb.peto(**everything_zero) if measure == "PETO" else mb.mantel_haenszel(measure, **everything_zero)
    metafor = expected["all_double_zero"]
    if measure == "RD":
        assert (metafor["estimate"], metafor["se"]) == (0, 0)
    elif measure == "PETO":
        assert "Peto's method cannot be used" in metafor["error"]
    else:
        assert metafor["estimate"] is None


@pytest.mark.parametrize("method", mb.METHODS)
def test_batched_engine_handles_the_edge_cases_like_one_at_a_time(method: str) -> None:
    """k = 1, k = 2, the boundary, huge heterogeneity and 1e-12..1e12 variances in one batch (masked to length 4)."""
    datasets = [c for c in POOL if c["method"] == "EE" and c["test"] == "z"]
    k = max(len(np.atleast_1d(c["yi"])) for c in datasets)
    y, v, mask = np.zeros((len(datasets), k)), np.ones((len(datasets), k)), np.zeros((len(datasets), k), bool)
    for i, case in enumerate(datasets):
        n = len(np.atleast_1d(case["yi"]))
        y[i, :n], v[i, :n], mask[i, :n] = case["yi"], case["vi"], True
    together = mb.pool(y, v, method=method, mask=mask)
    for i, case in enumerate(datasets):
        alone = mb.pool(np.atleast_1d(case["yi"]), np.atleast_1d(case["vi"]), method=method)
        for name in ("estimate", "se", "tau2", "q", "i2"):
            assert float(getattr(together, name)[i]) == pytest.approx(float(getattr(alone, name)), rel=1e-10,
                                                                       abs=1e-12), (case["dataset"], name)


# Every arm with events = n (adverse events): metafor 3.8-1's rma.mh, run by hand
# (rma.mh(measure=..., ai=c(10,12,5), n1i=c(10,20,30), ci=c(8,9,7), n2i=c(8,15,28))), where the first study has only
# events; it leaves the Mantel-Haenszel sums and, as a double-zero study, the heterogeneity test.
ONLY_EVENTS_FIRST = dict(ai=[10, 12, 5], n1i=[10, 20, 30], ci=[8, 9, 7], n2i=[8, 15, 28])
METAFOR_ONLY_EVENTS_FIRST = {  # estimate, se, QE
    "RR": (-0.0958241737140359, 0.1675550048776450, 0.4682191207898488),
    "OR": (-0.271600065685438, 0.475960687923658, 0.284691591374986),
    "RD": (-0.0438893312101911, 0.0765804214349258, 0.2061627137980291),
}


@pytest.mark.parametrize("measure", METAFOR_ONLY_EVENTS_FIRST)
def test_mantel_haenszel_with_a_study_of_only_events_matches_metafor(measure: str) -> None:
    fit = mb.mantel_haenszel(measure, **ONLY_EVENTS_FIRST)
    assert (fit.estimate, fit.se, fit.q) == pytest.approx(METAFOR_ONLY_EVENTS_FIRST[measure], rel=RTOL_CLOSED)


@pytest.mark.parametrize("measure", ["OR", "RR", "RD"])
def test_mantel_haenszel_with_only_events_everywhere_is_not_estimable(measure: str) -> None:
    """metafor gives RR 1 with se NA (its variance rounds below 0), OR NA, RD 0 with se 0; metabac refuses all."""
    with pytest.raises(mb.InputError, match=f"^{measure}: Mantel-Haenszel .* is not estimable"):
        mb.mantel_haenszel(measure, ai=[10, 20], n1i=[10, 20], ci=[8, 15], n2i=[8, 15])


@pytest.mark.parametrize("fit", [lambda **arms: mb.mantel_haenszel("RR", **arms), mb.peto], ids=["MH", "Peto"])
def test_a_study_without_participants_is_refused_by_name(fit) -> None:
    """metafor gives NA for every number of rma.mh and an R error in rma.peto; metabac names the study."""
    with pytest.raises(mb.InputError, match=r'^study 2 \("Empty 2001"\): n1i: no participants in this group'):
        fit(ai=[3, 0], n1i=[10, 0], ci=[2, 0], n2i=[10, 0], labels=["A", "Empty 2001"])
