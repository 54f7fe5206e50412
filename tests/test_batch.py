"""A batch of problems gives the numbers of the same problems fitted one at a time (rtol 1e-12), for every estimator.

Covers problems whose tau² is 0, problems with absent studies (mask), a problem where Fisher scoring needs its
steps halved, chunked permutation tests, and the closed-form p = 1 path against the general QR path.
"""

from __future__ import annotations

import numpy as np
import pytest

import metabac as mb
import metabac.tau2 as tau2_module
import metabac.wls as wls_module
from metabac.moderators import fit_mixed_model
from metabac.tau2 import Control, estimate_tau2
from metabac.wls import Problem, WeightedFit

RTOL = 1e-12
FIELDS = ("estimate", "se", "ci_low", "ci_high", "statistic", "pvalue", "tau2", "q", "q_pvalue", "i2", "h2",
          "pi_low", "pi_high")

# Plain Fisher scoring diverges on this problem: at the REML root the scoring map has slope −1.41 (observed
# information 2.4 times the expected one), so undamped steps oscillate with growing amplitude.
OSCILLATING_Y = np.array([0.783, 0.614, 0.119, 0.154, 0.053, 0.224, 0.394, 0.489, 0.141, -0.013, 0.416, 0.729,
                          0.549, 0.242, 0.596, -0.148, 0.407, 0.681, 0.584, 0.033])
OSCILLATING_V = np.array([0.125, 0.191, 0.104, 0.124, 0.121, 0.115, 0.103, 0.177, 0.097, 0.128, 0.065, 0.151,
                          0.123, 0.145, 0.09, 0.168, 0.043, 0.093, 0.011, 0.18])
# Here the second scoring step from Hedges' start (0) would take tau² below 0, so metafor halves it.
BELOW_ZERO_Y = np.array([-0.012, 0.359, 0.197, 0.528, 0.443, 0.495, 0.344, 0.439, 0.458, 0.087, 0.406, 0.642,
                         0.097, 0.254, 0.295, 0.112, 0.211, 0.535, 0.006, 0.37])
BELOW_ZERO_V = np.array([0.103, 0.071, 0.023, 0.019, 0.186, 0.089, 0.18, 0.056, 0.122, 0.059, 0.178, 0.053,
                         0.114, 0.194, 0.149, 0.115, 0.079, 0.111, 0.011, 0.035])
HOMOGENEOUS_Y = np.array([0.10, 0.12, 0.09, 0.11, 0.10, 0.105])
HOMOGENEOUS_V = np.array([0.04, 0.05, 0.03, 0.06, 0.05, 0.04])


