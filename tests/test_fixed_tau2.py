"""pool(..., tau2=value): a random-effects model with tau² given, against metafor's rma(yi, vi, tau2 = value)
(tests/reference/metafor_fixed_tau2.json, made by tests/reference/make_fixed_tau2_reference.R), on both paths."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

import metabac as mb

CASES = json.loads((Path(__file__).parent / "reference" / "metafor_fixed_tau2.json").read_text())["cases"]
FIELDS = ("estimate", "se", "ci_low", "ci_high", "pvalue", "statistic", "tau2", "q", "q_pvalue", "i2", "h2",
          "pi_low", "pi_high")


@pytest.mark.parametrize("case", CASES, ids=[f"{c['name']}-tau2={c['tau2']}-{c['test']}" for c in CASES])
def test_a_given_tau2_equals_metafor_for_one_analysis_and_a_batch(case: dict) -> None:
    y, v = np.array(case["input"]["yi"]), np.array(case["input"]["vi"])
    one = mb.pool(y, v, tau2=case["tau2"], test=case["test"])
    batch = mb.pool(np.vstack([y, y]), np.vstack([v, v]), tau2=case["tau2"], test=case["test"])
    for key in FIELDS:
        expected = case["expected"][key]
        assert float(getattr(one, key)) == pytest.approx(expected, rel=1e-6, abs=1e-10), key
        assert np.asarray(getattr(batch, key)) == pytest.approx([expected] * 2, rel=1e-6, abs=1e-10), key
    assert one.tau2_fixed and one.iterations == 0 and one.is_random


def test_a_given_tau2_is_said_in_the_summary_and_has_no_profile_interval() -> None:
    fit = mb.pool([0.1, 0.3, 0.35, 0.65], [0.01, 0.02, 0.015, 0.03], tau2=0.02)
    assert "user-specified tau^2 value" in fit.summary() and "specified amount" in fit.summary()
    with pytest.raises(mb.InputError, match="confint: tau2 was given"):
        fit.confint()


def test_a_given_tau2_is_the_estimate_it_would_replace() -> None:
    """Fixing tau² at the REML estimate gives the REML fit's numbers (the weights depend on tau² only)."""
    y, v = [0.1, 0.3, 0.35, 0.65, -0.2], [0.01, 0.02, 0.015, 0.03, 0.05]
    reml = mb.pool(y, v, method="REML", test="knha")
    fixed = mb.pool(y, v, tau2=float(reml.tau2), test="knha")
    for key in FIELDS:
        assert getattr(fixed, key) == pytest.approx(getattr(reml, key), rel=1e-12), key


@pytest.mark.parametrize("value", [-0.1, math.nan, math.inf, "0.1", True])
def test_a_given_tau2_must_be_a_finite_number_at_least_0(value: object) -> None:
    with pytest.raises(mb.InputError, match=r"^tau2: must be a finite number >= 0, got"):
        mb.pool([0.1, 0.3], [0.01, 0.02], tau2=value)  # type: ignore[arg-type]


@pytest.mark.parametrize("method", ["EE", "FE"])
def test_a_given_tau2_with_the_equal_effects_model_is_refused(method: str) -> None:
    with pytest.raises(mb.InputError, match="^tau2: a given tau2 needs a random-effects model"):
        mb.pool([0.1, 0.3], [0.01, 0.02], method=method, tau2=0.1)
