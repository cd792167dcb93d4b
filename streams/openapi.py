"""The OpenAPI 3.1 document of the worker's HTTP API, served at ``GET /openapi.json``.

Built from :mod:`streams.routes` (paths, methods, auth, media types) plus each route's
``doc``; the refusals every route shares (401 for token routes, 413/415/408 for routes
with a body, 429 when rate-limited) are added here from the route's properties, so the
document and the server cannot disagree about them. ``tests/integration/test_openapi.py``
runs schemathesis against a live worker with this document.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from aiohttp import web

from streams.access import SIGNED

if TYPE_CHECKING:
    from streams.routes import Route


def _json(schema: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}


def _response(description: str, schema: str = "Error") -> dict[str, Any]:
    return {"description": description, "content": _json(schema)}


SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string", "description": "why, in words"}},
    },
    "IngestResult": {
        "type": "object",
        "required": ["accepted", "rejected"],
        "properties": {
            "accepted": {"type": "integer", "minimum": 0},
            "rejected": {"type": "integer", "minimum": 0},
            "error": {"type": "string", "description": "the body was unusable as a whole"},
            "results": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["index", "line", "event_id", "status"],
                    "properties": {
                        "index": {"type": "integer"},
                        "line": {"type": "integer"},
                        "event_id": {"type": ["string", "null"]},
                        "status": {"enum": ["accepted", "rejected"]},
                        "reason": {"type": "string"},
                    },
                },
            },
        },
    },
    "Event": {
        "type": "object",
        "description": "One event; `type` picks its schema (see the README's event list).",
        "required": ["event_id", "type", "occurred_at", "source"],
        "properties": {
            "event_id": {"type": "string"},
            "type": {"type": "string"},
            "occurred_at": {"type": "string", "format": "date-time"},
            "source": {"type": "string"},
        },
    },
    "Health": {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"const": "ok"}},
    },
    "Ready": {
        "type": "object",
        "required": ["ready", "consuming", "store", "model"],
        "properties": {
            "ready": {"type": "boolean"},
            "consuming": {"type": "boolean"},
            "intake": {
                "type": ["boolean", "string"],
                "description": "true once the inbound topics' consumer has its partitions",
            },
            "store": {"type": ["boolean", "string"], "description": "true, or what is wrong"},
            "model": {"type": "string"},
            "playbooks": {
                "type": ["boolean", "array"],
                "items": {"type": "string"},
                "description": "true, or the file:line errors of files refused at start",
            },
            "refused": {
                "type": "array",
                "items": {"type": "string"},
                "description": "with NUDGE_PLAYBOOKS_STRICT=false: files running without",
            },
        },
    },
    "Stats": {"type": "object", "additionalProperties": {"type": "integer"}},
    "TwilioForm": {
        "type": "object",
        "properties": {
            "MessageSid": {"type": "string"},
            "From": {"type": "string"},
            "To": {"type": "string"},
            "Body": {"type": "string"},
            "MessageStatus": {"type": "string"},
            "ErrorCode": {"type": "string"},
        },
    },
}

EVENTS = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"$ref": "#/components/schemas/Event"},
                        {"type": "array", "items": {"$ref": "#/components/schemas/Event"}},
                    ]
                }
            },
            "application/x-ndjson": {
                "schema": {"type": "string", "description": "one JSON event per line"}
            },
        },
    },
    "responses": {
        "200": _response("every event accepted", "IngestResult"),
        "207": _response("some events accepted; `results` says why the others were not",
                         "IngestResult"),
        "400": _response("no event accepted, or the body is not JSON", "IngestResult"),
    },
}  # fmt: skip
HEALTH = {"responses": {"200": _response("the web server answers", "Health")}}
READY = {
    "responses": {
        "200": _response("consuming, store writable", "Ready"),
        "503": _response(
            "not ready yet, the store is not writable, or a playbook or questionnaire was "
            "refused at start",
            "Ready",
        ),
    }
}
METRICS = {
    "responses": {
        "200": {
            "description": "Prometheus text format",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    }
}
STATS = {"responses": {"200": _response("counters since the worker started", "Stats")}}
SELF = {
    "responses": {
        "200": {"description": "this document", "content": {"application/json": {"schema": {}}}}
    }
}
_FORM_BODY = {
    "required": True,
    "content": {
        "application/x-www-form-urlencoded": {"schema": {"$ref": "#/components/schemas/TwilioForm"}}
    },
}
_XML = {"text/xml": {"schema": {"type": "string"}}}
TWILIO = {
    "requestBody": _FORM_BODY,
    "responses": {
        "200": {"description": "TwiML answer, or empty", "content": {**_XML, "text/plain": {}}},
        "403": _response("the X-Twilio-Signature does not match"),
    },
}
SLACK = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
        },
    },
    "responses": {
        "200": {"description": "acknowledged", "content": {"application/json": {}, "text/plain": {}}},
        "400": _response("signed, but not a payload Slack sends"),
        "403": _response("the X-Slack-Signature does not match, or is too old"),
        "404": _response("Slack is not configured on this worker"),
    },
}  # fmt: skip

_ANY_JSON: dict[str, Any] = {"application/json": {"schema": {}}}
SEGMENT = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"type": "object"}}},
    },
    "responses": {
        "200": {"description": "what was accepted and skipped, with why", "content": _ANY_JSON},
        "400": _response("not a Segment message or batch"),
        "401": _response("the X-Signature does not match (or no bearer token)"),
    },
}
TWILIO_VOICE = {
    "requestBody": _FORM_BODY,
    "responses": {
        "200": {"description": "empty TwiML", "content": _XML},
        "400": _response("a completed call that cannot be used"),
        "401": _response("the X-Twilio-Signature does not match"),
    },
}
ZOOM = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}},
    "responses": {
        "200": {"description": "accepted, remembered or skipped, with why", "content": _ANY_JSON},
        "400": _response("not a Zoom webhook payload"),
        "401": _response("the x-zm-signature does not match"),
    },
}  # fmt: skip

HUBSPOT = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": {}}}},
    "responses": {
        "200": {"description": "the events are on the broker", "content": _ANY_JSON},
        "400": _response("not a HubSpot notification batch"),
        "401": _response("the X-HubSpot-Signature-v3 does not match, or is stale"),
        "503": _response("HubSpot is not configured, or its API could not be read: retry"),
    },
}  # fmt: skip


def operation(route: Route) -> dict[str, Any]:
    """The OpenAPI operation of ``route``, with the refusals it shares with others."""
    op: dict[str, Any] = {"summary": route.summary, **json.loads(json.dumps(route.doc))}
    responses = op.setdefault("responses", {})
    if route.auth in ("token", "metrics"):
        op["security"] = [{"bearer": []}] + ([{}] if route.auth == "metrics" else [])
        responses["401"] = _response("no valid bearer token (NUDGE_API_TOKEN)")
    elif route.auth in SIGNED:
        op["security"] = [{route.auth: []}]
    else:
        op["security"] = []
    if route.method in ("POST", "PUT", "PATCH"):
        responses["408"] = _response("the body took longer than NUDGE_WEB_BODY_TIMEOUT")
        responses["413"] = _response("the body is larger than NUDGE_WEB_MAX_BODY_BYTES")
        responses["415"] = _response("unsupported Content-Type or Content-Encoding")
        responses.setdefault("400", _response("the body is not valid gzip"))
    if route.limited:
        responses["429"] = {
            **_response("more requests than NUDGE_WEB_RATE_LIMIT from this address"),
            "headers": {"Retry-After": {"schema": {"type": "string"}}},
        }
    return op


def build(routes: Sequence[Route]) -> dict[str, Any]:
    """The whole document."""
    paths: dict[str, Any] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = operation(route)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Nudge worker",
            "version": "1",
            "description": "Ingest, probes, metrics and provider webhooks of one Nudge worker.",
        },
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "twilio": {"type": "apiKey", "in": "header", "name": "X-Twilio-Signature"},
                "slack": {"type": "apiKey", "in": "header", "name": "X-Slack-Signature"},
                "segment": {"type": "apiKey", "in": "header", "name": "X-Signature"},
                "zoom": {"type": "apiKey", "in": "header", "name": "x-zm-signature"},
                "hubspot": {"type": "apiKey", "in": "header", "name": "X-HubSpot-Signature-v3"},
            },
        },
    }


class Document:
    """Serves the document of the routes it is given (set once the table is complete)."""

    def __init__(self) -> None:
        self.routes: Sequence[Route] = []
        self._body: bytes | None = None

    async def handler(self, request: web.Request) -> web.Response:
        if self._body is None:
            self._body = json.dumps(build(self.routes), indent=1).encode()
        return web.Response(body=self._body, content_type="application/json")
