"""Within-trial effect modification: the records' tables, the interactions they give, and the deft pooling.

Reference: tests/reference/metafor_interaction.json, made by tests/reference/make_interaction_reference.R
(metafor's rma on the interactions of four invented trials whose subgroup RRs and CIs are written below).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import metabac as mb
from metabac.cli import cli

ROOT = Path(__file__).resolve().parents[1]
TRIALS = ROOT / "trials"
REFERENCE = json.loads((ROOT / "tests" / "reference" / "metafor_interaction.json").read_text())
Z = 1.959963984540054


@pytest.fixture(scope="module")
def shipped() -> mb.TrialSet:
    return mb.load_trials(TRIALS)


@pytest.fixture(scope="module")
def interactions(shipped) -> pd.DataFrame:
    return mb.within_trial_interactions(shipped)


def record(trial_id: str, modification: str) -> str:
    """A minimal valid two-arm record with the given [[effect_modification]] text appended."""
    return f'''id = "{trial_id}"
title = "An invented trial"
citation = {{ authors = "Doe J, et al.", year = 2020, journal = "Nowhere 1:1" }}
population = "general"

[design]
randomised = true
blinding = "double-blind"
control = "placebo"

[sources.paper]
kind = "primary"
citation = "invented"
url = "https://example.org/{trial_id}"

[arms.baclofen]
role = "experimental"
drug = "baclofen"
compared_with = "placebo"
dose_mg_day = 30
source = "paper"
quote = "q"

[arms.placebo]
role = "control"
drug = "placebo"
source = "paper"
quote = "q"
{modification}'''


def by_sex(rr_w: float, lo_w: float, hi_w: float, rr_m: float, lo_m: float, hi_m: float,
           outcome: str = "abstinence") -> str:
    subgroup = '''
[[effect_modification.subgroups]]
level = "{level}"
label = "{level}"
arm = "baclofen"
effect = {rr}
ci_lower = {lo}
ci_upper = {hi}
source = "paper"
quote = "q"
'''
    return (f'\n[[effect_modification]]\nmodifier = "sex"\noutcome = "{outcome}"\nmeasure = "RR"\n'
            f'direction = "d"\nsource = "paper"\nquote = "q"\n'
            + subgroup.format(level="women", rr=rr_w, lo=lo_w, hi=hi_w)
            + subgroup.format(level="men", rr=rr_m, lo=lo_m, hi=hi_m))


@pytest.fixture
def four_trials(tmp_path: Path) -> Path:
    """The four invented trials of the metafor reference, as trial records."""
    for row in REFERENCE["subgroups"]:
        text = by_sex(row["rr_w"], row["lo_w"], row["hi_w"], row["rr_m"], row["lo_m"], row["hi_m"])
        (tmp_path / f"{row['trial']}.toml").write_text(record(row["trial"], text), encoding="utf-8")
    return tmp_path


# --- the shipped records ---------------------------------------------------------------------------------------------

def test_every_requested_trial_has_its_within_trial_result(interactions):
    found = set(zip(interactions.trial, interactions.modifier))
    assert found == {("leggio2015", "dependence_severity"), ("reynaud2017", "drinking_risk_level"),
                     ("garbutt2021", "sex"), ("morley2018", "sex"), ("addolorato2007", "hepatitis_c")}
    assert interactions.quote.str.len().min() > 20 and interactions.url.str.startswith("http").all()


def test_published_interaction_tests_are_kept_as_printed(interactions):
    leggio = interactions.set_index("trial").loc["leggio2015"]
    assert leggio.interaction_p == 0.001 and leggio.interaction_p_text == "< 0.001"
    assert "higher" in leggio.direction and not leggio.estimable
    assert leggio.reason == "no subgroup results were published"
    garbutt = interactions[interactions.trial == "garbutt2021"].set_index("outcome")
    assert garbutt.loc["percent heavy drinking days (%HDD)", "interaction_p_text"] == "= 0.005"
    assert "F(2,110) = 5.48" in garbutt.loc["percent heavy drinking days (%HDD)", "interaction_test"]


def test_subgroups_at_different_doses_give_no_interaction(interactions):
    """Garbutt 2021 reports women at 30 mg/day and men at 90 mg/day: a difference of those is no interaction."""
    garbutt = interactions[interactions.trial == "garbutt2021"]
    assert len(garbutt) == 2 and not garbutt.estimable.any()
    assert garbutt.reason.str.contains("different comparisons").all()
    assert "women, 30 mg/day vs placebo: SMD 0.61 [0.16, 1.05], p = 0.002" in garbutt.subgroups.iloc[0]


def test_effects_without_interval_are_not_given_a_variance(shipped, interactions):
    groups = mb.subgroup_effects(shipped)
    morley = groups[groups.trial == "morley2018"]
    assert len(morley) == 4 and morley.yi.isna().all() and morley.vi.isna().all()
    assert set(morley.effect) == {0.49, 0.22, 0.27, 0.17}       # recorded as published, no derived interval
    alpadir = interactions.set_index("trial").loc["reynaud2017"]
    assert not alpadir.estimable and "no interval" in alpadir.reason


def test_hepatitis_c_interaction_by_hand(interactions):
    """Addolorato 2007: HCV 10/12 vs 3/12, others 20/30 vs 9/30 (derived); log RR difference, summed variances."""
    row = interactions.set_index("trial").loc["addolorato2007"]
    y = math.log((10 / 12) / (3 / 12)) - math.log((20 / 30) / (9 / 30))
    v = (1 / 10 - 1 / 12 + 1 / 3 - 1 / 12) + (1 / 20 - 1 / 30 + 1 / 9 - 1 / 30)
    assert row.estimable and row.contrast == "HCV minus no HCV"
    assert row.interaction == pytest.approx(y, rel=1e-12) and row.interaction_var == pytest.approx(v, rel=1e-12)
    assert row.ratio == pytest.approx(1.5, rel=1e-12)
    assert row.ratio_ci_lower == pytest.approx(math.exp(y - Z * math.sqrt(v)), rel=1e-12)
    assert row.second_hand                       # the HCV subgroup was read in a blog repost of the abstract


def test_no_modifier_is_poolable_from_the_shipped_records(interactions):
    pooled = mb.pool_interactions(interactions).set_index("modifier")
    assert set(pooled.index) == {"sex", "dependence_severity", "drinking_risk_level", "hepatitis_c"}
    assert not pooled.estimable.any() and pooled.estimate.isna().all()
    assert pooled.loc["hepatitis_c", "reason"].startswith("only 1 trial (addolorato2007)")
    assert pooled.loc["sex", "k"] == 0 and "garbutt2021" in pooled.loc["sex", "reason"]
    assert pooled.attrs["fits"] == {}


# --- the deft pooling against a hand computation and metafor ---------------------------------------------------------

def test_interactions_from_published_intervals_match_the_reference(four_trials):
    rows = mb.within_trial_interactions(four_trials)
    assert rows.estimable.all() and list(rows.contrast.unique()) == ["women minus men"]
    np.testing.assert_allclose(rows.interaction, REFERENCE["yi"], rtol=1e-12)
    np.testing.assert_allclose(rows.interaction_var, REFERENCE["vi"], rtol=1e-12)
    first = REFERENCE["subgroups"][0]
    se = lambda lo, hi: (math.log(hi) - math.log(lo)) / (2 * Z)  # noqa: E731
    assert rows.interaction_var.iloc[0] == pytest.approx(se(first["lo_w"], first["hi_w"]) ** 2
                                                         + se(first["lo_m"], first["hi_m"]) ** 2, rel=1e-12)


def test_pooled_interaction_by_hand(four_trials):
    """Equal-effects and DerSimonian-Laird pooling written out: w = 1/v, Q, tau² = max(0, (Q - (k-1)) / c)."""
    y, v = np.array(REFERENCE["yi"]), np.array(REFERENCE["vi"])
    w = 1 / v
    fixed = np.sum(w * y) / np.sum(w)
    q = np.sum(w * (y - fixed) ** 2)
    tau2 = max(0.0, (q - (len(y) - 1)) / (np.sum(w) - np.sum(w**2) / np.sum(w)))
    w_star = 1 / (v + tau2)
    interactions = mb.within_trial_interactions(four_trials)
    ee = mb.pool_interactions(interactions, method="EE").iloc[0]
    assert ee.estimate == pytest.approx(fixed, rel=1e-12) and ee.se == pytest.approx(np.sum(w) ** -0.5, rel=1e-12)
    dl = mb.pool_interactions(interactions, method="DL").iloc[0]
    assert dl.tau2 == pytest.approx(tau2, rel=1e-12)
    assert dl.estimate == pytest.approx(np.sum(w_star * y) / np.sum(w_star), rel=1e-12)
    assert dl.ratio == pytest.approx(math.exp(dl.estimate), rel=1e-12)


@pytest.mark.parametrize("fit", REFERENCE["fits"], ids=lambda f: f["method"])
def test_pooled_interaction_matches_metafor(four_trials, fit):
    result = mb.pool_interactions(mb.within_trial_interactions(four_trials), method=fit["method"])
    pooled = result.iloc[0]
    assert pooled.estimable and pooled.k == 4 and pooled.trials == "t1, t2, t3, t4"
    for column in ("estimate", "se", "ci_lower", "ci_upper", "pvalue", "tau2", "i2"):
        assert pooled[column] == pytest.approx(fit[column], rel=1e-8, abs=1e-12), column
    assert isinstance(result.attrs["fits"][("sex", "RR")], mb.PoolResult)


def test_one_trial_is_not_estimable_with_a_reason(tmp_path: Path):
    (tmp_path / "t1.toml").write_text(record("t1", by_sex(1.8, 1.1, 2.95, 1.2, 0.9, 1.6)), encoding="utf-8")
    pooled = mb.pool_interactions(mb.within_trial_interactions(tmp_path)).iloc[0]
    assert not pooled.estimable and pooled.k == 1
    assert pooled.reason == "only 1 trial (t1) gives an interaction; pooling needs two or more"


def test_a_trial_with_two_outcomes_is_pooled_only_once_an_outcome_is_chosen(tmp_path: Path):
    both = by_sex(1.8, 1.1, 2.95, 1.2, 0.9, 1.6) + by_sex(1.5, 1.0, 2.25, 1.1, 0.8, 1.5, outcome="relapse")
    (tmp_path / "t1.toml").write_text(record("t1", both), encoding="utf-8")
    (tmp_path / "t2.toml").write_text(record("t2", by_sex(1.4, 0.8, 2.45, 1.35, 1.05, 1.74)), encoding="utf-8")
    rows = mb.within_trial_interactions(tmp_path)
    assert len(rows) == 3
    unchosen = mb.pool_interactions(rows).iloc[0]
    assert not unchosen.estimable and "several interactions" in unchosen.reason
    chosen = mb.pool_interactions(rows, outcome="abstinence").iloc[0]
    assert chosen.estimable and chosen.k == 2


# --- the schema of [[effect_modification]] ---------------------------------------------------------------------------

GOOD = by_sex(1.8, 1.1, 2.95, 1.2, 0.9, 1.6)


@pytest.mark.parametrize("name, old, new, message", [
    ("level of another modifier", 'level = "women"', 'level = "HCV"', "level: 'HCV' is not a level of sex"),
    ("unknown modifier", 'modifier = "sex"', 'modifier = "age"', "modifier: 'age' is not one of"),
    ("effect outside its interval", "effect = 1.8", "effect = 3.5", "effect 3.5 lies outside its interval"),
    ("half an interval", "ci_upper = 2.95\n", "", "give both ci_lower and ci_upper"),
    ("arm that is not baclofen", 'arm = "baclofen"', 'arm = "placebo"', "'placebo' is not a baclofen arm"),
    ("numbers without a measure", 'measure = "RR"\n', "", "a subgroup with numbers needs the entry's measure"),
    ("negative ratio", "ci_lower = 0.9", "ci_lower = -0.1", "a RR and its interval must be positive"),
    ("subgroup without a quote", 'quote = "q"\n\n[[effect_modification.subgroups]]\nlevel = "men"',
     '\n[[effect_modification.subgroups]]\nlevel = "men"', "subgroups[0].quote: missing"),
    ("p relation without p", 'direction = "d"', 'direction = "d"\ninteraction_p_relation = "<"',
     "interaction_p_relation: given without interaction_p"),
])
def test_bad_effect_modification_is_a_one_line_error(tmp_path: Path, name, old, new, message):
    assert old in GOOD, name
    (tmp_path / "t1.toml").write_text(record("t1", GOOD.replace(old, new, 1)), encoding="utf-8")
    with pytest.raises(mb.InputError, match="effect_modification") as error:
        mb.load_trials(tmp_path)
    assert message in str(error.value)
    result = CliRunner().invoke(cli, ["trials", "check", "--trials", str(tmp_path)])
    assert result.exit_code == 1 and message in result.output


def test_counts_are_checked(tmp_path: Path):
    counts = GOOD.replace("effect = 1.8\nci_lower = 1.1\nci_upper = 2.95",
                          "events_baclofen = 13\nn_baclofen = 12\nevents_control = 3\nn_control = 12")
    (tmp_path / "t1.toml").write_text(record("t1", counts), encoding="utf-8")
    with pytest.raises(mb.InputError, match="events_baclofen: 13 is above n = 12"):
        mb.load_trials(tmp_path)
