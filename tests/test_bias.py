"""Small-study methods beyond the metafor grid: second routes to each test statistic, options and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from support.bcg import BCG_VI, BCG_YI, CNEG, CPOS, TNEG, TPOS

import metabac as mb


def ols_t(design: np.ndarray, response: np.ndarray, weights: np.ndarray, column: int) -> float:
    """t statistic of one coefficient of a weighted least-squares fit, from the normal equations."""
    root = np.sqrt(weights)
    coef, *_ = np.linalg.lstsq(design * root[:, None], response * root, rcond=None)
    residual = (response - design @ coef) * root
    sigma2 = residual @ residual / (len(response) - design.shape[1])
    cov = sigma2 * np.linalg.inv(design.T @ (weights[:, None] * design))
    return float(coef[column] / np.sqrt(cov[column, column]))


def test_egger_is_the_radial_regression_intercept() -> None:
    """Egger's original form: regress y/se on 1/se by OLS and test the intercept (Egger et al. 1997)."""
    se = np.sqrt(BCG_VI)
    t = ols_t(np.column_stack([np.ones_like(se), 1 / se]), BCG_YI / se, np.ones_like(se), column=0)
    result = mb.egger(BCG_YI, BCG_VI)
    assert result.statistic == pytest.approx(t, rel=1e-10)
    assert result.df == len(BCG_YI) - 2


def test_egger_rma_model_is_the_meta_regression_on_the_standard_error() -> None:
    fit = mb.metareg(BCG_YI, BCG_VI, mods=np.sqrt(BCG_VI), method="REML")
    result = mb.egger(BCG_YI, BCG_VI, model="rma")
    assert (result.statistic, result.pvalue, result.limit_estimate) == pytest.approx(
        (fit.statistic[1], fit.pvalue[1], fit.coef[0]), rel=1e-12)
    assert result.df is None


def test_egger_predictor_sample_size_has_no_limit_estimate() -> None:
    n = TPOS + TNEG + CPOS + CNEG
    result = mb.egger(BCG_YI, BCG_VI, predictor="ni", ni=n)
    assert np.isnan(result.limit_estimate)
    with pytest.raises(mb.InputError, match="predictor: 'ninv' needs the sample sizes ni"):
        mb.egger(BCG_YI, BCG_VI, predictor="ninv")


def test_peters_by_hand() -> None:
    """ln OR on 1/N weighted by S·F/N (Peters et al. 2006, p. 677)."""
    log_or = mb.effect_sizes("OR", ai=TPOS, bi=TNEG, ci=CPOS, di=CNEG)["yi"].to_numpy()
    events, non_events = TPOS + CPOS, TNEG + CNEG
    total = events + non_events
    t = ols_t(np.column_stack([np.ones(len(total)), 1 / total]), log_or, events * non_events / total, column=1)
    result = mb.peters(ai=TPOS, bi=TNEG, ci=CPOS, di=CNEG)
    assert result.statistic == pytest.approx(t, rel=1e-10)
    assert result.pvalue == pytest.approx(2 * stats.t.sf(abs(t), len(total) - 2), rel=1e-10)


def test_harbord_regresses_the_score_on_its_precision() -> None:
    """Z/√V on √V by OLS, intercept tested (Harbord et al. 2006, eq. 2-3)."""
    n1, n2, m1 = TPOS + TNEG, CPOS + CNEG, TPOS + CPOS
    total = n1 + n2
    score = TPOS - n1 * m1 / total
    variance = n1 * n2 * m1 * (total - m1) / (total**2 * (total - 1))
    t = ols_t(np.column_stack([np.ones(len(total)), np.sqrt(variance)]), score / np.sqrt(variance),
              np.ones(len(total)), column=0)
    result = mb.harbord(ai=TPOS, n1i=n1, ci=CPOS, n2i=n2)
    assert result.statistic == pytest.approx(t, rel=1e-10)
    assert np.isnan(result.limit_estimate)


def test_begg_uses_the_normal_approximation_with_ties() -> None:
    result = mb.begg([0.1, 0.3, 0.3, 0.5, 0.2], [0.01, 0.02, 0.02, 0.04, 0.03])
    assert not result.exact and 0 <= result.pvalue <= 1


