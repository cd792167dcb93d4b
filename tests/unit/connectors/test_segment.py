"""Segment Spec messages → Nudge events (connectors.segment), pure."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from connectors import segment
from nudge.errors import ConfigError, EventRejected

NOW = dt.datetime(2026, 3, 2, 17, 0, tzinfo=dt.UTC)
TRACKS = segment.TrackMap.load()


def body(value: object) -> bytes:
    return json.dumps(value).encode()


def test_page_becomes_page_viewed_with_message_id_as_event_id() -> None:
    """A page call is a page.viewed on its path, identified by anonymousId, event id from messageId."""
    out = segment.parse(
        body(
            {
                "type": "page",
                "messageId": "m-1",
                "anonymousId": "anon-7",
                "name": "Pricing",
                "properties": {"url": "https://acme.example/pricing?x=1"},
                "timestamp": "2026-03-02T16:59:00.000Z",
            }
        ),
        TRACKS,
        NOW,
    )
    (event,) = out.events
    assert event.type == "page.viewed"
    assert event.event_id == "segment:m-1"
    assert event.visitor_id == "anon-7"
    assert event.path == "/pricing"  # type: ignore[union-attr]
    assert event.title == "Pricing"  # type: ignore[union-attr]
    assert event.occurred_at == dt.datetime(2026, 3, 2, 16, 59, tzinfo=dt.UTC)


def test_batch_shares_context_and_maps_named_tracks() -> None:
    """A batch's shared context.traits.email names the lead; mapped tracks become their type."""
    out = segment.parse(
        body(
            {
                "batch": [
                    {
                        "type": "track",
                        "event": "Demo Requested",
                        "messageId": "m-2",
                        "userId": "u-9",
                        "properties": {"form_name": "demo"},
                    },
                    {"type": "track", "event": "Clicked Logo", "messageId": "m-3", "userId": "u-9"},
                    {
                        "type": "track",
                        "event": "Products Searched",
                        "messageId": "m-4",
                        "userId": "u-9",
                        "properties": {"query": "sso pricing"},
                    },
                ],
                "context": {"traits": {"email": "Jane@Acme.example"}},
            }
        ),
        TRACKS,
        NOW,
    )
    assert [e.type for e in out.events] == ["form.submitted", "search.keyword"]
    form = out.events[0]
    assert form.form == "demo"  # type: ignore[union-attr]
    assert form.visitor_id == "user:u-9"
    assert form.email == "Jane@acme.example"  # email-validator normalises the domain
    assert out.events[1].keyword == "sso pricing"  # type: ignore[union-attr]
    assert out.skipped == [
        {"index": 1, "id": "m-3", "reason": "track 'Clicked Logo' is not in the track map"}
    ]


def test_identify_and_group_update_profile_fields_alias_skipped() -> None:
    """identify sets name/title/company from traits, group sets company; alias is skipped."""
    out = segment.parse(
        body(
            {
                "batch": [
                    {
                        "type": "identify",
                        "messageId": "i-1",
                        "anonymousId": "a-1",
                        "traits": {
                            "email": "ann@globex.example",
                            "firstName": "Ann",
                            "lastName": "Lee",
                            "title": "CFO",
                            "company": {"name": "Globex"},
                        },
                    },
                    {
                        "type": "group",
                        "messageId": "g-1",
                        "anonymousId": "a-1",
                        "groupId": "grp",
                        "traits": {"name": "Globex Inc", "industry": "Energy", "employees": 420},
                    },
                    {"type": "alias", "messageId": "al-1", "previousId": "a-1", "userId": "u-1"},
                ]
            }
        ),
        TRACKS,
        NOW,
    )
    identify, group = out.events
    assert identify.type == "lead.updated"
    assert identify.fields.contact_name == "Ann Lee"  # type: ignore[union-attr]
    assert identify.fields.company == "Globex"  # type: ignore[union-attr]
    assert identify.fields.title == "CFO"  # type: ignore[union-attr]
    assert group.fields.company == "Globex Inc"  # type: ignore[union-attr]
    assert group.fields.employees == 420  # type: ignore[union-attr]
    assert group.visitor_id == "a-1" and group.email is None
    assert out.skipped[0]["id"] == "al-1" and "alias" in str(out.skipped[0]["reason"])


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ({"type": "page", "anonymousId": "a"}, "messageId: required"),
        ({"type": "screen", "messageId": "x", "anonymousId": "a"}, "not a Segment Spec call"),
        ({"type": "page", "messageId": "x"}, "must identify its lead"),
        (
            {"type": "page", "messageId": "x", "anonymousId": "a", "timestamp": "yesterday"},
            "timestamp: not an ISO 8601 time",
        ),
        (
            {"type": "identify", "messageId": "x", "traits": {"email": "not-an-email"}},
            "email",
        ),
    ],
)
def test_bad_messages_are_skipped_with_the_field(message: dict[str, object], reason: str) -> None:
    """A message Nudge cannot use is skipped with a reason naming the field; others still pass."""
    out = segment.parse(
        body({"batch": [message, {"type": "page", "messageId": "ok", "anonymousId": "a"}]}),
        TRACKS,
        NOW,
    )
    assert [e.event_id for e in out.events] == ["segment:ok"]
    assert reason in str(out.skipped[0]["reason"])


@pytest.mark.parametrize("raw", [b"", b"[]", b"not json", b'{"batch": 3}', b"1" * 600_000])
def test_unreadable_bodies_are_rejected_whole(raw: bytes) -> None:
    """A body that is not a message or a batch of them is refused with a reason."""
    with pytest.raises(EventRejected):
        segment.parse(raw, TRACKS, NOW)


def test_signature_is_hex_hmac_sha1_of_the_body() -> None:
    """X-Signature checks against a fixed vector; tampering or a missing header fails."""
    # printf '{"a":1}' | openssl dgst -sha1 -hmac secret
    good = "f8446672f033e4b2beafc5ca3a71eafcd2cafb6e"
    assert segment.signature_ok("secret", b'{"a":1}', good)
    assert not segment.signature_ok("secret", b'{"a":2}', good)
    assert not segment.signature_ok("other", b'{"a":1}', good)
    assert not segment.signature_ok("secret", b'{"a":1}', None)


def test_track_map_errors_name_file_and_line(tmp_path: Path) -> None:
    """A track mapped to an unknown type is a ConfigError with file:line and the valid types."""
    path = tmp_path / "tracks.yaml"
    path.write_text("tracks:\n  Demo Requested: form.submitted\n  Booked: meeting.booked\n")
    with pytest.raises(
        ConfigError, match=r"tracks\.yaml:3: track 'Booked' maps to 'meeting\.booked'"
    ):
        segment.TrackMap.load(path)
    path.write_text("trax:\n  A: page.viewed\n")
    with pytest.raises(ConfigError, match=r"tracks\.yaml:1: unknown key 'trax'"):
        segment.TrackMap.load(path)
