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
