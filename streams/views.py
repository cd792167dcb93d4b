"""The worker's web server: HTTP ingest, health and a stats page.

``POST /events`` takes one JSON event, a JSON array of events, or NDJSON, and
answers per event: ``{"accepted": n, "rejected": n, "results": [{"index", "line",
"event_id", "status": "accepted"|"rejected", "reason"}]}`` — 200 when all were
accepted, 207 when some were not, 400 when none were. Accepted events are
produced to their inbound topic and go through the same ingest agent as events a
CRM produces directly.
"""

from __future__ import annotations

import json
import os
from typing import Any

from faust import web

from crm.store import fetch_one
from nudge.errors import EventRejected
from nudge.events import STREAM_OF, RepUpserted, event_to_json, parse_event
from nudge.signals import Reply
from streams import crm_connectors, sources, webhooks
from streams.pipeline import Pipeline
from streams.topics import TOPIC_FOR_STREAM

MAX_BATCH = 10_000


def split_body(body: bytes) -> list[tuple[int, bytes | dict[str, Any]]]:
    """(line number, event) pairs from a JSON object, JSON array or NDJSON body."""
    text = body.strip()
    if text.startswith(b"["):
        try:
            items = json.loads(text)
        except ValueError as exc:
            raise EventRejected(f"body is not a valid JSON array: {exc}") from None
        except RecursionError:
            raise EventRejected("body is not a valid JSON array: nested too deeply") from None
        return [(i + 1, item) for i, item in enumerate(items)]
    lines = body.splitlines()
    if len(lines) > 1:
        return [(n, line) for n, line in enumerate(lines, 1) if line.strip()]
    return [(1, text)] if text else []


def json_response(view: web.View, value: Any, status: int = 200) -> web.Response:
    """A JSON response through the stdlib encoder, which escapes what orjson (Faust's
    encoder when installed) refuses: a rejection echoes the client's event id, and a
    lone surrogate in it made /events answer 500 (test_survive's list of hostile bodies)."""
    return view.bytes(json.dumps(value).encode(), content_type="application/json", status=status)


def event_key(event: Any) -> bytes:
    """Key for inbound topics: keep one lead's events in order on one partition."""
    if isinstance(event, RepUpserted):
        return event.rep_id.encode()
    ident = event.lead_id or event.email or event.phone or event.visitor_id
    return str(ident).encode()


async def readiness(p: Pipeline) -> dict[str, Any]:
    """Consuming, the store writable, and which model scores (points until one is promoted)."""
    store_ok: bool | str = True
    try:
        store = await p.store()
        await fetch_one(store.db, "SELECT 1 FROM schema_version LIMIT 1")
        path = store.path
        if not os.access(path, os.W_OK) or not os.access(path.parent, os.W_OK):
            store_ok = f"{path} is not writable"
    except Exception as exc:
        store_ok = f"{type(exc).__name__}: {exc}"
    return {
        "consuming": p.ready.is_set(),
        "store": store_ok,
        "model": getattr(p.scorer, "version", "?"),
    }


def register(p: Pipeline) -> None:
    app = p.app
    topics = {
        name: app.topic(name, key_serializer="raw", value_serializer="raw")
        for name in TOPIC_FOR_STREAM.values()
    }

    async def publish_reply(reply: Reply) -> None:
        await p.replies.send(
            key=(reply.rep_id or reply.sender).encode(), value=reply.model_dump_json().encode()
        )

    async def publish_event(event: Any) -> None:
        topic = topics[TOPIC_FOR_STREAM[STREAM_OF[event.type]]]
        await topic.send(key=event_key(event), value=event_to_json(event))

    app.web.web_app.router.add_routes(  # type: ignore[attr-defined]
        webhooks.routes(publish_reply, p.store, p.settings, clock=p.clock)
        + sources.routes(publish_event, p.store, p.settings, clock=p.clock)
        + crm_connectors.routes(publish_event, p.store, p.settings, p.clock)
    )

    @app.page("/events")
    class Events(web.View):
        async def post(self, request: web.Request) -> web.Response:
            body = await request.read()
            try:
                items = split_body(body)
            except EventRejected as exc:
                return json_response(
                    self, {"accepted": 0, "rejected": 1, "error": exc.reason}, status=400
                )
            if len(items) > MAX_BATCH:
                return json_response(
                    self, {"error": f"at most {MAX_BATCH} events per request"}, status=413
                )
            results, accepted = [], 0
            for index, (line, item) in enumerate(items):
                try:
                    event = parse_event(
                        item if isinstance(item, dict | bytes) else json.dumps(item).encode()
                    )
                except EventRejected as exc:
                    results.append(
                        {
                            "index": index,
                            "line": line,
                            "event_id": exc.event_id,
                            "status": "rejected",
                            "reason": exc.reason,
                        }
                    )
                    continue
                topic = topics[TOPIC_FOR_STREAM[STREAM_OF[event.type]]]
                await topic.send(key=event_key(event), value=event_to_json(event))
                accepted += 1
                results.append(
                    {"index": index, "line": line, "event_id": event.event_id, "status": "accepted"}
                )
            rejected = len(results) - accepted
            status = 200 if rejected == 0 else 207 if accepted else 400
            return json_response(
                self,
                {"accepted": accepted, "rejected": rejected, "results": results},
                status=status,
            )

    @app.page("/health")
    class Health(web.View):
        async def get(self, request: web.Request) -> web.Response:
            return json_response(self, {"status": "ok"})

    @app.page("/ready")
    class Ready(web.View):
        async def get(self, request: web.Request) -> web.Response:
            checks = await readiness(p)
            ok = all(v is True for k, v in checks.items() if k != "model")
            return json_response(self, {"ready": ok, **checks}, status=200 if ok else 503)

    @app.page("/metrics")
    class Metrics(web.View):
        async def get(self, request: web.Request) -> web.Response:
            return self.bytes(
                p.metrics.render(),
                headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
            )

    @app.page("/stats")
    class Stats(web.View):
        async def get(self, request: web.Request) -> web.Response:
            return json_response(self, dict(p.stats))
