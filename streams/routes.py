"""Every route the worker's web server serves, with its auth — the one list.

A route not listed here is not served (404). ``auth`` says who may call it (see
:mod:`streams.access`):

=========  ==============================================================
open       anyone who can reach the port: probes, the API document
token      ``Authorization: Bearer <NUDGE_API_TOKEN>`` when a token is set
metrics    a loopback peer, or the token
twilio     the ``X-Twilio-Signature`` the handler checks (403 otherwise)
slack      the ``X-Slack-Signature`` the handler checks (403 otherwise)
segment    the ``X-Signature`` the handler checks (401 otherwise); with no
           ``SEGMENT_SHARED_SECRET`` the route needs the token instead
zoom       the ``x-zm-signature`` the handler checks (401 otherwise)
hubspot    the ``X-HubSpot-Signature-v3`` the handler checks (401 otherwise)
=========  ==============================================================

To add a route: add a :class:`Route` to :func:`routes` with its handler, auth, the
media types its body may have (``accepts``) and its OpenAPI operation (``doc``:
``requestBody`` and ``responses``); the auth-, limit- and error responses every route
shares are added to the document by :mod:`streams.openapi`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from streams import openapi
from streams.access import Auth

if TYPE_CHECKING:
    from streams.pipeline import Pipeline

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

JSON_BODIES = ("application/json", "application/x-ndjson", "application/jsonl")
FORM = ("application/x-www-form-urlencoded",)


@dataclass(frozen=True)
class Route:
    """One served path and method, who may call it, and its OpenAPI operation."""

    method: str
    path: str
    handler: Handler
    auth: Auth
    summary: str
    accepts: tuple[str, ...] = ()
    """Media types the request body may have; empty: any (or none expected)."""
    limited: bool = True
    """Counted against the per-client request rate."""
    doc: Mapping[str, Any] = field(default_factory=dict)
    """The OpenAPI operation's ``requestBody`` and ``responses``."""


def routes(p: Pipeline) -> list[Route]:
    """Nudge's routes, in the order the API document lists them."""
    from streams import crm_connectors, explain, sources, webhooks
    from streams.views import Api

    api = Api(p)
    hooks = webhooks.build(p)
    feeds = sources.build(p, api.publish, api.rejected)
    hubspot = crm_connectors.HubSpotHook(api.publish, p.store, p.settings, p.clock, api.rejected)
    segment_auth: Auth = "segment" if p.settings.segment_shared_secret else "token"
    document = openapi.Document()
    table = [
        Route(
            "POST", "/events", api.events, "token", "Send events (JSON, array or NDJSON)",
            accepts=JSON_BODIES, doc=openapi.EVENTS,
        ),
        Route("GET", "/health", api.health, "open", "Liveness", limited=False, doc=openapi.HEALTH),
        Route("GET", "/ready", api.ready, "open", "Readiness", limited=False, doc=openapi.READY),
        Route("GET", "/metrics", api.metrics, "metrics", "Prometheus metrics", doc=openapi.METRICS),
        Route("GET", "/stats", api.stats, "token", "Counters of this worker", doc=openapi.STATS),
        Route(
            "GET", "/playbooks/explain", explain.handler(p), "token",
            "Why a lead's rules did or did not fire (last evaluations)", doc=explain.DOC,
        ),
        Route(
            "GET", "/openapi.json", document.handler, "open", "This API document",
            doc=openapi.SELF,
        ),
        Route(
            "POST", "/webhooks/twilio/sms", hooks.twilio_sms, "twilio", "Twilio: inbound SMS",
            accepts=FORM, doc=openapi.TWILIO,
        ),
        Route(
            "POST", "/webhooks/twilio/status", hooks.twilio_status, "twilio",
            "Twilio: delivery receipts", accepts=FORM, doc=openapi.TWILIO,
        ),
        Route(
            "POST", "/webhooks/slack/events", hooks.slack, "slack", "Slack: Events API",
            accepts=("application/json", *FORM), doc=openapi.SLACK,
        ),
        Route(
            "POST", "/webhooks/slack/interactions", hooks.slack, "slack",
            "Slack: interactive messages", accepts=("application/json", *FORM), doc=openapi.SLACK,
        ),
        Route(
            "POST", "/webhooks/segment", feeds.segment, segment_auth,
            "Segment: Spec messages and batches", accepts=("application/json",),
            doc=openapi.SEGMENT,
        ),
        Route(
            "POST", "/webhooks/twilio/voice", feeds.twilio_voice, "twilio",
            "Twilio Voice: call status callbacks", accepts=FORM, doc=openapi.TWILIO_VOICE,
        ),
        Route(
            "POST", "/webhooks/zoom", feeds.zoom, "zoom", "Zoom: meeting webhooks",
            accepts=("application/json",), doc=openapi.ZOOM,
        ),
        Route(
            "POST", "/webhooks/hubspot", hubspot.handle, "hubspot",
            "HubSpot: contact and deal notifications", accepts=("application/json",),
            doc=openapi.HUBSPOT,
        ),
    ]  # fmt: skip
    document.routes = table
    return table
