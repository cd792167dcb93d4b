"""The event schemas: strict, and every error names the field."""

from __future__ import annotations

import json

import pytest

from nudge.errors import EventRejected
from nudge.events import MAX_PAYLOAD_BYTES, LeadCreated, PageViewed, event_to_json, parse_event

GOOD = {
    "event_id": "e-1",
    "type": "page.viewed",
    "occurred_at": "2026-03-02T10:00:00+01:00",
    "source": "web-tag",
    "visitor_id": "v-1",
    "path": "/pricing",
}


def reason(data: dict[str, object] | bytes) -> str:
    with pytest.raises(EventRejected) as info:
        parse_event(data if isinstance(data, bytes) else json.dumps(data).encode())
    return info.value.reason


def test_valid_event_parses_to_its_type() -> None:
    """A well-formed page view becomes a PageViewed with an aware timestamp."""
    event = parse_event(json.dumps(GOOD))
    assert isinstance(event, PageViewed)
    assert event.occurred_at.utcoffset() is not None
    assert event.silo == "web"


def test_round_trip_is_lossless() -> None:
    """What event_to_json writes, parse_event reads back equal."""
    event = parse_event(json.dumps(GOOD))
    assert parse_event(event_to_json(event)) == event


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"zzz": 1}, "zzz: unknown field"),
        ({"occurred_at": "2026-03-02T10:00:00"}, "occurred_at"),
        ({"event_id": ""}, "event_id"),
        ({"event_id": "x" * 257}, "event_id"),
        ({"path": ""}, "path"),
        ({"seconds_on_page": -1}, "seconds_on_page"),
        ({"email": "not-an-email"}, "email"),
    ],
)
def test_bad_fields_are_named(change: dict[str, object], field: str) -> None:
    """Unknown fields, naive times, empty or huge ids, negatives are errors naming the field."""
    assert field in reason({**GOOD, **change})


def test_negative_duration_and_count_rejected() -> None:
    """A call cannot last minus a second; a search cannot happen minus once."""
    call = {**GOOD, "type": "call.ended", "duration_s": -5}
    del call["path"]
    assert "duration_s" in reason(call)
    search = {**GOOD, "type": "search.keyword", "keyword": "crm", "count": -1}
    del search["path"]
    assert "count" in reason(search)


def test_event_must_identify_a_lead() -> None:
    """Without lead_id, email, phone or visitor id there is no one to score."""
    data = dict(GOOD)
    del data["visitor_id"]
    assert "identify its lead" in reason(data)


def test_unknown_type_lists_the_known_ones() -> None:
    """A misspelt type says which types exist."""
    assert "page.viewed" in reason({**GOOD, "type": "page.view"})


def test_oversized_payload_refused_whole() -> None:
    """A payload over 64 KB is refused, never truncated."""
    big = json.dumps({**GOOD, "title": "x" * MAX_PAYLOAD_BYTES}).encode()
    assert "limit" in reason(big)


def test_not_json_and_not_object() -> None:
    """Garbage and non-objects get a plain-words reason."""
    assert "not valid JSON" in reason(b"{nope")
    assert "JSON object" in reason(b"[1, 2]")


def test_lead_created_carries_profile_fields() -> None:
    """CRM profile fields are typed: money as decimal, custom fields kept."""
    event = parse_event(
        {
            "event_id": "c1",
            "type": "lead.created",
            "occurred_at": "2026-03-02T10:00:00Z",
            "source": "crm",
            "lead_id": "L1",
            "fields": {
                "company": "Acme",
                "deal_value": "1200.50",
                "custom": {"lease_expires_on": "2026-09-30"},
            },
        }
    )
    assert isinstance(event, LeadCreated)
    assert float(event.fields.deal_value or 0) == 1200.5
    assert event.fields.custom == {"lease_expires_on": "2026-09-30"}


def test_rep_timezone_must_exist() -> None:
    """A rep's time zone decides quiet hours, so a typo in it is an error."""
    rep = {
        "event_id": "r1",
        "type": "rep.upserted",
        "occurred_at": "2026-03-02T10:00:00Z",
        "source": "crm",
        "rep_id": "r",
        "name": "R",
        "timezone": "Europe/Pariss",
    }
    assert "timezone" in reason(rep)
