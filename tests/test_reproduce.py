"""Registry of published analyses: every entry marked reproducible agrees at its printed precision; verdict logic;
CLI exit codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from support.bad_input_cases import REGISTRY_CASES

import metabac as mb
from metabac.cli import cli
from metabac.reproduce import BACK_SOLVED, load_published, printed_precision

TRIALS = Path(__file__).resolve().parents[1] / "trials"


@pytest.fixture(scope="module")
def table():
    return mb.reproduce(trials_dir=TRIALS)


def test_registry_loads_and_has_enough_classic_entries():
    entries = load_published(TRIALS)
    classic = [e for e in entries if "inputs" in e]
    assert len(classic) >= 5
    for entry in entries:
        assert entry["where"] and entry["citation"]


@pytest.mark.parametrize("name", [e["name"] for e in load_published(TRIALS) if e["expect"] == "reproduced"])
def test_entries_marked_reproduced_agree_at_printed_precision(table, name):
    rows = table[table.entry == name]
    assert len(rows) > 0
    assert rows.verdict.str.startswith("reproduced").all(), rows[["quantity", "published", "reproduced"]]
    for row in rows.itertuples():
        value, half, _ = printed_precision(row.published)
        assert abs(row.reproduced - value) <= half + 1e-9 * max(1, abs(value)), row


def test_duan_is_never_reproduced_by_inputs_back_solved_from_it(table):
    """Hauser's 6/88 vs 9/92 were chosen to give Duan's 1.42 (0.41-4.92); the records' 6/79 vs 9/89 give 1.48
    (0.46-4.76): the verdict says the published value is consistent only with inputs derived from it."""
    rows = table[(table.entry == "duan2023_abstinence") & (table.quantity != "k")].set_index("quantity")
    assert set(rows.verdict) == {BACK_SOLVED}
    assert rows.loc["estimate", "reproduced"] == pytest.approx(1.4797, abs=5e-5)
    assert rows.loc["ci_low", "reproduced"] == pytest.approx(0.4598, abs=5e-5)
    assert rows.loc["ci_high", "reproduced"] == pytest.approx(4.7621, abs=5e-5)
    assert rows.reason.str.contains("the trial records give 1.48").any()
    assert rows.reason.str.contains("back-solved").all()


def test_larger_baclofen_pooled_estimates_are_inputs_incomplete(table):
    for name in ("cochrane2023_relapse", "cochrane2023_pda", "rosejones2018_abstinence", "bschor2018_smd",
                 "pierce2018_abstinence", "phimarn2022_abstinence", "mcpheeters2023_relapse"):
        rows = table[table.entry == name]
        assert set(rows.verdict) == {"inputs incomplete"}, name
        assert rows.reason.str.startswith("missing: ").all()


def test_known_mismatches_differ_with_their_reason(table):
    raudenbush = table[(table.entry == "raudenbush1985") & (table.quantity == "q")].iloc[0]
    assert raudenbush.verdict == "differs" and "unrounded" in raudenbush.reason
    ml = table[table.entry == "dersimonian2007_clasp_ml"]
    assert set(ml.verdict) == {"differs", "reproduced"} and (ml.expect == "partial").all()


def test_printed_precision():
    assert printed_precision("0.41") == (0.41, pytest.approx(0.005), "=")
    assert printed_precision("76")[1] == 0.5
    assert printed_precision("<0.0001")[2] == "<"
    assert printed_precision("−0.03")[0] == -0.03


def _copy_registry(tmp_path: Path, names: list[str]) -> Path:
    (tmp_path / "published").mkdir()
    for name in names:
        shutil.copy(TRIALS / "published" / f"{name}.toml", tmp_path / "published" / f"{name}.toml")
    return tmp_path


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_verdict_differs_and_half_unit_rule(tmp_path):
    folder = _copy_registry(tmp_path, ["normand1999_hine"])
    path = folder / "published" / "normand1999_hine.toml"
    # 2.9444 published; the reproduced 2.944432 is within 0.00005 of 2.9444 but not of 2.9445
    _edit(path, 'estimate = "2.9444", ci_low = "0.3831", ci_high = "5.5058" }\n\n[[analyses]]',
          'estimate = "2.9445", ci_low = "0.3831", ci_high = "5.5058" }\n\n[[analyses]]')
    result = mb.reproduce(trials_dir=folder)
    row = result[(result.analysis == "fixed effect") & (result.quantity == "estimate")].iloc[0]
    assert row.verdict == "differs" and row.reason == "no reason recorded in the registry"
    assert row.difference == pytest.approx(2.944432 - 2.9445, abs=1e-6)


def test_registry_numbers_must_be_strings(tmp_path):
    folder = _copy_registry(tmp_path, ["normand1999_hine"])
    _edit(folder / "published" / "normand1999_hine.toml", 'ci_low = "0.3831"', "ci_low = 0.3831")
    with pytest.raises(mb.InputError, match="as a string"):
        mb.reproduce(trials_dir=folder)


def test_profile_override_changes_the_convention(tmp_path):
    revman = mb.reproduce(["duan2023_abstinence"], trials_dir=TRIALS, profile="revman5")
    assert set(revman.profile) == {"revman5"}
    # the IV analysis is the same under RevMan's conventions; only MH random effects would differ
    metafor = mb.reproduce(["duan2023_abstinence"], trials_dir=TRIALS)
    assert list(revman.verdict) == list(metafor.verdict)
    assert revman.reproduced.to_numpy() == pytest.approx(metafor.reproduced.to_numpy(), rel=1e-12)


def test_unknown_entry_is_a_one_line_error():
    with pytest.raises(mb.InputError, match="no entry named nosuch"):
        mb.reproduce(["nosuch"], trials_dir=TRIALS)


def test_cli_exit_codes(tmp_path):
    runner = CliRunner()
    ok = runner.invoke(cli, ["reproduce", "normand1999_hine", "raudenbush1985", "--trials", str(TRIALS)])
    assert ok.exit_code == 0, ok.output  # raudenbush differs, but it is marked partial
    assert "convention profile: metafor" in ok.output and "differs" in ok.output
    folder = _copy_registry(tmp_path, ["normand1999_hine"])
    _edit(folder / "published" / "normand1999_hine.toml", 'ci_low = "0.3831"', 'ci_low = "0.3841"')
    bad = runner.invoke(cli, ["reproduce", "--trials", str(folder)])
    assert bad.exit_code == 1
    missing = runner.invoke(cli, ["reproduce", "nosuch", "--trials", str(TRIALS)])
    assert missing.exit_code == 1 and missing.output.startswith("Error: ")


def test_cli_json_and_help():
    runner = CliRunner()
    out = runner.invoke(cli, ["reproduce", "duan2023_abstinence", "--json", "--trials", str(TRIALS)])
    assert out.exit_code == 0
    records = json.loads(out.output)
    assert {r["verdict"] for r in records} == {BACK_SOLVED, "reproduced (derived inputs)"}   # k is reproduced
    assert records[0]["profile"] == "metafor"
    help_text = runner.invoke(cli, ["reproduce", "--help"]).output
    assert help_text.rstrip().splitlines()[-1].strip().startswith("metabac reproduce")


@pytest.mark.parametrize(("kind", "old", "new", "expected"), REGISTRY_CASES, ids=[c[0] for c in REGISTRY_CASES])
def test_bad_registry_entry_is_one_line_naming_file_and_field(kind, old, new, expected, tmp_path):
    folder = _copy_registry(tmp_path, ["normand1999_hine"])
    path = folder / "published" / "normand1999_hine.toml"
    text = path.read_text()
    assert old in text, kind
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(mb.InputError) as error:
        mb.reproduce(trials_dir=folder)
    message = str(error.value)
    assert message.startswith(f"{path}: ") and expected in message and "\n" not in message, message
    result = CliRunner().invoke(cli, ["reproduce", "--trials", str(folder)])
    assert result.exit_code == 1 and result.output == f"Error: {message}\n"   # not "internal error"
