"""Handlers of Nudge's own HTTP API: ingest, health, readiness, metrics, stats, the API document.

Which path each one serves, and with which auth, is listed in :mod:`streams.routes`;
limits, auth and error bodies are applied around them by :mod:`streams.server`, which
has read and size-checked the body before a handler runs.

``POST /events`` takes one JSON event, a JSON array of events, or NDJSON, and
answers per event: ``{"accepted": n, "rejected": n, "results": [{"index", "line",
"event_id", "status": "accepted"|"rejected", "reason"}]}`` — 200 when all were
accepted, 207 when some were not, 400 when none were (or the body is unusable
whole: ``{"error": reason}``). Accepted events are produced to their inbound topic
and go through the same ingest agent as events a CRM produces directly; rejected
ones are counted, logged and dead-lettered like rejections from Kafka
(:mod:`streams.rejections`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from aiohttp import web

from crm.store import fetch_one
from nudge import strict_json
from nudge.errors import EventRejected
from nudge.events import STREAM_OF, LeadEvent, RepUpserted, event_to_json, parse_event
from nudge.strict_json import StrictJSONError
from streams.pipeline import Pipeline
from streams.rejections import reject
from streams.topics import TOPIC_FOR_STREAM

MAX_BATCH = 10_000


def split_body(body: bytes) -> list[tuple[int, bytes | dict[str, Any]]]:
    """(line number, event) pairs from a JSON object, JSON array or NDJSON body."""
    text = body.strip()
    if not text:
        raise EventRejected("the body is empty: send a JSON event, array or NDJSON", kind="body")
    if text.startswith(b"["):
        try:
            items = strict_json.loads(text)
        except StrictJSONError as exc:
            raise EventRejected(f"body is not a valid JSON array: {exc}", kind="json") from None
        return [(i + 1, item) for i, item in enumerate(items)]
    lines = body.splitlines()
    if len(lines) > 1:
        return [(n, line) for n, line in enumerate(lines, 1) if line.strip()]
    return [(1, text)]


def json_response(
    value: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """A JSON response through the stdlib encoder, which escapes what orjson refuses: a
    rejection echoes the client's event id, and a lone surrogate in it made /events
    answer 500 (test_survive's list of hostile bodies)."""
    return web.Response(
        body=json.dumps(value).encode(),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def error_response(status: int, reason: str, headers: dict[str, str] | None = None) -> web.Response:
    """Every refusal has this shape: ``{"error": reason}``."""
    return json_response({"error": reason}, status=status, headers=headers)


def event_key(event: Any) -> bytes:
    """Key for inbound topics: keep one lead's events in order on one partition."""
    if isinstance(event, RepUpserted):
        return event.rep_id.encode()
    ident = event.lead_id or event.email or event.phone or event.visitor_id
    return str(ident).encode()


def refused_files(p: Pipeline) -> dict[str, list[str]]:
    """Playbook and questionnaire files refused with nothing of theirs running: file → errors."""
    out = dict(p.playbook_set.refused())
    for problem in p.refused_questionnaires:
        out.setdefault(problem.split(":", 1)[0], []).append(problem)
    return out


INFORMATIONAL = ("model", "refused")
"""Readiness entries that inform but do not decide."""


async def readiness(p: Pipeline) -> dict[str, Any]:
    """Consuming (the Faust agents, and intake once its group gave it partitions), the store
    writable, which model scores (points until one is promoted), and
    the configuration: a playbook or questionnaire refused at start makes the worker not
    ready (``NUDGE_PLAYBOOKS_STRICT``, the default), or is listed under ``refused``."""
    store_ok: bool | str = True
    try:
        store = await p.store()
        await fetch_one(store.db, "SELECT 1 FROM schema_version LIMIT 1")
        path = store.path
        if isinstance(path, Path) and (
            not os.access(path, os.W_OK) or not os.access(path.parent, os.W_OK)
        ):
            store_ok = f"{path} is not writable"
    except Exception as exc:
        store_ok = f"{type(exc).__name__}: {exc}"
    refused = [problem for problems in refused_files(p).values() for problem in problems]
    strict = p.settings.playbooks_strict
    intake = p.intake
    return {
        "consuming": p.ready.is_set(),
        "intake": True if intake is None or intake.joined.is_set() else "joining its group",
        "store": store_ok,
        "playbooks": refused if refused and strict else True,
        "model": getattr(p.scorer, "version", "?"),
        **({"refused": refused} if refused and not strict else {}),
    }


def _raw(item: bytes | dict[str, Any] | Any) -> bytes:
    return item if isinstance(item, bytes) else json.dumps(item).encode()


class Api:
    """The handlers, sharing one pipeline."""

    def __init__(self, p: Pipeline) -> None:
        self.p = p
        self.topics = {
            name: p.app.topic(name, key_serializer="raw", value_serializer="raw")
            for name in TOPIC_FOR_STREAM.values()
        }

    async def publish(self, event: LeadEvent | RepUpserted) -> None:
        """Produce one valid event to its inbound topic."""
        topic = self.topics[TOPIC_FOR_STREAM[STREAM_OF[event.type]]]
        await topic.send(key=event_key(event), value=event_to_json(event))

    async def rejected(self, exc: EventRejected, raw: bytes, path: str) -> None:
        """A rejection by another route (a provider's webhook): the same accounting."""
        await reject(self.p, exc, raw, source="http", route=path, line=None)

    async def events(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            items = split_body(body)
        except EventRejected as exc:
            await reject(self.p, exc, body, source="http", line=None)
            return json_response({"accepted": 0, "rejected": 1, "error": exc.reason}, status=400)
        if len(items) > MAX_BATCH:
            return error_response(413, f"at most {MAX_BATCH} events per request")
        results, accepted = [], 0
        for index, (line, item) in enumerate(items):
            try:
                event = parse_event(item if isinstance(item, dict | bytes) else _raw(item))
            except EventRejected as exc:
                await reject(self.p, exc, _raw(item), source="http", line=line)
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
            await self.publish(event)
            accepted += 1
            results.append(
                {"index": index, "line": line, "event_id": event.event_id, "status": "accepted"}
            )
        rejected = len(results) - accepted
        status = 200 if rejected == 0 else 207 if accepted else 400
        return json_response(
            {"accepted": accepted, "rejected": rejected, "results": results}, status=status
        )

    async def health(self, request: web.Request) -> web.Response:
        return json_response({"status": "ok"})

    async def ready(self, request: web.Request) -> web.Response:
        checks = await readiness(self.p)
        ok = all(v is True for k, v in checks.items() if k not in INFORMATIONAL)
        return json_response({"ready": ok, **checks}, status=200 if ok else 503)

    async def metrics(self, request: web.Request) -> web.Response:
        await self.p.metrics.refresh_lag(self.p.app, intake=self.p.intake)
        return web.Response(
            body=self.p.metrics.render(),
            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
        )

    async def stats(self, request: web.Request) -> web.Response:
        return json_response(dict(self.p.stats))
