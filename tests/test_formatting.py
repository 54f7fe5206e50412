"""metabac.formatting: the one place numbers, effects, p-values and printed decimals are formatted."""

from __future__ import annotations

import math

import numpy as np
import pytest

import metabac as mb
from metabac._result import fmt, fmt_p
from metabac.formatting import effect_text, natural_scale, number, p_text, p_value, printed_decimals, slug
from metabac.plots.forest import forest


@pytest.mark.parametrize("value, digits, text", [
    (0.313214, 4, "0.3132"), (2.5, 2, "2.50"), (np.float64(-1.005), 1, "-1.0"), (np.array(3.0), 0, "3"),
    (None, 2, "NA"), (math.nan, 2, "NA"), (math.inf, 2, "NA"),
])
def test_number_or_na(value, digits, text):
    assert number(value, digits) == text


@pytest.mark.parametrize("p, report, metafor", [
    (0.5, "0.500", "0.5000"), (0.01234, "0.012", "0.0123"), (0.00042, "0.0004", "0.0004"),
    (3e-7, "< 0.0001", "<.0001"), (math.nan, "NA", "NA"),
])
def test_p_value_styles(p, report, metafor):
    assert p_value(p) == report
    assert p_value(p, style="metafor") == metafor == fmt_p(p)


def test_p_value_digits_set_the_smallest_printed_bound():
    assert p_value(0.004, 2, style="metafor") == "<.01" == fmt_p(0.004, 2)
    assert p_value(0.004, 2) == "< 0.01"


def test_p_in_a_sentence():
    assert p_text(0.0321) == "p = 0.032"
    assert p_text(1e-9, "P") == "P < 0.0001"


def test_fmt_is_number_with_four_decimals():
    assert fmt(1 / 3) == "0.3333" and fmt(1 / 3, 2) == "0.33"


def test_effect_on_the_natural_scale():
    log_rr = (math.log(2.18), math.log(0.82), math.log(5.76))
    assert effect_text("RR", *log_rr) == "2.18 [0.82, 5.76]"
    assert effect_text("RR", *log_rr, level=90) == "2.18 (90% CI 0.82 to 5.76)"
    assert effect_text("MD", -1.5, -2.25, -0.75, digits=1) == "-1.5 [-2.2, -0.8]"
    assert natural_scale("OR", 1000.0) == math.inf and effect_text("OR", 0.0, -1.0, 1000.0) == "1.00 [0.37, NA]"


@pytest.mark.parametrize("value, decimals", [("1.42", 2), ("76", 0), ("0.0001", 4), (11.9, 1), (57, 0), (1e-7, 0)])
def test_printed_decimals(value, decimals):
    assert printed_decimals(value) == decimals


def test_slug():
    assert slug("Hauser 2017 (b)") == "hauser-2017-b" and slug("***") == "x"


def _cells(fig) -> set[str]:
    return {t.get_text() for t in fig.texts}


def test_forest_takes_study_intervals_from_the_fit():
    es = mb.effect_sizes("RR", ai=[30, 6, 12], n1i=[42, 88, 50], ci=[12, 9, 10], n2i=[42, 92, 51],
                         labels=["A", "B", "C"])
    fit = mb.pool(es, level=90)
    rows = fit.to_frame().iloc[:3]
    expected = {effect_text("RR", r.estimate, r.ci_low, r.ci_high) for r in rows.itertuples()}
    assert expected <= _cells(forest(fit)) and expected <= _cells(forest(es, fit))


def test_forest_of_a_table_with_a_mantel_haenszel_fit_has_the_same_study_intervals():
    arms = dict(ai=[30, 6, 12], n1i=[42, 88, 50], ci=[12, 9, 10], n2i=[42, 92, 51])
    es = mb.effect_sizes("RR", labels=["A", "B", "C"], **arms)
    mh = mb.mantel_haenszel("RR", labels=["A", "B", "C"], **arms)
    rows = mb.pool(es, method="EE").to_frame().iloc[:3]
    expected = {effect_text("RR", r.estimate, r.ci_low, r.ci_high) for r in rows.itertuples()}
    assert expected <= _cells(forest(es, mh))
