"""Questionnaire YAML: the shipped files load; every problem names file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from nudge.errors import PlaybookError
from nudge.paths import profile_key
from playbooks.questionnaire import load_questionnaires, parse_questionnaire

GOOD = """\
id: demo
title: Demo
questions:
  - id: q1
    type: yes_no
    text: Did it go well?
    field: lead.custom.went_well
    follow_ups:
      - when: {answer: "no"}
        ask: q2
  - id: q2
    type: text
    text: What went wrong?
"""


def problems(text: str) -> list[str]:
    with pytest.raises(PlaybookError) as info:
        parse_questionnaire(text, "q.yaml")
    return info.value.problems


def test_shipped_questionnaires_load() -> None:
    """post-meeting and the two office-furniture questionnaires validate."""
    found = load_questionnaires()
    assert {"post-meeting", "furniture-depreciated", "influencer-support"} <= set(found)
    assert found["post-meeting"].first_pass() == ["rating", "next-step", "close-date"]


def test_follow_up_target_is_conditional() -> None:
    """A question named by a follow-up is not asked in the first pass."""
    q = parse_questionnaire(GOOD)
    assert q.first_pass() == ["q1"] and q.conditional_ids() == {"q2"}


def test_unknown_field_names_its_line() -> None:
    """A typo'd key is reported as unknown at the line it is written on."""
    text = GOOD.replace("    text: What went wrong?", "    text: What went wrong?\n    fild: x")
    assert problems(text) == ["q.yaml:14: questions.1.fild: unknown field"]


def test_bad_type_is_reported_at_its_line() -> None:
    """An unknown question type names the line of the question."""
    [problem] = problems(GOOD.replace("type: text", "type: essay"))
    assert problem.startswith("q.yaml:12: questions.1.type:")


def test_follow_up_to_missing_question() -> None:
    """A follow-up asking a question that does not exist names the ask line and the ids."""
    [problem] = problems(GOOD.replace("ask: q2", "ask: q3"))
    assert (
        problem == "q.yaml:10: questions.0.follow_ups.0.ask: no question 'q3' (questions: q1, q2)"
    )


def test_follow_up_must_point_forward() -> None:
    """A follow-up to an earlier question (a possible loop) is refused."""
    text = GOOD + "    follow_ups:\n      - when: {answer: x}\n        ask: [q1]\n"
    assert any("'q1' must come after 'q2'" in p for p in problems(text))


def test_unknown_lead_field_suggests_custom() -> None:
    """lead.<unknown> is refused with the lead.custom.<name> spelling as the fix."""
    [problem] = problems(GOOD.replace("lead.custom.went_well", "lead.went_well"))
    assert problem.startswith("q.yaml:7: questions.0.field") and "lead.custom.went_well" in problem


def test_bad_yaml_names_line_and_column() -> None:
    """Broken YAML is reported with file, line and column."""
    [problem] = problems("id: x\nquestions: [\n")
    assert problem.startswith("q.yaml:3:") and "not valid YAML" in problem


def test_duplicate_ids_across_files(tmp_path: Path) -> None:
    """Two files with the same questionnaire id are reported, not silently merged."""
    (tmp_path / "a.yaml").write_text(GOOD)
    (tmp_path / "b.yaml").write_text(GOOD)
    with pytest.raises(PlaybookError, match="defined twice"):
        load_questionnaires([tmp_path])


@pytest.mark.parametrize(
    ("path", "key"),
    [
        ("lead.custom.seats", ("custom", "seats")),
        ("lead.stage", ("stage",)),
        ("deal.stage", ("stage",)),
        ("deal.value", ("deal_value",)),
        ("deal.close_date", ("deal", "close_date")),
        ("deal.next_step", ("deal", "next_step")),
        ("deal.meeting_rating", ("deal", "custom", "meeting_rating")),
    ],
)
def test_field_paths_map_to_profile_keys(path: str, key: tuple[str, ...]) -> None:
    """Field paths land where LeadView and the CRM store keep them."""
    assert profile_key(path) == key


def test_inviting_an_opt_out_keyword_is_refused() -> None:
    """An intro that says "reply stop" is refused: on SMS that word opts the rep out."""
    text = GOOD.replace("title: Demo", "title: Demo\nintro: Reply skip to skip, stop to end.")
    [problem] = problems(text)
    assert problem.startswith("q.yaml:3: intro:") and "'STOP'" in problem
    assert parse_questionnaire(text.replace("stop to end", "done to end")).intro


def test_employees_needs_an_integer_question() -> None:
    """lead.employees is an integer field, so only an integer number question may write it."""
    [problem] = problems(GOOD.replace("lead.custom.went_well", "lead.employees"))
    assert problem.startswith("q.yaml:7: questions.0.field") and "integer: true" in problem


def test_impossible_when_answer_is_refused() -> None:
    """A follow-up on an answer the question can never get (a typo) names its line."""
    [problem] = problems(GOOD.replace('answer: "no"', 'answer: "nope-ish"'))
    assert problem == (
        "q.yaml:9: questions.0.follow_ups.0.when.answer: 'nope-ish' can never be an answer to 'q1'"
    )


def test_yaml_no_and_quoted_no_both_match_false() -> None:
    """Unquoted YAML `no` (False) and "no" both trigger on a no answer."""
    from playbooks.questionnaire import follow_ups_for

    for spelling in ("no", '"no"', "false", "n"):
        q = parse_questionnaire(GOOD.replace('{answer: "no"}', "{answer: " + spelling + "}"))
        assert follow_ups_for(q.questions[0], False) == ["q2"]
        assert follow_ups_for(q.questions[0], True) == []
