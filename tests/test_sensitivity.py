"""Sensitivity analyses: each batched refit equals the model fitted on its own subset, plus GOSH and Dask."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import RTOL_ITERATIVE
from support.bcg import BCG_VI, BCG_YI, YEARS

import metabac as mb


@pytest.mark.parametrize("method", ["EE", "DL", "REML", "PM"])
@pytest.mark.parametrize("test", ["z", "knha"])
def test_leave_one_out_equals_separate_fits(method: str, test: str) -> None:
    table = mb.leave_one_out(BCG_YI, BCG_VI, method=method, test=test)
    for i, (_, row) in enumerate(table.iterrows()):
        fit = mb.pool(np.delete(BCG_YI, i), np.delete(BCG_VI, i), method=method, test=test)
        for name in ("estimate", "se", "ci_low", "ci_high", "pvalue", "tau2", "i2", "q"):
            np.testing.assert_allclose(row[name], getattr(fit, name), rtol=RTOL_ITERATIVE, err_msg=name)


def test_cumulative_adds_studies_in_year_order() -> None:
    labels = [f"s{i}" for i in range(len(BCG_YI))]
    table = mb.cumulative(BCG_YI, BCG_VI, order=YEARS, method="DL", labels=labels)
    order = np.argsort(YEARS, kind="stable")
    assert list(table.index) == [labels[i] for i in order]
    assert list(table["k"]) == list(range(1, len(BCG_YI) + 1))
    for j in (0, 4, len(BCG_YI) - 1):
        fit = mb.pool(BCG_YI[order[: j + 1]], BCG_VI[order[: j + 1]], method="DL")
        np.testing.assert_allclose(table.iloc[j][["estimate", "se", "tau2"]].to_numpy(dtype=float),
                                   [fit.estimate, fit.se, fit.tau2], rtol=1e-12)
    # Ties in the order keep the input order (1973 twice: studies 5 and 7).
    assert table.index.get_loc("s4") < table.index.get_loc("s6")


def test_influence_quantities_from_their_definitions() -> None:
    """Cook's distance, DFFITS and cov.r recomputed from explicit refits (Viechtbauer & Cheung 2010)."""
    table = mb.influence(BCG_YI, BCG_VI, method="REML")
    full = mb.pool(BCG_YI, BCG_VI, method="REML")
    assert table["hat"].sum() == pytest.approx(1.0)
    np.testing.assert_allclose(table["weight"], full.weights, rtol=1e-12)
    for i in (0, 7, 12):
        deleted = mb.pool(np.delete(BCG_YI, i), np.delete(BCG_VI, i), method="REML")
        change = full.estimate - deleted.estimate
        assert table["cook_d"].iloc[i] == pytest.approx(change**2 / full.se**2, rel=1e-9)
        assert table["cov_r"].iloc[i] == pytest.approx(deleted.se**2 / full.se**2, rel=1e-9)
        hat = table["hat"].iloc[i]
        assert table["dffits"].iloc[i] == pytest.approx(
            change / np.sqrt(hat * (deleted.tau2 + BCG_VI[i])), rel=1e-9)
        assert table["rstudent"].iloc[i] == pytest.approx(
            (BCG_YI[i] - deleted.estimate) / np.sqrt(BCG_VI[i] + deleted.tau2 + deleted.se**2), rel=1e-9)
    assert table["influential"].dtype == bool


def test_baujat_x_sums_to_cochrans_q_under_equal_effects() -> None:
    table = mb.baujat(BCG_YI, BCG_VI)
    assert table["x"].sum() == pytest.approx(mb.pool(BCG_YI, BCG_VI, method="EE").q, rel=1e-12)
    assert (table["y"] >= 0).all()


def test_gosh_fits_every_subset_in_metafor_order() -> None:
    y, v = BCG_YI[:6], BCG_VI[:6]
    result = mb.gosh(y, v, method="REML")
    assert result.exact and len(result.table) == 2**6 - 1 == len(result.incl)
    assert list(result.table["k"]) == sorted(result.table["k"])
    assert result.incl[:6].tolist() == np.eye(6, dtype=bool).tolist()  # singletons first, study 1 first
    whole = mb.pool(y, v, method="REML")
    last = result.table.iloc[-1]
    assert (last["k"], last["estimate"], last["tau2"]) == pytest.approx((6, whole.estimate, whole.tau2), rel=1e-10)
    for row in (10, 40):
        subset = result.incl[row]
        fit = mb.pool(y[subset], v[subset], method="REML")
        np.testing.assert_allclose(result.table.iloc[row][["estimate", "q", "i2", "tau2"]].to_numpy(dtype=float),
                                   [fit.estimate, fit.q, fit.i2, fit.tau2], rtol=1e-9, atol=1e-12)


def test_gosh_random_subsets_are_reproducible_from_the_seed() -> None:
    first = mb.gosh(BCG_YI, BCG_VI, method="DL", max_subsets=500, seed=3)
    again = mb.gosh(BCG_YI, BCG_VI, method="DL", max_subsets=500, seed=3)
    assert not first.exact and len(first.table) == 500
    assert (first.incl == again.incl).all()
    pd.testing.assert_frame_equal(first.table, again.table)
    assert (first.incl.sum(axis=1) >= 1).all()


def test_gosh_on_a_dask_cluster_equals_the_local_run() -> None:
    distributed = pytest.importorskip("distributed", reason="the dask extra is not installed")
    y, v = BCG_YI[:8], BCG_VI[:8]
    local = mb.gosh(y, v, method="REML")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        remote = mb.gosh(y, v, method="REML", client=client)
    pd.testing.assert_frame_equal(local.table, remote.table)


@pytest.mark.parametrize("call", [
    lambda: mb.leave_one_out([0.1], [0.1]),
    lambda: mb.influence([0.1], [0.1]),
    lambda: mb.baujat([0.1], [0.1]),
    lambda: mb.cumulative([0.1, 0.2], [0.1, 0.1], order=[1]),
    lambda: mb.gosh([0.1, 0.2], [0.1, 0.1], max_subsets=0),
])
def test_sensitivity_bad_input(call) -> None:
    with pytest.raises(mb.InputError):
        call()
