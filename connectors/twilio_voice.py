"""Twilio Voice status callbacks → ``call.ended``.

Twilio POSTs the call's state to the StatusCallback URL, form-encoded and signed
like every Twilio webhook (``X-Twilio-Signature``, checked by twilio's own
``RequestValidator`` in :func:`notifiers.inbound.twilio_signature_ok`). Only the
final ``completed`` callback with a ``CallDuration`` becomes an event; ``ringing``,
``in-progress``, ``busy``, ``no-answer``, ``failed`` and ``canceled`` are acknowledged
and dropped (a call nobody picked up is not a conversation).

The lead is the far end, matched by phone: the ``To`` number of a call we placed
(``Direction`` ``outbound-api`` / ``outbound-dial``), the ``From`` number of one we
received. The near end, when it is a rep's phone, names the rep. The event id is
``twilio-call:<CallSid>``, so Twilio's retries of the callback are harmless.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from email.utils import parsedate_to_datetime

from notifiers.phones import to_e164
from nudge.errors import EventRejected
from nudge.events import CallEnded

MAX_CALL_SECONDS = 7 * 24 * 3600


def parties(params: Mapping[str, str]) -> tuple[str | None, str | None, str]:
    """(lead's number, our side's number, direction), numbers in E.164 or None."""
    inbound = params.get("Direction", "") == "inbound"
    lead, ours = ("From", "To") if inbound else ("To", "From")
    return (
        to_e164(params.get(lead)),
        to_e164(params.get(ours)),
        "inbound" if inbound else "outbound",
    )


def call_ended(
    params: Mapping[str, str], now: dt.datetime, rep_id: str | None = None
) -> CallEnded | None:
    """The ``call.ended`` event of a completed call, ``None`` for any other status."""
    if params.get("CallStatus") != "completed":
        return None
    sid = params.get("CallSid", "").strip()
    if not sid or len(sid) > 64:
        raise EventRejected("CallSid: required")
    try:
        duration = int(params.get("CallDuration", ""))
    except ValueError:
        raise EventRejected("CallDuration: required on a completed call, in seconds") from None
    if not 0 <= duration <= MAX_CALL_SECONDS:
        raise EventRejected(f"CallDuration: {duration} is out of range")
    lead_phone, _ours, direction = parties(params)
    if lead_phone is None:
        raise EventRejected("From/To: the caller's number is not a phone number")
    return CallEnded(
        type="call.ended",
        event_id=f"twilio-call:{sid}",
        occurred_at=_timestamp(params.get("Timestamp"), now),
        source="twilio-voice",
        phone=lead_phone,
        rep_id=rep_id,
        direction=direction,  # type: ignore[arg-type]
        duration_s=duration,
        outcome="completed",
    )


def _timestamp(value: str | None, now: dt.datetime) -> dt.datetime:
    """Twilio's ``Timestamp`` is RFC 2822 (``Mon, 16 Aug 2010 03:45:01 +0000``)."""
    if not value:
        return now
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return now
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)
