"""Micro-batches between agents: what makes the pipeline cost per batch, not per event.

Faust's own cost is per message (~70–200 µs a hop, ``bench/``), and so is a
producer send. So the agents take their input in micro-batches
(``stream.take_events``) and hand results on in *envelopes*: one message per
destination partition per batch, holding ``[key, item]`` pairs, sent to the
partition the items' keys hash to — exactly the partition a keyed send of each
item would have reached, so the state owners (tables, the scheduler's timers)
see the same partitioning as before. A consumer accepts both an envelope (a
JSON array) and a single keyed message (the scheduler sends those).
"""

from __future__ import annotations

import weakref
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

import orjson
from aiokafka.partitioner import murmur2
from faust.streams import _current_event
from faust.types import EventT

BATCH_MAX = 500
"""Most messages an agent takes at once."""
ENVELOPE_MAX_BYTES = 256 * 1024
"""An envelope is closed at this size (Kafka refuses messages over ~1 MB by default)."""


def partition_for(key: bytes, partitions: int) -> int:
    """The partition a keyed send lands on (the Java client's and aiokafka's murmur2)."""
    hashed: int = murmur2(key)
    return (hashed & 0x7FFFFFFF) % partitions


class Envelopes:
    """Items collected during one batch, sent as one message per topic partition."""

    def __init__(self, app: Any, partitions: int) -> None:
        self.app = app
        self.default_partitions = partitions
        self.partitions: dict[Any, int] = {}
        self.items: dict[tuple[Any, int], list[bytes]] = defaultdict(list)
        self.sizes: dict[tuple[Any, int], int] = defaultdict(int)
        self.full: list[tuple[Any, int, list[bytes]]] = []

    def add(self, topic: Any, key: bytes, value: bytes) -> None:
        """Queue ``value`` (JSON bytes) for ``topic``, routed as a send keyed ``key`` would be."""
        n = self.partitions.get(topic)
        if n is None:  # once per topic and batch
            found = self.app.consumer.topic_partitions(topic.get_topic_name())
            n = self.partitions[topic] = found or self.default_partitions
        dest = (topic, partition_for(key, n))
        pair = b"[" + orjson.dumps(key.decode()) + b"," + value + b"]"
        if self.items[dest] and self.sizes[dest] + len(pair) > ENVELOPE_MAX_BYTES:
            self.full.append((*dest, self.items.pop(dest)))
            self.sizes[dest] = 0
        self.items[dest].append(pair)
        self.sizes[dest] += len(pair) + 1

    async def flush(self) -> int:
        """Send every envelope (a partition's in the order of its items) and wait until the
        broker has them all; returns how many.

        Waiting matters: a batch's state (a table write, a claimed activity) is recorded
        only after what it sends is durable, so a worker killed in between redoes the
        batch rather than finding state that says it was done and an envelope that is
        lost. With batches, that costs one round trip per batch, not per event."""
        ready = self.full + [(topic, part, pairs) for (topic, part), pairs in self.items.items()]
        self.items, self.sizes, self.full = defaultdict(list), defaultdict(int), []
        sent = [
            await topic.send(
                force=True, partition=part, key=b"batch", value=b"[" + b",".join(pairs) + b"]"
            )
            for topic, part, pairs in ready
        ]
        for future in sent:
            await future  # acknowledged by the broker: the caller records state only after
        return len(ready)


def unpack(event: EventT[Any]) -> list[tuple[str, Any]]:
    """``(key, item)`` pairs of a message, items decoded: an envelope's, or the message's own."""
    raw: bytes = event.value
    if raw[:1] == b"[":
        return [(str(k), item) for k, item in orjson.loads(raw)]
    key = event.key.decode() if isinstance(event.key, bytes) else ""
    return [(key, orjson.loads(raw))]


@contextmanager
def current(event: EventT[Any]) -> Iterator[None]:
    """Make ``event`` Faust's current event while its items are handled.

    A table write goes to the changelog partition of the current event. Inside
    ``take_events`` no event is current in the agent's task (the stream is read
    by a background task), so the batch handlers set it per message; it is the
    same context variable Faust sets when an agent iterates events one by one.
    """
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


T = TypeVar("T")


class TableBatch(Generic[T]):
    """The table entries one batch touches: each read (and decoded) once, and written
    back once, if changed, after the batch — in the changelog partition of the message
    that last changed it."""

    def __init__(self, table: Any, load: Callable[[Any], T], dump: Callable[[T], Any]) -> None:
        self.table, self.load, self.dump = table, load, dump
        self.values: dict[str, T | None] = {}
        self.changed: dict[str, EventT[Any]] = {}

    def get(self, key: str) -> T | None:
        if key not in self.values:
            stored = self.table.get(key)
            self.values[key] = self.load(stored) if stored else None
        return self.values[key]

    def seed(self, key: str, value: T) -> None:
        """Start from ``value`` where the table holds nothing (written only once changed)."""
        self.values[key] = value

    def put(self, key: str, value: T, event: EventT[Any], changed: bool = True) -> None:
        self.values[key] = value
        if changed:
            self.changed[key] = event

    def discard(self, key: str) -> None:
        """After a failure: the table keeps the entry as it was before this batch."""
        self.values.pop(key, None)
        self.changed.pop(key, None)

    def write(self) -> None:
        for key, event in self.changed.items():
            value = self.values[key]
            assert value is not None
            with current(event):  # the changelog partition is the message's
                self.table[key] = self.dump(value)
