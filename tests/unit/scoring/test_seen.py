"""A lead remembers the events it applied by time, not by count: a day's worth, at least
the last 16, at most 256 — and a redelivered event is applied once."""

from __future__ import annotations

import orjson

from scoring.state import SEEN_MAX, SEEN_MIN, LeadState, apply_event, event_key

from .helpers import view


def test_a_redelivered_event_is_applied_once() -> None:
    state = LeadState("L")
    first = view("L", 0)
    assert apply_event(state, first)
    assert not apply_event(state, first.model_copy())
    assert state.features["n"] == 1


def test_memory_holds_a_day_of_events_and_never_only_grows() -> None:
    """A lead with an event every 10 minutes for 30 days remembers about a day of them."""
    state = LeadState("L")
    events = [view("L", k / 6) for k in range(30 * 24 * 6)]
    for e in events:
        assert apply_event(state, e)
    assert SEEN_MIN <= len(state.seen) <= 24 * 6 + 1
    for e in events[-24 * 6 :]:  # the last day's are all still recognised
        assert not apply_event(state, e.model_copy())
    assert apply_event(state, events[0].model_copy())  # a month-old id is forgotten
    stored = len(orjson.dumps(state.to_dict()["seen"]))
    assert stored < 24 * 6 * 30  # ~25 bytes an event, not ~40 for a UUID


def test_a_quiet_lead_remembers_its_last_events_however_old() -> None:
    """A redelivery after a long stop is of a lead's last events: they stay recognised."""
    state = LeadState("L")
    events = [view("L", 24 * 7 * k) for k in range(40)]  # one a week
    for e in events:
        apply_event(state, e)
    assert len(state.seen) == SEEN_MIN
    assert all(not apply_event(state, e.model_copy()) for e in events[-SEEN_MIN:])


def test_a_flood_is_capped_and_a_late_event_is_kept_like_a_current_one() -> None:
    state = LeadState("L")
    for k in range(1000):
        apply_event(state, view("L", 1 + k / 3600))  # 1,000 events in 17 minutes
    assert len(state.seen) == SEEN_MAX
    late = view("L", 0)  # an hour older than the rest: kept for the lead's next day
    assert apply_event(state, late)
    for k in range(SEEN_MIN * 2):
        apply_event(state, view("L", 2 + k / 60))
    assert not apply_event(state, late.model_copy())


def test_a_state_stored_with_a_list_of_event_ids_still_recognises_them() -> None:
    old = LeadState("L")
    events = [view("L", k) for k in range(3)]
    for e in events:
        apply_event(old, e)
    data = {**old.to_dict(), "seen": [e.event_id for e in events]}
    state = LeadState.from_dict(orjson.loads(orjson.dumps(data)))
    assert set(state.seen) == {event_key(e.event_id) for e in events}
    assert all(not apply_event(state, e.model_copy()) for e in events)
