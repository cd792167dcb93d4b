"""The webhook routes (streams.webhooks) on a live loopback server, for the notifier tests."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp.test_utils import TestServer

from crm.store import Store
from nudge.settings import Settings
from nudge.signals import Reply
from streams.webhooks import routes


@contextlib.asynccontextmanager
async def serve_webhooks(
    store: Store, settings: Settings
) -> AsyncIterator[tuple[TestServer, list[Reply]]]:
    """The routes served for the block; the list collects every Reply they publish."""
    replies: list[Reply] = []

    async def publish(reply: Reply) -> None:
        replies.append(reply)

    app = web.Application()
    app.router.add_routes(routes(publish, store, settings))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield server, replies
    finally:
        await server.close()