def test_trimfill_fills_mirror_images_and_refits() -> None:
    result = mb.trimfill(BCG_YI, BCG_VI, method="EE")
    assert result.k0 == len(result.filled) and result.k0 > 0
    ys = np.concatenate([BCG_YI, result.filled["yi"]])
    vs = np.concatenate([BCG_VI, result.filled["vi"]])
    refit = mb.pool(ys, vs, method="EE")
    assert (result.estimate, result.se) == pytest.approx((refit.estimate, refit.se), rel=1e-12)
    assert set(result.filled["vi"]) <= set(BCG_VI)


def test_trimfill_side_and_estimator_options() -> None:
    left = mb.trimfill(BCG_YI, BCG_VI, method="DL", side="left")
    assert left.side == "left"
    r0 = mb.trimfill(BCG_YI, BCG_VI, method="DL", estimator="R0")
    assert r0.estimator == "R0" and r0.se_k0 == pytest.approx(np.sqrt(2 * r0.k0 + 2))
    with pytest.raises(mb.InputError, match="side: unknown value"):
        mb.trimfill(BCG_YI, BCG_VI, side="up")


def test_trimfill_without_missing_studies_returns_the_original_fit() -> None:
    y = np.array([-0.3, -0.1, 0.0, 0.1, 0.3])
    result = mb.trimfill(y, [0.04, 0.05, 0.03, 0.05, 0.04], method="DL")
    assert result.k0 == 0 and result.filled.empty
    assert result.estimate == pytest.approx(0.0, abs=1e-15)


def test_failsafe_n_formulas() -> None:
    z = BCG_YI / np.sqrt(BCG_VI)
    k = len(z)
    rosenthal = mb.failsafe_n(BCG_YI, BCG_VI)
    assert rosenthal.n == np.ceil(k * (abs(z.sum()) / np.sqrt(k) / stats.norm.isf(0.05)) ** 2 - k)
    orwin = mb.failsafe_n(BCG_YI, BCG_VI, type="Orwin", target=-0.1)
    w = 1 / BCG_VI
    mean = np.sum(w * BCG_YI) / w.sum()
    assert orwin.n == np.ceil(k * (mean + 0.1) / -0.1)
    assert mb.failsafe_n(BCG_YI, type="Orwin").estimate == pytest.approx(BCG_YI.mean())
    rosenberg = mb.failsafe_n(BCG_YI, BCG_VI, type="Rosenberg")
    expected = (np.sum(w * BCG_YI) / stats.norm.isf(0.025)) ** 2 - w.sum()
    assert rosenberg.n == np.ceil(expected / w.mean())


@pytest.mark.parametrize(("call", "message"), [
    (lambda: mb.egger([0.1, 0.2], [0.1, 0.1]), "Egger's test: needs at least 3 studies"),
    (lambda: mb.begg([0.1, 0.2], [0.1, 0.1]), "begg: needs at least 3 studies"),
    (lambda: mb.egger(BCG_YI, BCG_VI, model="glm"), "model: unknown value 'glm'"),
    (lambda: mb.failsafe_n(BCG_YI), "vi: Rosenthal's fail-safe N needs the sampling variances"),
    (lambda: mb.failsafe_n(BCG_YI, BCG_VI, alpha=2), r"alpha: must be in \(0, 1\)"),
    (lambda: mb.trimfill([0.1], [0.1]), "trimfill: needs at least 2 studies"),
    (lambda: mb.trimfill([0.1, 0.2, 0.4], [0.1, 0.1, 0.1]), "trimfill: side: every study has the same variance"),
])
def test_bias_bad_input(call, message: str) -> None:
    with pytest.raises(mb.InputError, match=message):
        call()


def test_begg_uses_the_exact_p_value_only_where_it_is_computable() -> None:
    """The exact null distribution of Kendall's S costs O(k³): at k = 4000 over a minute, at k = 1e6 terabytes.
    Up to k = 500 the p-value is exact (metafor's default); beyond, the normal approximation."""
    rng = np.random.default_rng(3)
    for k, exact in ((500, True), (501, False), (4000, False)):
        y, v = rng.normal(size=k), rng.uniform(0.01, 0.2, size=k)
        result = mb.begg(y, v)
        assert result.exact is exact and result.k == k
        w = 1 / v
        deviates = (y - np.sum(w * y) / w.sum()) / np.sqrt(v - 1 / w.sum())
        expected = stats.kendalltau(deviates, v, method="exact" if exact else "asymptotic")
        assert result.pvalue == pytest.approx(expected.pvalue, rel=1e-10)
        assert result.tau == pytest.approx(expected.statistic, rel=1e-12)
