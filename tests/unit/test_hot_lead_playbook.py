"""The first playbook rule: score crosses above a threshold → nudge the owner."""

from __future__ import annotations

import datetime as dt

import pytest

from nudge.errors import PlaybookError
from nudge.signals import LeadSignal
from playbooks import evaluate, load_playbooks, parse_playbook
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


def test_lead_without_owner_fires_nothing() -> None:
    """No owner, no one to text: nothing is issued."""
    assert evaluate(signal(0.8, 0.1, owner=None), load_playbooks(), NOW) == []


def test_bad_playbook_names_file_line_and_field() -> None:
    """A misspelt key is reported with the file, its line, column, field path and a fix."""
    text = "name: p\nowner: me\nversion: 1\nrules:\n  - id: r\n    triger: {}\n"
    with pytest.raises(PlaybookError) as info:
        parse_playbook(text, "team.yaml")
    assert any(
        p == "team.yaml:6:5: rules.0.triger: unknown key `triger` — did you mean `trigger`?"
        for p in info.value.problems
    )
