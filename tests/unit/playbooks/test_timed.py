"""Time-driven triggers and digests: planned on a signal, fired when the row comes due."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from nudge.signals import LeadSignal, NudgeCommand, ScheduleStep
from playbooks import decide, resume, step_of, timer_signal

from .helpers import NOW, playbook, signal

NUDGE = "    actions: [{type: nudge, template: '{{ lead.company }} idle since {{ lead.last_touch_at | ago }}'}]\n"


def test_inactivity_fires_only_if_no_touch_since_planning() -> None:
    """No touch for 14 days → nudge; a touch in between makes the planned row stale."""
    pb = [playbook("  - id: idle\n    trigger: {type: inactivity, for: 14d}\n" + NUDGE)]
    touched = NOW - dt.timedelta(days=1)
    [row] = decide(signal(last_touch_at=touched), pb, NOW).commands
    assert isinstance(row, ScheduleStep) and row.due_at == touched + dt.timedelta(days=14)
    [cmd] = resume(row, signal(last_touch_at=touched, at=row.due_at), pb, row.due_at).commands
    assert isinstance(cmd, NudgeCommand) and "idle since 14 days ago" in cmd.text
    later_touch = touched + dt.timedelta(days=3)
    assert resume(row, signal(last_touch_at=later_touch), pb, row.due_at).commands == []


def test_new_touch_replans_and_same_plan_is_not_reissued() -> None:
    """Each new touch plans a new row; an unchanged plan issues nothing."""
    pb = [playbook("  - id: idle\n    trigger: {type: inactivity, for: 14d}\n" + NUDGE)]
    first = decide(signal(last_touch_at=NOW), pb, NOW)
    same = decide(signal(last_touch_at=NOW, event_id="e2"), pb, NOW, state=first.state)
    assert same.commands == []
    moved = decide(
        signal(last_touch_at=NOW + dt.timedelta(hours=1), event_id="e3"), pb, NOW, state=first.state
    )
    [a], [b] = first.commands, moved.commands
    assert (
        isinstance(a, ScheduleStep)
        and isinstance(b, ScheduleStep)
        and a.schedule_id != b.schedule_id
    )


def test_weekday_schedule_fires_in_rep_zone_and_plans_the_next() -> None:
    """Weekdays 08:30 in the rep's zone: fires Monday 08:30 New York and plans Tuesday's run."""
    pb = [playbook("  - id: morning\n    trigger: {type: schedule, at: '08:30'}\n" + NUDGE)]
    [row] = decide(signal(last_touch_at=NOW), pb, NOW).commands  # Monday 12:00 UTC = 07:00 NY
    ny = ZoneInfo("America/New_York")
    assert isinstance(row, ScheduleStep)
    assert row.due_at.astimezone(ny) == dt.datetime(2026, 3, 2, 8, 30, tzinfo=ny)
    out = resume(row, signal(last_touch_at=NOW, at=row.due_at), pb, row.due_at).commands
    nudge, following = out
    assert isinstance(nudge, NudgeCommand) and isinstance(following, ScheduleStep)
    assert following.due_at.astimezone(ny) == dt.datetime(2026, 3, 3, 8, 30, tzinfo=ny)


def test_digest_row_sends_one_message_with_every_held_nudge() -> None:
    """Nudges held by the daily cap come out as one digest message when the row is due."""
    pb = [
        playbook(
            "  - id: r\n    trigger: {type: event, event: page.viewed}\n" + NUDGE,
            "guards: {max_per_rep_per_day: 1}\n",
        )
    ]
    d1 = decide(signal(lead_id="A", company="Acme", last_touch_at=NOW), pb, NOW)
    d2 = decide(
        signal(lead_id="B", company="Bolt", last_touch_at=NOW, event_id="e2"),
        pb,
        NOW,
        state=d1.state,
    )
    d3 = decide(
        signal(lead_id="C", company="Core", last_touch_at=NOW, event_id="e3"),
        pb,
        NOW,
        state=d2.state,
    )
    [row] = d2.commands
    assert isinstance(row, ScheduleStep) and row.purpose == "digest" and d3.commands == []
    done = resume(row, None, pb, row.due_at, state=d3.state)
    [digest] = done.commands
    assert isinstance(digest, NudgeCommand) and digest.rep_id == "rep-1"
    assert (
        digest.text.startswith("2 more updates today:")
        and "Bolt" in digest.text
        and "Core" in digest.text
    )
    assert resume(row, None, pb, row.due_at, state=done.state).commands == []  # sent once


def test_timer_signal_carries_its_row_through_the_signals_topic() -> None:
    """A due row sent as a `timer` LeadSignal (JSON round trip) resumes exactly as the row."""
    pb = [playbook("  - id: idle\n    trigger: {type: inactivity, for: 14d}\n" + NUDGE)]
    [row] = decide(signal(last_touch_at=NOW), pb, NOW).commands
    assert isinstance(row, ScheduleStep)
    lead = signal(last_touch_at=NOW)
    sent = timer_signal(lead.lead, lead.score, row, row.due_at, lead.rep)
    received = LeadSignal.model_validate_json(sent.model_dump_json())
    assert step_of(received) == row and step_of(lead) is None
    [cmd] = resume(row, received, pb, row.due_at).commands
    assert isinstance(cmd, NudgeCommand) and cmd.trigger_event_id == row.schedule_id
