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
    assert close(b.ci_low, a.ci_low + shift, atol=1e-7) and close(b.ci_high, a.ci_high + shift, atol=1e-7)
    assert close(b.se, a.se) and close(b.tau2, a.tau2, atol=1e-9)


@SETTINGS
@given(studies(), METHODS, st.floats(0.05, 20), st.sampled_from([1, -1]))
def test_scaling_yi_and_vi_scales_estimate_se_and_tau2(data, method, size, sign) -> None:
    """(c·yi, c²·vi): the estimate scales by c, se by |c|, tau² by c², for c of either sign."""
    y, v = data
    c = sign * size
    a, b = mb.pool(y, v, method=method), mb.pool(c * y, c**2 * v, method=method)
    assert close(b.estimate, c * a.estimate, atol=1e-8)
    assert close(b.se, abs(c) * a.se)
    assert close(b.tau2, c**2 * a.tau2, atol=1e-8)
    assert close(b.i2, a.i2, atol=1e-7) and close(b.q, a.q, atol=1e-8)


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
@given(studies(min_k=1, max_k=1), METHODS)
def test_one_study_returns_itself(data, method) -> None:
    y, v = data
    fit = mb.pool(y, v, method=method)
    assert close(fit.estimate, y[0], rtol=1e-14) and close(fit.se, np.sqrt(v[0]), rtol=1e-14)
    assert fit.tau2 == 0 and fit.i2 == 0


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


@SETTINGS
@given(studies(min_k=3, max_k=8), METHODS, st.integers(0, 7))
def test_a_masked_study_is_a_dropped_study(data, method, drop) -> None:
    y, v = data
    drop %= len(y)
    mask = np.ones(len(y), dtype=bool)
    mask[drop] = False
    batched = mb.pool(y[None, :], v[None, :], method=method, mask=mask[None, :])
    alone = mb.pool(y[mask], v[mask], method=method)
    for name in ("estimate", "se", "tau2", "q", "i2"):
        assert close(getattr(batched, name)[0], getattr(alone, name), rtol=1e-10, atol=1e-12), name


@SETTINGS
@given(studies(), METHODS, st.sampled_from(["z", "knha"]), st.floats(50, 99.9))
def test_a_higher_level_gives_a_wider_interval_around_the_same_estimate(data, method, test, level) -> None:
    y, v = data
    narrow, wide = mb.pool(y, v, method=method, test=test, level=level), mb.pool(y, v, method=method, test=test)
    if level > 95:
        narrow, wide = wide, narrow
    assert narrow.estimate == wide.estimate and narrow.tau2 == wide.tau2
    assert wide.ci_low <= narrow.ci_low + 1e-12 and narrow.ci_high <= wide.ci_high + 1e-12


@SETTINGS
@given(studies(min_k=2, max_k=8))
def test_q_profile_interval_holds_the_paule_mandel_estimate(data) -> None:
    """PM solves Q(tau²) = k − 1, which lies between the χ²(k − 1) quantiles the Q-profile bounds solve for."""
    y, v = data
    fit = mb.pool(y, v, method="PM")
    ci = fit.confint(tau2_max=float("inf"))
    assert 0 <= ci.tau2.ci_low <= fit.tau2 * (1 + 1e-9) + 1e-12
    assert fit.tau2 <= ci.tau2.ci_high * (1 + 1e-9) + 1e-12


TABLES = st.lists(st.tuples(st.integers(1, 30), st.integers(1, 30), st.integers(1, 30), st.integers(1, 30)),
                  min_size=2, max_size=6)


