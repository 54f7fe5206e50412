"""Summary-of-findings arithmetic: absolute effects per 1000 as Cochrane and GRADEpro compute them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from metabac import InputError
from metabac.summary_of_findings import corresponding_risk, summary_of_findings


def test_rr_absolute_effect_is_1000_acr_times_rr_minus_1():
    sof = summary_of_findings("RR", math.log(1.42), math.log(0.41), math.log(4.92), participants=264, k=2,
                              control_events=[12, 9], control_n=[42, 92])
    acr = np.median([12 / 42, 9 / 92])
    assert sof.assumed_control_risk == pytest.approx(acr, rel=1e-12)
    assert sof.relative == pytest.approx(1.42)
    assert sof.absolute == pytest.approx(1000 * acr * (1.42 - 1), rel=1e-12)
    assert sof.absolute_low == pytest.approx(1000 * acr * (0.41 - 1), rel=1e-12)
    assert sof.absolute_high == pytest.approx(1000 * acr * (4.92 - 1), rel=1e-12)
    assert (sof.participants, sof.k, sof.capped) == (264, 2, False)


def test_or_converts_through_the_control_risk():
    # ACR 0.2, OR 2: risk = 2*0.2/(1 - 0.2 + 0.4) = 1/3 -> 333 per 1000, 133 more
    sof = summary_of_findings("OR", math.log(2), math.log(1), math.log(4), participants=100, k=1,
                              control_events=[10], control_n=[50])
    assert sof.corresponding_risk == pytest.approx(1000 / 3)
    assert sof.absolute == pytest.approx(1000 / 3 - 200)
    assert sof.absolute_low == pytest.approx(0, abs=1e-12)
    assert sof.corresponding_high == pytest.approx(1000 * 0.8 / 1.6)
    assert corresponding_risk("PETO", 2.0, 0.2) == pytest.approx(1 / 3)


def test_rd_is_already_absolute():
    sof = summary_of_findings("RD", 0.1, -0.05, 0.25, participants=80, k=2, control_events=[5, 10],
                              control_n=[40, 40])
    assert sof.absolute == pytest.approx(100)
    assert (sof.absolute_low, sof.absolute_high) == pytest.approx((-50, 250))


def test_ratio_bound_beyond_certainty_is_capped_and_flagged():
    sof = summary_of_findings("RR", math.log(2), math.log(1), math.log(5), participants=40, k=1,
                              control_events=[10], control_n=[20])
    assert sof.corresponding_high == 1000 and sof.capped
    assert sof.absolute_high == pytest.approx(500)


def test_continuous_reports_the_difference_and_median_control_mean():
    sof = summary_of_findings("MD", 3.0, 1.0, 5.0, participants=60, k=3, control_means=[10, 20, 40])
    assert (sof.absolute, sof.absolute_low, sof.absolute_high) == (3.0, 1.0, 5.0)
    assert sof.assumed_control_mean == 20
    assert math.isnan(sof.assumed_control_risk)


@pytest.mark.parametrize("events, n", [([1, 2], [10]), ([11], [10]), ([], [])])
def test_bad_control_arms_are_input_errors(events, n):
    with pytest.raises(InputError, match="control_events"):
        summary_of_findings("RR", 0.0, -0.1, 0.1, participants=10, k=1, control_events=events, control_n=n)
