"""Each tau² estimator satisfies its defining equation at the returned value, and behaves at the edges."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import load_reference
from scipy import stats

import metabac as mb
from metabac.wls import Problem, WeightedFit, q_statistic

BCG = next(c for c in load_reference() if c["dataset"] == "bcg" and c["measure"] == "RR" and c["kind"] == "pool")
Y, V = np.array(BCG["yi"]), np.array(BCG["vi"])
HOMOGENEOUS_Y = np.array([0.10, 0.12, 0.09, 0.11])
HOMOGENEOUS_V = np.array([0.04, 0.05, 0.03, 0.06])


def weighted(tau2: float, y=Y, v=V) -> WeightedFit:
    return WeightedFit.fit(Problem.intercept_only(y, v), np.atleast_2d(1 / (v + tau2)))


def test_dl_formula() -> None:
    w = 1 / V
    q = np.sum(w * (Y - np.sum(w * Y) / w.sum()) ** 2)
    expected = (q - (len(Y) - 1)) / (w.sum() - np.sum(w**2) / w.sum())
    assert mb.pool(Y, V, method="DL").tau2 == pytest.approx(expected, rel=1e-12)


def test_reml_root_solves_its_score_equation() -> None:
    tau2 = mb.pool(Y, V, method="REML").tau2
    fit = weighted(tau2)
    assert fit.ypp_y()[0] == pytest.approx(fit.trace_p()[0], rel=1e-10)


def test_ml_root_solves_its_score_equation() -> None:
    tau2 = mb.pool(Y, V, method="ML").tau2
    fit = weighted(tau2)
    assert fit.ypp_y()[0] == pytest.approx(np.sum(fit.w), rel=1e-10)


@pytest.mark.parametrize("method", ["PM", "EB"])
def test_pm_and_eb_roots_make_q_equal_k_minus_1(method: str) -> None:
    tau2 = mb.pool(Y, V, method=method).tau2
    q = q_statistic(Problem.intercept_only(Y, V), np.array([tau2]))[0]
    assert q == pytest.approx(len(Y) - 1, rel=1e-10)


def test_sj_formula() -> None:
    tau0 = np.mean((Y - Y.mean()) ** 2)
    q = q_statistic(Problem.intercept_only(Y, V), np.array([tau0]))[0]
    assert mb.pool(Y, V, method="SJ").tau2 == pytest.approx(tau0 * q / (len(Y) - 1), rel=1e-12)


def test_q_profile_bounds_hit_their_chi2_quantiles() -> None:
    ci = mb.pool(Y, V, method="REML").confint()
    problem = Problem.intercept_only(Y, V)
    df = len(Y) - 1
    assert q_statistic(problem, np.array([ci.tau2.ci_low]))[0] == pytest.approx(stats.chi2.ppf(0.975, df), rel=1e-9)
    assert q_statistic(problem, np.array([ci.tau2.ci_high]))[0] == pytest.approx(stats.chi2.ppf(0.025, df), rel=1e-9)
    assert not ci.upper_censored


@pytest.mark.parametrize("method", ["DL", "HE", "HS", "SJ", "ML", "REML", "EB", "PM"])
def test_homogeneous_data_give_tau2_on_the_boundary(method: str) -> None:
    fit = mb.pool(HOMOGENEOUS_Y, HOMOGENEOUS_V, method=method)
    ee = mb.pool(HOMOGENEOUS_Y, HOMOGENEOUS_V, method="EE")
    if method == "SJ":  # positive by construction (Sidik & Jonkman 2005): never on the boundary
        assert fit.tau2 > 0 and fit.se > ee.se
        return
    assert fit.tau2 == 0
    assert fit.estimate == pytest.approx(ee.estimate, rel=1e-14)
    assert fit.se == pytest.approx(ee.se, rel=1e-14)


def test_q_profile_lower_bound_zero_when_q_is_small() -> None:
    ci = mb.pool(HOMOGENEOUS_Y, HOMOGENEOUS_V, method="REML").confint()
    assert ci.tau2.ci_low == 0 and ci.tau2.ci_high == 0 and ci.empty


def test_q_profile_upper_bound_censored_as_metafor_unless_unbounded() -> None:
    fit = mb.pool([0.0, 30.0, -25.0], [1.0, 1.0, 1.0], method="DL")
    capped = fit.confint()
    exact = fit.confint(tau2_max=float("inf"))
    assert capped.upper_censored and capped.tau2.ci_high == pytest.approx(max(100, 10 * fit.tau2))
    assert exact.tau2.ci_high > capped.tau2.ci_high and not exact.upper_censored


@pytest.mark.parametrize("method", mb.METHODS)
def test_single_study_returns_the_study(method: str) -> None:
    fit = mb.pool([0.4], [0.09], method=method)
    assert (fit.estimate, fit.se, fit.tau2, fit.k) == (pytest.approx(0.4), pytest.approx(0.3), 0.0, 1)


@pytest.mark.parametrize("method", mb.METHODS)
@pytest.mark.parametrize("test", ["z", "knha"])
def test_two_studies_give_finite_results(method: str, test: str) -> None:
    fit = mb.pool([0.1, 0.9], [0.02, 0.05], method=method, test=test)
    assert np.isfinite([fit.estimate, fit.se, fit.ci_low, fit.ci_high, fit.tau2]).all()
    assert fit.ci_low < fit.estimate < fit.ci_high


@pytest.mark.parametrize("method", ["ML", "REML", "EB", "PM"])
def test_huge_heterogeneity_converges(method: str) -> None:
    y = np.array([-5000.0, 0.0, 7000.0, 12000.0])
    v = np.array([1e-6, 1e-3, 1.0, 1e3])
    fit = mb.pool(y, v, method=method)
    assert fit.tau2 > 1e6
    if method in ("PM", "EB"):
        assert q_statistic(Problem.intercept_only(y, v), np.array([fit.tau2]))[0] == pytest.approx(3, rel=1e-8)


@pytest.mark.parametrize(("method", "tau2"), [("REML", 0.00496724143645386), ("PM", 0.00173693329963789),
                                             ("EB", 0.00173693329963789), ("ML", 0.0)])
def test_tiny_and_huge_variances_together(method: str, tau2: float) -> None:
    """metafor 3.8-1, threshold 1e-15 (tests/reference/edge_cases.R). The tolerance used to scale with the mean
    sampling variance (here 2.5e11), so REML stopped 0.6% and EB 100% short of the root."""
    fit = mb.pool([0.1, 0.2, 0.5, 3.0], [1e-12, 1e-6, 1.0, 1e12], method=method)
    assert fit.tau2 == pytest.approx(tau2, rel=1e-8, abs=1e-15)


def test_metafor_control_stops_early_but_close() -> None:
    rd = next(c for c in load_reference() if c["dataset"] == "bcg" and c["measure"] == "RD" and c["kind"] == "pool"
              and c["options"] == {"method": "PM", "test": "z"})
    exact = mb.pool(rd["yi"], rd["vi"], method="PM")
    early = mb.pool(rd["yi"], rd["vi"], method="PM", control=mb.Control.metafor())
    assert exact.tau2 == pytest.approx(rd["expected"]["tau2"], rel=1e-9)
    assert early.tau2 != exact.tau2 and early.tau2 == pytest.approx(exact.tau2, rel=0.05)


def test_nonconvergence_is_an_error_not_a_number() -> None:
    with pytest.raises(mb.ConvergenceError, match="REML: tau2 did not converge after 2 iterations"):
        mb.pool(Y, V, method="REML", control=mb.Control(maxiter=2))
    with pytest.raises(mb.ConvergenceError, match="PM: tau2 did not converge after 1 iterations"):
        mb.pool(Y, V, method="PM", control=mb.Control(maxiter=1))  # was scipy's RuntimeError


def test_pool_equals_statsmodels_wls_with_fixed_scale() -> None:
    from statsmodels.regression.linear_model import WLS  # not statsmodels.api: a third of the import time

    fit = mb.pool(Y, V, method="REML")
    w = 1 / (V + fit.tau2)
    wls = WLS(Y, np.ones_like(Y), weights=w).fit(cov_type="fixed scale")
    assert fit.estimate == pytest.approx(wls.params[0], rel=1e-12)
    assert fit.se == pytest.approx(wls.bse[0], rel=1e-12)


def test_knapp_hartung_matches_its_formula() -> None:
    fit = mb.pool(Y, V, method="DL", test="knha")
    plain = mb.pool(Y, V, method="DL")
    w = 1 / (V + plain.tau2)
    s2 = np.sum(w * (Y - plain.estimate) ** 2) / (len(Y) - 1)
    assert fit.se == pytest.approx(plain.se * np.sqrt(s2), rel=1e-12)
    assert fit.df == len(Y) - 1
    half = stats.t.ppf(0.975, len(Y) - 1) * np.sqrt(fit.se**2 + fit.tau2)
    assert fit.pi_high - fit.estimate == pytest.approx(half, rel=1e-12)


def test_he_formula() -> None:
    k = len(Y)
    expected = (np.sum((Y - Y.mean()) ** 2) - (k - 1) / k * V.sum()) / (k - 1)
    assert mb.pool(Y, V, method="HE").tau2 == pytest.approx(expected, rel=1e-12)


def test_hs_formula() -> None:
    w = 1 / V
    q = np.sum(w * (Y - np.sum(w * Y) / w.sum()) ** 2)
    assert mb.pool(Y, V, method="HS").tau2 == pytest.approx((q - len(Y)) / w.sum(), rel=1e-12)


def test_knha_with_one_study_falls_back_to_z_as_metafor() -> None:
    with pytest.warns(UserWarning, match="k = 1"):
        fit = mb.pool([0.3], [0.1], test="knha")
    assert fit.test == "z" and fit.se == pytest.approx(np.sqrt(0.1))
    assert "prediction interval nan" not in mb.pool([0.3], [0.1], measure="RR").summary()


# --- issue 15: level as a proportion, rescaled fits, masks ----------------------------------------------------------

Y5, V5 = np.array([0.1, 0.5, 0.9, -0.3, 0.7]), np.array([0.02, 0.03, 0.05, 0.01, 0.04])


@pytest.mark.parametrize("call", [
    lambda level: mb.pool(Y5, V5, level=level).ci_low,
    lambda level: mb.pool(np.vstack([Y5, Y5]), np.vstack([V5, V5]), level=level).ci_low[0],
    lambda level: mb.metareg(Y5, V5, [1, 2, 3, 4, 5], level=level).ci_low[1],
    lambda level: mb.egger(Y5, V5, level=level).ci_low,
    lambda level: mb.trimfill(Y5, V5, level=level).ci_low,
    lambda level: mb.subgroups(Y5, V5, list("aabbb"), level=level).table["ci_low"].iloc[1],
    lambda level: mb.leave_one_out(Y5, V5, level=level)["ci_low"].iloc[0],
    lambda level: mb.mantel_haenszel("OR", ai=[3, 5], n1i=[10, 12], ci=[1, 2], n2i=[10, 12], level=level).ci_low,
], ids=["pool", "batch", "metareg", "egger", "trimfill", "subgroups", "leave_one_out", "mantel_haenszel"])
def test_a_level_below_one_is_a_proportion_everywhere(call) -> None:
    """metafor reads level=0.95 as 95%; it gave a 0.95% interval. One check (require_level) serves every function."""
    assert call(0.95) == pytest.approx(call(95), rel=1e-15)
    assert call(0.9) == pytest.approx(call(90), rel=1e-15)


def test_every_summary_with_an_interval_names_its_level() -> None:
    assert "(90% confidence interval and prediction interval)" in mb.pool(Y5, V5, level=0.9).summary()
    assert "(90% confidence interval)" in mb.pool(Y5, V5, method="EE", level=90).summary()
    assert "(90% confidence intervals)" in mb.metareg(Y5, V5, [1, 2, 3, 4, 5], level=90).summary()
    assert "limit estimate" in mb.egger(Y5, V5, level=90).summary()
    assert "[90% CI " in mb.egger(Y5, V5, level=90).summary()
    assert "[90% CI " in mb.trimfill(Y5, V5, level=90, side="left").summary()
    assert "90% confidence intervals" in mb.subgroups(Y5, V5, list("aabbb"), level=90).summary()


@pytest.mark.parametrize("method", mb.METHODS)
@pytest.mark.parametrize("test", ["z", "knha"])
@pytest.mark.parametrize("s", [2.0**-300, 2.0**-500, 2.0**300])
def test_variances_far_from_one_are_fitted_as_the_same_data_rescaled(method: str, test: str, s: float) -> None:
    """With vi near 1e-180 (w² overflows), DL and PM returned tau² = 0 and others NaN; the fit is equivariant, and
    a power-of-two scale makes it exact: tau² scales with s², the estimate and its bounds with s."""
    plain = mb.pool(Y5, V5, method=method, test=test)
    for fit in (mb.pool(Y5 * s, V5 * s * s, method=method, test=test),
                mb.pool(np.vstack([Y5 * s, Y5]), np.vstack([V5 * s * s, V5]), method=method, test=test)):
        row = (lambda x: x) if np.ndim(fit.estimate) == 0 else (lambda x: x[0])
        assert row(fit.tau2) / s**2 == pytest.approx(plain.tau2, rel=1e-12, abs=0)
        for name in ("estimate", "se", "ci_low", "ci_high", "pi_low", "pi_high"):
            assert row(getattr(fit, name)) / s == pytest.approx(getattr(plain, name), rel=1e-12), name
        for name in ("statistic", "pvalue", "q", "i2", "h2"):
            assert row(getattr(fit, name)) == pytest.approx(getattr(plain, name), rel=1e-12), name


def test_rescaled_fits_give_the_same_q_profile_and_meta_regression() -> None:
    s = 2.0**-300
    plain, scaled = mb.pool(Y5, V5).confint(), mb.pool(Y5 * s, V5 * s * s).confint()
    assert np.allclose(np.array(scaled.tau2) / s**2, plain.tau2, rtol=1e-12, atol=0)
    assert np.allclose(scaled.i2, plain.i2, rtol=1e-12)
    reg, reg_s = mb.metareg(Y5, V5, [1, 2, 3, 4, 5]), mb.metareg(Y5 * s, V5 * s * s, [1, 2, 3, 4, 5])
    assert np.allclose(reg_s.coef / s, reg.coef, rtol=1e-12) and reg_s.tau2 / s**2 == pytest.approx(reg.tau2, rel=1e-12)
    assert reg_s.qm == pytest.approx(reg.qm, rel=1e-12) and reg_s.r2 == pytest.approx(reg.r2, rel=1e-12)


def test_a_mask_selects_the_studies_of_one_analysis() -> None:
    """mask= was ignored for 1-D input."""
    fit = mb.pool(Y5, V5, mask=[True, False, True, True, 0], labels=list("abcde"))
    assert fit.k == 3 and fit.labels == ("a", "c", "d")
    assert fit.estimate == mb.pool(Y5[[0, 2, 3]], V5[[0, 2, 3]]).estimate


@pytest.mark.parametrize("field", ["stopping", "root_finder"])
def test_control_names_its_stopping_rule_and_root_finder(field: str) -> None:
    with pytest.raises(mb.InputError, match=f"^Control: {field}: unknown value 'bogus'"):
        mb.Control(**{field: "bogus"})
    metafor = mb.Control.metafor()
    assert (metafor.stopping, metafor.root_finder) == ("absolute", "brent")
