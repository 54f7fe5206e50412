"""simulate(): coverage studies of the pooling methods, checked against results that hold exactly.

With equal sampling variances every estimator gives equal weights, so the Hartung-Knapp statistic is the one-sample
t statistic of the y_i, which are i.i.d. N(μ, v + τ²): its interval holds μ with probability exactly the nominal
level, whatever τ² is. Under τ² = 0 the equal-effects z interval is exact too. Coverage is a binomial proportion, so
each is tested within 4 Monte Carlo standard errors.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import metabac as mb
import metabac.simulation as simulation_module

N = 20_000


def within_monte_carlo_error(result: mb.SimulationResult, method: str, test: str, level: float = 0.95) -> bool:
    coverage = result.table.loc[(method, test), "coverage"]
    return abs(coverage - level) <= 4 * np.sqrt(level * (1 - level) / result.n)


@pytest.mark.parametrize("tau2", [0.0, 0.1, 2.0])
def test_hartung_knapp_is_exact_with_equal_variances(tau2: float) -> None:
    result = mb.simulate([0.05] * 3, tau2=tau2, mu=0.3, n=N, methods=["EE", "DL", "REML"], tests=["knha"], seed=3)
    for method in ("EE", "DL", "REML"):
        assert within_monte_carlo_error(result, method, "knha"), result.table
    assert abs(result.table["bias"]).max() < 4 * np.sqrt((0.05 + tau2) / 3 / N)  # the mean of the y_i is unbiased


def test_equal_effects_z_interval_is_exact_without_heterogeneity() -> None:
    result = mb.simulate([0.02, 0.05, 0.2, 0.1], tau2=0.0, n=N, methods=["EE"], tests=["z"], seed=4)
    assert within_monte_carlo_error(result, "EE", "z"), result.table
    assert result.table.loc[("EE", "z"), "share_tau2_zero"] == 1.0


def test_wald_intervals_undercover_with_three_heterogeneous_trials() -> None:
    """IntHout et al. (2014): with few trials and heterogeneity the DL z interval is too narrow, HKSJ is not."""
    result = mb.simulate([0.05] * 3, tau2=0.1, n=N, methods=["DL"], seed=5)
    assert result.table.loc[("DL", "z"), "coverage"] < 0.92
    assert result.table.loc[("DL", "knha"), "mean_width"] > result.table.loc[("DL", "z"), "mean_width"]


def test_table_equals_one_pool_call_per_replicate(monkeypatch: pytest.MonkeyPatch) -> None:
    """The batched replicates and the summary formulas, against a loop of single analyses over the same draws."""
    monkeypatch.setattr(simulation_module, "chunk_rows", lambda k: 150)  # three chunks of 150 and one of 50
    v, tau2, mu, n = np.array([0.02, 0.05, 0.2, 0.1]), 0.08, 0.2, 500
    result = mb.simulate(v, tau2=tau2, mu=mu, n=n, methods=["REML", "PM"], tests=["z", "knha"], seed=7)
    rows = []
    for chunk_seed, size in zip(np.random.SeedSequence(7).spawn(4), [150, 150, 150, 50]):
        rng = np.random.default_rng(chunk_seed)
        theta = mu + np.sqrt(tau2) * rng.standard_normal((size, 4))
        y = theta + np.sqrt(v) * rng.standard_normal((size, 4))
        rows += zip(y, mu + np.sqrt(tau2) * rng.standard_normal(size))
    for method in ("REML", "PM"):
        for test in ("z", "knha"):
            fits = [(mb.pool(y, v, method=method, test=test), new) for y, new in rows]
            est = np.array([f.estimate for f, _ in fits])
            expected = {
                "coverage": np.mean([f.ci_low <= mu <= f.ci_high for f, _ in fits]),
                "mean_width": np.mean([f.ci_high - f.ci_low for f, _ in fits]),
                "bias": np.mean(est - mu),
                "rmse": np.sqrt(np.mean((est - mu) ** 2)),
                "mean_tau2": np.mean([f.tau2 for f, _ in fits]),
                "share_tau2_zero": np.mean([f.tau2 == 0 for f, _ in fits]),
                "pi_coverage": np.mean([f.pi_low <= new <= f.pi_high for f, new in fits]),
            }
            for column, value in expected.items():
                assert result.table.loc[(method, test), column] == pytest.approx(value, rel=1e-9, abs=1e-12), column


def test_same_seed_same_result_and_different_seed_different_draws() -> None:
    first = mb.simulate([0.05, 0.1, 0.2], tau2=0.1, n=2000, seed=11)
    again = mb.simulate([0.05, 0.1, 0.2], tau2=0.1, n=2000, seed=11)
    other = mb.simulate([0.05, 0.1, 0.2], tau2=0.1, n=2000, seed=12)
    pd.testing.assert_frame_equal(first.table, again.table)
    assert not first.table.equals(other.table)
    assert first.to_dict()["table"]["method"][:2] == ["DL", "DL"] and "coverage" in first.summary()


def test_simulation_on_a_dask_cluster_equals_the_local_run(monkeypatch: pytest.MonkeyPatch) -> None:
    distributed = pytest.importorskip("distributed", reason="the dask extra is not installed")
    monkeypatch.setattr(simulation_module, "chunk_rows", lambda k: 400)
    local = mb.simulate([0.05, 0.1, 0.2], tau2=0.1, n=1000, seed=13)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        remote = mb.simulate([0.05, 0.1, 0.2], tau2=0.1, n=1000, seed=13, client=client)
    pd.testing.assert_frame_equal(local.table, remote.table)
