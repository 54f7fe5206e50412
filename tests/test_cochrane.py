"""Cochrane's current random-effects methods against metafor (tests/reference/metafor_cochrane.json, made by
tests/reference/make_cochrane_reference.R): REML, Hartung-Knapp-Sidik-Jonkman interval, t(k - 1) prediction
interval and the Q-profile intervals for tau2 and I2 that the report prints wherever tau2 is printed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import metabac as mb
from metabac.profiles import analyse, get_profile

CASES = json.loads((Path(__file__).parent / "reference" / "metafor_cochrane.json").read_text())["cases"]
KNHA = [c for c in CASES if c["test"] == "knha"]


@pytest.mark.parametrize("case", KNHA, ids=[c["name"] for c in KNHA])
def test_hksj_t_prediction_interval_and_q_profile_equal_metafor(case):
    fit = mb.pool(case["input"]["yi"], case["input"]["vi"], method="REML", test="knha")
    expected = case["expected"]
    for key in ("estimate", "se", "ci_low", "ci_high", "pvalue", "statistic", "tau2", "i2", "pi_low", "pi_high"):
        assert float(getattr(fit, key)) == pytest.approx(expected[key], rel=1e-6, abs=1e-10), key
    assert fit.df == expected["df"]
    ci = fit.confint()
    assert [ci.tau2.ci_low, ci.tau2.ci_high] == pytest.approx(expected["tau2_ci"], rel=1e-6, abs=1e-10)
    assert [ci.i2.ci_low, ci.i2.ci_high] == pytest.approx(expected["i2_ci"], rel=1e-6, abs=1e-8)


def test_the_cochrane_profile_is_reml_with_hksj():
    profile = get_profile("cochrane")
    assert (profile.method, profile.test, profile.i2, profile.prediction) == ("REML", "knha", "tau2", "z")
    case = next(c for c in KNHA if c["name"] == "abstinence")
    fit = analyse("RR", ai=[14, 30, 6, 15], n1i=[20, 42, 79, 22], ci=[4, 12, 9, 5], n2i=[19, 42, 89, 21],
                  profile="cochrane").result
    assert fit.test == "knha" and float(fit.ci_low) == pytest.approx(case["expected"]["ci_low"], rel=1e-6)
    assert float(fit.pi_high) == pytest.approx(case["expected"]["pi_high"], rel=1e-6)


def test_the_bundled_report_uses_cochrane_s_methods_and_keeps_the_wald_line():
    from metabac.report import ReportOptions, build_report

    trials = Path(__file__).resolve().parents[1] / "trials"
    report = build_report(ReportOptions(outcomes=("abstinence",), trials_dir=trials))
    a = report.analyses[0]
    case = next(c for c in KNHA if c["name"] == "abstinence")
    assert a.random.test == "knha"
    assert float(a.random.ci_high) == pytest.approx(case["expected"]["ci_high"], rel=1e-6)
    assert float(a.random.pi_low) == pytest.approx(case["expected"]["pi_low"], rel=1e-6)
    assert [a.appraisal.heterogeneity.tau2.ci_low, a.appraisal.heterogeneity.tau2.ci_high] == pytest.approx(
        case["expected"]["tau2_ci"], rel=1e-6, abs=1e-10)
    wald = mb.pool(case["input"]["yi"], case["input"]["vi"], method="REML")
    assert float(a.appraisal.wald.ci_low) == pytest.approx(float(wald.ci_low), rel=1e-12)
    assert a.appraisal.wald.test == "z" and np.isfinite(a.appraisal.wald.ci_low)


ADHOC = [c for c in CASES if c["test"] == "adhoc"]


@pytest.mark.parametrize("case", ADHOC, ids=[c["name"] for c in ADHOC])
def test_modified_hartung_knapp_equals_metafor_adhoc(case):
    """max(1, s²): on homogeneous data (s² < 1) wider than plain HKSJ, elsewhere the same (Röver et al. 2015)."""
    y, v = case["input"]["yi"], case["input"]["vi"]
    fit = mb.pool(y, v, method="REML", test="adhoc")
    batch = mb.pool(np.array([y, y]), np.array([v, v]), method="REML", test="adhoc")
    for key in ("estimate", "se", "ci_low", "ci_high", "pvalue", "pi_low", "pi_high"):
        assert float(getattr(fit, key)) == pytest.approx(case["expected"][key], rel=1e-6, abs=1e-10), key
        assert getattr(batch, key) == pytest.approx([case["expected"][key]] * 2, rel=1e-6, abs=1e-10), key
    plain = mb.pool(y, v, method="REML", test="knha")
    assert fit.ci_high - fit.ci_low >= plain.ci_high - plain.ci_low - 1e-12
    assert "modified (max(1, s²)) Hartung-Knapp adjustment" in fit.summary()


def test_meta_regression_takes_the_modified_test_too():
    y, v = [0.10, 0.12, 0.09, 0.11, 0.13], [0.04, 0.05, 0.03, 0.06, 0.05]
    x = [1.0, 2.0, 3.0, 4.0, 5.0]
    knha, adhoc = (mb.metareg(y, v, mods=x, test=t) for t in ("knha", "adhoc"))
    assert adhoc.se[1] > knha.se[1] and adhoc.test == "adhoc" and adhoc.qm_df == knha.qm_df   # s² < 1 here
