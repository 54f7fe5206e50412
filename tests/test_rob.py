"""Risk of bias (RoB 2) in the trial records: the overall rule, validation by ``metabac trials check``, the tidy
rows and their support, the sensitivity analysis without high-risk trials, and the two figures."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import metabac as mb
from metabac.cli import cli
from metabac.plots.rob import summary_bars, traffic_light
from metabac.rob import baseline_imbalance, fit_comparisons, rob_table, study_overall, without_high_risk
from metabac.trial_schema import overall_judgement

TRIALS = Path(__file__).resolve().parents[1] / "trials"


@pytest.fixture(scope="module")
def shipped() -> mb.TrialSet:
    return mb.load_trials(TRIALS)


# --- the overall rule ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("domains, overall", [
    (["low"] * 5, "low"),
    (["low", "low", "some concerns", "low", "low"], "some concerns"),
    (["low", "high", "low", "low", "low"], "high"),                                  # worst domain
    (["some concerns", "low", "some concerns", "low", "some concerns"], "high"),     # several concerns
    (["no information", "low", "some concerns", "low", "no information"], "some concerns"),  # NI not 'several'
    (["no information"] * 5, "no information"),
])
def test_overall_is_the_worst_domain_or_high_with_several_concerns(domains, overall):
    assert overall_judgement(domains) == overall


def test_several_is_an_argument():
    two = ["some concerns", "some concerns", "low", "low", "low"]
    assert overall_judgement(two) == "some concerns" and overall_judgement(two, several=2) == "high"


# --- validation of the records ------------------------------------------------------------------------------------

def _copy_with(tmp_path: Path, old: str, new: str, name: str = "addolorato2002.toml") -> Path:
    folder = tmp_path / "trials"
    shutil.copytree(TRIALS, folder, ignore=shutil.ignore_patterns("published"))
    path = folder / name
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return folder


BROKEN = [
    ('facts = ["baseline"]\n', "", "risk_of_bias.randomisation: 'high' without support"),
    ('facts = ["baseline"]', 'facts = ["baseline[7]"]',
     "risk_of_bias.randomisation.facts: 'baseline[7]' is not a path"),
    ('outcomes = ["dropout"]\noverall = "high"', 'outcomes = ["dropout"]\noverall = "low"',
     "risk_of_bias.results[1].overall: 'low', but the rule gives 'high'"),
    ('outcomes = ["dropout"]', 'outcomes = ["craving"]', "'craving' is not an outcome of this record"),
    ('outcomes = ["dropout"]', 'outcomes = ["relapse"]', "'relapse' is assessed twice"),
    ('judgement = "high"', 'judgement = "unclear"', "'unclear' is not one of low, some concerns, high"),
    ('source = "reprint_en_101"\nquote', 'source = "nowhere"\nquote', "'nowhere' is not a key of [sources]"),
]


@pytest.mark.parametrize("old, new, message", BROKEN)
def test_trials_check_rejects_a_broken_assessment(tmp_path, old, new, message):
    folder = _copy_with(tmp_path, old, new)
    result = CliRunner().invoke(cli, ["trials", "check", "--trials", str(folder)])
    assert result.exit_code == 1
    assert message in result.output and "addolorato2002.toml" in result.output


def test_an_overall_may_depart_from_the_rule_with_a_reason(tmp_path):
    folder = _copy_with(tmp_path, 'outcomes = ["dropout"]\noverall = "high"',
                        'outcomes = ["dropout"]\noverall = "some concerns"\n'
                        'overall_reason = "the imbalance concerns drinking, not leaving the study"')
    rows = mb.load_trials(folder).risk_of_bias
    overall = rows[(rows.trial == "addolorato2002") & (rows.outcome == "dropout") & (rows.domain == "overall")]
    assert overall[["judgement", "rule"]].values.tolist() == [["some concerns", "high"]]
    assert overall["rationale"].iloc[0].startswith("the imbalance")


def test_shipped_records_pass_the_check():
    result = CliRunner().invoke(cli, ["trials", "check", "--trials", str(TRIALS)])
    assert result.exit_code == 0, result.output


# --- the rows and their support -----------------------------------------------------------------------------------

def test_every_pooled_result_is_assessed(shipped):
    for outcome in ("abstinence", "relapse", "dropout"):
        arms = mb.comparisons(shipped, outcome, include_complements=True)   # relapse: assessed though not pooled
        assert "no information" not in study_overall(shipped, arms, outcome), outcome


def test_support_is_derived_from_the_record(shipped):
    rows = shipped.risk_of_bias.set_index(["trial", "outcome", "domain"])
    d1 = rows.loc[("addolorato2002", "abstinence", "randomisation"), "support"]
    d, p = baseline_imbalance(17.6, 7.5, 20, 10.7, 6.7, 19)
    assert f"standardised difference {d:.2f}, Welch p = {p:.3f}" in d1[0] and p < 0.01
    hauser = rows.loc[("hauser2017", "abstinence", "missing_data"), "support"][0]
    assert "79 of 88 randomised counted (90%)" in hauser and "modified ITT" in hauser
    assert bool(rows.loc[("hauser2017", "abstinence", "randomisation"), "second_hand"])   # Healio, a news report
    assert not bool(rows.loc[("addolorato2002", "abstinence", "randomisation"), "second_hand"])


def test_baseline_imbalance_by_hand():
    pooled = np.sqrt((19 * 7.5**2 + 18 * 6.7**2) / 37)
    d, p = baseline_imbalance(17.6, 7.5, 20, 10.7, 6.7, 19)
    assert d == pytest.approx(6.9 / pooled) and 0 < p < 1


def test_rob_table_is_trials_by_domains(shipped):
    table = rob_table(shipped, "abstinence")
    assert list(table.columns) == ["randomisation", "deviations", "missing_data", "measurement",
                                   "reported_result", "overall"]
    assert table.loc["Addolorato 2002", "randomisation"] == "high"
    assert table.loc["Müller 2015", "deviations"] == "high"
    with pytest.raises(mb.InputError, match="craving: no trial record assesses"):
        rob_table(shipped, "craving")


# --- sensitivity: without trials at high risk ---------------------------------------------------------------------

def test_without_high_risk_refits_the_rest(shipped):
    arms = mb.comparisons(shipped, "dropout")
    result = without_high_risk(shipped, arms)
    assert result.excluded == ("Addolorato 2002",)
    kept = arms[arms.trial != "addolorato2002"]
    direct = fit_comparisons(kept)
    assert float(result.restricted.estimate) == pytest.approx(float(direct.estimate), rel=1e-12)
    assert int(result.all.k) == 3 and int(result.restricted.k) == 2   # Ponizovsky's 52-week follow-up not pooled


def test_without_high_risk_when_none_is_left(shipped):
    arms = mb.comparisons(shipped, "relapse", include_complements=True)
    arms = arms[arms.trial != "addolorato2007"]
    arms.attrs["outcome"] = "relapse"
    result = without_high_risk(shipped, arms)
    assert result.restricted is None and len(result.excluded) == 2


# --- figures ------------------------------------------------------------------------------------------------------

def test_traffic_light_draws_one_circle_per_cell(shipped):
    table = rob_table(shipped, "abstinence")
    fig = traffic_light(table)
    ax = fig.axes[0]
    assert sum(len(c.get_offsets()) for c in ax.collections) == table.size
    symbols = [t.get_text() for t in ax.texts]
    assert symbols.count("×") == int((table == "high").to_numpy().sum())


def test_summary_bars_split_each_domain_by_weight(shipped):
    table = rob_table(shipped, "abstinence")
    arms = mb.comparisons(shipped, "abstinence")
    weights = pd.Series(fit_comparisons(arms).weights, index=list(arms.study))
    ax = summary_bars(table, weights).axes[0]
    overall_bars = [b for b in ax.patches if b.get_y() < 0.5 and b.get_y() + b.get_height() > -0.5]
    high = weights[table["overall"] == "high"].sum() / weights.sum() * 100
    widths = sorted(round(b.get_width(), 6) for b in overall_bars)
    assert widths == sorted([round(high, 6), round(100 - high, 6)])


def test_figures_refuse_an_unknown_judgement(shipped):
    table = rob_table(shipped, "abstinence").replace("high", "unclear")
    with pytest.raises(ValueError, match="unknown judgement"):
        traffic_light(table)
