"""Listener limits for the cockpit: connections, header time, body size, handler time.

aiohttp parses requests but caps neither connections nor the time a client may take to
send its headers, so :func:`serve` opens the socket itself around aiohttp's protocol
factory:

- at most ``max_connections`` open connections; one more is closed at once (a
  ``503`` line is written first so a person sees why);
- a connection that has not finished its first request's headers within
  ``header_timeout`` seconds is closed (slow-header clients); between requests
  aiohttp's keep-alive timeout applies;
- bodies over ``max_body`` bytes are refused with 413 by aiohttp (``client_max_size``);
- a handler running longer than ``handler_timeout`` is cancelled with a 503
  (:func:`timeout_middleware`).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web


@dataclass(frozen=True)
class Limits:
    max_connections: int = 200
    header_timeout: float = 10.0
    keepalive_timeout: float = 15.0
    handler_timeout: float = 20.0
    max_body: int = 16 * 1024


BUSY = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"

_STARTED: weakref.WeakSet[Any] = weakref.WeakSet()
"""Transports whose connection has delivered at least one full request head."""


@web.middleware
async def started_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    if request.transport is not None:
        _STARTED.add(request.transport)
    return await handler(request)


def timeout_middleware(seconds: float) -> Any:
    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        try:
            async with asyncio.timeout(seconds):
                return await handler(request)
        except TimeoutError:
            return web.Response(status=503, text="the cockpit took too long; try again\n")

    return middleware


class _Refuse(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(BUSY)
        transport.close()


async def serve(runner: web.AppRunner, host: str, port: int, limits: Limits) -> asyncio.Server:
    """Listen on ``host:port`` with ``limits``; ``runner`` must be set up already.

    The header deadline is enforced by a sweep once a second over the open
    connections, so a silent client is dropped between ``header_timeout`` and
    ``header_timeout + 1`` seconds after it connected."""
    loop = asyncio.get_running_loop()
    server = runner.server
    assert server is not None

    def factory() -> asyncio.BaseProtocol:
        if len(server.connections) >= limits.max_connections:
            return _Refuse()
        return server()

    listener = await loop.create_server(factory, host, port, backlog=128, reuse_address=True)
    first_seen: dict[Any, float] = {}

    async def sweep() -> None:
        while listener.is_serving():
            await asyncio.sleep(1.0)
            now = loop.time()
            open_now = server.connections
            for handler in list(first_seen):
                if handler not in open_now:
                    del first_seen[handler]
            for handler in open_now:
                since = first_seen.setdefault(handler, now)
                transport = handler.transport
                if (
                    transport is not None
                    and transport not in _STARTED
                    and now - since >= limits.header_timeout
                    and not transport.is_closing()
                ):
                    transport.close()

    task = loop.create_task(sweep())
    _SWEEPERS.add(task)
    task.add_done_callback(_SWEEPERS.discard)
    return listener


_SWEEPERS: set[asyncio.Task[None]] = set()
