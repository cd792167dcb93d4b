"""The language and its loader: located errors with suggestions, stages, warnings."""

from __future__ import annotations

import datetime as dt

import pytest

from nudge.errors import PlaybookError
from playbooks.loader import check_text
from playbooks.types import parse_duration, parse_time

from .helpers import playbook

HEAD = "name: t\nowner: me\nversion: 1\nrules:\n"


def problems(rules: str) -> list[str]:
    return [str(p) for p in check_text(HEAD + rules, "t.yaml").problems]


def test_unknown_condition_field_is_located_with_suggestion() -> None:
    """A misspelt field in a condition names line, column and the likely field."""
    out = problems(
        "  - id: r\n    trigger: {type: score.crossed_above, value: 0.5}\n"
        "    conditions:\n      - {field: lead.compnay, eq: x}\n"
        "    actions: [{type: stop}]\n"
    )
    assert out == [
        "t.yaml:8:17: rules.0.conditions.0.field: unknown field `lead.compnay` — did you mean `lead.company`?"
    ]


def test_unknown_event_field_checked_against_that_event_type() -> None:
    """A filter on `page.viewed` may use `path` but not a field of another event type."""
    ok = "  - id: r\n    trigger: {type: event, event: page.viewed, where: {path: {starts_with: /pricing}}}\n    actions: [{type: stop}]\n"
    assert problems(ok) == []
    bad = ok.replace("path:", "keyword:")
    assert any("unknown field `event.keyword`" in p for p in problems(bad))


def test_unknown_event_type_suggests_the_real_one() -> None:
    """`page.view` is refused with "did you mean `page.viewed`"."""
    out = problems(
        "  - id: r\n    trigger: {type: event, event: page.view}\n    actions: [{type: stop}]\n"
    )
    assert any("did you mean `page.viewed`" in p for p in out)


def test_missing_key_and_bad_duration_are_reported_together() -> None:
    """Every problem of a file is reported at once, not only the first."""
    out = problems(
        "  - id: r\n    trigger: {type: inactivity, for: 3 days}\n"
        "  - id: s\n    trigger: {type: score.crossed_above, value: 0.5}\n"
    )
    assert any("missing required key `actions`" in p for p in out)
    assert any("3 days` is not a duration" in p for p in out)


def test_escalate_needs_an_earlier_nudge() -> None:
    """An escalation with nothing to wait on is a load-time error."""
    out = problems(
        "  - id: r\n    trigger: {type: score.crossed_above, value: 0.5}\n"
        "    actions: [{type: escalate, after: 4h, template: x}]\n"
    )
    assert any("needs an earlier `nudge`" in p for p in out)


def test_template_field_typo_refuses_the_file() -> None:
    """`{{ lead.titel }}` is an error naming `lead.title`; the playbook is refused."""
    with pytest.raises(PlaybookError) as info:
        playbook(
            "  - id: r\n    trigger: {type: score.crossed_above, value: 0.5}\n"
            "    actions: [{type: nudge, template: '{{ lead.titel }}'}]\n"
        )
    assert "did you mean `lead.title`" in info.value.problems[0]


def test_long_sms_is_a_warning_not_an_error() -> None:
    """A template that renders to more than two segments on the sample lead warns but loads."""
    checked = check_text(
        HEAD + "  - id: r\n    trigger: {type: score.crossed_above, value: 0.5}\n"
        "    actions: [{type: nudge, channel: sms, template: '{{ lead.company * 8 }} 🙂'}]\n",
        "t.yaml",
    )
    assert checked.playbook is not None
    [warning] = checked.problems
    assert warning.severity == "warning" and "UCS-2" in warning.message and "🙂" in warning.message


def test_slack_messages_are_not_held_to_sms_length() -> None:
    """The segment warning applies to SMS and `best`, not to Slack-only nudges."""
    checked = check_text(
        HEAD + "  - id: r\n    trigger: {type: score.crossed_above, value: 0.5}\n"
        "    actions: [{type: nudge, channel: slack, template: '{{ lead.company * 8 }}'}]\n",
        "t.yaml",
    )
    assert checked.problems == []


def test_duplicate_rule_ids_are_refused() -> None:
    """Two rules with one id would share cooldowns and nudge ids: refused."""
    rule = "  - id: r\n    trigger: {type: score.crossed_above, value: 0.5}\n    actions: [{type: stop}]\n"
    assert any("used twice" in p for p in problems(rule + rule))


@pytest.mark.parametrize(
    ("text", "seconds"), [("15m", 900), ("4h", 14400), ("3d", 259200), ("2w", 1209600)]
)
def test_durations_read_as_people_write_them(text: str, seconds: int) -> None:
    """`15m`, `4h`, `3d`, `2w` parse to the right number of seconds."""
    assert parse_duration(text) == dt.timedelta(seconds=seconds)


def test_yaml_sexagesimal_time_is_understood() -> None:
    """Unquoted `08:30` (YAML 1.1 reads it as 510) still means half past eight."""
    assert parse_time(510) == dt.time(8, 30)
    assert parse_time("08:30") == dt.time(8, 30)


def test_condition_on_a_field_the_triggering_event_lacks() -> None:
    """A rule on `search.keyword` may not test `event.path` (that event has no path)."""
    out = problems(
        "  - id: r\n    trigger: {type: event, event: search.keyword}\n"
        "    conditions: [{field: event.path, eq: /x}, {expr: \"event.form == 'a'\"}]\n"
        "    actions: [{type: stop}]\n"
    )
    assert len(out) == 2
    assert "unknown field `event.path`" in out[0] and "unknown field `event.form`" in out[1]


def test_misspelt_kind_suggests_the_real_one() -> None:
    """`type: nuge` and `score.crosed_above` get "did you mean" instead of pydantic's jargon."""
    out = problems(
        "  - id: r\n    trigger: {type: score.crosed_above, value: 0.5}\n"
        "    actions: [{type: nuge, template: x}]\n"
    )
    assert out == [
        "t.yaml:6:14: rules.0.trigger: unknown type `score.crosed_above` — did you mean `score.crossed_above`?",
        "t.yaml:7:15: rules.0.actions.0: unknown type `nuge` — did you mean `nudge`?",
    ]