@SETTINGS
@given(TABLES, st.sampled_from(["OR", "RR", "RD"]), st.randoms(use_true_random=False))
def test_permuting_tables_leaves_mantel_haenszel_and_peto_unchanged(tables, measure, rnd) -> None:
    a, b, c, d = (np.array(col) for col in zip(*tables))
    order = list(range(len(a)))
    rnd.shuffle(order)
    for fit in (lambda i: mb.mantel_haenszel(measure, ai=a[i], bi=b[i], ci=c[i], di=d[i]),
                lambda i: mb.peto(ai=a[i], bi=b[i], ci=c[i], di=d[i])):
        one, other = fit(list(range(len(a)))), fit(order)
        assert close(one.estimate, other.estimate, rtol=1e-12) and close(one.se, other.se, rtol=1e-12)
        assert close(one.q, other.q, rtol=1e-9, atol=1e-12)


@SETTINGS
@given(TABLES, st.sampled_from(["OR", "RR", "RD"]), st.integers(2, 5))
def test_multiplying_every_count_keeps_the_effect_and_divides_its_variance(tables, measure, m) -> None:
    """Without zero cells, m times every count leaves log OR, log RR and RD unchanged and divides vi by m."""
    a, b, c, d = (np.array(col) for col in zip(*tables))
    one = mb.effect_sizes(measure, ai=a, bi=b, ci=c, di=d)
    many = mb.effect_sizes(measure, ai=m * a, bi=m * b, ci=m * c, di=m * d)
    np.testing.assert_allclose(many.yi, one.yi, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(many.vi, one.vi / m, rtol=1e-12)


LABELS = st.lists(st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=12)
                  .filter(lambda t: t.strip() == t and t.strip()), min_size=2, max_size=6, unique=True)


@settings(max_examples=15, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(studies(max_k=6), LABELS)
def test_csv_round_trip_through_the_cli_equals_the_library(data, labels) -> None:
    """Any study labels (commas, quotes, semicolons, non-ASCII) survive a CSV; the CLI's JSON equals pool()."""
    import csv
    import json
    import tempfile
    from pathlib import Path

    from click.testing import CliRunner

    from metabac.cli import cli

    y, v = data
    labels = (labels * len(y))[: len(y)]
    if len(set(labels)) < len(labels):
        labels = [f"{label} {i}" for i, label in enumerate(labels)]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "studies.csv"
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["study", "yi", "vi"])
            writer.writerows([label, repr(float(a)), repr(float(b))] for label, a, b in zip(labels, y, v))
        result = CliRunner().invoke(cli, ["pool", str(path), "--method", "DL", "--json"])
    assert result.exit_code == 0, result.output
    data_out = json.loads(result.output)
    fit = mb.pool(y, v, method="DL")
    assert data_out["labels"] == labels
    assert data_out["estimate"] == fit.estimate and data_out["tau2"] == fit.tau2


@SETTINGS
@given(st.text(min_size=1, max_size=20))
def test_an_error_message_is_one_line_whatever_the_label(label) -> None:
    try:
        mb.pool([0.1, "x"], [0.1, 0.1], labels=["a", label])
    except mb.InputError as error:
        message = str(error)
    assert "\n" not in message and "\r" not in message and not any(ord(ch) < 32 for ch in message)
    assert message.startswith("study 2 (") and message.endswith("yi: not a number: 'x'")


@settings(max_examples=8, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["abstinence", "dropout", "relapse", "heavy_drinking_days"]),
       st.sampled_from(["combine", "split", "repeat"]))
def test_trial_records_load_deterministically_and_are_never_modified(outcome, shared) -> None:
    """load -> tidy -> comparisons gives the same frames twice and leaves every file's bytes and mtime as they were."""
    import hashlib
    from pathlib import Path

    folder = Path(__file__).resolve().parents[1] / "trials"
    state = lambda: {p.name: (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())  # noqa: E731
                     for p in sorted(folder.rglob("*.toml"))}
    before = state()
    first = mb.comparisons(mb.load_trials(folder), outcome, shared_control=shared)
    second = mb.comparisons(mb.load_trials(folder), outcome, shared_control=shared)
    assert first.equals(second) and first.attrs == second.attrs
    assert state() == before
