"""SMS through Twilio's own Python library, with its aiohttp-based async client.

Why the real library: it owns authentication, the request format and the error
format, and tracks API changes. Two things it does not do, which we add here:

- **A base URL.** Twilio has no setting for one, so :class:`RebasedHttpClient`
  (a subclass of the library's ``AsyncTwilioHttpClient``) rewrites
  ``https://api.twilio.com`` to ``NUDGE_TWILIO_API_URL`` just before the request
  leaves: tests point the real client at a local fake, staging at a recorder.
- **Timeouts and Retry-After.** The async client ignores its own ``timeout`` unless
  each call passes one, and exceptions carry no headers; the http client applies
  the timeout and keeps the last Retry-After in a context variable (per task, so
  concurrent sends do not mix them up).

:meth:`TwilioSmsNotifier.find_sent` looks a text up in Twilio's message list (the
``Messages.json`` GET, filtered by ``To`` and ``From``, newest first) by its body and
creation time, for a nudge a crash left in doubt. Not by ``DateSent``: a text still
queued at Twilio has none yet.

Error mapping (https://www.twilio.com/docs/api/errors): HTTP 429 / 20429, 5xx,
timeouts, connection errors and authentication failures (an operator can fix
credentials; the queue must survive that) are transient. Any other 4xx is
permanent and keeps Twilio's code, e.g. 21211 invalid number, 21610 recipient
texted STOP, 21614 not a mobile number, 21408 region not enabled.
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import datetime as dt
import logging
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from twilio.base.exceptions import TwilioException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from notifiers import texts
from notifiers.base import OutboundMessage, SendResult, provider_errors
from notifiers.phones import to_e164
from nudge.errors import ConfigError, PermanentDeliveryError, TransientDeliveryError

LOOKUP_LIMIT = 200
"""Most recent texts to one number read when looking one up (a rep gets a few a day)."""

MAX_BODY = 1600
"""Twilio refuses longer bodies (error 21617)."""

TRANSIENT_CODES = {20429, 20003, 20005, 20500, 20503, 30001}
"""Worth retrying: too many requests, auth (fixable by the operator), Twilio-side errors,
queue overflow."""

_http_log = logging.getLogger("nudge.twilio_http")
_http_log.setLevel(logging.WARNING)
"""The library logs every request's URL and headers at INFO; we log outcomes ourselves."""

_last_retry_after: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "twilio_retry_after", default=None
)


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


class RebasedHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]
    """Twilio's async HTTP client, sending to ``base_url`` instead of ``*.twilio.com``."""

    def __init__(self, base_url: str | None = None, timeout: float = 10.0) -> None:
        super().__init__(timeout=timeout, logger=_http_log)
        self.base_url = base_url.rstrip("/") if base_url else None

    def rebase(self, url: str) -> str:
        if not self.base_url:
            return url
        parts, base = urlsplit(url), urlsplit(self.base_url)
        if not parts.hostname or not parts.hostname.endswith("twilio.com"):
            return url
        return urlunsplit(
            (base.scheme, base.netloc, base.path + parts.path, parts.query, parts.fragment)
        )

    async def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        auth = kwargs.pop("auth", None)
        if auth is not None:  # the same Basic auth, without aiohttp's deprecated BasicAuth
            kwargs["headers"] = {
                **(kwargs.get("headers") or {}),
                "Authorization": "Basic "
                + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode(),
            }
        response: Response = await super().request(method, self.rebase(url), *args, **kwargs)
        headers = response.headers or {}
        _last_retry_after.set(_retry_after(headers.get("Retry-After")))
        return response