def simulated(batch: int, k: int, tau2: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    v = rng.uniform(0.01, 0.2, (batch, k))
    return rng.normal(0.3, np.sqrt(v + tau2)), v


def padded(rows: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Problems of different sizes as one (batch, k_max) array with a mask; absent cells hold junk values."""
    width = max(len(y) for y, _ in rows)
    y = np.full((len(rows), width), 123.0)
    v = np.full((len(rows), width), -7.0)
    mask = np.zeros((len(rows), width), dtype=bool)
    for i, (yi, vi) in enumerate(rows):
        y[i, : len(yi)], v[i, : len(vi)], mask[i, : len(yi)] = yi, vi, True
    return y, v, mask


def mixed_problems() -> list[tuple[np.ndarray, np.ndarray]]:
    """Heterogeneous, homogeneous (tau² = 0), oscillating, huge-heterogeneity, two-study and one-study problems."""
    y, v = simulated(6, 12, 0.05, seed=3)
    rows = [(y[i, : 4 + i], v[i, : 4 + i]) for i in range(6)]
    return rows + [
        (HOMOGENEOUS_Y, HOMOGENEOUS_V),
        (OSCILLATING_Y, OSCILLATING_V),
        (BELOW_ZERO_Y, BELOW_ZERO_V),
        (np.array([-5000.0, 0.0, 7000.0, 12000.0]), np.array([1e-6, 1e-3, 1.0, 1e3])),
        (np.array([0.1, 0.9]), np.array([0.02, 0.05])),
        (np.array([0.4]), np.array([0.09])),
    ]


def assert_same(batched: mb.PoolResult, row: int, present: np.ndarray, single: mb.PoolResult) -> None:
    """Row ``row`` of a batched fit equals ``single``, the fit of that row's ``present`` studies alone."""
    for name in FIELDS:
        got, want = np.asarray(getattr(batched, name))[row], getattr(single, name)
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=0, err_msg=name)
    assert batched.k[row] == single.k
    np.testing.assert_allclose(batched.weights[row][present], single.weights, rtol=RTOL, atol=0)
    assert np.all(batched.weights[row][~present] == 0)


@pytest.mark.parametrize("test", ["z", "knha"])
@pytest.mark.parametrize("method", mb.METHODS)
def test_batch_equals_one_at_a_time(method: str, test: str) -> None:
    rows = mixed_problems()
    y, v, mask = padded(rows)
    batched = mb.pool(y, v, method=method, test=test, mask=mask)
    for i, (yi, vi) in enumerate(rows):
        if test == "knha" and len(yi) == 1:
            continue  # one study: a single call falls back to z with a warning (metafor's rule), a batch gives NaN
        assert_same(batched, i, mask[i], mb.pool(yi, vi, method=method, test=test))


@pytest.mark.parametrize("method", ["ML", "REML", "EB"])
def test_batch_reports_the_iterations_of_each_problem(method: str) -> None:
    rows = mixed_problems()
    y, v, mask = padded(rows)
    batched = mb.pool(y, v, method=method, mask=mask)
    assert batched.iterations.tolist() == [mb.pool(yi, vi, method=method).iterations for yi, vi in rows]


@pytest.mark.parametrize("method", ["DL", "HE", "HS", "ML", "REML", "EB", "PM"])
def test_homogeneous_rows_get_tau2_zero_in_a_batch(method: str) -> None:
    y, v = simulated(3, 6, 1.0, seed=5)
    batched = mb.pool(np.vstack([y, HOMOGENEOUS_Y]), np.vstack([v, HOMOGENEOUS_V]), method=method)
    assert batched.tau2[-1] == 0.0 and np.all(batched.tau2[:-1] > 0)
    assert mb.pool(HOMOGENEOUS_Y, HOMOGENEOUS_V, method=method).tau2 == 0.0


@pytest.mark.parametrize("method", mb.METHODS)
def test_mask_equals_dropping_the_absent_studies(method: str) -> None:
    y, v = simulated(8, 15, 0.08, seed=11)
    rng = np.random.default_rng(12)
    mask = rng.random(y.shape) < 0.7
    mask[:, :3] = True
    batched = mb.pool(y, v, method=method, mask=mask)
    for i in range(len(y)):
        assert_same(batched, i, mask[i], mb.pool(y[i][mask[i]], v[i][mask[i]], method=method))


def test_large_batch_matches_one_by_one_for_reml() -> None:
    y, v = simulated(300, 20, 0.05, seed=1)
    batched = mb.pool(y, v, method="REML")
    single = np.array([mb.pool(y[i], v[i], method="REML").tau2 for i in range(len(y))])
    np.testing.assert_allclose(batched.tau2, single, rtol=RTOL, atol=0)


class HalvingSpy:
    """Wraps tau2._halve_into and records, per call, the rows whose step it shortened."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.shortened: list[np.ndarray] = []
        original = tau2_module._halve_into

        def spy(tau2, adj, low, high):
            result = original(tau2, adj, low, high)
            self.shortened.append(result != adj)
            return result

        monkeypatch.setattr(tau2_module, "_halve_into", spy)

    @property
    def halvings(self) -> int:
        return int(sum(np.count_nonzero(s) for s in self.shortened))


def undamped_scoring(y: np.ndarray, v: np.ndarray, iterations: int) -> tuple[float, float]:
    """metafor's REML loop (halving only steps below 0): the last tau² and the last step."""
    problem = Problem.intercept_only(y, v)
    tau2 = tau2_module.hedges(problem, Control()).tau2
    adj = np.zeros(1)
    for _ in range(iterations):
        adj = tau2_module._reml_step(problem, tau2)
        while tau2 + adj < 0:
            adj = adj / 2
        tau2 = tau2 + adj
    return float(tau2[0]), float(adj[0])


@pytest.mark.parametrize("control", [Control(accelerate=False), Control.metafor()], ids=["exact", "metafor"])
def test_step_halving_stops_the_oscillation(control: Control, monkeypatch: pytest.MonkeyPatch) -> None:
    tau2, last_step = undamped_scoring(OSCILLATING_Y, OSCILLATING_V, 100)
    assert abs(last_step) > 1e-3  # plain scoring is still jumping about after 100 steps
    spy = HalvingSpy(monkeypatch)
    fit = estimate_tau2(Problem.intercept_only(OSCILLATING_Y, OSCILLATING_V), "REML", control)
    assert spy.halvings >= 3 and fit.converged.all()
    root = mb.pool(OSCILLATING_Y, OSCILLATING_V, method="REML").tau2
    assert fit.tau2[0] == pytest.approx(root, rel=1e-10 if control.threshold < 1e-8 else 1e-2)
    weighted = WeightedFit.fit(Problem.intercept_only(OSCILLATING_Y, OSCILLATING_V),
                               np.atleast_2d(1 / (OSCILLATING_V + root)))
    assert weighted.ypp_y()[0] == pytest.approx(weighted.trace_p()[0], rel=1e-10)  # the REML score is 0


@pytest.mark.parametrize("method", ["ML", "REML", "EB"])
@pytest.mark.parametrize("control", [Control(), Control(accelerate=False), Control.metafor()],
                         ids=["default", "exact", "metafor"])
def test_halved_problems_equal_one_at_a_time(method: str, control: Control, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = mixed_problems()
    y, v, mask = padded(rows)
    spy = HalvingSpy(monkeypatch)
    batched = estimate_tau2(Problem.intercept_only(y, v, mask), method, control, strict=False)
    if control == Control(accelerate=False) and method == "REML":
        assert spy.halvings > 0
    # Without acceleration a boundary root is approached by halving towards 0 and left at ~1e-17, where the last
    # bits differ with summation order (the batch pads rows with absent studies): compared with a 1e-15 floor.
    floor = 0.0 if control.accelerate else 1e-15
    for i, (yi, vi) in enumerate(rows):
        single = estimate_tau2(Problem.intercept_only(yi, vi), method, control, strict=False)
        np.testing.assert_allclose(batched.tau2[i], single.tau2[0], rtol=RTOL, atol=floor)
        assert (batched.iterations[i], batched.converged[i]) == (single.iterations[0], single.converged[0])


def test_steps_below_zero_are_halved_as_metafor_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """metafor's rule: a step to tau² < 0 is halved until tau² stays >= 0 (here from Hedges' start at 0)."""
    problem = Problem.intercept_only(BELOW_ZERO_Y, BELOW_ZERO_V)
    calls: list[tuple[float, float, float]] = []
    original = tau2_module._halve_into

    def spy(tau2, adj, low, high):
        result = original(tau2, adj, low, high)
        calls.append((float(tau2[0]), float(adj[0]), float(result[0])))
        return result

    monkeypatch.setattr(tau2_module, "_halve_into", spy)
    fit = estimate_tau2(problem, "REML", Control.metafor())
    below = [(t, a, r) for t, a, r in calls if t + a < 0]
    assert below, "no step went below zero"
    for t, a, r in below:
        assert t + r >= 0 and t + 2 * r < 0 and r / a == 2.0 ** np.round(np.log2(r / a))
    assert fit.converged.all()


def test_halving_from_the_boundary_is_immediate() -> None:
    """A negative step from tau² = 0 halves to ±0 in one pass, as the ~1075 halvings of the plain loop would; a
    step onto an evaluated end of the bracket is halved once more, and a bracket without inside stops at 0."""
    zero, step = np.zeros(3), np.array([-0.3, -1e-300, 2.0])
    result = tau2_module._halve_into(zero, step, np.zeros(3), np.full(3, 1.0))
    assert result[0] == 0 and result[1] == 0 and result[2] == 0.5
    top = np.array([1.0])
    stuck = tau2_module._halve_into(top, np.array([-1e-3]), np.nextafter(top, 0), top)
    assert stuck[0] == 0


def test_intercept_fast_path_equals_the_qr_path() -> None:
    rows = mixed_problems()
    y, v, mask = padded(rows)
    fast = Problem.intercept_only(y, v, mask)
    general = Problem(fast.y, fast.v, np.ones((*y.shape, 1)), fast.mask, intercept=False)
    assert fast.intercept and not general.intercept
    for tau2 in (0.0, 0.05, 3.0):
        w = 1 / (fast.v + tau2)
        a, b = WeightedFit.fit(fast, w), WeightedFit.fit(general, w)
        for name in ("rss", "ypp_y", "trace_p", "trace_pp", "log_det_xwx"):
            np.testing.assert_allclose(getattr(a, name)(), getattr(b, name)(), rtol=1e-12, atol=1e-12, err_msg=name)
        np.testing.assert_allclose(a.beta, b.beta, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(a.xwx_inv, b.xwx_inv, rtol=1e-12)
    for method in mb.METHODS:
        np.testing.assert_allclose(estimate_tau2(fast, method).tau2, estimate_tau2(general, method).tau2,
                                   rtol=1e-10, atol=1e-15, err_msg=method)


def test_problem_detects_an_intercept_only_design() -> None:
    y, v = simulated(2, 5, 0.1, seed=2)
    assert Problem(y, v, np.ones((2, 5, 1)), np.ones((2, 5), dtype=bool)).intercept
    assert not Problem(y, v, np.full((2, 5, 1), 2.0), np.ones((2, 5), dtype=bool)).intercept


def test_metaregression_batch_equals_one_at_a_time() -> None:
    y, v = simulated(5, 14, 0.04, seed=21)
    rng = np.random.default_rng(22)
    X = np.concatenate([np.ones((5, 14, 1)), rng.normal(size=(5, 14, 2))], axis=-1)
    batched = fit_mixed_model(Problem(y, v, X, np.ones((5, 14), dtype=bool)), "REML", "knha", 95, Control())
    for i in range(5):
        single = fit_mixed_model(Problem(y[i:i + 1], v[i:i + 1], X[i:i + 1], np.ones((1, 14), dtype=bool)),
                                 "REML", "knha", 95, Control())
        for name in ("coef", "se", "pvalue", "qm", "tau2"):
            np.testing.assert_allclose(getattr(batched, name)[i], getattr(single, name)[0], rtol=RTOL, err_msg=name)


def test_chunked_permutation_test_equals_one_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    y, v = simulated(1, 20, 0.05, seed=31)
    x = np.random.default_rng(32).normal(size=20)
    fit = mb.metareg(y[0] + 0.1 * x, v[0], x)
    whole = fit.permutation_test(n=200, seed=4)
    monkeypatch.setattr("metabac.moderators.chunk_rows", lambda k, p: 7)
    chunked = fit.permutation_test(n=200, seed=4)
    np.testing.assert_array_equal(chunked.pvalue, whole.pvalue)
    assert chunked.qm_pvalue == whole.qm_pvalue


def test_chunk_rows_respects_the_budget() -> None:
    assert wls_module.chunk_rows(20, 2) * 8 * 20 * (7 + 5 * 2) <= wls_module.CHUNK_BYTES
    assert wls_module.chunk_rows(10**9, 3) == 1


def test_paule_mandel_newton_on_the_batch_equals_brent_per_problem() -> None:
    rows = mixed_problems()
    y, v, mask = padded(rows)
    problem = Problem.intercept_only(y, v, mask)
    newton = estimate_tau2(problem, "PM")
    brent = estimate_tau2(problem, "PM", Control(stopping="absolute", root_finder="brent", xtol=1e-300,
                                                 threshold=1e-300))
    np.testing.assert_allclose(newton.tau2, brent.tau2, rtol=1e-10, atol=1e-15)
    assert newton.iterations.max() <= 8


def test_flat_q_gives_tau2_zero_and_an_infinite_step_stops_at_the_edge() -> None:
    fit = mb.pool([0.2, 0.2, 0.2], [1.0, 2.0, 3.0], method="PM")
    assert fit.tau2 == 0 and fit.confint().tau2.ci_high == 0
    step = tau2_module._halve_into(np.array([0.5]), np.array([-np.inf]), np.zeros(1), np.full(1, np.inf))
    assert step[0] == -0.5


@pytest.mark.parametrize("method", ["ML", "REML", "EB", "PM"])
def test_rounding_noise_at_the_root_does_not_stall_convergence(method: str) -> None:
    """Variances 9 orders apart: near the root the step is rounding noise of ±2e-12 (above the 1e-13 relative
    threshold) whose sign flips; the bracket closes and ends the iteration."""
    y, v = np.array([-0.47660983, -190.68294598]), np.array([2.01370195e-05, 3.61466006e04])
    fit = estimate_tau2(Problem.intercept_only(y, v), method)
    assert fit.converged.all() and fit.iterations[0] < 100
    if method == "PM":
        brent = estimate_tau2(Problem.intercept_only(y, v), "PM",
                              Control(stopping="absolute", root_finder="brent", xtol=1e-300, tau2_max=1e6))
        assert fit.tau2[0] == pytest.approx(brent.tau2[0], rel=1e-12)


@pytest.mark.parametrize("method", mb.METHODS)
@pytest.mark.parametrize("control", [Control(), Control(accelerate=False), Control.metafor()],
                         ids=["default", "exact", "metafor"])
def test_single_analysis_path_equals_a_batch_of_one(method: str, control: Control) -> None:
    """``pool`` of one analysis runs metabac.single (scalar arithmetic), a batch of one the batched engine: the same
    tau², iterations and statistics, under every control (halving, metafor's stopping rules, Brent for PM)."""
    floor = 0.0 if control.accelerate else 1e-15  # see test_halved_problems_equal_one_at_a_time
    for yi, vi in mixed_problems():
        one = mb.pool(yi, vi, method=method, control=control)
        batch = mb.pool(yi[None], vi[None], method=method, control=control)
        np.testing.assert_allclose(batch.tau2[0], one.tau2, rtol=RTOL, atol=floor)
        assert batch.iterations[0] == one.iterations
        for name in FIELDS:
            np.testing.assert_allclose(np.asarray(getattr(batch, name))[0], getattr(one, name), rtol=RTOL,
                                       atol=1e-14 + 100 * floor, err_msg=name)  # I² is in percent


def test_single_step_halving_equals_the_batched_one() -> None:
    """single.halve_into decides as tau2._halve_into on random brackets, steps across them, zero, infinite and
    overflowing steps, and brackets with no inside."""
    rng = np.random.default_rng(7)
    low = np.concatenate([np.zeros(300), rng.uniform(0, 1, 300), [0.0, 0.5, 1.0, 0.0, 1e-300]])
    high = low + np.concatenate([rng.uniform(0, 2, 600), [np.inf, 0.5, np.nextafter(1.0, 2) - 1.0, 1.0, 1e300]])
    tau2 = low + rng.uniform(0, 1, low.size) * np.where(np.isinf(high), 1.0, high - low)
    adj = rng.normal(0, 1, low.size) * 10.0 ** rng.integers(-20, 20, low.size)
    adj[-5:] = [-np.inf, 0.0, -1e-3, 1e308, -1e308]
    tau2[-5:] = [0.5, 0.5, 1.0, 0.0, 1e-300]
    batched = tau2_module._halve_into(tau2, adj, low, high)
    for i in range(low.size):
        assert tau2_module.halve_into(tau2[i], adj[i], low[i], high[i]) == batched[i], i


@pytest.mark.parametrize("batched", [False, True], ids=["one analysis", "batch of one"])
def test_plain_pooling_memory_is_linear_in_k(batched: bool) -> None:
    """REML on 200,000 studies: the peak allocation is a few dozen arrays of k numbers (a k x k matrix would be
    320 GB). tracemalloc sees numpy's allocations."""
    import tracemalloc

    k = 200_000
    y, v = simulated(1, k, 0.05, seed=21)
    args = (y, v) if batched else (y[0], v[0])
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        fit = mb.pool(*args, method="REML")
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert np.all(np.asarray(fit.tau2) > 0)
    assert peak < 30 * 8 * k, f"peak {peak / 8 / k:.1f} arrays of k numbers"


@pytest.mark.parametrize("method", mb.METHODS)
def test_single_analysis_numbers_have_the_batched_types(method: str) -> None:
    """Floats are numpy float64 and counts Python ints, whichever path fitted them (k = 1 included)."""
    for yi, vi in [(HOMOGENEOUS_Y, HOMOGENEOUS_V), (BELOW_ZERO_Y, BELOW_ZERO_V), (np.array([0.4]), np.array([0.09]))]:
        fit = mb.pool(yi, vi, method=method)
        assert all(type(getattr(fit, name)) is np.float64 for name in FIELDS)
        assert all(type(getattr(fit, name)) is int for name in ("k", "q_df", "iterations"))


@pytest.mark.parametrize("method", ["HE", "REML", "PM"])
def test_an_estimator_without_a_scalar_form_runs_one_analysis_as_a_batch_of_one(
        method: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The registry's fallback: an entry with only its batched form gives a single analysis the same numbers."""
    rows = mixed_problems()
    scalar = [mb.pool(yi, vi, method=method) for yi, vi in rows]
    entry = tau2_module.TAU2_ESTIMATORS[method]
    monkeypatch.setitem(tau2_module.TAU2_ESTIMATORS, method, tau2_module.Estimator(entry.batch))
    for (yi, vi), want in zip(rows, scalar):
        got = mb.pool(yi, vi, method=method)
        assert isinstance(got, mb.PoolResult) and got.iterations == want.iterations
        for name in FIELDS:
            np.testing.assert_allclose(getattr(got, name), getattr(want, name), rtol=RTOL, atol=1e-15, err_msg=name)


def test_one_analysis_gives_a_pool_result_and_a_batch_a_pool_batch() -> None:
    y, v = simulated(3, 6, 0.1, seed=8)
    batch = mb.pool(y, v)
    assert isinstance(mb.pool(y[0], v[0]), mb.PoolResult) and isinstance(batch, mb.PoolBatch)
    frame = batch.to_frame()
    assert list(frame.index) == [0, 1, 2] and frame["tau2"].tolist() == batch.tau2.tolist()
