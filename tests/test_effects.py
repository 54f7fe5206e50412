"""Effect sizes on hand-worked examples, zero-cell rules and input checks."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import gamma

import metabac as mb

# Addolorato 2007 abstinence: 30/42 baclofen vs 12/42 placebo.
ARMS = dict(ai=[30], n1i=[42], ci=[12], n2i=[42])


def test_log_odds_ratio_by_hand() -> None:
    es = mb.effect_sizes("OR", **ARMS)
    assert es.yi[0] == pytest.approx(math.log(30 * 30 / (12 * 12)))
    assert es.vi[0] == pytest.approx(1 / 30 + 1 / 12 + 1 / 12 + 1 / 30)


def test_log_risk_ratio_by_hand() -> None:
    es = mb.effect_sizes("RR", **ARMS)
    assert es.yi[0] == pytest.approx(math.log(30 / 12))
    assert es.vi[0] == pytest.approx(1 / 30 - 1 / 42 + 1 / 12 - 1 / 42)


def test_risk_difference_by_hand() -> None:
    es = mb.effect_sizes("RD", **ARMS)
    p1, p2 = 30 / 42, 12 / 42
    assert es.yi[0] == pytest.approx(p1 - p2)
    assert es.vi[0] == pytest.approx(p1 * (1 - p1) / 42 + p2 * (1 - p2) / 42)


def test_peto_by_hand() -> None:
    es = mb.effect_sizes("PETO", **ARMS)
    expected, variance = 42 * 42 / 84, 42 * 42 * 42 * 42 / (84**2 * 83)
    assert es.yi[0] == pytest.approx((30 - expected) / variance)
    assert es.vi[0] == pytest.approx(1 / variance)


def test_smd_uses_the_exact_hedges_correction() -> None:
    es = mb.effect_sizes("SMD", m1i=[10.0], sd1i=[2.0], n1i=[5], m2i=[8.0], sd2i=[2.0], n2i=[5])
    m = 8
    j = gamma(m / 2) / (math.sqrt(m / 2) * gamma((m - 1) / 2))
    assert es.yi[0] == pytest.approx(j * 1.0)
    assert es.vi[0] == pytest.approx(1 / 5 + 1 / 5 + es.yi[0] ** 2 / 20)


def test_mean_difference_and_ratio_of_means() -> None:
    arms = dict(m1i=[62.8], sd1i=[35.0], n1i=[42], m2i=[30.8], sd2i=[35.6], n2i=[42])
    md, rom = mb.effect_sizes("MD", **arms), mb.effect_sizes("ROM", **arms)
    assert md.yi[0] == pytest.approx(32.0) and md.vi[0] == pytest.approx(35**2 / 42 + 35.6**2 / 42)
    assert rom.yi[0] == pytest.approx(math.log(62.8 / 30.8))


def test_zero_cell_gets_one_half_in_every_cell_of_that_study_only() -> None:
    es = mb.effect_sizes("OR", ai=[0, 5], bi=[10, 5], ci=[3, 5], di=[7, 5])
    assert es.yi[0] == pytest.approx(math.log(0.5 * 7.5 / (10.5 * 3.5)))
    assert es.yi[1] == 0


def test_to_all_and_custom_add() -> None:
    es = mb.effect_sizes("OR", ai=[0, 5], bi=[10, 5], ci=[3, 5], di=[7, 5], add=1, to="all")
    assert es.yi[1] == 0 and es.yi[0] == pytest.approx(math.log(1 * 8 / (11 * 4)))


def test_double_zero_studies_kept_by_default_and_dropped_on_request() -> None:
    arms = dict(ai=[0, 2], n1i=[10, 10], ci=[0, 4], n2i=[10, 10], study=["none", "some"])
    assert len(mb.effect_sizes("RR", **arms)) == 2
    dropped = mb.effect_sizes("RR", drop00=True, **arms)
    assert list(dropped["study"]) == ["some"] and list(dropped.index) == [1]


def test_zero_cell_without_correction_is_an_error() -> None:
    with pytest.raises(mb.InputError, match="study 1: OR: effect size is not estimable"):
        mb.effect_sizes("OR", ai=[0], n1i=[10], ci=[3], n2i=[10], add=0)


def test_label_columns_pass_through_in_order() -> None:
    es = mb.effect_sizes("RR", ai=[1, 2], n1i=[10, 10], ci=[3, 4], n2i=[10, 10], severity=["heavy", "moderate"])
    assert list(es.columns) == ["yi", "vi", "severity"] and list(es.severity) == ["heavy", "moderate"]


@pytest.mark.parametrize("measure", ["OR", "RR", "RD", "PETO"])
def test_swapping_groups_negates_binary_measures(measure: str) -> None:
    a = mb.effect_sizes(measure, ai=[3, 7], n1i=[20, 30], ci=[6, 2], n2i=[25, 28])
    b = mb.effect_sizes(measure, ai=[6, 2], n1i=[25, 28], ci=[3, 7], n2i=[20, 30])
    np.testing.assert_allclose(a.yi, -b.yi, rtol=1e-12)
    np.testing.assert_allclose(a.vi, b.vi, rtol=1e-12)


@pytest.mark.parametrize(
    ("arms", "message"),
    [
        (dict(ai=[5, 1], n1i=[4, 10], ci=[1, 1], n2i=[10, 10]), r"study 1: ai: 5 events exceed the group size n1i=4"),
        (dict(ai=[-1], n1i=[4], ci=[1], n2i=[10]), r"study 1: ai: must not be negative, got -1"),
        (dict(ai=[1.5], n1i=[4], ci=[1], n2i=[10]), r"study 1: ai: must be a whole number, got 1.5"),
        (dict(ai=[1, 2], n1i=[4], ci=[1], n2i=[10]), r"binary data: lengths differ"),
        (dict(ai=[1], n1i=[float("nan")], ci=[1], n2i=[10]), r"study 1: n1i: must be finite"),
        (dict(ai=["x"], n1i=[4], ci=[1], n2i=[10]), r"study 1: ai: not a number: 'x'"),
        (dict(ai=[], n1i=[], ci=[], n2i=[]), r"binary data: no studies \(empty input\)"),
        (dict(ai=[1], ci=[1]), r"binary data: need bi or n1i beside ai"),
    ],
)
def test_bad_binary_input(arms: dict, message: str) -> None:
    with pytest.raises(mb.InputError, match=message):
        mb.effect_sizes("RR", **arms)


def test_bad_continuous_input_names_the_study() -> None:
    with pytest.raises(mb.InputError, match=r'study 2 \("B"\): sd2i: must be positive, got 0'):
        mb.effect_sizes("MD", m1i=[1, 2], sd1i=[1, 1], n1i=[5, 5], m2i=[1, 1], sd2i=[1, 0], n2i=[5, 5],
                        labels=["A", "B"])


def test_unknown_measure() -> None:
    with pytest.raises(mb.InputError, match="measure: unknown value 'XX'"):
        mb.effect_sizes("XX", ai=[1], n1i=[2], ci=[1], n2i=[2])


def test_measure_names_are_case_insensitive_everywhere():
    """pool(measure="rr") printed no back-transformed line and predictors(measure="rr") left log RRs unexponentiated."""
    fit = mb.pool([0.1, 0.3, -0.2], [0.01, 0.02, 0.03], measure="rr")
    assert fit.measure == "RR" and "RR 1.09" in fit.summary()
    assert mb.pool([0.1, 0.3], [0.01, 0.02], measure="ZCOR").measure == "ZCOR"   # a name we do not know: a label
    trials = mb.load_trials(Path(__file__).resolve().parents[1] / "trials")
    arms = mb.comparisons(trials, "abstinence")
    lower, upper = (mb.predictors(arms, measure=m).table for m in ("rr", "RR"))
    pd.testing.assert_frame_equal(lower, upper)
