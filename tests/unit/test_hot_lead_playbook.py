"""The first playbook rule: score crosses above a threshold → nudge the owner."""

from __future__ import annotations

import datetime as dt

import pytest

from nudge.errors import PlaybookError
from nudge.signals import LeadSignal, NudgeCommand, ScheduleStep
from playbooks import evaluate, load_playbooks, parse_playbook, resume
from playbooks.steps import OWNER_WAIT, OWNER_WAITS_MAX
from tests.unit.playbooks import helpers

NOW = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)


def signal(value: float, previous: float | None, owner: str | None = "rep-1") -> LeadSignal:
    """A page view by Acme's lead, owned by ``owner``, scored ``value`` (was ``previous``)."""
    event = {"type": "page.viewed"}
    return helpers.signal(value, previous, event=event, event_id="e9", rep=None, owner_rep_id=owner)


def test_crossing_fires_once_with_reasons() -> None:
    """Going from 50 % to 74 % nudges the owner, naming the lead and the reasons."""
    [command] = evaluate(signal(0.74, 0.5), load_playbooks(), NOW)
    assert command.rep_id == "rep-1" and command.lead_id == "L1"
    assert "Acme is hot: 74% (was 50%)" in command.text
    assert "2 pricing-page visits" in command.text


@pytest.mark.parametrize(("value", "previous"), [(0.74, 0.72), (0.5, 0.4), (0.6, 0.9)])
def test_no_crossing_no_nudge(value: float, previous: float) -> None:
    """Staying above, staying below, or falling does not fire."""
    assert evaluate(signal(value, previous), load_playbooks(), NOW) == []


def test_nudge_id_is_deterministic() -> None:
    """The same signal gives the same nudge id, which is how the outbox refuses a repeat."""
    a = evaluate(signal(0.8, 0.1), load_playbooks(), NOW)
    b = evaluate(signal(0.8, 0.1), load_playbooks(), NOW + dt.timedelta(hours=1))
    assert a[0].nudge_id == b[0].nudge_id


def test_lead_without_owner_waits_for_one_then_texts_the_owner() -> None:
    """A lead whose web visits were scored before its CRM record named an owner: the nudge
    is not lost — the chain waits a minute and is tried again, and once the lead has an
    owner the owner gets the same nudge (same id) a lead with an owner would have got."""
    playbooks = load_playbooks()
    [step] = evaluate(signal(0.8, 0.1, owner=None), playbooks, NOW)
    assert isinstance(step, ScheduleStep)
    assert (step.purpose, step.step, step.due_at) == ("continue", 0, NOW + OWNER_WAIT)
    still_none = resume(step, signal(0.8, 0.1, owner=None), playbooks, step.due_at)
    [again] = still_none.commands
    assert isinstance(again, ScheduleStep) and again.schedule_id != step.schedule_id
    assert again.check["owner_waits"] == 2
    owned = resume(again, signal(0.8, 0.1), playbooks, again.due_at)
    [nudge] = owned.commands
    [direct] = evaluate(signal(0.8, 0.1), playbooks, NOW)
    assert isinstance(nudge, NudgeCommand) and nudge.rep_id == "rep-1"
    assert nudge.nudge_id == direct.nudge_id


def test_a_lead_that_never_gets_an_owner_stops_waiting() -> None:
    """After half an hour of waits the nudge is dropped (logged), not re-planned forever."""
    playbooks = load_playbooks()
    [step] = evaluate(signal(0.8, 0.1, owner=None), playbooks, NOW)
    assert isinstance(step, ScheduleStep)
    last = step.model_copy(update={"check": {**step.check, "owner_waits": OWNER_WAITS_MAX}})
    assert resume(last, signal(0.8, 0.1, owner=None), playbooks, NOW).commands == []


def test_bad_playbook_names_file_line_and_field() -> None:
    """A misspelt key is reported with the file, its line, column, field path and a fix."""
    text = "name: p\nowner: me\nversion: 1\nrules:\n  - id: r\n    triger: {}\n"
    with pytest.raises(PlaybookError) as info:
        parse_playbook(text, "team.yaml")
    assert any(
        p == "team.yaml:6:5: rules.0.triger: unknown key `triger` — did you mean `trigger`?"
        for p in info.value.problems
    )
