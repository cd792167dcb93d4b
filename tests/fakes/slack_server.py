"""A local stand-in for the Slack Web API, spoken to by the real slack_sdk client.

Like bolt-python's own ``tests/mock_web_api_server``: it checks the Bearer
token (``{"ok": false, "error": "invalid_auth"}`` otherwise, as Slack does, with
HTTP 200), answers ``auth.test`` and ``chat.postMessage`` (``channel`` must be a
known user, ``text`` or ``blocks`` required; ``metadata`` kept), ``conversations.open``
(a user's DM channel, ``D`` + the user id's tail) and ``conversations.history`` (newest
first, ``oldest`` / ``latest`` / ``limit`` / ``cursor``; message metadata only with
``include_all_metadata``, as at Slack), records every call, and can be
told to fail: 429 with ``Retry-After`` and ``ratelimited``, or any HTTP status.

:meth:`FakeSlack.click` plays a rep clicking a button of a message it received:
it builds the ``block_actions`` payload Slack would send and signs it with the
signing secret (``v0=`` HMAC-SHA256 over ``v0:{timestamp}:{body}``).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

BOT_TOKEN = "xoxb-fake-bot-token"
SIGNING_SECRET = "fake-slack-signing-secret"


def sign(secret: str, body: str, timestamp: int) -> str:
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


@dataclass
class FakeSlack:
    token: str = BOT_TOKEN
    signing_secret: str = SIGNING_SECRET
    users: set[str] = field(default_factory=lambda: {"U0REP1", "U0REP2"})
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    responses: list[dict[str, Any]] = field(default_factory=list)
    """What was posted to a click's ``response_url`` (message updates)."""
    posted: list[dict[str, Any]] = field(default_factory=list)
    views: list[dict[str, Any]] = field(default_factory=list)
    _failures: list[tuple[int, str, float | None]] = field(default_factory=list)
    _ts: Any = field(default_factory=lambda: itertools.count(1))
    server: TestServer | None = None

    @property
    def url(self) -> str:
        """The base URL to give AsyncWebClient (ends with /api/ like the real one)."""
        assert self.server is not None
        return str(self.server.make_url("/api/"))

    def fail_next(self, status: int, error: str, *, retry_after: float | None = None) -> None:
        self._failures.append((status, error, retry_after))

    async def api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.content_type == "application/json":
            args = await request.json()
        else:
            args = {k: str(v) for k, v in (await request.post()).items()}
            args.update(request.query)
        self.calls.append((method, args))
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"ok": False, "error": "invalid_auth"})
        if self._failures:
            status, error, retry_after = self._failures.pop(0)
            headers = {"Retry-After": str(int(retry_after))} if retry_after else None
            return web.json_response({"ok": False, "error": error}, status=status, headers=headers)
        if method == "auth.test":
            return web.json_response(
                {
                    "ok": True,
                    "url": "https://fake.slack.com/",
                    "team": "Fake",
                    "user": "nudge",
                    "team_id": "T0FAKE",
                    "user_id": "U0BOT",
                    "bot_id": "B0BOT",
                }
            )
        if method == "chat.postMessage":
            return self._post_message(args)
        if method == "conversations.open":
            users = str(args.get("users") or "")
            if users not in self.users:
                return web.json_response({"ok": False, "error": "user_not_found"})
            return web.json_response({"ok": True, "channel": {"id": "D" + users[1:]}})
        if method == "conversations.history":
            return self._history(args)
        if method == "views.open":
            if not args.get("trigger_id") or not args.get("view"):
                return web.json_response({"ok": False, "error": "invalid_arguments"})
            view = args["view"] if isinstance(args["view"], dict) else json.loads(args["view"])
            self.views.append(view)
            return web.json_response({"ok": True, "view": {"id": f"V{len(self.views)}", **view}})
        return web.json_response({"ok": False, "error": "unknown_method"}, status=404)

    def _post_message(self, args: dict[str, Any]) -> web.Response:
        channel = args.get("channel")
        if not channel or channel not in self.users:
            return web.json_response({"ok": False, "error": "channel_not_found"})
        if not args.get("text") and not args.get("blocks"):
            return web.json_response({"ok": False, "error": "no_text"})
        blocks = args.get("blocks")
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        for block in blocks or []:
            ids = [e.get("action_id") for e in block.get("elements", []) if "action_id" in e]
            if len(ids) != len(set(ids)):
                return web.json_response({"ok": False, "error": "invalid_blocks"})
        ts = f"{int(time.time())}.{next(self._ts):06d}"
        metadata = args.get("metadata")
        if isinstance(metadata, str):
            metadata = json.loads(metadata)
        message = {
            "channel": channel,
            "ts": ts,
            "text": args.get("text"),
            "blocks": blocks,
            "metadata": metadata,
        }
        self.posted.append(message)
        return web.json_response(
            {"ok": True, "channel": "D" + channel[1:], "ts": ts, "message": message}
        )

    def _history(self, args: dict[str, Any]) -> web.Response:
        channel = str(args.get("channel") or "")
        if not any("D" + u[1:] == channel for u in self.users):
            return web.json_response({"ok": False, "error": "channel_not_found"})
        oldest = float(args.get("oldest") or 0)
        latest = float(args.get("latest") or "inf")
        limit = max(1, min(999, int(args.get("limit") or 100)))
        start = int(args.get("cursor") or 0)
        with_metadata = str(args.get("include_all_metadata")).lower() in ("true", "1")
        found = [
            m
            for m in reversed(self.posted)
            if "D" + m["channel"][1:] == channel and oldest <= float(m["ts"]) <= latest
        ]
        chunk = found[start : start + limit]
        more = start + limit < len(found)
        messages = []
        for m in chunk:
            item: dict[str, Any] = {"type": "message", "ts": m["ts"], "text": m["text"]}
            if with_metadata and m.get("metadata"):
                item["metadata"] = m["metadata"]
            messages.append(item)
        return web.json_response(
            {
                "ok": True,
                "messages": messages,
                "has_more": more,
                "response_metadata": {"next_cursor": str(start + limit) if more else ""},
            }
        )

    async def click(
        self,
        url: str,
        message: dict[str, Any],
        action_id: str,
        *,
        user: str | None = None,
        timestamp: int | None = None,
        secret: str | None = None,
        signed: bool = True,
    ) -> tuple[int, str]:
        """POST the ``block_actions`` payload of a click on ``action_id`` in ``message``."""
        button = next(
            e
            for b in message["blocks"]
            for e in b.get("elements", [])
            if e.get("action_id") == action_id
        )
        action_ts = f"{time.time():.6f}"
        payload = {
            "type": "block_actions",
            "team": {"id": "T0FAKE", "domain": "fake"},
            "user": {"id": user or message["channel"], "team_id": "T0FAKE"},
            "api_app_id": "A0FAKE",
            "token": "legacy-verification-token",
            "trigger_id": "1.2.3",
            "container": {
                "type": "message",
                "message_ts": message["ts"],
                "channel_id": "D" + message["channel"][1:],
                "is_ephemeral": False,
            },
            "channel": {"id": "D" + message["channel"][1:]},
            "message": {"ts": message["ts"], "text": message["text"], "blocks": message["blocks"]},
            "response_url": str(self.server.make_url("/response")) if self.server else "",
            "actions": [
                {
                    "type": "button",
                    "action_id": action_id,
                    "block_id": "nudge_actions",
                    "text": button["text"],
                    "value": button["value"],
                    "action_ts": action_ts,
                }
            ],
        }
        body = urllib.parse.urlencode({"payload": json.dumps(payload)})
        return await self.post_signed(
            url,
            body,
            "application/x-www-form-urlencoded",
            timestamp=timestamp,
            secret=secret,
            signed=signed,
        )

    async def post_signed(
        self,
        url: str,
        body: str,
        content_type: str = "application/json",
        *,
        timestamp: int | None = None,
        secret: str | None = None,
        signed: bool = True,
    ) -> tuple[int, str]:
        ts = int(time.time()) if timestamp is None else timestamp
        headers = {"Content-Type": content_type}
        if signed:
            headers["X-Slack-Request-Timestamp"] = str(ts)
            headers["X-Slack-Signature"] = sign(secret or self.signing_secret, body, ts)
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, data=body.encode(), headers=headers) as response,
        ):
            return response.status, await response.text()

    async def response_url(self, request: web.Request) -> web.Response:
        self.responses.append(await request.json())
        return web.Response(text="ok")

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/response", self.response_url)
        app.router.add_post("/api/{method}", self.api)
        app.router.add_get("/api/{method}", self.api)
        return app
