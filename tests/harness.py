"""Run the agents' batch handlers in process: no broker, no worker subprocess.

:class:`AgentHarness` builds the real pipeline (``streams.app.build``: the Faust app,
its agents and views, a real SQLite store in a temporary folder, the console notifier
writing to a buffer) but never starts the Faust app. In its place:

- each topic is a :class:`RecordedTopic` that keeps what was sent (key, value,
  partition) and can be told to fail, as a broker refusing a produce would;
- the ``leads`` and ``guards`` tables are plain dicts (``TableBatch`` reads with
  ``get`` and writes with ``[key] =``, which is all it asks of a Faust table);
- input messages are real ``faust.Event`` objects over real ``Message`` tuples, and
  inbound records real aiokafka ``ConsumerRecord`` objects;
- intake's consumer is a :class:`RecordedConsumer` that keeps its commits and seeks
  and can refuse a commit, as a group that has moved on does.

So a test drives intake (:meth:`AgentHarness.intake`: one ``getmany`` result through
``Intake.handle``) or ``streams.agents.handle_batch`` with the lead or playbook handler
on a list of messages, and reads what each stage handed on and committed: batching,
envelopes, dead letters, the one-at-a-time redo of a failed batch, offsets.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faust
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord
from faust.types.tuples import Message

from notifiers.console import ConsoleNotifier
from nudge.clock import Clock
from nudge.settings import Settings
from streams.agents import BatchHandler, handle_batch
from streams.app import build
from streams.batching import unpack
from streams.ingest import Record
from streams.pipeline import Pipeline
from streams.topics import TOPICS


@dataclass
class Sent:
    key: bytes | None
    value: bytes
    partition: int | None


@dataclass(eq=False)
class RecordedTopic:
    """Stands in for a Faust topic: records sends; ``fail_next`` refuses that many."""

    name: str
    sent: list[Sent] = field(default_factory=list)
    fail_next: int = 0
    refuse: bytes | None = None
    """Every send whose value contains these bytes fails (a message the broker refuses)."""

    def get_topic_name(self) -> str:
        return self.name

    async def send(
        self,
        *,
        key: bytes | None = None,
        value: bytes = b"",
        partition: int | None = None,
        force: bool = False,
        **_: Any,
    ) -> asyncio.Future[None]:
        if self.fail_next or (self.refuse is not None and self.refuse in value):
            self.fail_next = max(0, self.fail_next - 1)
            raise ConnectionError(f"produce to {self.name} refused")
        self.sent.append(Sent(key, value, partition))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    def items(self) -> list[tuple[str, Any]]:
        """Every ``(key, item)`` sent, envelopes unpacked."""
        out: list[tuple[str, Any]] = []
        for s in self.sent:
            message = Message(self.name, s.partition or 0, 0, 0.0, 0, [], s.key, s.value, None)
            out.extend(unpack(faust.Event(None, s.key, s.value, {}, message)))  # type: ignore[arg-type]
        return out


@dataclass
class RecordedConsumer:
    """Stands in for intake's aiokafka consumer: keeps commits and seeks; ``refuse``
    makes the next commit raise it (a commit after the partitions were revoked)."""

    assigned: set[TopicPartition] = field(default_factory=set)
    commits: list[dict[TopicPartition, int]] = field(default_factory=list)
    seeks: list[tuple[TopicPartition, int]] = field(default_factory=list)
    refuse: Exception | None = None

    def assignment(self) -> set[TopicPartition]:
        return self.assigned

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self.seeks.append((partition, offset))

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        if self.refuse is not None:
            exc, self.refuse = self.refuse, None
            raise exc
        self.commits.append(dict(offsets))


class AgentHarness:
    """The pipeline of one worker, its agents run by hand on messages the test makes."""

    def __init__(self, data_dir: Path, *, clock: Clock | None = None, **settings: Any) -> None:
        self.console = io.StringIO()
        self.settings = Settings(data_dir=data_dir, **settings)
        self.p: Pipeline = build(
            self.settings,
            "kafka://127.0.0.1:9",  # never connected: the app is not started
            notifiers={"console": ConsoleNotifier(self.console)},
            clock=clock,
        )
        self.topics: dict[str, RecordedTopic] = {}
        for spec in TOPICS:
            self.topics[spec.name] = RecordedTopic(spec.name)
            setattr(self.p, spec.attr, self.topics[spec.name])
        self.p.leads = {}
        self.p.guards = {}
        self.p.intake.retry_pause = 0
        self.consumer = RecordedConsumer()
        self._offsets: dict[str, int] = {}
        self._record_offsets: dict[tuple[str, int], int] = {}

    def message(self, topic: str, value: Any, key: bytes | None = None) -> faust.Event:
        """A message as the agent would receive it from ``topic`` (dicts become JSON)."""
        raw = value if isinstance(value, bytes) else json.dumps(value).encode()
        offset = self._offsets[topic] = self._offsets.get(topic, -1) + 1
        msg = Message(topic, 0, offset, time.time(), 0, [], key, raw, None)
        return faust.Event(self.p.app, key, raw, {}, msg)

    def record(
        self, topic: str, value: Any, key: bytes | None = None, partition: int = 0
    ) -> Record:
        """An inbound record as intake's consumer would read it (dicts become JSON)."""
        raw = value if isinstance(value, bytes) else json.dumps(value).encode()
        at = (topic, partition)
        offset = self._record_offsets[at] = self._record_offsets.get(at, -1) + 1
        return ConsumerRecord(
            topic, partition, offset, int(time.time() * 1000), 0, key, raw, None, 0, len(raw), ()
        )

    async def intake(self, records: list[Record]) -> None:
        """One ``getmany`` result (``records``, grouped by partition) through intake."""
        batch: dict[TopicPartition, list[Record]] = {}
        for r in records:
            batch.setdefault(TopicPartition(r.topic, r.partition), []).append(r)
        self.consumer.assigned |= set(batch)
        await self.p.intake.handle(self.consumer, batch)

    async def run(self, name: str, handle: BatchHandler, messages: list[faust.Event]) -> None:
        """One micro-batch through ``handle``, as the agent ``name`` would run it."""
        await handle_batch(self.p, name, handle, messages)

    def dead(self) -> list[dict[str, Any]]:
        return [json.loads(s.value) for s in self.topics["events.dead"].sent]

    async def close(self) -> None:
        await self.p.close()


VIEWED_AT = "2026-03-02T09:00:00+00:00"


def page_view(lead: str, n: int) -> dict[str, Any]:
    """Pricing-page view number ``n`` of ``lead``, naming its lead."""
    return {
        "event_id": f"{lead}-v{n}",
        "type": "page.viewed",
        "occurred_at": VIEWED_AT,
        "source": "web",
        "lead_id": lead,
        "path": "/pricing",
    }
