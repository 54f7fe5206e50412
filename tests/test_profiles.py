"""Convention profiles: each deviation from metafor is one switch, tested on a hand-worked example and, where one
exists, on a published RevMan 5 or Stata output with its inputs."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy import stats
from support.bcg import CNEG, CPOS, TNEG, TPOS

import metabac as mb
from metabac.effects import effect_sizes
from metabac.profiles import PROFILES, analyse, get_profile

DUAN = dict(ai=[30, 6], n1i=[42, 88], ci=[12, 9], n2i=[42, 92])


def test_profiles_are_frozen_option_sets_and_metafor_is_the_default():
    assert mb.PROFILE_NAMES == ("metafor", "revman5", "meta", "cochrane")
    with pytest.raises(dataclasses.FrozenInstanceError):
        PROFILES["metafor"].method = "DL"  # type: ignore[misc]
    default = analyse("RR", method="DL", **DUAN)
    assert default.profile.name == "metafor"
    plain = mb.pool(*effect_sizes("RR", **DUAN)[["yi", "vi"]].to_numpy().T, method="DL")
    assert default.result.estimate == pytest.approx(plain.estimate, rel=1e-14)
    assert default.result.i2 == pytest.approx(plain.i2, rel=1e-14)


def test_every_output_names_its_profile():
    fit = analyse("RR", profile="revman5", **DUAN)
    assert fit.summary().startswith("convention profile: revman5")
    assert fit.to_dict()["profile"] == "revman5"
    with pytest.raises(mb.InputError, match="profile"):
        get_profile("stata")


def test_smd_approximate_correction_and_revman_variance_by_hand():
    # one study: means 10 vs 8, SDs 2 and 3, n 10 and 12; N = 22
    arms = dict(m1i=[10.0], sd1i=[2.0], n1i=[10], m2i=[8.0], sd2i=[3.0], n2i=[12])
    s = math.sqrt((9 * 4 + 11 * 9) / 20)
    g = (1 - 3 / (4 * 22 - 9)) * 2 / s
    v = 22 / (10 * 12) + g**2 / (2 * (22 - 3.94))
    es = effect_sizes("SMD", smd_correction="approximate", smd_vtype="RM5", **arms)
    assert es.yi[0] == pytest.approx(g, rel=1e-14) and es.vi[0] == pytest.approx(v, rel=1e-14)
    fit = analyse("SMD", model="fixed", profile="revman5", **arms).result
    assert fit.estimate == pytest.approx(g, rel=1e-14) and fit.se == pytest.approx(math.sqrt(v), rel=1e-14)


def test_smd_unbiased_variance_by_hand():
    arms = dict(m1i=[10.0], sd1i=[2.0], n1i=[10], m2i=[8.0], sd2i=[3.0], n2i=[12])
    m = 20
    j = math.exp(math.lgamma(m / 2) - 0.5 * math.log(m / 2) - math.lgamma((m - 1) / 2))
    g = j * 2 / math.sqrt((9 * 4 + 11 * 9) / 20)
    v = 1 / 10 + 1 / 12 + (1 - (m - 2) / (m * j**2)) * g**2
    fit = analyse("SMD", model="fixed", profile="meta", **arms).result
    assert fit.estimate == pytest.approx(g, rel=1e-14) and fit.se**2 == pytest.approx(v, rel=1e-13)


def test_defaults_of_effect_sizes_unchanged():
    arms = dict(m1i=[10.0], sd1i=[2.0], n1i=[10], m2i=[8.0], sd2i=[3.0], n2i=[12])
    es = effect_sizes("SMD", **arms)
    assert es.vi[0] == pytest.approx(1 / 10 + 1 / 12 + es.yi[0] ** 2 / 44, rel=1e-14)


def test_revman_mh_adds_half_inside_the_sums_and_drops_double_zero():
    # study 1 has a zero cell, study 3 is double zero
    arms = dict(ai=[0, 10, 0], n1i=[20, 50, 15], ci=[3, 15, 0], n2i=[20, 50, 15])
    fit = mb.mantel_haenszel("OR", add_inside=True, **arms)
    a, b, c, d = np.array([0.5, 10]), np.array([20.5, 40]), np.array([3.5, 15]), np.array([17.5, 35])
    n = a + b + c + d
    assert fit.estimate == pytest.approx(math.log(np.sum(a * d / n) / np.sum(b * c / n)), rel=1e-14)
    assert fit.weights[2] == 0
    metafor = mb.mantel_haenszel("OR", **arms)  # observed cells, as rma.mh
    assert metafor.estimate == pytest.approx(math.log((10 * 35 / 100) / (20 * 3 / 40 + 40 * 15 / 100)), rel=1e-14)


def test_revman_random_effects_from_the_mh_based_q_by_hand():
    fit = analyse("RR", pooling="MH", profile="revman5", **DUAN).result
    mh = mb.mantel_haenszel("RR", **DUAN)
    es = effect_sizes("RR", **DUAN)
    w = 1 / es.vi.to_numpy()
    q = np.sum(w * (es.yi.to_numpy() - mh.estimate) ** 2)
    tau2 = max(0.0, (q - 1) / (w.sum() - (w**2).sum() / w.sum()))
    ws = 1 / (es.vi.to_numpy() + tau2)
    estimate = np.sum(ws * es.yi.to_numpy()) / ws.sum()
    assert fit.q == pytest.approx(q, rel=1e-12) and fit.tau2 == pytest.approx(tau2, rel=1e-12)
    assert fit.estimate == pytest.approx(estimate, rel=1e-12)
    assert fit.i2 == pytest.approx(100 * (q - 1) / q, rel=1e-12)  # Q-based I²
    assert math.isnan(fit.pi_low) and math.isnan(fit.pi_high)  # RevMan 5 has no prediction interval
    # shared/evidence/baclofen_pooled.md: "A RevMan-style variant ... gives 1.42 (0.40-5.01)"
    assert [round(float(np.exp(x)), 2) for x in (fit.estimate, fit.ci_low, fit.ci_high)] == [1.42, 0.40, 5.01]


def test_meta_prediction_interval_on_t_with_k_minus_1_df():
    arms = dict(ai=[30, 6, 14], n1i=[42, 88, 20], ci=[12, 9, 4], n2i=[42, 92, 19])
    fit = analyse("RR", profile="meta", **arms).result
    assert fit.method == "REML"
    half = stats.t.ppf(0.975, 2) * math.sqrt(fit.se**2 + fit.tau2)
    assert fit.pi_low == pytest.approx(fit.estimate - half, rel=1e-12)
    assert fit.i2 == pytest.approx(max(0, 100 * (fit.q - 2) / fit.q), rel=1e-12)


def test_revman5_output_fleiss1993():
    """RevMan 5.0.23 results stored in Fleiss1993.rm5 (R package meta, inst/extdata), DICH_OUTCOME CMP-001.01."""
    arms = dict(ai=[49, 44, 102, 32, 85, 246, 1570], n1i=[615, 758, 832, 317, 810, 2267, 8587],
                ci=[67, 64, 126, 38, 52, 219, 1720], n2i=[624, 771, 850, 309, 406, 2257, 8600])
    fit = analyse("OR", model="fixed", pooling="MH", profile="revman5", **arms).result
    assert math.exp(fit.estimate) == pytest.approx(0.8968655609130709, rel=1e-12)  # EFFECT_SIZE
    assert math.exp(fit.ci_low) == pytest.approx(0.8405144008917793, rel=1e-12)  # CI_START
    assert math.exp(fit.ci_high) == pytest.approx(0.9569947088336491, rel=1e-12)  # CI_END
    assert fit.q == pytest.approx(9.946055983220074, rel=1e-12)  # CHI2
    assert fit.i2 == pytest.approx(39.67458045558399, rel=1e-12)  # I2
    assert abs(fit.statistic) == pytest.approx(3.287633061337987, rel=1e-12)  # Z
    assert fit.weights[-1] == pytest.approx(72.87984024392564, rel=1e-12)  # ISIS-2 WEIGHT


def test_greenland_robins_rd_variance_matches_stata_metan():
    """metafor's test_misc_metan_vs_rma.mh_with_dat.bcg.r: metan prints z = 11.56 (Greenland & Robins variance),
    rma.mh gives 11.4708 (Sato, Greenland & Robins)."""
    bcg = dict(ai=TPOS, bi=TNEG, ci=CPOS, di=CNEG)
    assert round(abs(analyse("RD", model="fixed", pooling="MH", profile="revman5", **bcg).result.statistic), 2) == 11.56
    assert round(abs(analyse("RD", model="fixed", pooling="MH", **bcg).result.statistic), 4) == 11.4708


def test_revman_double_zero_studies_not_estimable_in_iv():
    arms = dict(ai=[0, 10, 4], n1i=[20, 50, 30], ci=[0, 15, 6], n2i=[20, 50, 30])
    assert analyse("RR", profile="revman5", **arms).result.k == 2
    assert analyse("RR", profile="metafor", **arms).result.k == 3
