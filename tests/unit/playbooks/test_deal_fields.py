"""Deals as records (the record's reproduction 6): ``deal.*`` answers are deal fields that
playbooks check, conditions read and templates render — not ``lead.custom.deal_*``."""

from __future__ import annotations

import datetime as dt

from nudge.events import LeadUpdated
from nudge.paths import profile_key
from playbooks.fields import is_known, lookup, views
from playbooks.loader import check_text
from scoring.state import LeadState, apply_event
from tests.unit.playbooks.helpers import signal

T0 = dt.datetime(2026, 3, 2, 15, 0, tzinfo=dt.UTC)

PLAYBOOK = """
name: next-step
description: nudge when the deal's next step is a proposal
owner: ops@example.com
version: 1
rules:
  - id: proposal
    trigger: {type: event, event: lead.updated}
    conditions:
      - {field: deal.next_step, eq: proposal}
    actions:
      - type: nudge
        to: owner
        template: "{{ lead.company }}: send the proposal by {{ deal.close_date }}"
"""


def test_deal_fields_are_known_to_playbooks() -> None:
    """`deal.next_step`, `deal.close_date` and `deal.custom.*` pass `check`; a typo does not."""
    checked = check_text(PLAYBOOK, "next-step.yaml")
    assert checked.playbook is not None, [str(p) for p in checked.problems]
    assert is_known("deal.next_step") and is_known("deal.close_date")
    assert is_known("deal.custom.meeting_rating")
    assert not is_known("deal.nxt_step")


def test_a_deal_answer_reaches_the_deal_the_playbooks_read() -> None:
    """An answer's lead.updated event sets the lead's current deal, which the playbook
    views expose as `deal.next_step` (and not as a custom lead field)."""
    assert profile_key("deal.next_step") == ("deal", "next_step")
    state = LeadState("L1")
    event = LeadUpdated.model_validate(
        {
            "type": "lead.updated",
            "event_id": "qs_1:answers",
            "occurred_at": T0.isoformat(),
            "source": "nudge.questionnaire.post-meeting",
            "lead_id": "L1",
            "fields": {
                "company": "Acme",
                "deal": {"next_step": "proposal", "close_date": "2026-12-15"},
            },
        }
    )
    assert apply_event(state, event)
    assert "custom" not in state.profile
    view = state.view().model_dump(exclude={"lead_id", "last_touch_at"})
    data = views(signal(**view))
    assert lookup(data, "deal.next_step") == "proposal"
    assert lookup(data, "deal.close_date") == "2026-12-15"
