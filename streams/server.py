"""The worker's web server: aiohttp, serving only :mod:`streams.routes`, with limits on everything.

Faust's own web stack (its ``/table/...`` and ``/router/`` views, which read lead data
out of the tables with no authentication) is not started: this server is registered
with ``app.web_server(...)``, which replaces it, and starts after table recovery.

Limits (settings ``NUDGE_WEB_*``, documented in the README's SECURITY section):

- **bind**: ``NUDGE_WEB_HOST``, loopback by default; any other address needs
  ``NUDGE_API_TOKEN`` (:func:`streams.access.check_bind`).
- **connections**: at most ``web_max_connections``; one more closes the oldest
  connection not inside a request, so a flood of idle or slow connections cannot
  starve a health probe or exhaust file descriptors (counted as
  ``nudge_http_refused_total{reason="connection_cap"}``, one warning a minute).
- **header timeout**: ``web_header_timeout`` from connect (and between keep-alive
  requests) until a request's headers are complete; aiohttp's keep-alive timer,
  which it starts at connect, is that timer.
- **body**: read up front with ``web_body_timeout`` (→ 408) and ``web_max_body_bytes``,
  counted before and after gzip decoding (→ 413); ``Content-Encoding`` other than
  gzip/identity → 415, a body that is not valid gzip → 400; each route's media
  types → 415.
- **rate**: ``web_rate_limit`` requests per second per client address (→ 429 with
  ``Retry-After``); health and readiness probes are not limited.

Every refusal is JSON ``{"error": reason}``, counted in
``nudge_http_refused_total{reason}``; a client that goes away mid-request, or sends
bytes aiohttp cannot parse as HTTP (answered 400 by aiohttp itself), is logged once
at info level. An unexpected error is logged once with its traceback and
answered 500 with no detail.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
import zlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler
from mode import Service

from nudge.logs import get_logger
from nudge.settings import Settings
from streams.access import RateLimiter, Tokens, allowed, check_bind
from streams.metrics import Metrics
from streams.routes import Route
from streams.views import error_response

log = get_logger(__name__)

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
ENCODINGS = frozenset({"", "identity", "gzip", "x-gzip"})
"""Content-Encodings accepted; gzip is decoded here (aiohttp's own decoding is off, so
an encoding it cannot decode is refused by us, as JSON, instead of by its parser)."""
FD_HEADROOM = 256
"""File descriptors kept free of web connections: the broker client, SQLite, logs."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def raise_fd_limit() -> int:
    """Raise this process's soft open-files limit to the hard one; returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


class ClientFaults(logging.Filter):
    """On aiohttp's server logger: a request it could not parse (bad header bytes, an
    over-long line) is the client's fault. aiohttp logs each as an error with a
    traceback; this turns it into one info line and drops the original."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError) and 400 <= (exc.code or 0) < 500:
            log.info(
                "malformed request refused",
                status=exc.code,
                reason=str(exc.message)[:200],
                peer=record.args[0] if isinstance(record.args, tuple) and record.args else None,
            )
            return False
        return True


CLIENT_FAULTS = ClientFaults()


class BodyTooLarge(ValueError):
    """A gzip body decodes to more than the limit."""


def gunzip(data: bytes, limit: int) -> bytes:
    """Decode a gzip body (several members allowed), never holding more than ``limit``
    decoded bytes: a small bomb cannot take memory. ``ValueError`` when it is not gzip."""
    out = bytearray()
    while data:
        inflater = zlib.decompressobj(wbits=31)
        try:
            out += inflater.decompress(data, limit + 1 - len(out))
        except zlib.error as exc:
            raise ValueError(str(exc)) from None
        if len(out) > limit or inflater.unconsumed_tail:
            raise BodyTooLarge(f"more than {limit} bytes")
        if not inflater.eof:
            raise ValueError("truncated")
        data = inflater.unused_data
    return bytes(out)


def connection_cap(setting: int, fd_limit: int) -> int:
    """``setting``, lowered when the process could not open that many sockets."""
    return max(8, min(setting, fd_limit - FD_HEADROOM))


