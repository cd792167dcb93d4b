"""History never texts: a signal caused by an event older than NUDGE_HISTORY_AGE_HOURS fires no rule.

Run through the real playbook agent handler in process (tests/harness.py), with the bundled
hot-lead playbook: the same crossing texts the owner when it is fresh, and not when it is old.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from nudge.clock import FixedClock
from nudge.signals import LeadSignal, LeadView, Score
from streams import agents
from tests.harness import AgentHarness

NOW = dt.datetime(2026, 3, 2, 15, 0, tzinfo=dt.UTC)


def crossing(at: dt.datetime, source: str = "web") -> dict[str, object]:
    return LeadSignal(
        lead=LeadView(lead_id="L1", company="Acme", owner_rep_id="rep-1"),
        event={"type": "page.viewed", "source": source},
        event_id=f"e-{at.isoformat()}",
        event_type="page.viewed",
        at=at,
        score=Score(
            value=0.8,
            previous=0.4,
            reasons=["3 pricing-page visits"],
            model_version="points-v1",
            rule_based=True,
            scored_at=at,
        ),
    ).model_dump(mode="json")


@pytest.mark.parametrize(
    ("age_setting", "event_age", "texts"),
    [
        (24.0, dt.timedelta(days=3), 0),  # a re-sync's three-day-old change: no text
        (24.0, dt.timedelta(minutes=5), 1),  # a fresh one: the owner is told
        (0.0, dt.timedelta(days=3), 1),  # the guard off: as before
    ],
)
async def test_old_events_fire_no_rule(
    tmp_path: Path, age_setting: float, event_age: dt.timedelta, texts: int
) -> None:
    """Only signals of events younger than the setting reach the playbooks."""
    h = AgentHarness(tmp_path, clock=FixedClock(NOW), history_age_hours=age_setting)
    try:
        message = h.message("lead.signals", crossing(NOW - event_age), key=b"rep-1")
        await h.run("playbook", agents.playbook, [message])
        nudges = h.topics["nudges"].sent
        assert len(nudges) == texts
        assert h.p.stats["signals.history"] == (1 - texts)
    finally:
        await h.close()


async def test_a_connectors_initial_load_fires_no_rule(tmp_path: Path) -> None:
    """An event of a first load (source ``*.initial``) is history even when fresh and the age guard is off."""
    h = AgentHarness(tmp_path, clock=FixedClock(NOW))
    try:
        fresh = crossing(NOW - dt.timedelta(minutes=1), source="salesforce.initial")
        await h.run("playbook", agents.playbook, [h.message("lead.signals", fresh, key=b"rep-1")])
        assert h.topics["nudges"].sent == [] and h.p.stats["signals.history"] == 1
    finally:
        await h.close()


def lease(lead: str, ends: dt.date, source: str, at: dt.datetime = NOW) -> dict[str, object]:
    """A signal for a lead of the bundled office-furniture-lease example (120 days before the
    lease ends, at 09:00)."""
    return LeadSignal(
        lead=LeadView(
            lead_id=lead,
            company="Acme",
            owner_rep_id="rep-1",
            custom={"lease_expires_on": ends.isoformat()},
        ),
        event={"type": "lead.updated", "source": source},
        event_id=f"e-{lead}-{source}-{ends}",
        event_type="lead.updated",
        at=at,
        score=Score(value=0.3, model_version="points-v1", rule_based=True, scored_at=at),
    ).model_dump(mode="json")


async def test_a_date_rule_inside_its_window_at_the_initial_load_waits_not_floods(
    tmp_path: Path,
) -> None:
    """Leads loaded already inside a date rule's window (their lease ends in 60 days: the
    "120 days before" moment passed before the connection) are planned from the initial load
    without catching up, so their first live signals plan nothing "at once"; a lead whose
    window opens later is planned for that opening; a date changed live still fires at once."""
    from playbooks.loader import EXAMPLES

    h = AgentHarness(
        tmp_path,
        clock=FixedClock(NOW),
        playbooks=[EXAMPLES / "office-furniture-lease.yaml"],
    )
    inside, later = NOW.date() + dt.timedelta(days=60), NOW.date() + dt.timedelta(days=200)
    try:
        initial = [
            h.message("lead.signals", lease(f"L{i}", inside, "hubspot.initial"), key=b"rep-1")
            for i in range(20)
        ] + [h.message("lead.signals", lease("L-later", later, "hubspot.initial"), key=b"rep-1")]
        await h.run("playbook", agents.playbook, initial)
        live = [
            h.message(
                "lead.signals",
                lease(f"L{i}", inside, "hubspot", NOW + dt.timedelta(hours=1)),
                key=b"rep-1",
            )
            for i in range(20)
        ]
        await h.run("playbook", agents.playbook, live)
        rows = await (await h.p.schedules()).due(NOW + dt.timedelta(days=1))
        assert rows == []  # nothing due at once for the twenty leads already inside
        assert h.p.stats["schedules.added"] == 1  # L-later, at its window's opening
        moved = NOW.date() + dt.timedelta(days=90)  # a rep enters a new date, inside the window
        await h.run(
            "playbook",
            agents.playbook,
            [h.message("lead.signals", lease("L0", moved, "hubspot"), key=b"rep-1")],
        )
        (row,) = await (await h.p.schedules()).due(NOW + dt.timedelta(days=1))
        assert row.lead_id == "L0"
    finally:
        await h.close()
