"""Operator commands against a real broker: topic init, dead-letter list and replay."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from tests.integration.test_pipeline import read_topic

pytestmark = pytest.mark.slow

VALID = {
    "event_id": "w1",
    "type": "page.viewed",
    "occurred_at": "2026-03-02T10:00:00Z",
    "source": "web",
    "email": "a@b.co",
    "path": "/pricing",
}


def nudge(broker: Any, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KAFKA_URL": broker.url, "NUDGE_APP_ID": "ops-test"}
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def topics(bootstrap: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


def test_topics_create_is_idempotent(broker: Any) -> None:
    """`nudge topics create` makes every topic and the compacted changelog, twice without error."""
    first = nudge(broker, "topics", "create")
    assert first.returncode == 0, first.stderr
    assert {
        "crm.events",
        "web.events",
        "events.dead",
        "lead.activity",
        "nudges",
        "ops-test-leads-changelog",
    } <= asyncio.run(topics(broker.bootstrap))
    again = nudge(broker, "topics", "create")
    assert again.returncode == 0 and "exists  crm.events" in again.stderr


def test_dead_list_and_replay(broker: Any) -> None:
    """Dead events are listed with reasons; replay re-sends those that now validate, once."""
    records = [
        {
            "reason": "type: unknown event type (old schema)",
            "topic": "web.events",
            "partition": 0,
            "offset": 7,
            "raw": json.dumps(VALID),
        },
        {
            "reason": "not valid JSON",
            "topic": "web.events",
            "partition": 0,
            "offset": 8,
            "raw": "{broken",
        },
    ]

    async def seed() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
        await producer.start()
        for r in records:
            await producer.send_and_wait("events.dead", json.dumps(r).encode())
        await producer.stop()

    asyncio.run(seed())
    listed = nudge(broker, "dead", "list")
    assert listed.returncode == 0
    assert "unknown event type (old schema)" in listed.stdout and "not valid JSON" in listed.stdout
    replay = nudge(broker, "dead", "replay")
    assert replay.returncode == 1  # one is still invalid, and says so
    assert "replayed 1, still invalid 1" in replay.stderr
    [event] = asyncio.run(read_topic(broker.bootstrap, "web.events", at_least=1))
    assert event["event_id"] == "w1"
    again = nudge(broker, "dead", "replay")
    assert "replayed 0, still invalid 0" in again.stderr
