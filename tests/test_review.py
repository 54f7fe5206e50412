"""The review file (question, GRADE overrides) and the published moderator findings, and how the report shows
them (issue 17's override mechanism, issue 16's published meta-regressions)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import metabac as mb
from metabac.report import ReportOptions, build_report
from metabac.review import published_moderator_findings, read_review

TRIALS = Path(__file__).resolve().parents[1] / "trials"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    copy = tmp_path / "trials"
    shutil.copytree(TRIALS, copy)
    return copy


def test_the_bundled_review_states_its_question():
    review = read_review(TRIALS)
    assert "heavy drinkers" in review.question and review.comparison == "placebo"
    assert review.overrides == {}


def test_without_a_review_file_the_question_is_generic(folder: Path):
    (folder / "review.toml").unlink()
    assert "trial records" in read_review(folder).question
    assert len(mb.load_trials(folder).trials) == len(mb.load_trials(TRIALS).trials)  # never read as a trial


def test_an_override_replaces_the_rule_and_keeps_it_visible(folder: Path):
    text = (folder / "review.toml").read_text()
    override = 'reason = "the panel judged one level enough: the CI crosses 1 only a little"\n'
    (folder / "review.toml").write_text(text + '\n[overrides.abstinence.imprecision]\nlevels = 1\n' + override)
    report = build_report(ReportOptions(outcomes=("abstinence",), trials_dir=folder))
    domain = {d.domain: d for d in report.analyses[0].appraisal.certainty.domains}["imprecision"]
    assert (domain.levels, domain.basis) == (1, "override")
    assert domain.rule_levels == 2 and "optimal information size" in domain.rule_reason
    assert report.to_dict()["review"]["overrides"]["abstinence"]["imprecision"]["levels"] == 1


@pytest.mark.parametrize(("addition", "message"), [
    ('colour = "blue"\n', "colour: unknown field"),
    ('[overrides.abstinence.imprecise]\nlevels = 1\nreason = "r"\n', "not a GRADE domain"),
    ('[overrides.abstinence.imprecision]\nlevels = 3\nreason = "r"\n', "levels must be 0, 1 or 2"),
    ('[overrides.abstinence.imprecision]\nlevels = 1\n', "needs exactly levels and reason"),
])
def test_a_bad_review_file_is_a_one_line_error(folder: Path, addition: str, message: str):
    path = folder / "review.toml"
    path.write_text(addition + path.read_text() if not addition.startswith("[") else path.read_text() + addition)
    with pytest.raises(mb.InputError, match=message) as error:
        read_review(folder)
    assert str(error.value).startswith(str(path)) and "\n" not in str(error.value)


def test_published_moderator_findings_are_second_hand_and_sourced(folder: Path):
    found = published_moderator_findings(TRIALS)
    assert set(found.name) >= {"pierce2018"} and found.second_hand.all()
    assert found.set_index("name").loc["pierce2018", "kind"] == "meta-regression"
    (folder / "published" / "moderators" / "bad.toml").write_text(
        'citation = "c"\nurl = "ftp://x"\nquote = "q"\nkind = "k"\nmodifier = "m"\nfinding = "f"\n')
    with pytest.raises(mb.InputError, match="url: must start with http"):
        published_moderator_findings(folder)