class ConnectionCap:
    """Hook on aiohttp's server: past ``cap`` connections, close the oldest idle one.

    "Idle" is a connection with no request being handled: still sending its headers,
    or waiting between keep-alive requests. Handlers in flight are never cut.
    """

    WARN_EVERY = 60.0
    """Seconds between two warnings that the cap is being hit (a flood is one line a minute)."""

    def __init__(
        self,
        server: web.Server,
        cap: int,
        on_evict: Callable[[int], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.server = server
        self.cap = cap
        self.busy: set[RequestHandler] = set()
        self.evicted = 0
        self.on_evict = on_evict
        self.clock = clock
        self._warned_at: float | None = None
        self._warned_count = 0
        self._made = server.connection_made

    def install(self) -> None:
        self.server.connection_made = self.connection_made  # type: ignore[method-assign]

    def connection_made(self, handler: RequestHandler, transport: Any) -> None:
        self._made(handler, transport)
        excess = len(self.server._connections) - self.cap
        if excess <= 0:
            return
        victims = []
        for conn in self.server._connections:  # oldest first (insertion order)
            if conn not in self.busy and conn is not handler:
                victims.append(conn)
                if len(victims) == excess:
                    break
        for conn in victims:
            self.server._connections.pop(conn, None)
            conn.force_close()
        closed = len(victims)
        if closed < excess:  # every other connection is mid-request: refuse this one
            handler.force_close()
            closed += 1
        self.evicted += closed
        if self.on_evict is not None:
            self.on_evict(closed)
        now = self.clock()
        if self._warned_at is None or now - self._warned_at >= self.WARN_EVERY:
            log.warning(
                "connection cap reached: closing the oldest idle connections",
                cap=self.cap,
                closed_since_last_warning=self.evicted - self._warned_count,
            )
            self._warned_at, self._warned_count = now, self.evicted


class HttpServer(Service):
    """Serves ``routes`` on ``settings.web_host:web_port`` with the limits above."""

    def __init__(
        self, routes: Sequence[Route], settings: Settings, metrics: Metrics, **kwargs: Any
    ) -> None:
        check_bind(settings.web_host, settings.api_token)
        super().__init__(**kwargs)
        self.routes = list(routes)
        self.settings = settings
        self.metrics = metrics
        self.tokens = Tokens(settings.api_token)
        self.limiter = RateLimiter(settings.web_rate_limit, 2 * settings.web_rate_limit)
        self._by_handler: dict[tuple[str, str], Route] = {}
        self.runner: web.AppRunner | None = None
        self.cap: ConnectionCap | None = None

    @property
    def web_url(self) -> str:
        return f"http://{self.settings.web_host}:{self.settings.web_port}"

    def application(self) -> web.Application:
        app = web.Application(
            client_max_size=self.settings.web_max_body_bytes, middlewares=[self.guard]
        )
        for route in self.routes:
            resource = app.router.add_resource(route.path)
            resource.add_route(route.method, route.handler)
            self._by_handler[(route.method, resource.canonical)] = route
        return app

    async def on_start(self) -> None:
        fd_limit = raise_fd_limit()
        server_log = logging.getLogger("aiohttp.server")
        if CLIENT_FAULTS not in server_log.filters:
            server_log.addFilter(CLIENT_FAULTS)
        self.runner = web.AppRunner(
            self.application(),
            access_log=None,
            keepalive_timeout=self.settings.web_header_timeout,
            auto_decompress=False,  # gunzip() decodes, with the size cap
            handle_signals=False,
        )
        await self.runner.setup()
        assert self.runner.server is not None
        evicted = self.metrics.refused.labels("connection_cap")
        self.cap = ConnectionCap(
            self.runner.server,
            connection_cap(self.settings.web_max_connections, fd_limit),
            on_evict=evicted.inc,
        )
        self.cap.install()
        site = web.TCPSite(
            self.runner,
            self.settings.web_host,
            self.settings.web_port,
            backlog=4096,  # the kernel caps it at net.core.somaxconn
            shutdown_timeout=5.0,
        )
        await site.start()
        log.info(
            "web server listening",
            host=self.settings.web_host,
            port=self.settings.web_port,
            max_connections=self.cap.cap,
            token_required=self.tokens.required,
        )

    async def on_stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    def _refuse(
        self, status: int, why: str, reason: str, headers: dict[str, str] | None = None
    ) -> web.Response:
        self.metrics.refused.labels(why).inc()
        return error_response(status, reason, headers)

    @web.middleware
    async def guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Route look-up, rate, auth, body limits and JSON errors around every handler."""
        assert self.cap is not None
        protocol = request.protocol
        self.cap.busy.add(protocol)
        try:
            return await self._guarded(request, handler)
        finally:
            self.cap.busy.discard(protocol)

    async def _guarded(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        info = request.match_info
        resource = info.route.resource
        route = (
            self._by_handler.get((request.method, resource.canonical))
            if resource is not None
            else None
        )
        if route is None:
            exc = info.http_exception
            if isinstance(exc, web.HTTPMethodNotAllowed):
                allow = ", ".join(sorted(exc.allowed_methods))
                return self._refuse(
                    405, "method", f"{request.method} is not allowed here", {"Allow": allow}
                )
            return self._refuse(404, "not_found", f"no such path: {request.path[:200]}")
        peer = request.remote
        if route.limited:
            wait = self.limiter.take(peer or "?")
            if wait:
                return self._refuse(
                    429,
                    "rate",
                    f"more than {self.settings.web_rate_limit:g} requests per second from "
                    f"{peer}; retry after {wait:.2f} s",
                    {"Retry-After": str(max(1, round(wait + 0.5)))},
                )
        if not allowed(route.auth, self.tokens, request.headers.get("Authorization"), peer):
            return self._refuse(
                401,
                "auth",
                "a valid bearer token is required (Authorization: Bearer <NUDGE_API_TOKEN>)",
                {"WWW-Authenticate": 'Bearer realm="nudge"'},
            )
        if request.method in BODY_METHODS:
            refused = await self._read_body(request, route)
            if refused is not None:
                return refused
        try:
            return await handler(request)
        except web.HTTPException as exc:
            return self._refuse(exc.status, "http", exc.reason)
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception:
            log.exception("request failed", method=request.method, path=route.path)
            return error_response(500, "internal error; the worker log has the details")

    async def _read_body(self, request: web.Request, route: Route) -> web.Response | None:
        encoding = request.headers.get("Content-Encoding", "").strip().lower()
        if encoding not in ENCODINGS:
            return self._refuse(
                415, "encoding", f"Content-Encoding {encoding[:40]!r} is not supported: use gzip"
            )
        if route.accepts and request.content_type not in route.accepts:
            sent = request.headers.get("Content-Type", "(none)")[:80]
            return self._refuse(
                415,
                "content_type",
                f"Content-Type {sent} is not accepted here: use " + " or ".join(route.accepts),
            )
        limit = self.settings.web_max_body_bytes
        too_large = (
            f"the body is larger than {limit} bytes (after decoding); split it "
            "(`nudge events send` does)"
        )
        try:
            raw = await asyncio.wait_for(request.read(), self.settings.web_body_timeout)
        except TimeoutError:
            return self._refuse(
                408, "timeout", f"the body took longer than {self.settings.web_body_timeout:g} s"
            )
        except web.HTTPRequestEntityTooLarge:
            return self._refuse(413, "too_large", too_large)
        except ConnectionResetError as exc:
            log.info(
                "request aborted by the client",
                method=request.method,
                path=route.path,
                peer=request.remote,
                error=str(exc),
            )
            # nobody will read this; returning (not raising) keeps aiohttp from logging
            # the disconnect as an error with a traceback
            return error_response(400, "the client went away before the body was complete")
        if encoding in ("gzip", "x-gzip"):
            try:
                request._read_bytes = gunzip(raw, limit)
            except BodyTooLarge:
                return self._refuse(413, "too_large", too_large)
            except ValueError as exc:
                return self._refuse(400, "encoding", f"the body is not valid gzip: {exc}")
        return None
