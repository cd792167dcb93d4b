"""A local stand-in for Twilio's Messages API, spoken to by the real twilio library.

Why a server and not a mock: the twilio library builds the URL, the form body
and the Basic auth header, parses the JSON and raises its own exceptions; all
of that runs for real against this fake. It behaves like the real API where our
code depends on it (https://www.twilio.com/docs/messaging/api/message-resource):

- ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json``, Basic auth
  ``AccountSid:AuthToken`` (401 / 20003 otherwise), form fields ``To``, ``Body``,
  ``From`` or ``MessagingServiceSid``, optional ``StatusCallback``;
- ``GET`` of the same path: the account's messages, newest first, filtered by ``To``,
  ``From`` and ``DateSent`` / ``DateSent<`` / ``DateSent>`` (a day or a time), in pages
  of ``PageSize`` with ``next_page_uri`` like Twilio's list resource;
- errors in Twilio's JSON shape ``{"code", "message", "more_info", "status"}``:
  21211 invalid To, 21602 no Body, 21603 no sender, 21610 recipient opted out,
  21617 body too long; answers 201 with a ``SM...`` sid.

It records every request, can be told to fail (:meth:`FakeTwilio.fail_next`,
:meth:`FakeTwilio.hang_next`, :attr:`FakeTwilio.outage`) and sends signed
status callbacks and inbound SMS like Twilio does (:meth:`FakeTwilio.callback`).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import email.utils
import itertools
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import phonenumbers
from aiohttp import web
from aiohttp.test_utils import TestServer
from twilio.request_validator import RequestValidator

from notifiers.twilio_sms import TwilioSmsNotifier

ACCOUNT_SID = "AC" + "0" * 31 + "1"
AUTH_TOKEN = "fake-twilio-auth-token"


@dataclass
class Failure:
    status: int
    code: int | None = None
    retry_after: float | None = None
    hang: float = 0.0


@dataclass
class FakeTwilio:
    """The fake's state: what it was sent, and what it should do next."""

    account_sid: str = ACCOUNT_SID
    auth_token: str = AUTH_TOKEN
    messages: list[dict[str, str]] = field(default_factory=list)
    requests: int = 0
    """POSTs to the Messages resource (sends), failed ones included."""
    list_requests: int = 0
    """GETs of the message list (look-ups)."""
    outage: int | None = None
    """While set (e.g. 503), every request fails with this status."""
    opted_out: set[str] = field(default_factory=set)
    latency: float = 0.0
    """Seconds an accepted message waits before the answer leaves (it is recorded first,
    as at Twilio: a client that dies meanwhile has sent a text it never heard about)."""
    _failures: list[Failure] = field(default_factory=list)
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    server: TestServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")

    def fail_next(
        self,
        status: int,
        code: int | None = None,
        *,
        retry_after: float | None = None,
        times: int = 1,
    ) -> None:
        self._failures += [Failure(status, code, retry_after) for _ in range(times)]

    def hang_next(self, seconds: float) -> None:
        """The next request gets no answer for ``seconds`` (a client timeout)."""
        self._failures.append(Failure(200, hang=seconds))

    # -- the API ------------------------------------------------------------------------
    def _error(self, status: int, code: int, message: str, headers: Any = None) -> web.Response:
        return web.json_response(
            {
                "code": code,
                "message": message,
                "more_info": f"https://www.twilio.com/docs/errors/{code}",
                "status": status,
            },
            status=status,
            headers=headers,
        )

    def _authorised(self, request: web.Request, sid: str) -> bool:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return (
            request.headers.get("Authorization") == f"Basic {expected}" and sid == self.account_sid
        )

    async def create_message(self, request: web.Request) -> web.Response:
        self.requests += 1
        if not self._authorised(request, request.match_info["sid"]):
            return self._error(401, 20003, "Authenticate")
        if self.outage:
            return self._error(self.outage, 20500, "Service unavailable")
        if self._failures:
            failure = self._failures.pop(0)
            if failure.hang:  # the client gives up first; nothing is sent
                await asyncio.sleep(failure.hang)
                return self._error(504, 20504, "Gateway timeout")
            headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after else None
            return self._error(
                failure.status, failure.code or failure.status, "Failure on request", headers
            )
        form = {k: str(v) for k, v in (await request.post()).items()}
        to = form.get("To", "")
        try:
            valid = phonenumbers.is_valid_number(phonenumbers.parse(to))
        except phonenumbers.NumberParseException:
            valid = False
        if not valid or not to.startswith("+"):
            return self._error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if not form.get("Body"):
            return self._error(400, 21602, "Message body is required.")
        if len(form["Body"]) > 1600:
            return self._error(400, 21617, "The concatenated message body exceeds 1600 characters.")
        if not form.get("From") and not form.get("MessagingServiceSid"):
            return self._error(400, 21603, "A 'From' phone number is required.")
        if to in self.opted_out:
            return self._error(400, 21610, "Attempt to send to unsubscribed recipient")
        sid = f"SM{next(self._ids):032x}"
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        self.messages.append({**form, "Sid": sid, "DateCreated": now.isoformat()})
        if self.latency:
            await asyncio.sleep(self.latency)
        return web.json_response(
            {
                "sid": sid,
                "account_sid": self.account_sid,
                "to": to,
                "from": form.get("From"),
                "messaging_service_sid": form.get("MessagingServiceSid"),
                "body": form["Body"],
                "status": "queued",
                "num_segments": "1",
                "direction": "outbound-api",
                "api_version": "2010-04-01",
                "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
            },
            status=201,
        )

    def _resource(self, message: dict[str, str]) -> dict[str, Any]:
        created = email.utils.format_datetime(
            dt.datetime.fromisoformat(message["DateCreated"]), usegmt=True
        )
        return {
            "sid": message["Sid"],
            "account_sid": self.account_sid,
            "to": message.get("To"),
            "from": message.get("From"),
            "messaging_service_sid": message.get("MessagingServiceSid"),
            "body": message.get("Body"),
            "status": "sent",
            "direction": "outbound-api",
            "date_created": created,
            "date_sent": created,
            "date_updated": created,
            "num_segments": "1",
            "api_version": "2010-04-01",
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{message['Sid']}.json",
        }

    async def list_messages(self, request: web.Request) -> web.Response:
        """Twilio's Message list: newest first, filters ANDed, paged by PageSize/Page."""
        self.list_requests += 1
        if not self._authorised(request, request.match_info["sid"]):
            return self._error(401, 20003, "Authenticate")
        if self.outage:
            return self._error(self.outage, 20500, "Service unavailable")
        q = request.query
        found = list(reversed(self.messages))
        if "To" in q:
            found = [m for m in found if m.get("To") == q["To"]]
        if "From" in q:
            found = [m for m in found if m.get("From") == q["From"]]
        for key, keep in (
            ("DateSent", lambda d, v: d[: len(v)] == v),
            ("DateSent>", lambda d, v: d[: len(v)] >= v),
            ("DateSent<", lambda d, v: d[: len(v)] <= v),
        ):
            if key in q:
                value = q[key].replace("Z", "+00:00")
                found = [m for m in found if keep(m["DateCreated"], value)]
        size = max(1, min(1000, int(q.get("PageSize", "50"))))
        page = int(q.get("Page", "0"))
        chunk = found[page * size : (page + 1) * size]
        base = f"/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        filters = {k: v for k, v in q.items() if k not in ("Page", "PageSize", "PageToken")}

        def uri(n: int) -> str:
            return f"{base}?{urllib.parse.urlencode({**filters, 'PageSize': size, 'Page': n})}"

        more = (page + 1) * size < len(found)
        return web.json_response(
            {
                "messages": [self._resource(m) for m in chunk],
                "page": page,
                "page_size": size,
                "start": page * size,
                "end": page * size + max(0, len(chunk) - 1),
                "uri": uri(page),
                "first_page_uri": uri(0),
                "previous_page_uri": uri(page - 1) if page else None,
                "next_page_uri": uri(page + 1) if more else None,
            }
        )

    # -- callbacks, signed as Twilio signs them -----------------------------------------------
    def sign(self, url: str, params: dict[str, str], token: str | None = None) -> str:
        return str(RequestValidator(token or self.auth_token).compute_signature(url, params))

    async def callback(
        self,
        url: str,
        params: dict[str, str],
        *,
        signature: str | None = "auto",
        token: str | None = None,
    ) -> tuple[int, str]:
        """POST a webhook (status callback or inbound SMS); ``signature=None`` sends none."""
        headers = {}
        if signature == "auto":
            signature = self.sign(url, params, token)
        if signature is not None:
            headers["X-Twilio-Signature"] = signature
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, data=params, headers=headers) as response,
        ):
            return response.status, await response.text()

    async def status_callback(
        self, sid: str, status: str, error_code: str | None = None
    ) -> tuple[int, str]:
        """Report a message's delivery status to the StatusCallback it was sent with."""
        message = next(m for m in self.messages if m["Sid"] == sid)
        params = {
            "AccountSid": self.account_sid,
            "MessageSid": sid,
            "MessageStatus": status,
            "To": message["To"],
            "From": message.get("From", ""),
        }
        if error_code:
            params["ErrorCode"] = error_code
        return await self.callback(message["StatusCallback"], params)

    def notifier(self, **options: Any) -> TwilioSmsNotifier:
        """Nudge's SMS notifier pointed at this fake, sending from its number."""
        options = {"from_number": "+15005550006", "base_url": self.url, **options}
        return TwilioSmsNotifier(self.account_sid, self.auth_token, **options)

    def inbound_params(self, from_: str, body: str, to: str = "+15005550006") -> dict[str, str]:
        return {
            "AccountSid": self.account_sid,
            "MessageSid": f"SM{next(self._ids):032x}",
            "From": from_,
            "To": to,
            "Body": body,
            "NumMedia": "0",
        }

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", self.create_message)
        app.router.add_get("/2010-04-01/Accounts/{sid}/Messages.json", self.list_messages)
        return app
