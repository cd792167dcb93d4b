"""Provider webhooks on the worker's web server (aiohttp, which Faust's web server is).

    POST /webhooks/twilio/sms           inbound SMS       → Reply (STOP/START/HELP handled here)
    POST /webhooks/twilio/status        delivery receipts → outbox state delivered / failed
    POST /webhooks/slack/events         Events API        → slack-bolt → Reply for DMs
    POST /webhooks/slack/interactions   button clicks     → slack-bolt → Reply

Every request's signature is checked first; a bad or missing one gets 403 and
nothing else happens (nothing read from or written to the store, nothing
published). Checks and parsing are in :mod:`notifiers.inbound`; this module is
the HTTP and I/O around them.

STOP is acted on here, before the reply is published: the number goes on our
suppression list and the rep is flagged in the same request, so not one more
text can leave even if the ``replies`` topic is slow. The reply is still
published, so the conversation side sees it.

Dev mode: with no ``TWILIO_AUTH_TOKEN`` the SMS webhooks check signatures with a
random token kept in ``<data_dir>/dev_twilio_token`` (created on first use,
mode 0600), which ``nudge phone`` reads to sign its messages the same way.

Served through :mod:`streams.routes` (``build(pipeline)``); ``routes(...)`` mounts the
same handlers on any aiohttp application (the unit tests do).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from crm.outbox import Outbox
from crm.store import Store
from notifiers import texts
from notifiers.inbound import public_url, slack_signature_ok, sms_reply, twilio_signature_ok, twiml
from notifiers.phones import to_e164
from nudge.clock import Clock, SystemClock
from nudge.logs import get_logger
from nudge.settings import Settings
from nudge.signals import Reply
from streams.pipeline import Pipeline
from streams.views import error_response

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncApp

log = get_logger(__name__)

PublishReply = Callable[[Reply], Awaitable[Any]]
StoreSource = Store | Callable[[], Awaitable[Store]]
ANSWERS = {"opt_out": texts.STOPPED, "opt_in": texts.STARTED, "help": texts.HELP}
DEV_TOKEN_FILE = "dev_twilio_token"


def dev_twilio_token(settings: Settings) -> str:
    """The dev-mode Twilio token shared by the worker and ``nudge phone``."""
    path = Path(settings.data_dir) / DEV_TOKEN_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(16))
    return path.read_text().strip()


def twilio_token(settings: Settings) -> str:
    if settings.twilio_auth_token is not None:
        return settings.twilio_auth_token.get_secret_value()
    return dev_twilio_token(settings)


async def signed_twilio_form(
    request: web.Request, token: str, settings: Settings
) -> dict[str, str] | None:
    """A Twilio webhook's form fields, or None when its signature does not match them (the URL
    Twilio signed is the configured public URL, or the one the request came to)."""
    params = {k: str(v) for k, v in (await request.post()).items()}
    url = public_url(
        request.path_qs,
        configured=settings.public_url,
        scheme=request.scheme,
        host=request.host,
        headers=request.headers,
    )
    if not twilio_signature_ok(token, url, params, request.headers.get("X-Twilio-Signature")):
        return None
    return params


class Webhooks:
    """The four handlers, sharing the store, the clock and the reply callback."""

    def __init__(
        self,
        publish_reply: PublishReply,
        store: StoreSource,
        settings: Settings,
        *,
        clock: Clock | None = None,
        slack_app: AsyncApp | None = None,
    ) -> None:
        self.publish_reply = publish_reply
        self._store = store
        self.settings = settings
        self.clock = clock or SystemClock()
        self.twilio_token = twilio_token(settings)
        secret = settings.slack_signing_secret
        self.slack_secret = secret.get_secret_value() if secret else ""
        self.slack_app = slack_app
        if self.slack_app is None and self.slack_secret and settings.slack_bot_token:
            # slack-bolt (~0.3 s of imports) loads only when Slack is configured
            from notifiers.slack_app import build_slack_app

            self.slack_app = build_slack_app(
                signing_secret=self.slack_secret,
                token=settings.slack_bot_token.get_secret_value(),
                publish_reply=publish_reply,
                rep_for_user=self._rep_for_slack_user,
                first_sight=self._first_sight,
                base_url=settings.slack_api_url,
            )

    async def store(self) -> Store:
        if isinstance(self._store, Store):
            return self._store
        return await self._store()

    async def _rep_for_slack_user(self, user_id: str) -> str | None:
        rep = await Outbox(await self.store()).rep_by(slack_user_id=user_id)
        return rep["rep_id"] if rep else None

    async def _first_sight(self, reply_id: str, now: Any) -> bool:
        return await Outbox(await self.store()).first_sight(reply_id, now)

    async def _twilio_params(self, request: web.Request) -> dict[str, str] | None:
        """The form fields, or None when the signature does not match them."""
        params = await signed_twilio_form(request, self.twilio_token, self.settings)
        if params is None:
            log.warning("twilio webhook refused: bad signature", path=request.path)
        return params

    async def twilio_sms(self, request: web.Request) -> web.StreamResponse:
        params = await self._twilio_params(request)
        if params is None:
            return error_response(403, "invalid signature")
        outbox = Outbox(await self.store())
        now = self.clock.now()
        sid = params.get("MessageSid", "")
        if not sid or await outbox.seen(sid):
            return web.Response(text=twiml(), content_type="text/xml")
        phone = to_e164(params.get("From"))
        rep = await outbox.rep_by(phone=phone, normalise=to_e164) if phone else None
        rep_id = rep["rep_id"] if rep else None
        opted_out = await outbox.sms_opted_out(phone, rep_id)
        reply = sms_reply(params, now, rep_id, opted_out=opted_out)
        if phone and reply.kind in ("opt_out", "opt_in"):
            await outbox.set_sms_opt_out(
                phone,
                reply.kind == "opt_out",
                now,
                rep_id=reply.rep_id,
                reason=f"texted {reply.text.strip().upper()}",
            )
            log.info("sms opt-out changed", rep_id=reply.rep_id, kind=reply.kind)
        await self.publish_reply(reply)
        await outbox.first_sight(sid, now)
        return web.Response(text=twiml(ANSWERS.get(reply.kind)), content_type="text/xml")

    async def twilio_status(self, request: web.Request) -> web.StreamResponse:
        params = await self._twilio_params(request)
        if params is None:
            return error_response(403, "invalid signature")
        outbox = Outbox(await self.store())
        now = self.clock.now()
        code = params.get("ErrorCode") or None
        row = await outbox.record_status(
            params.get("MessageSid", ""), params.get("MessageStatus", ""), now, error_code=code
        )
        to = to_e164(params.get("To"))
        if code == "21610" and to:
            await outbox.set_sms_opt_out(
                to,
                True,
                now,
                rep_id=row["rep_id"] if row else None,
                reason="carrier reported 21610",
            )
        log.info(
            "sms status",
            nudge_id=row["nudge_id"] if row else None,
            status=params.get("MessageStatus"),
            code=code,
        )
        return web.Response(status=200, text="")

    async def slack(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if not slack_signature_ok(self.slack_secret, body, request.headers, self.clock.now()):
            log.warning("slack webhook refused: bad signature", path=request.path)
            return error_response(403, "invalid signature")
        if self.slack_app is None:
            return error_response(404, "Slack is not configured (SLACK_BOT_TOKEN)")
        from slack_bolt.adapter.aiohttp import to_aiohttp_response
        from slack_bolt.request.async_request import AsyncBoltRequest

        try:  # bolt parses the body here and raises on JSON / form it cannot read
            bolt_request = AsyncBoltRequest(
                body=body.decode(),
                query=request.query_string,
                headers={k: v for k, v in request.headers.items()},
            )
        except Exception as exc:  # JSON/form it cannot read, or a non-object (list, number)
            log.warning("slack webhook refused: unreadable body", path=request.path, error=str(exc))
            return error_response(400, "unreadable body")
        bolt_response = await self.slack_app.async_dispatch(bolt_request)
        if bolt_response.status >= 500:
            # Our listeners ack() first and run after the answer (process_before_response
            # is off), so a 5xx here is bolt failing on the payload's shape (e.g. a
            # signed body whose "event" is a string): the request's fault, not ours.
            log.warning("slack webhook refused: payload not understood", path=request.path)
            return error_response(400, "Slack payload not understood")
        return await to_aiohttp_response(bolt_response)


def build(p: Pipeline) -> Webhooks:
    """The handlers for a worker: replies go to its ``replies`` topic."""

    async def publish_reply(reply: Reply) -> None:
        await p.replies.send(
            key=(reply.rep_id or reply.sender).encode(), value=reply.model_dump_json().encode()
        )

    return Webhooks(publish_reply, p.store, p.settings, clock=p.clock)


def routes(
    publish_reply: PublishReply,
    store: StoreSource,
    settings: Settings,
    *,
    clock: Clock | None = None,
    slack_app: AsyncApp | None = None,
) -> list[web.RouteDef]:
    """The four webhook routes, ready for ``web_app.router.add_routes(...)``."""
    hooks = Webhooks(publish_reply, store, settings, clock=clock, slack_app=slack_app)
    return [
        web.post("/webhooks/twilio/sms", hooks.twilio_sms),
        web.post("/webhooks/twilio/status", hooks.twilio_status),
        web.post("/webhooks/slack/events", hooks.slack),
        web.post("/webhooks/slack/interactions", hooks.slack),
    ]
