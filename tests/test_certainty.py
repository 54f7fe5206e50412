"""GRADE certainty: each downgrade rule pinned on constructed cases, the OIS against a hand computation, author
overrides, and the bundled outcomes."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

import metabac as mb
from metabac.certainty import (
    Override,
    grade,
    grade_outcome,
    imprecision_rule,
    inconsistency_rule,
    indirectness_rule,
    optimal_information_size,
    publication_bias_rule,
    risk_of_bias_rule,
)

TRIALS = Path(__file__).resolve().parents[1] / "trials"
NONE = (0, "no reason")


def _rr_fit(log_rr: list[float], variances: list[float]):
    return mb.pool(log_rr, variances, method="DL", measure="RR")


# --- risk of bias ------------------------------------------------------------------------------------------------

def test_all_low_risk_trials_do_not_downgrade():
    assert risk_of_bias_rule([30, 30, 40], ["low", "low", "low"])[0] == 0


@pytest.mark.parametrize("judgements, levels", [
    (["high", "low", "low"], 1),              # 25% from high risk
    (["high", "high", "low"], 2),             # 50% from high risk
    (["some concerns", "some concerns", "low"], 1),   # half not at low risk
    (["some concerns", "low", "low"], 0),     # a quarter with some concerns
    (["no information", "no information", "low"], 1),
])
def test_risk_of_bias_by_share_of_weight(judgements, levels):
    assert risk_of_bias_rule([25, 25, 50], judgements)[0] == levels


# --- inconsistency ------------------------------------------------------------------------------------------------

def test_homogeneous_trials_are_consistent():
    fit = _rr_fit([0.5, 0.52, 0.48], [0.02, 0.03, 0.025])
    assert inconsistency_rule(fit)[0] == 0


def test_heterogeneity_crossing_no_effect_downgrades():
    moderate = _rr_fit([0.1, 0.9, 0.4, 1.2], [0.09, 0.1, 0.08, 0.12])
    assert 30 <= float(moderate.i2) < 75 and moderate.pi_low < 0
    assert inconsistency_rule(moderate)[0] == 1
    considerable = _rr_fit([-0.6, 1.2, 0.1, 1.5], [0.02, 0.03, 0.025, 0.03])
    assert float(considerable.i2) >= 75
    levels, reason = inconsistency_rule(considerable)
    assert levels == 2 and "do not overlap" in reason


def test_heterogeneity_that_changes_nothing_does_not_downgrade():
    """I² is 63% but every trial shows a benefit, all intervals overlap and the prediction interval excludes no
    effect."""
    fit = _rr_fit([0.7, 1.0, 0.8, 1.15], [0.015] * 4)
    assert float(fit.i2) > 60 and fit.pi_low > 0
    assert inconsistency_rule(fit)[0] == 0


def test_one_trial_is_not_judged_for_consistency():
    assert inconsistency_rule(mb.pool([0.3], [0.04], method="EE"))[0] == 0


# --- indirectness -------------------------------------------------------------------------------------------------

def test_indirectness_only_when_declared():
    assert indirectness_rule([50, 50], ["", ""], ["A", "B"])[0] == 0
    assert indirectness_rule([60, 40], ["veterans with hepatitis C only", ""], ["A", "B"])[0] == 1
    assert indirectness_rule([40, 60], ["veterans with hepatitis C only", ""], ["A", "B"])[0] == 0


# --- imprecision and the optimal information size ------------------------------------------------------------------

def test_ois_against_a_hand_computation():
    """Control risk 20%, a 25% relative increase to 25%, alpha 0.05, power 0.8:
    (1.959964 + 0.841621)² x (0.2 x 0.8 + 0.25 x 0.75) / 0.05² = 7.848868 x 0.3475 / 0.0025 = 1090.99 -> 1091
    per arm, 2182 in all."""
    assert optimal_information_size(0.2) == 2182
    per_arm = (1.959964 + 0.841621) ** 2 * (0.2 * 0.8 + 0.15 * 0.85) / 0.05**2   # a 25% reduction to 15%
    assert optimal_information_size(0.2, -0.25) == 2 * math.ceil(per_arm)
    with pytest.raises(mb.InputError):
        optimal_information_size(0.9)


def test_an_interval_crossing_one_downgrades_imprecision():
    fit = _rr_fit([0.1, 0.2], [0.04, 0.05])        # RR about 1.16, CI crossing 1
    assert fit.ci_low < 0 < fit.ci_high
    assert imprecision_rule(fit, participants=5000, ois=1000)[0] == 1
    assert imprecision_rule(fit, participants=500, ois=1000)[0] == 2


def test_a_precise_estimate_is_not_downgraded():
    fit = _rr_fit([0.7, 0.8], [0.01, 0.01])
    assert imprecision_rule(fit, participants=3000, ois=2000)[0] == 0
    assert imprecision_rule(fit, participants=1500, ois=2000)[0] == 1     # below the OIS only


def test_an_interval_spanning_benefit_and_harm_downgrades_twice():
    fit = _rr_fit([0.0], [0.2])                     # RR 1, CI about 0.42 to 2.4
    levels, reason = imprecision_rule(fit, participants=5000, ois=1000)
    assert levels == 2 and "appreciable benefit and harm" in reason


# --- publication bias ---------------------------------------------------------------------------------------------

def test_publication_bias_from_unavailable_large_trials_or_few_small_ones():
    assert publication_bias_rule([500, 600, 700] * 4, ois=400, unavailable={})[0] == 0
    levels, reason = publication_bias_rule([500, 600] * 6, ois=400, unavailable={"Big 2017": 3000})   # 31%
    assert levels == 1 and "availability" in reason
    assert publication_bias_rule([40, 80], ois=400, unavailable={})[0] == 1
    assert publication_bias_rule([500, 600] * 6, ois=400, unavailable={"Small 2010": 100})[0] == 0


# --- combining and overriding -------------------------------------------------------------------------------------

def test_certainty_steps_down_and_stops_at_very_low():
    verdicts = dict.fromkeys(("risk of bias", "inconsistency", "indirectness", "imprecision", "publication bias"),
                             NONE)
    assert grade("x", verdicts).certainty == "high"
    assert grade("x", {**verdicts, "imprecision": (1, "wide")}).certainty == "moderate"
    assert grade("x", {**verdicts, "imprecision": (2, "wide"), "risk of bias": (2, "high")}).certainty == "very low"


def test_an_override_replaces_the_rule_and_shows_both():
    verdicts = dict.fromkeys(("risk of bias", "inconsistency", "indirectness", "imprecision", "publication bias"),
                             NONE)
    result = grade("x", {**verdicts, "publication bias": (1, "small trials")},
                   {"publication bias": Override(0, "registry search found no unpublished trial")})
    row = result.to_frame().loc["publication bias"]
    assert result.certainty == "high"
    assert (row.levels, row.basis, row.rule_levels) == (0, "override", 1)
    assert row.reason.startswith("registry search") and row.rule_reason == "small trials"
    assert "override" in result.summary()


def test_bad_overrides_are_refused():
    with pytest.raises(mb.InputError, match="levels must be 0, 1 or 2"):
        Override(3, "too much")
    with pytest.raises(mb.InputError, match="a reason is required"):
        Override(1, " ")
    verdicts = dict.fromkeys(("risk of bias", "inconsistency", "indirectness", "imprecision", "publication bias"),
                             NONE)
    with pytest.raises(mb.InputError, match="unknown or missing precision"):
        grade("x", verdicts, {"precision": Override(1, "typo")})


# --- the bundled outcomes -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def shipped() -> mb.TrialSet:
    return mb.load_trials(TRIALS)


def test_abstinence_reproduces_the_biostatisticians_judgement(shipped):
    """Very low: RoB (Müller 43 of 56, Hauser modified ITT and second-hand, Addolorato 2002 imbalanced),
    inconsistency (I² 48%), imprecision (334 participants, about 1,900 needed), likely availability bias."""
    result = grade_outcome(shipped, mb.comparisons(shipped, "abstinence"))
    levels = result.to_frame()["levels"]
    assert result.certainty == "very low"
    assert levels["risk of bias"] >= 1 and levels["inconsistency"] == 1 and levels["imprecision"] == 1
    assert levels["publication bias"] == 1 and levels["indirectness"] == 0
    reasons = result.to_frame()["reason"]
    assert "I² = 48%" in reasons["inconsistency"]
    ois = int(re.search(r"optimal information size of (\d+)", reasons["imprecision"]).group(1))
    assert "334 participants" in reasons["imprecision"] and 1800 <= ois <= 2000
    assert "Reynaud 2017" in reasons["publication bias"]


def test_the_report_fit_can_be_passed_in(shipped):
    arms = mb.comparisons(shipped, "dropout")
    es = mb.effect_sizes("RR", ai=arms.ai, n1i=arms.n1i, ci=arms.ci, n2i=arms.n2i)
    fit = mb.pool(es.yi, es.vi, method="DL", measure="RR")
    result = grade_outcome(shipped, arms, fit)
    assert result.to_frame().loc["imprecision", "levels"] == 2      # CI crosses 1 and below the OIS
    assert np.isclose(sum(fit.weights), 100)

