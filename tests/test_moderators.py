"""Subgroups and meta-regression beyond the metafor grid: cross-checks, labels, permutation tests."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import load_reference
from statsmodels.regression.linear_model import WLS
from statsmodels.tools.tools import add_constant

import metabac as mb

BCG = next(c for c in load_reference() if c["dataset"] == "bcg" and c["measure"] == "RR" and c["kind"] == "metareg"
           and c["options"]["method"] == "REML")
Y, V, LATITUDE = np.array(BCG["yi"]), np.array(BCG["vi"]), np.array(BCG["mods"], dtype=float)


def test_metareg_equals_weighted_least_squares_at_its_tau2() -> None:
    fit = mb.metareg(Y, V, LATITUDE)
    w = 1 / (V + fit.tau2)
    wls = WLS(Y, add_constant(LATITUDE), weights=w).fit(cov_type="fixed scale")
    np.testing.assert_allclose(fit.coef, wls.params, rtol=1e-10)
    np.testing.assert_allclose(fit.se, wls.bse, rtol=1e-10)


def test_dataframe_columns_name_the_coefficients() -> None:
    import pandas as pd

    fit = mb.metareg(Y, V, pd.DataFrame({"ablat": LATITUDE}))
    assert fit.names == ("intercept", "ablat")
    assert list(fit.to_frame().index) == ["intercept", "ablat"]


def test_knapp_hartung_uses_t_and_f() -> None:
    fit = mb.metareg(Y, V, LATITUDE, test="knha")
    assert fit.qm_df == (1, len(Y) - 2)
    assert fit.qm == pytest.approx(fit.statistic[1] ** 2, rel=1e-10)  # one slope: F = t²


def test_collinear_moderators_are_rejected() -> None:
    with pytest.raises(mb.InputError, match="collinear"):
        mb.metareg(Y, V, np.column_stack([LATITUDE, 2 * LATITUDE]))


def test_permutation_test_is_reproducible_and_counts_the_observed_order() -> None:
    fit = mb.metareg(Y, V, LATITUDE)
    first = fit.permutation_test(n=200, seed=7)
    again = fit.permutation_test(n=200, seed=7)
    np.testing.assert_array_equal(first.pvalue, again.pvalue)
    assert first.qm_pvalue == again.qm_pvalue >= 1 / 200
    # The latitude effect is strong (z = -4.04); a permutation p-value must still be small.
    assert first.pvalue[1] < 0.05


def test_subgroups_flag_single_studies_and_report_missing_labels() -> None:
    groups = ["a", "a", "a", "b", None, "b", "b", "c", "a", "b", "", "a", "b"]
    fit = mb.subgroups(Y, V, groups)
    assert list(fit.table.index) == ["a", "b", "c"]
    assert fit.table.loc["c", "single_study"] and not fit.table.loc["a", "single_study"]
    assert fit.missing == (4, 10)
    assert fit.overall.k == len(Y)
    assert "without a group label" in fit.summary()


def test_subgroup_between_q_is_the_fixed_effect_q_of_the_subgroup_estimates() -> None:
    groups = np.where(LATITUDE > 30, "far", "near")
    fit = mb.subgroups(Y, V, groups, method="DL")
    est, se = fit.table["estimate"].to_numpy(), fit.table["se"].to_numpy()
    w = 1 / se**2
    q = np.sum(w * (est - np.sum(w * est) / w.sum()) ** 2)
    assert fit.q_between == pytest.approx(q, rel=1e-12)


def test_one_group_has_no_test() -> None:
    fit = mb.subgroups(Y, V, ["all"] * len(Y))
    assert np.isnan(fit.q_between) and fit.qm_reason == "only one subgroup"


def test_a_one_study_subgroup_under_knha_shows_its_own_interval_without_a_warning(recwarn):
    yi, vi = [0.1, 0.5, 0.3, 0.9], [0.04, 0.05, 0.03, 0.06]
    result = mb.subgroups(yi, vi, ["a", "a", "a", "b"], test="knha")
    assert not [w for w in recwarn if "Setting test" in str(w.message)]
    single = mb.pool([0.9], [0.06])
    assert result.table.loc["b", "ci_low"] == pytest.approx(float(single.ci_low), rel=1e-12)
    assert bool(result.table.loc["b", "single_study"]) and result.fits["a"].test == "knha"


def test_missing_group_values_of_every_kind_are_left_out_not_a_level() -> None:
    """pd.NA became a subgroup named "<NA>"."""
    import pandas as pd

    y, v = [0.1, 0.3, 0.2, 0.5, 0.4, 0.6], [0.04, 0.05, 0.03, 0.06, 0.05, 0.04]
    groups = pd.array(["a", "b", pd.NA, "a", "b", "a"], dtype="string")
    for labels in (groups, ["a", "b", pd.NA, "a", "b", "a"], ["a", "b", pd.NaT, "a", "b", "a"],
                   pd.Series(["a", "b", None, "a", "b", "a"], dtype="category")):
        fit = mb.subgroups(y, v, labels)
        assert list(fit.table.index) == ["a", "b"] and fit.missing == (2,)
