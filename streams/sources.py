"""Webhook routes of the web and call sources: Segment, Twilio Voice, Zoom.

    POST /webhooks/segment        Segment Spec message or batch → web/crm events
    POST /webhooks/twilio/voice   Twilio Voice status callback  → call.ended
    POST /webhooks/zoom           Zoom meeting webhooks         → meeting.ended

Each request's signature is checked first (401 when it does not match, nothing
read or written); parsing is pure, in :mod:`connectors`. Accepted events are
produced to their inbound topic and go through ingest like any other event, so
de-duplication by event id makes a provider's retries harmless. A body that is
signed but cannot be read gets 400 with the reason; items of a batch that Nudge
does not use are answered as skipped, with why.

Served through :mod:`streams.routes` (``build(pipeline, publish)``); ``routes(...)``
mounts the same handlers on any aiohttp application.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from connectors import segment, twilio_voice, zoom
from connectors.common import Outcome
from crm.connector_state import ConnectorState
from crm.outbox import Outbox
from crm.store import Store
from notifiers.inbound import twiml
from notifiers.phones import to_e164
from nudge.clock import Clock, SystemClock
from nudge.errors import EventRejected
from nudge.events import LeadEvent
from nudge.logs import get_logger
from nudge.settings import Settings
from streams.pipeline import Pipeline
from streams.views import error_response
from streams.webhooks import signed_twilio_form, twilio_token

log = get_logger(__name__)

Publish = Callable[[LeadEvent], Awaitable[Any]]
Rejected = Callable[[EventRejected, bytes, str], Awaitable[None]]
"""(the rejection, the body as received, the route's path)"""
StoreSource = Callable[[], Awaitable[Store]]
MAX_FORM_BYTES = 64 * 1024


def _json(value: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(value).encode(), status=status, content_type="application/json"
    )


def _refused(source: str, request: web.Request) -> web.Response:
    log.warning("webhook refused: bad signature", source=source, path=request.path)
    return error_response(401, "invalid signature")


class Sources:
    """The three handlers, sharing the publish callback, the store and the clock."""

    def __init__(
        self,
        publish: Publish,
        store: StoreSource,
        settings: Settings,
        clock: Clock,
        rejected: Rejected | None = None,
    ) -> None:
        self.publish = publish
        self.rejected = rejected
        self.store = store
        self.settings = settings
        self.clock = clock
        self.tracks = segment.TrackMap.load(settings.segment_track_map)
        secret = settings.segment_shared_secret
        self.segment_secret = secret.get_secret_value() if secret else ""
        zoom_secret = settings.zoom_webhook_secret_token
        self.zoom_secret = zoom_secret.get_secret_value() if zoom_secret else ""
        self.twilio_token = twilio_token(settings)

    async def _rejected(self, exc: EventRejected, body: bytes, request: web.Request) -> None:
        """A signed body that is not a usable event: counted, logged, dead-lettered."""
        if self.rejected is not None:
            await self.rejected(exc, body, request.path)
        else:
            log.warning("webhook body not used", route=request.path, reason=exc.reason)

    async def _publish_all(self, outcome: Outcome) -> None:
        for event in outcome.events:
            await self.publish(event)

    async def segment(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if self.segment_secret and not segment.signature_ok(
            self.segment_secret, body, request.headers.get("X-Signature")
        ):
            return _refused("segment", request)
        try:
            outcome = segment.parse(body, self.tracks, self.clock.now())
        except EventRejected as exc:
            await self._rejected(exc, body, request)
            return _json({"accepted": 0, "error": exc.reason}, status=400)
        await self._publish_all(outcome)
        return _json(outcome.summary())

    async def twilio_voice(self, request: web.Request) -> web.StreamResponse:
        if (request.content_length or 0) > MAX_FORM_BYTES:
            return error_response(413, "body too large")
        params = await signed_twilio_form(request, self.twilio_token, self.settings)
        if params is None:
            return _refused("twilio-voice", request)
        _lead, ours, _direction = twilio_voice.parties(params)
        rep = None
        if ours and params.get("CallStatus") == "completed":
            rep = await Outbox(await self.store()).rep_by(phone=ours, normalise=to_e164)
        try:
            event = twilio_voice.call_ended(
                params, self.clock.now(), rep["rep_id"] if rep else None
            )
        except EventRejected as exc:
            await self._rejected(exc, urllib.parse.urlencode(params).encode(), request)
            return error_response(400, exc.reason)
        if event is not None:
            await self.publish(event)
        return web.Response(text=twiml(), content_type="text/xml")

    async def zoom(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        now = self.clock.now()
        if not zoom.signature_ok(
            self.zoom_secret,
            body,
            request.headers.get("x-zm-request-timestamp"),
            request.headers.get("x-zm-signature"),
            now,
        ):
            return _refused("zoom", request)
        try:
            parsed = zoom.parse(body)
        except EventRejected as exc:
            await self._rejected(exc, body, request)
            return _json({"error": exc.reason}, status=400)
        if parsed.plain_token is not None:
            return _json(zoom.url_validation_answer(self.zoom_secret, parsed.plain_token))
        state = ConnectorState(await self.store())
        meeting = parsed.meeting
        if parsed.name == "meeting.participant_joined" and meeting and parsed.email:
            await state.add_participant(meeting.uuid, parsed.email, now)
            return _json({"accepted": 0, "remembered": 1})
        if parsed.name != "meeting.ended" or meeting is None:
            return _json({"accepted": 0, "skipped": f"{parsed.name[:64]} is not used"})
        reps = await state.reps_by_email()
        attendees = zoom.attendees_of(meeting, await state.participants(meeting.uuid), set(reps))
        rep = zoom.host_rep(meeting, reps, self.settings.zoom_hosts)
        events = zoom.meeting_ended(meeting, attendees, now, rep)
        for event in events:
            await self.publish(event)
        if not events:
            return _json({"accepted": 0, "skipped": "no attendee email known for this meeting"})
        return _json({"accepted": len(events)})


def build(p: Pipeline, publish: Publish, rejected: Rejected | None = None) -> Sources:
    """The handlers for a worker; ``publish`` produces an event to its inbound topic,
    ``rejected`` counts and dead-letters a signed body that is not a usable event."""
    return Sources(publish, p.store, p.settings, p.clock, rejected)


def routes(
    publish: Publish, store: StoreSource, settings: Settings, *, clock: Clock | None = None
) -> list[web.RouteDef]:
    """The three source routes, ready for ``router.add_routes(...)``."""
    hooks = Sources(publish, store, settings, clock or SystemClock())
    return [
        web.post("/webhooks/segment", hooks.segment),
        web.post("/webhooks/twilio/voice", hooks.twilio_voice),
        web.post("/webhooks/zoom", hooks.zoom),
    ]