class TwilioSmsNotifier:
    """Sends a nudge as one text (Twilio splits it into segments) to the rep's phone."""

    channel = "sms"

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        from_number: str | None = None,
        messaging_service_sid: str | None = None,
        status_callback: str | None = None,
        base_url: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        if not from_number and not messaging_service_sid:
            raise ConfigError(texts.NO_TWILIO_SENDER)
        self.from_number = to_e164(from_number) if from_number else None
        if from_number and not self.from_number:
            raise ConfigError(texts.BAD_FROM_NUMBER.format(value=from_number))
        self.messaging_service_sid = messaging_service_sid
        self.status_callback = status_callback
        self._account_sid = account_sid
        self._auth_token = auth_token
        self._base_url = base_url
        self._timeout = timeout
        self._client: Client | None = None
        self._http: RebasedHttpClient | None = None

    @classmethod
    def from_settings(cls, settings: Any) -> TwilioSmsNotifier:
        public = (settings.public_url or "").rstrip("/")
        return cls(
            settings.twilio_account_sid,
            settings.twilio_auth_token.get_secret_value(),
            from_number=settings.twilio_from_number,
            messaging_service_sid=settings.twilio_messaging_service_sid,
            status_callback=f"{public}/webhooks/twilio/status" if public else None,
            base_url=settings.twilio_api_url,
        )

    @property
    def client(self) -> Client:
        """Made on first use: aiohttp wants its session created inside the running loop."""
        if self._client is None:
            self._http = RebasedHttpClient(self._base_url, self._timeout)
            self._client = Client(self._account_sid, self._auth_token, http_client=self._http)
        return self._client

    async def send(self, message: OutboundMessage) -> SendResult:
        to = to_e164(message.recipient.phone)
        if to is None:
            raise PermanentDeliveryError(
                texts.NO_PHONE.format(rep_id=message.recipient.rep_id), code="invalid_number"
            )
        sender: dict[str, Any] = (
            {"messaging_service_sid": self.messaging_service_sid}
            if self.messaging_service_sid
            else {"from_": self.from_number}
        )
        if self.status_callback:
            sender["status_callback"] = self.status_callback
        with _twilio_errors():
            sent = await self.client.messages.create_async(to=to, body=sms_body(message), **sender)
        return SendResult(channel=self.channel, provider_id=sent.sid)

    async def find_sent(
        self, message: OutboundMessage, since: dt.datetime, exclude: frozenset[str] = frozenset()
    ) -> SendResult | None:
        """Twilio's record of this text to the rep's number since ``since``, by its body."""
        to = to_e164(message.recipient.phone)
        if to is None:
            return None
        body = sms_body(message)
        filters: dict[str, Any] = {"to": to}
        if self.from_number:
            filters["from_"] = self.from_number
        with _twilio_errors():
            found = await self.client.messages.list_async(
                **filters, limit=LOOKUP_LIMIT, page_size=100
            )
        for sent in found:
            if sent.sid in exclude or sent.body != body:
                continue
            if sent.date_created is not None and sent.date_created < since:
                continue
            return SendResult(channel=self.channel, provider_id=sent.sid)
        return None

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None
            self._client = None


def _twilio_errors() -> contextlib.AbstractContextManager[None]:
    """Twilio's failures as delivery errors (a refusal with the Retry-After it came with)."""
    _last_retry_after.set(None)
    return provider_errors(
        "Twilio", TwilioException, lambda exc: classify(exc, _last_retry_after.get())
    )


def classify(exc: TwilioException, retry_after: float | None = None) -> Exception:
    """A Twilio error as our transient / permanent delivery error, keeping the code."""
    status = int(getattr(exc, "status", 0) or 0)
    code = getattr(exc, "code", None)
    reason = str(getattr(exc, "msg", None) or getattr(exc, "title", None) or exc)
    code_s = str(code) if code is not None else str(status)
    if status == 429 or code == 20429:
        return TransientDeliveryError(reason, code="20429", retry_after=retry_after)
    if status >= 500 or status == 401 or code in TRANSIENT_CODES:
        return TransientDeliveryError(reason, code=code_s, retry_after=retry_after)
    return PermanentDeliveryError(reason, code=code_s)


def sms_body(message: OutboundMessage) -> str:
    """The text, then numbered questionnaire choices ("1 Yes  2 No"), cut to Twilio's limit."""
    body = message.text
    if message.choices:
        body += "\n" + "  ".join(f"{i} {c}" for i, c in enumerate(message.choices, 1))
    return body if len(body) <= MAX_BODY else body[: MAX_BODY - 1] + "…"
