"""More than one deal per lead: deal events may name their deal; ``deal.*`` fields address
the lead's current open deal unless an id is given — in the lead's state (pure) and in
the store's one writer (on SQLite and PostgreSQL), which must agree."""

from __future__ import annotations

import datetime as dt
from typing import Any

from crm.record import Source
from crm.store import Store
from nudge.events import parse_event
from nudge.paths import apply_changes, deal_route
from scoring.state import LeadState, apply_event, profile_changes
from tests.conftest import STORES

NOW = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)


def event(n: int, kind: str, **body: Any) -> dict[str, Any]:
    return {
        "event_id": f"e{n}",
        "type": kind,
        "occurred_at": (NOW + dt.timedelta(minutes=n)).isoformat(),
        "source": "crm",
        "lead_id": "L1",
        **body,
    }


EVENTS = [
    event(
        1, "lead.created", fields={"company": "Acme", "stage": "demo", "deal": {"deal_id": "D1"}}
    ),
    event(2, "deal.stage_changed", to_stage="proposal", deal_id="D2"),  # another, open deal
    event(3, "lead.updated", fields={"deal": {"next_step": "send contract"}}),  # the current
    event(4, "deal.lost", deal_id="D1"),
    event(5, "deal.stage_changed", to_stage="negotiation", deal_id="D2"),  # now the current
]


def test_a_named_deal_that_is_not_current_leaves_the_lead_alone() -> None:
    """While D1 is open, a stage change of D2 does not move the lead's stage; once D1 is
    lost, the next event about D2 makes it the lead's current, open deal."""
    state = LeadState("L1")
    seen = []
    for raw in EVENTS:
        apply_event(state, parse_event(raw))
        seen.append((state.profile.get("deal", {}).get("deal_id"), state.profile.get("stage")))
    assert seen == [
        ("D1", "demo"),
        ("D1", "demo"),
        ("D1", "demo"),
        ("D1", "demo"),
        ("D2", "negotiation"),
    ]
    assert state.profile["status"] == "open"
    assert "next_step" not in state.profile["deal"]  # D1's next step is not D2's


def test_the_route_of_a_change() -> None:
    """No id or the current id: current; the lead's first named deal: current; another
    deal: other while the current is open, switch once it is closed."""
    profile: dict[str, Any] = {"deal": {"deal_id": "D1"}, "status": "open"}
    assert deal_route(profile, {"lead.stage": "x"}, "L1") == "current"
    assert deal_route(profile, {"deal.deal_id": "D1"}, "L1") == "current"
    assert deal_route(profile, {"deal.deal_id": "D2"}, "L1") == "other"
    assert deal_route({**profile, "status": "won"}, {"deal.deal_id": "D2"}, "L1") == "switch"
    assert deal_route({"deal": {"deal_id": "L1:deal"}}, {"deal.deal_id": "D2"}, "L1") == ("current")
    fresh: dict[str, Any] = {}
    apply_changes(fresh, {"deal.deal_id": "D1", "deal.next_step": "demo"}, "L1")
    assert fresh == {"deal": {"deal_id": "D1", "next_step": "demo"}}


@STORES
async def test_the_store_keeps_each_deal_as_the_state_does(store: Store) -> None:
    """The same events merged by the store's writer: two deals rows, each with its own
    stage and status; the lead's profile is its current deal's, as in the state; the
    change to the other deal is audited under its id."""
    state = LeadState("L1")
    for raw in EVENTS:
        ev = parse_event(raw)
        changes = profile_changes(ev, state.profile)
        apply_event(state, ev)
        source = Source(kind="crm", at=ev.occurred_at, event_id=ev.event_id)
        await store.merge_fields("L1", changes, source, NOW)
    profile = await store.lead_profile("L1")
    assert profile is not None
    assert {k: profile.get(k) for k in ("stage", "status", "deal")} == {
        k: state.profile.get(k) for k in ("stage", "status", "deal")
    }
    from crm.record import deals

    rows = {
        d["deal_id"]: (d["stage"], d["status"], d["next_step"]) for d in await deals(store.db, "L1")
    }
    assert rows == {
        "D1": ("demo", "lost", "send contract"),
        "D2": ("negotiation", "open", None),
    }
    from crm.conversations import field_changes

    audited = [c.field for c in await field_changes(store.db, "L1")]
    assert "deals.D2.stage" in audited and "deal.deal_id" in audited


@STORES
async def test_a_deal_that_becomes_current_keeps_what_the_store_held(store: Store) -> None:
    """D2's stage, kept while D1 was current, is still D2's when D2 becomes the current
    deal by an event that does not repeat it (deal.won): never overwritten with less."""
    crm = Source(kind="crm", at=NOW)
    await store.merge_fields("L1", {"deal.deal_id": "D1", "lead.stage": "demo"}, crm, NOW)
    await store.merge_fields("L1", {"deal.deal_id": "D2", "lead.stage": "proposal"}, crm, NOW)
    await store.merge_fields("L1", {"deal.deal_id": "D1", "lead.status": "lost"}, crm, NOW)
    await store.merge_fields("L1", {"deal.deal_id": "D2", "lead.status": "won"}, crm, NOW)
    profile = await store.lead_profile("L1")
    assert profile is not None
    assert (profile["deal"]["deal_id"], profile["stage"], profile["status"]) == (
        "D2",
        "proposal",
        "won",
    )
