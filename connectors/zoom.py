"""Zoom meeting webhooks → ``meeting.ended``.

Zoom signs every request: ``x-zm-signature`` is ``v0=`` + hex HMAC-SHA256 of
``v0:{x-zm-request-timestamp}:{raw body}`` with the app's secret token
(``ZOOM_WEBHOOK_SECRET_TOKEN``); requests more than five minutes from our clock are
refused as replays. When the endpoint is saved, Zoom sends
``endpoint.url_validation`` with a ``plainToken`` and expects it back with
``encryptedToken`` = hex HMAC-SHA256 of it (:func:`url_validation_answer`).

``meeting.ended`` names the host (``host_id``, and ``host_email`` since April 2026): the
rep is the one whose email is the host's, else the one ``NUDGE_ZOOM_HOSTS`` maps the host
id to (:func:`host_rep`), so a post-meeting questionnaire can go to the rep who held the
meeting (``to: event_rep``). It carries no attendees; they come from
``meeting.participant_joined``, whose participant has an ``email`` for a signed-in
or registered attendee. Those are remembered per meeting (``zoom_participants``)
and the end of the meeting becomes one ``meeting.ended`` per attendee email —
each attendee's lead gets its meeting. Event ids are ``zoom:<meeting uuid>:<email>``,
so a retried ``meeting.ended`` is harmless; a meeting with no known attendee email
becomes nothing (the route answers why).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from connectors.common import hmac_hex, json_body, same
from nudge.errors import EventRejected
from nudge.events import MeetingEnded

MAX_AGE = dt.timedelta(minutes=5)
MAX_BODY_BYTES = 256 * 1024


def signature_ok(
    secret: str, body: bytes, timestamp: str | None, signature: str | None, now: dt.datetime
) -> bool:
    """Zoom's v0 signature over ``v0:{timestamp}:{body}``, and the timestamp recent."""
    if not secret or not timestamp or not signature:
        return False
    try:
        seconds = int(timestamp)
    except ValueError:
        return False
    if seconds > 10**11:  # milliseconds
        seconds //= 1000
    try:
        sent = dt.datetime.fromtimestamp(seconds, dt.UTC)
    except (OverflowError, OSError, ValueError):
        return False
    if abs(now - sent) > MAX_AGE:
        return False
    message = b"v0:" + timestamp.encode() + b":" + body
    return same(signature, "v0=" + hmac_hex(secret, message))


def url_validation_answer(secret: str, plain_token: str) -> dict[str, str]:
    """The answer to ``endpoint.url_validation``."""
    return {"plainToken": plain_token, "encryptedToken": hmac_hex(secret, plain_token.encode())}


@dataclass(frozen=True)
class Meeting:
    uuid: str
    topic: str | None
    start: dt.datetime | None
    end: dt.datetime | None
    duration_min: int | None
    host_id: str | None = None
    host_email: str | None = None


@dataclass(frozen=True)
class ZoomEvent:
    """One parsed webhook: its name, the meeting, and a participant for join events."""

    name: str
    meeting: Meeting | None = None
    email: str | None = None
    plain_token: str | None = None


def parse(body: bytes) -> ZoomEvent:
    """The webhook's name and what Nudge reads from it; raise EventRejected if malformed."""
    data = json_body(body, MAX_BODY_BYTES)
    if not isinstance(data, dict) or not isinstance(data.get("event"), str):
        raise EventRejected("event: required")
    name = data["event"]
    payload = data["payload"] if isinstance(data.get("payload"), dict) else {}
    if name == "endpoint.url_validation":
        token = payload.get("plainToken")
        if not isinstance(token, str) or not token or len(token) > 256:
            raise EventRejected("payload.plainToken: required")
        return ZoomEvent(name, plain_token=token)
    obj = payload.get("object")
    if not isinstance(obj, dict):
        return ZoomEvent(name)
    uuid = obj.get("uuid")
    if not isinstance(uuid, str) or not uuid or len(uuid) > 128:
        raise EventRejected("payload.object.uuid: required")
    duration = obj.get("duration")
    meeting = Meeting(
        uuid=uuid,
        topic=obj["topic"][:256] if isinstance(obj.get("topic"), str) and obj["topic"] else None,
        start=_time(obj.get("start_time")),
        end=_time(obj.get("end_time")),
        duration_min=duration if isinstance(duration, int) and 0 <= duration < 10**6 else None,
        host_id=_short(obj.get("host_id")),
        host_email=(_short(obj.get("host_email")) or "").lower() or None,
    )
    participant = obj.get("participant")
    email = participant.get("email") if isinstance(participant, dict) else None
    return ZoomEvent(name, meeting, email if isinstance(email, str) and email else None)


def host_rep(meeting: Meeting, rep_by_email: dict[str, str], hosts: dict[str, str]) -> str | None:
    """The rep who held the meeting: by the host's email, else by the host id's mapping."""
    if meeting.host_email and meeting.host_email in rep_by_email:
        return rep_by_email[meeting.host_email]
    return hosts.get(meeting.host_id) if meeting.host_id else None


def attendees_of(meeting: Meeting, seen: list[str], rep_emails: set[str]) -> list[str]:
    """The emails seen join that are leads: not a rep's, not the host's."""
    return [e for e in seen if e not in rep_emails and e != meeting.host_email]


def meeting_ended(
    meeting: Meeting, attendees: list[str], now: dt.datetime, rep_id: str | None = None
) -> list[MeetingEnded]:
    """One ``meeting.ended`` per attendee email (bad emails are left out)."""
    end = meeting.end or now
    if meeting.start and meeting.end:
        seconds = max(0.0, (meeting.end - meeting.start).total_seconds())
    else:
        seconds = float((meeting.duration_min or 0) * 60)
    seconds = min(seconds, 7 * 24 * 3600)
    events = []
    for email in attendees:
        try:
            events.append(
                MeetingEnded(
                    type="meeting.ended",
                    event_id=f"zoom:{meeting.uuid}:{email}"[:256],
                    occurred_at=end,
                    source="zoom",
                    email=email,
                    rep_id=rep_id,
                    duration_s=seconds,
                    title=meeting.topic,
                    attendees=[],
                )
            )
        except ValueError:  # pydantic's ValidationError: not an email address
            continue
    return events


def _short(value: Any) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= 256 else None


def _time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)
