"""Invariants that must hold for any data (hypothesis, derandomised so CI is repeatable)."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import metabac as mb

SETTINGS = settings(max_examples=40, derandomize=True, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
METHODS = st.sampled_from(["EE", "DL", "HE", "HS", "SJ", "ML", "REML", "EB", "PM"])


@st.composite
def studies(draw, min_k: int = 2, max_k: int = 12):
    k = draw(st.integers(min_k, max_k))
    y = draw(st.lists(st.floats(-3, 3, allow_nan=False), min_size=k, max_size=k))
    v = draw(st.lists(st.floats(0.001, 2.0), min_size=k, max_size=k))
    return np.array(y), np.array(v)


def close(a: float, b: float, rtol: float = 1e-7, atol: float = 1e-9) -> bool:
    return bool(np.isclose(a, b, rtol=rtol, atol=atol))


@SETTINGS
@given(studies(), METHODS, st.randoms(use_true_random=False))
def test_permuting_studies_changes_nothing(data, method, rnd) -> None:
    y, v = data
    order = list(range(len(y)))
    rnd.shuffle(order)
    a, b = mb.pool(y, v, method=method), mb.pool(y[order], v[order], method=method)
    for name in ("estimate", "se", "tau2", "q", "i2"):
        assert close(getattr(a, name), getattr(b, name)), name


@SETTINGS
@given(studies(), METHODS, st.floats(-50, 50))
def test_shifting_yi_shifts_the_estimate(data, method, shift) -> None:
    y, v = data
    a, b = mb.pool(y, v, method=method), mb.pool(y + shift, v, method=method)
    assert close(b.estimate, a.estimate + shift, atol=1e-7)
    assert close(b.se, a.se) and close(b.tau2, a.tau2, atol=1e-9)


@SETTINGS
@given(studies(), METHODS, st.floats(0.05, 20))
def test_scaling_yi_and_vi_scales_estimate_se_and_tau2(data, method, c) -> None:
    y, v = data
    a, b = mb.pool(y, v, method=method), mb.pool(c * y, c**2 * v, method=method)
    assert close(b.estimate, c * a.estimate, atol=1e-8)
    assert close(b.se, c * a.se)
    assert close(b.tau2, c**2 * a.tau2, atol=1e-8)


@SETTINGS
@given(studies(), METHODS, st.sampled_from(["z", "knha"]))
def test_ranges_and_orderings(data, method, test) -> None:
    y, v = data
    fit = mb.pool(y, v, method=method, test=test)
    assert fit.tau2 >= 0 and 0 <= fit.i2 < 100
    if method != "EE":  # for EE, H² = Q/(k − 1) as metafor, which is below 1 when Q < k − 1
        assert fit.h2 >= 1 - 1e-12
    assert y.min() - 1e-12 <= fit.estimate <= y.max() + 1e-12
    assert fit.ci_low <= fit.estimate <= fit.ci_high
    assert fit.pi_low <= fit.ci_low + 1e-12 and fit.pi_high >= fit.ci_high - 1e-12


@SETTINGS
@given(studies(), METHODS)
def test_random_effects_equal_fixed_effect_when_tau2_is_zero(data, method) -> None:
    y, v = data
    fit, fixed = mb.pool(y, v, method=method), mb.pool(y, v, method="EE")
    if fit.tau2 == 0:
        assert close(fit.estimate, fixed.estimate, rtol=1e-12) and close(fit.se, fixed.se, rtol=1e-12)


@SETTINGS
@given(studies(max_k=8))
def test_each_study_twice_equals_halved_variances_under_fixed_effect(data) -> None:
    y, v = data
    twice = mb.pool(np.concatenate([y, y]), np.concatenate([v, v]), method="EE")
    halved = mb.pool(y, v / 2, method="EE")
    assert close(twice.estimate, halved.estimate, rtol=1e-12) and close(twice.se, halved.se, rtol=1e-12)


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, 30), st.integers(1, 30), st.integers(0, 30), st.integers(1, 30)),
                min_size=1, max_size=6),
       st.sampled_from(["OR", "RR", "RD", "PETO"]))
def test_swapping_groups_negates_binary_effects(tables, measure) -> None:
    a, n1, c, n2 = (np.array(col) for col in zip(*tables))
    a, c = np.minimum(a, n1), np.minimum(c, n2)
    forward = mb.effect_sizes(measure, ai=a, n1i=n1, ci=c, n2i=n2)
    backward = mb.effect_sizes(measure, ai=c, n1i=n2, ci=a, n2i=n1)
    np.testing.assert_allclose(forward.yi, -backward.yi, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(forward.vi, backward.vi, rtol=1e-10)


@SETTINGS
@given(st.lists(st.tuples(st.floats(1, 100), st.floats(0.5, 30), st.integers(2, 200),
                          st.floats(1, 100), st.floats(0.5, 30), st.integers(2, 200)), min_size=1, max_size=6),
       st.sampled_from(["MD", "SMD", "ROM"]))
def test_swapping_groups_negates_continuous_effects(rows, measure) -> None:
    m1, s1, n1, m2, s2, n2 = (np.array(col) for col in zip(*rows))
    forward = mb.effect_sizes(measure, m1i=m1, sd1i=s1, n1i=n1, m2i=m2, sd2i=s2, n2i=n2)
    backward = mb.effect_sizes(measure, m1i=m2, sd1i=s2, n1i=n2, m2i=m1, sd2i=s1, n2i=n1)
    np.testing.assert_allclose(forward.yi, -backward.yi, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(forward.vi, backward.vi, rtol=1e-10)


@SETTINGS
@given(studies(min_k=1, max_k=1))
def test_one_study_returns_itself(data) -> None:
    y, v = data
    fit = mb.pool(y, v, method="REML")
    assert close(fit.estimate, y[0], rtol=1e-14) and close(fit.se, np.sqrt(v[0]), rtol=1e-14)


@SETTINGS
@given(st.lists(studies(min_k=3, max_k=3), min_size=2, max_size=5), METHODS)
def test_batched_equals_one_at_a_time(batch, method) -> None:
    y = np.array([b[0] for b in batch])
    v = np.array([b[1] for b in batch])
    together = mb.pool(y, v, method=method)
    for i in range(len(batch)):
        alone = mb.pool(y[i], v[i], method=method)
        assert close(together.estimate[i], alone.estimate, rtol=1e-10)
        assert close(together.tau2[i], alone.tau2, rtol=1e-8, atol=1e-12)
