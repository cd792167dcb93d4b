"""Webhook senders that sign like Segment and Zoom do, for the source routes' tests.

Segment's webhook destination signs the raw body: ``X-Signature`` = hex
HMAC-SHA1(shared secret, body). Zoom signs ``v0:{x-zm-request-timestamp}:{body}``
with HMAC-SHA256 and sends ``x-zm-signature: v0=<hex>``. These are written from the
providers' documentation, independently of :mod:`connectors`, so a test that
signs here and verifies there checks our code against the documented scheme.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import aiohttp


def segment_headers(body: bytes, secret: str | None) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Signature"] = hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()
    return headers


def zoom_headers(body: bytes, secret: str, timestamp: int | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json",
        "x-zm-request-timestamp": ts,
        "x-zm-signature": f"v0={digest}",
    }


def zoom_meeting(event: str, uuid: str, **extra: Any) -> dict[str, Any]:
    """A Zoom meeting webhook body, in the shape Zoom documents."""
    obj = {
        "uuid": uuid,
        "id": "85746065432",
        "host_id": "z8yBXksmRlSUm2pVwXvMkQ",
        "topic": "Acme / pricing review",
        "type": 2,
        "start_time": "2026-03-02T16:00:00Z",
        "end_time": "2026-03-02T16:42:00Z",
        "duration": 45,
        "timezone": "America/New_York",
        **extra,
    }
    return {
        "event": event,
        "event_ts": 1772467320000,
        "payload": {"account_id": "AbC123", "object": obj},
    }


async def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=headers) as response,
    ):
        text = await response.text()
        try:
            return response.status, json.loads(text)
        except ValueError:
            return response.status, text
