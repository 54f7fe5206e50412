"""Trial records: the shipped files, the schema, the loader, comparisons, the severity rule and broken files."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from support.bad_input_cases import BROKEN_CASES, FOLDER_CASES

import metabac as mb
from metabac.cli import cli
from metabac.severity import classify, classify_by_inclusion, grams_per_day, threshold_for
from metabac.trial_schema import TRIAL, describe
from metabac.trials import split_count

TRIALS = Path(__file__).resolve().parents[1] / "trials"
EXAMPLE = TRIALS / "addolorato2002.toml"


@pytest.fixture(scope="module")
def shipped() -> mb.TrialSet:
    return mb.load_trials(TRIALS)


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


# --- the shipped records -------------------------------------------------------------------------------------------

def test_every_randomised_trial_of_the_evidence_has_a_record(shipped):
    expected = {"addolorato2002", "addolorato2007", "addolorato2011", "garbutt2010", "morley2014", "leggio2015",
                "ponizovsky2015", "muller2015", "beraha2016", "krupitsky2016", "hauser2017", "reynaud2017",
                "jaury2020", "morley2018", "garbutt2021", "gupta2017", "jose2019"}
    assert set(shipped.records) == expected


def test_every_number_has_a_source_and_a_quote(shipped):
    for frame in (shipped.outcomes, shipped.arms):
        assert frame["quote"].str.len().min() > 10
        assert frame["url"].str.startswith("http").all()


def test_published_numbers_are_carried_exactly(shipped):
    rows = shipped.outcomes.set_index(["trial", "outcome", "arm"])
    assert rows.loc[("addolorato2007", "abstinence", "baclofen"), ["events", "n"]].tolist() == [30, 42]
    assert rows.loc[("muller2015", "abstinence", "placebo"), ["events", "n"]].tolist() == [5, 21]
    assert rows.loc[("garbutt2010", "heavy_drinking_days", "baclofen"), ["mean", "sd"]].tolist() == [25.9, 23.2]
    assert np.isnan(rows.loc[("garbutt2010", "heavy_drinking_days", "baclofen"), "n"])  # not published: absent


def test_derived_and_second_hand_numbers_are_flagged(shipped):
    rows = shipped.outcomes.set_index(["trial", "outcome", "arm"])
    hauser = rows.loc[("hauser2017", "abstinence", "placebo")]
    assert "inferred" in hauser["derived"] and bool(hauser["second_hand"])
    cad = rows.loc[("addolorato2007", "cumulative_abstinence_days", "baclofen")]
    assert cad["sd"] == pytest.approx(5.4 * np.sqrt(42)) and "SD = SE x sqrt(n)" in cad["derived"]
    assert rows.loc[("addolorato2002", "abstinence", "baclofen"), "derived"] == ""


def test_trials_frame_has_the_predictors(shipped):
    trials = shipped.trials
    assert trials.loc["jaury2020", ["severity", "severity_basis", "g_per_day"]].tolist() == [
        "heavy", "baseline mean", 129]
    assert trials.loc["hauser2017", "severity_basis"] == "baseline mean, assumed drink size"
    assert pd.isna(trials.loc["garbutt2010", "severity"])        # not classified: missing, never a level "unknown"
    assert pd.isna(trials.loc["garbutt2010", "severity_basis"])
    assert trials.loc["reynaud2017", "detox"] == "yes" and trials.loc["hauser2017", "detox"] == "no"
    assert trials.loc["ponizovsky2015", "male_fraction"] == pytest.approx(0.75)
    assert set(shipped.arms.dose_group.dropna()) == {"low", "high"}


def test_coverage_marks_usable_partial_and_absent(shipped):
    cover = mb.coverage(shipped)
    assert cover.loc["addolorato2002", "abstinence"] == "usable"
    assert cover.loc["reynaud2017", "abstinence"] == "partial"   # percentages only
    assert cover.loc["krupitsky2016", "abstinence"] == ""


# --- comparisons ---------------------------------------------------------------------------------------------------

def test_comparisons_feed_effect_sizes(shipped):
    arms = mb.comparisons(shipped, "abstinence")
    assert list(arms.trial) == ["addolorato2002", "addolorato2007", "hauser2017", "muller2015"]
    es = mb.effect_sizes("RR", ai=arms.ai, n1i=arms.n1i, ci=arms.ci, n2i=arms.n2i)
    assert es.yi.iloc[0] == pytest.approx(np.log((14 / 20) / (4 / 19)))
    excluded = dict(arms.attrs["excluded"])
    assert "not placebo" in excluded["jose2019"] and "reynaud2017" in excluded


def test_active_controls_only_on_request(shipped):
    arms = mb.comparisons(shipped, "abstinence", include_active=True)
    assert "jose2019" in set(arms.trial)


def test_shared_placebo_combined_split_or_repeated(shipped):
    combined = mb.comparisons(shipped, "dropout")
    garbutt = combined[combined.trial == "garbutt2021"].iloc[0]
    assert (garbutt.ai, garbutt.n1i, garbutt.ci, garbutt.n2i) == (30, 80, 17, 40)
    assert garbutt.shared_control == "combined" and garbutt.dose_group == "mixed"
    split = mb.comparisons(shipped, "dropout", shared_control="split")
    parts = split[split.trial == "garbutt2021"]
    assert list(parts.n2i) == [20, 20] and list(parts.ci) == [9, 8] and parts.ci.sum() == 17
    assert list(parts.dose_group) == ["low", "high"]
    repeated = mb.comparisons(shipped, "dropout", shared_control="repeat")
    twice = repeated[repeated.trial == "garbutt2021"]
    assert list(twice.n2i) == [40, 40] and twice.shared_control.str.contains("more than once").all()


def test_split_count_gives_the_remainder_to_the_first_parts():
    assert split_count(7, 2) == [4, 3] and split_count(62, 3) == [21, 21, 20] and sum(split_count(17, 4)) == 17


def test_continuous_arms_combine_by_handbook_formula(tmp_path):
    """Cochrane Handbook Table 6.5.a: N 10+20, means 5 and 8, SDs 2 and 3 -> mean 7, SD sqrt(((9*4 + 19*9) +
    10*20/30*9)/29)."""
    text = EXAMPLE.read_text(encoding="utf-8")
    text = text.replace('[arms.placebo]', '''[arms.baclofen_b]
role = "experimental"
drug = "baclofen"
compared_with = "placebo"
dose_mg_day = 60
source = "reprint_en"
quote = "q"

[arms.placebo]''')
    text += '''
[outcomes.craving]
definition = "d"
timepoint = "t"
timepoint_class = "end of treatment"
analysis_set = "ITT"
[outcomes.craving.arms.baclofen]
mean = 5
sd = 2
n = 10
source = "reprint_en"
quote = "q"
[outcomes.craving.arms.baclofen_b]
mean = 8
sd = 3
n = 20
source = "reprint_en"
quote = "q"
[outcomes.craving.arms.placebo]
mean = 9
sd = 3
n = 19
source = "reprint_en"
quote = "q"
'''
    (tmp_path / "addolorato2002.toml").write_text(text, encoding="utf-8")
    row = mb.comparisons(mb.load_trials(tmp_path), "craving").iloc[0]
    assert (row.n1i, row.m1i) == (30, pytest.approx(7.0))
    assert row.sd1i == pytest.approx(np.sqrt((9 * 4 + 19 * 9 + 10 * 20 / 30 * 9) / 29))


# --- severity ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("measure, mean, size, grams", [
    ("g_per_day", 129, None, 129), ("drinks_per_day", 10, 12, 120), ("drinks_per_week", 32, 14, 64),
    ("drinks_per_day", 10, None, None), ("drinks_per_drinking_day", 7, 14, None)])
def test_grams_per_day(measure, mean, size, grams):
    assert grams_per_day(measure, mean, size) == grams


def test_severity_rule_uses_who_levels_and_the_sex_mix():
    assert classify(60.0) == "heavy" and classify(59.9) == "moderate" and classify(None) is None
    assert threshold_for(None) == 60 and threshold_for(0.5) == 50 and threshold_for(0.0) == 40
    assert classify(55.0, male_fraction=0.5) == "heavy" and classify(55.0, male_fraction=0.9) == "moderate"
    assert classify(55.0, threshold=50) == "heavy"   # configurable


def test_inclusion_criterion_classifies_only_when_every_entrant_is_heavy():
    assert classify_by_inclusion(60, 40, any_women=True) == "heavy"
    assert classify_by_inclusion(36, 24, any_women=True) is None
    assert classify_by_inclusion(60, None, any_women=True) is None
    assert classify_by_inclusion(60, None, any_women=False) == "heavy"


def test_threshold_is_configurable_in_the_loader():
    strict = mb.load_trials(TRIALS, threshold=70.0)
    assert strict.trials.loc["hauser2017", "severity"] == "moderate"   # 64 g/day
    assert strict.trials.loc["jaury2020", "severity"] == "heavy"


# --- predictors on the shipped trials --------------------------------------------------------------------------------

def test_predictors_table_on_shipped_trials_lists_not_estimable_predictors(shipped):
    arms = mb.comparisons(shipped, "abstinence", shared_control="split")
    result = mb.predictors(arms, measure="RR", outcome="abstinence")
    table = result.table.set_index("column")
    assert not table.loc["severity", "estimable"]          # no trial in the moderate class
    assert "not estimable" in table.loc["severity", "finding"]
    assert table.loc["dose_mg", "estimable"] and 0 <= table.loc["dose_mg", "pvalue"] <= 1
    assert table.loc["dose_mg", "p_adjusted"] >= table.loc["dose_mg", "pvalue"]


def test_predictors_cli_runs_on_shipped_trials():
    result = CliRunner().invoke(cli, ["predictors", "--outcome", "abstinence", "--trials", str(TRIALS)])
    assert result.exit_code == 0, result.output
    assert "drinking severity" in result.output and "not estimable" in result.output


# --- CLI -------------------------------------------------------------------------------------------------------------

def test_trials_check_passes_on_shipped_records_without_touching_them():
    before = _digest(TRIALS)
    result = CliRunner().invoke(cli, ["trials", "check", "--trials", str(TRIALS)])
    assert result.exit_code == 0, result.output
    assert "17 trial records" in result.output and "usable" in result.output and "partial" in result.output
    mb.load_trials(TRIALS)
    assert _digest(TRIALS) == before


def test_trials_list_and_show():
    runner = CliRunner()
    listed = runner.invoke(cli, ["trials", "list", "--trials", str(TRIALS)])
    assert listed.exit_code == 0 and "jaury2020" in listed.output and "heavy" in listed.output
    shown = runner.invoke(cli, ["trials", "show", "hauser2017", "--trials", str(TRIALS)])
    assert shown.exit_code == 0 and "derived" in shown.output and "second-hand" in shown.output
    missing = runner.invoke(cli, ["trials", "show", "nosuch2000", "--trials", str(TRIALS)])
    assert missing.exit_code == 1 and "nosuch2000: no such trial" in missing.output


def test_schema_is_described_from_the_one_declaration():
    text = describe(TRIAL)
    assert "outcomes.<name>" in text and "abstinence" in text and "source, quote (required)" in text
    assert CliRunner().invoke(cli, ["trials", "schema"]).output.strip() == text


# --- broken files ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "old", "new", "expected"), BROKEN_CASES, ids=[c[0] for c in BROKEN_CASES])
def test_broken_file_fails_load_and_check_with_file_and_field(kind, old, new, expected, tmp_path):
    text = EXAMPLE.read_text(encoding="utf-8")
    assert old in text, kind
    shutil.copy(TRIALS / "addolorato2007.toml", tmp_path)
    broken = tmp_path / "addolorato2002.toml"
    broken.write_text(text.replace(old, new, 1), encoding="utf-8")
    before = _digest(tmp_path)
    with pytest.raises(mb.InputError) as error:
        mb.load_trials(tmp_path)
    message = str(error.value)
    assert message.startswith(f"{broken}: ") and expected in message and "\n" not in message, message
    result = CliRunner().invoke(cli, ["trials", "check", "--trials", str(tmp_path)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.strip().splitlines() == [f"Error: {message}"]
    assert _digest(tmp_path) == before   # nothing rewritten, nothing added


@pytest.mark.parametrize(("kind", "make", "expected"), FOLDER_CASES, ids=[c[0] for c in FOLDER_CASES])
def test_bad_trials_folder(kind, make, expected, tmp_path):
    folder = tmp_path / "nowhere" if make is None else tmp_path
    if make is not None:
        make(folder)
    with pytest.raises(mb.InputError) as error:
        mb.load_trials(folder)
    assert expected in str(error.value) and "\n" not in str(error.value)
    for command in (["trials", "check"], ["trials", "list"], ["predictors"]):
        result = CliRunner().invoke(cli, [*command, "--trials", str(folder)])
        assert result.exit_code == 1 and result.output == f"Error: {error.value}\n"


def test_yaml_and_pickle_payloads_in_a_record_are_only_text(tmp_path, monkeypatch):
    """TOML has no tags, includes or object constructors: what YAML's ``!!python/object/apply`` or a pickle stream
    would run is read as a string and shown as a string."""
    monkeypatch.chdir(tmp_path)
    payloads = ['!!python/object/apply:os.system ["touch pwned-yaml"]',
                "cos\\nsystem\\n(S'touch pwned-pickle'\\ntR.",
                "{{ __import__('os').system('touch pwned-template') }}",
                "$(touch pwned-shell) `touch pwned-backtick`"]
    hostile = " | ".join(payloads)
    text = EXAMPLE.read_text(encoding="utf-8").replace(
        'drug = "placebo"', f"drug = \"placebo\"\ndose_note = {json.dumps(hostile)}", 1)
    folder = tmp_path / "trials"
    folder.mkdir()
    (folder / "addolorato2002.toml").write_text(text, encoding="utf-8")
    trial_set = mb.load_trials(folder)
    assert trial_set.records["addolorato2002"]["arms"]["placebo"]["dose_note"] == hostile
    result = CliRunner().invoke(cli, ["trials", "show", "addolorato2002", "--trials", str(folder)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trials"]   # nothing ran: no pwned-* file


def test_comparisons_rejects_unknown_outcome_and_option(shipped):
    with pytest.raises(mb.InputError, match="outcome"):
        mb.comparisons(shipped, "happiness")
    with pytest.raises(mb.InputError, match="shared_control"):
        mb.comparisons(shipped, "abstinence", shared_control="twice")


def test_loaded_frames_are_tidy(shipped):
    assert not shipped.outcomes.duplicated(["trial", "arm", "outcome"]).any()
    assert shipped.trials.index.is_unique and isinstance(shipped.trials, pd.DataFrame)


def test_one_timepoint_class_per_analysis_and_no_complement_outcomes():
    """Relapse recorded as n minus abstinent is not a second finding; dropout at a 52-week follow-up is not pooled
    with end-of-treatment dropout (issue 16)."""
    trials = mb.load_trials(TRIALS)
    relapse = mb.comparisons(trials, "relapse")
    assert len(relapse) == 0
    assert [t for t, r in relapse.attrs["excluded"] if "complement of abstinence" in r] == [
        "addolorato2002", "addolorato2007", "muller2015"]
    assert len(mb.comparisons(trials, "relapse", include_complements=True)) == 3
    dropout = mb.comparisons(trials, "dropout")
    assert "ponizovsky2015" not in set(dropout.trial) and set(dropout.timepoint_class) == {"end of treatment"}
    assert any(t == "ponizovsky2015" and "follow-up" in r for t, r in dropout.attrs["excluded"])
    assert "ponizovsky2015" in set(mb.comparisons(trials, "dropout", timepoint_class="follow-up").trial)
    assert "ponizovsky2015" in set(mb.comparisons(trials, "dropout", timepoint_class=None).trial)
    with pytest.raises(mb.InputError, match="timepoint_class: unknown value 'later'"):
        mb.comparisons(trials, "dropout", timepoint_class="later")


# --- severity, honestly: drink size, flip point, missing stays missing ------------------------------------------------

def test_flip_drink_size_is_where_the_class_changes(tmp_path: Path):
    """Hauser 2017 (32 drinks/week, 98% men, assumed 14 g): heavy at 14 g, flips below 59.6 x 14 / 64 = 13.04 g."""
    trials = mb.load_trials(TRIALS).trials
    flip = trials.loc["hauser2017", "flip_drink_size_g"]
    assert flip == pytest.approx(59.6 * 14 / 64, rel=1e-12)
    assert trials.loc["hauser2017", "severity_drink_size_g"] == 14
    assert trials.loc["hauser2017", "severity_drink_size_assumed"]
    text = (TRIALS / "hauser2017.toml").read_text(encoding="utf-8")
    for grams, expected in ((flip - 0.01, "moderate"), (flip + 0.01, "heavy")):
        (tmp_path / "hauser2017.toml").write_text(text.replace("grams = 14\n", f"grams = {grams}\n"), encoding="utf-8")
        assert mb.load_trials(tmp_path).trials.loc["hauser2017", "severity"] == expected


def test_severity_records_its_ground(shipped):
    trials = shipped.trials
    alpadir = trials.loc["reynaud2017"]
    assert alpadir.severity == "heavy" and alpadir.g_per_day == pytest.approx(95.0)
    assert alpadir.severity_basis == "baseline mean, baclofen arm only, assumed drink size"
    assert alpadir.severity_second_hand and alpadir.flip_drink_size_g == pytest.approx(60 / 9.5)
    bacloville = trials.loc["jaury2020"]
    assert bacloville.severity_threshold == pytest.approx(0.7 * 60 + 0.3 * 40)       # 70% men, second-hand
    assert pd.isna(bacloville.flip_drink_size_g) and pd.isna(bacloville.severity_drink_size_g)  # published in grams
    assert set(trials.severity.dropna()) <= {"heavy", "moderate"}


def test_comparisons_carry_the_severity_columns_and_missing_stays_missing(shipped):
    arms = mb.comparisons(shipped, "abstinence")
    for column in ("severity", "severity_basis", "g_per_day", "severity_drink_size_g", "flip_drink_size_g",
                   "severity_second_hand", "severity_threshold"):
        assert column in arms, column
    assert not arms.severity.astype(str).str.contains("unknown").any()
    assert arms.severity.isna().any()        # trials without a class are kept, with a missing class
    row = mb.predictors(arms, measure="RR").table.set_index("column").loc["severity"]
    assert row.k_unknown == int(arms.severity.isna().sum())


@pytest.mark.parametrize(("events", "n", "percent", "matches"), [
    (1, 8, "13", True), (1, 8, "12", True), (1, 8, "12.5", True),      # 12.5%: half up, half to even, exact
    (1, 16, "6.3", True), (1, 16, "6.2", True),                         # 6.25%
    (6, 7, "86", True), (6, 7, "85", False), (1, 8, "13.0", False),    # 85.71%: truncated is refused
])
def test_a_percent_rounded_half_up_or_half_to_even_matches_its_count(events, n, percent, matches, tmp_path):
    text = EXAMPLE.read_text(encoding="utf-8").replace(
        "events = 14\nn = 20\npercent = 70.0", f"events = {events}\nn = {n}\npercent = {percent}", 1)
    (tmp_path / "addolorato2002.toml").write_text(text, encoding="utf-8")
    if matches:
        rows = mb.load_trials(tmp_path).outcomes.query("outcome == 'abstinence' and arm == 'baclofen'")
        assert rows.events.tolist() == [events]
    else:
        with pytest.raises(mb.InputError, match=f"percent: {percent} does not match events/n = {events}/{n}"):
            mb.load_trials(tmp_path)


def test_a_trial_file_with_a_byte_order_mark_is_read(tmp_path):
    """Windows editors save UTF-8 with a BOM; the CSV reader accepts it, and so does the trial loader."""
    (tmp_path / "addolorato2002.toml").write_bytes(b"\xef\xbb\xbf" + EXAMPLE.read_bytes())
    assert list(mb.load_trials(tmp_path).records) == ["addolorato2002"]


def test_a_record_edited_between_two_loads_is_read_anew_and_a_changed_record_changes_no_later_load(tmp_path):
    """Parsed text is kept for the process (trials._parsed), keyed by the text: an edit is seen, and a caller that
    changes the record it was given changes no other load's."""
    path = tmp_path / "addolorato2002.toml"
    path.write_text(EXAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    first = mb.load_trials(tmp_path)
    first.records["addolorato2002"]["arms"]["baclofen"]["randomised"] = 99
    assert mb.load_trials(tmp_path).records["addolorato2002"]["arms"]["baclofen"]["randomised"] == 20
    path.write_text(path.read_text(encoding="utf-8").replace("randomised = 20", "randomised = 21", 1), encoding="utf-8")
    assert mb.load_trials(tmp_path).records["addolorato2002"]["arms"]["baclofen"]["randomised"] == 21


@pytest.mark.parametrize("threshold", [float("nan"), 0, -60, float("inf"), "sixty"])
def test_severity_thresholds_must_be_finite_and_positive(threshold, tmp_path):
    with pytest.raises(mb.InputError, match="threshold: must be a finite number > 0"):
        classify(80.0, threshold=threshold)
    with pytest.raises(mb.InputError, match="threshold_women: must be a finite number > 0"):
        classify_by_inclusion(80.0, 50.0, True, threshold_women=threshold)
    with pytest.raises(mb.InputError, match="threshold: must be a finite number > 0"):
        mb.load_trials(TRIALS, threshold=threshold)


def test_a_missing_baseline_intake_is_not_classified_not_moderate():
    assert classify(float("nan")) is None
