"""Pytest fixtures for the provider fakes and a fresh CRM store.

Each fake runs as a real HTTP server on a free loopback port for one test; the
real twilio / slack_sdk clients are pointed at it. Import with
``from tests.fakes.fixtures import *`` in a ``conftest.py``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiohttp.test_utils import TestServer

from crm.store import Store
from nudge.events import RepUpserted
from tests.fakes.slack_server import FakeSlack
from tests.fakes.twilio_server import FakeTwilio

__all__ = ["add_rep", "serving", "slack_fake", "store", "twilio_fake"]

F = TypeVar("F", bound=Any)


@contextlib.asynccontextmanager
async def serving(fake: F) -> AsyncIterator[F]:
    """``fake`` (one of tests/fakes) served on a free loopback port, as ``fake.server``, for
    the block."""
    fake.server = TestServer(fake.app(), host="127.0.0.1")
    await fake.server.start_server()
    try:
        yield fake
    finally:
        await fake.server.close()


@pytest.fixture
async def twilio_fake() -> AsyncIterator[FakeTwilio]:
    async with serving(FakeTwilio()) as fake:
        yield fake


@pytest.fixture
async def slack_fake() -> AsyncIterator[FakeSlack]:
    async with serving(FakeSlack()) as fake:
        yield fake


@pytest.fixture
async def store(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    """A migrated store on a fresh SQLite file, or (parametrized ``postgresql``, see
    ``STORES`` in tests/conftest.py) on a fresh PostgreSQL database."""
    kind = getattr(request, "param", "sqlite")
    location = (
        request.getfixturevalue("postgres").database()
        if kind == "postgresql"
        else tmp_path / "nudge.db"
    )
    s = await Store.open(location)
    try:
        yield s
    finally:
        await s.close()


async def add_rep(
    store: Store,
    rep_id: str = "rep-1",
    *,
    phone: str | None = "+14155550101",
    slack_user_id: str | None = None,
    timezone: str = "America/New_York",
) -> None:
    """Insert a rep the way the ingest agent does (a ``rep.upserted`` event)."""
    await store.upsert_rep(
        RepUpserted(
            type="rep.upserted",
            event_id=f"ev-{rep_id}",
            occurred_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
            source="test",
            rep_id=rep_id,
            name=f"Rep {rep_id}",
            phone=phone,
            slack_user_id=slack_user_id,
            timezone=timezone,
        )
    )
