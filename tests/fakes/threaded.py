"""Run a provider fake (FakeTwilio, FakeSlack) in a background thread with its own loop.

The async fixtures in :mod:`tests.fakes.fixtures` serve a fake on the test's own
event loop, which suits in-process tests. End-to-end tests are synchronous and
drive ``nudge worker`` subprocesses; the fake must keep answering while the test
sleeps and polls, so it gets a thread and an event loop of its own. The fake's
state (``messages``, ``requests``, ``outage``) is plain Python data: the test reads
and sets it from its own thread (list appends and attribute writes are atomic).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from aiohttp.test_utils import TestServer

F = TypeVar("F")


@contextmanager
def served(fake: F, host: str = "127.0.0.1") -> Iterator[F]:
    """Serve ``fake.app()`` on a free port of ``host`` (loopback unless told) until the block
    ends; sets ``fake.server``."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    errors: list[BaseException] = []

    async def start() -> None:
        server = TestServer(fake.app(), host=host)  # type: ignore[attr-defined]
        ssl_context = getattr(fake, "ssl_context", None)  # an HTTPS-only client's fake
        await server.start_server(**({"ssl": ssl_context} if ssl_context else {}))
        fake.server = server  # type: ignore[attr-defined]

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(start())
        except BaseException as exc:
            errors.append(exc)
            started.set()
            return
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="fake-provider", daemon=True)
    thread.start()
    started.wait(10)
    if errors:
        raise errors[0]
    try:
        yield fake
    finally:
        server: Any = fake.server  # type: ignore[attr-defined]
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
