"""Intake: the inbound topics read in batches by an aiokafka consumer of Nudge's own.

crm.events, call.events and web.events carry the most messages, and Faust costs
~150–250 µs CPU for each message it hands an agent — about the whole budget of an
event. So no Faust agent reads them: :class:`Intake`, a service started with the
Faust app, owns an :class:`aiokafka.AIOKafkaConsumer` in a group of its own
(``<app_id>-intake``) and, per batch:

1. takes what the fetcher holds, from every partition, with ``getmany`` (waiting at
   most ``NUDGE_BATCH_WAIT_MS`` for it) and cuts it in batches of up to ``BATCH_MAX``
   records, CRM records first (:func:`in_order`); per batch:
2. validates them, resolves identities and forwards them by lead
   (:func:`streams.ingest.ingest_batch`) in envelopes sent with the app's own
   producer, and waits for the broker's acks;
3. marks the unmatched activities the batch claimed;
4. only then commits the batch's offsets.

So delivery is at-least-once: after a crash or a rebalance the next owner of a
partition redoes the records past its last commit, and the lead agent drops an
event it has seen by its id. A batch that fails as a whole is redone one record at a
time so only the record that fails alone is dead-lettered, and a database outage is
waited out (:func:`streams.agents.handle_batch`); anything else that stops a batch
(the broker refusing the dead letter too) seeks back to the batch's first records
and tries again, never skipping them.

Ingest keeps no state but the record (identity links live in the store), so it
needs none of Faust's co-partitioning or table machinery: any worker may own any
inbound partition. A revoke waits a moment for the batch in hand to be committed;
a commit refused after the revoke (the group moved on) is counted, not fatal: the
new owner redoes the batch.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from mode import Service

from nudge.logs import get_logger
from streams.agents import handle_batch
from streams.batching import BATCH_MAX
from streams.ingest import Record, ingest_batch
from streams.pipeline import Pipeline
from streams.topics import INBOUND

log = get_logger(__name__)

GROUP_SUFFIX = "-intake"
"""Intake's consumer group: ``<app_id>-intake``, apart from the Faust agents' group."""
REVOKE_SHARE = 0.5
"""Share of the session timeout (the rebalance timeout) a revoke waits at most for the
batch in hand to be committed: the group waits that long for this member's rejoin."""
STOP_WAIT = 10.0
"""Longest (s) a stopping worker waits for the batch in hand before cancelling it."""
RETRY_PAUSE = 1.0
"""Pause (s) before a batch that could not be handled is tried again."""


class Committer(Protocol):
    """What :meth:`Intake.handle` asks of its consumer (an ``AIOKafkaConsumer``)."""

    def assignment(self) -> set[TopicPartition]: ...

    def seek(self, partition: TopicPartition, offset: int) -> None: ...

    async def commit(self, offsets: dict[TopicPartition, int]) -> None: ...


async def ingest(p: Pipeline, records: list[Record]) -> None:
    """One batch: forward it, wait for the broker's acks, then mark what it claimed."""
    out = p.envelopes()
    claimed = await ingest_batch(p, records, out)
    await out.flush()
    if claimed:  # only once forwarded: a crash before leaves them to be claimed again
        await (await p.store()).mark_claimed(claimed)


def bootstrap_servers(app: Any) -> str:
    """``host:port,...`` of the Faust app's brokers (``kafka://a:9092;b:9092``)."""
    return ",".join(f"{url.host}:{url.port or 9092}" for url in app.conf.broker)


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, intake: Intake) -> None:
        self.intake = intake

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        # the batch in hand commits if it can; else the next owner redoes it
        with contextlib.suppress(TimeoutError):
            wait = self.intake.p.settings.consumer_session_timeout * REVOKE_SHARE
            await asyncio.wait_for(self.intake.idle.wait(), wait)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.intake.assigned = frozenset(assigned)
        self.intake.joined.set()
        log.info("intake partitions assigned", partitions=sorted(map(str, assigned)))


TOPIC_ORDER = {topic: rank for rank, topic in enumerate(INBOUND)}
"""crm.events, then call.events, then web.events."""


def _tp(record: Record) -> TopicPartition:
    return TopicPartition(record.topic, record.partition)


def in_order(batch: dict[TopicPartition, list[Record]]) -> list[Record]:
    """A ``getmany`` result's records, CRM first, each partition's in its order.

    Topics are not ordered against each other, but a fetch holds what the broker had of
    each: a lead's ``lead.created`` (its owner, its profile) that was produced before its
    page views is then handled before them, as a Faust agent's fair turn over the
    partitions mostly did, instead of after the views it would have made a nudge of."""
    return sorted(
        (r for part in batch.values() for r in part), key=lambda r: TOPIC_ORDER.get(r.topic, 0)
    )


class Intake(Service):
    """The inbound topics' consumer (see the module docstring)."""

    def __init__(self, p: Pipeline, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.p = p
        self.consumer: AIOKafkaConsumer | None = None
        self.joined = asyncio.Event()
        """Set once the group gave this consumer its partitions (``/ready``)."""
        self.assigned: frozenset[TopicPartition] = frozenset()
        self.idle = asyncio.Event()
        """Clear while a batch is in hand (from its read to its commit)."""
        self.idle.set()
        self.committed: dict[TopicPartition, int] = {}
        self.retry_pause = RETRY_PAUSE
        self._stopping = False
        self._loop_task: asyncio.Future[None] | None = None

    def make_consumer(self) -> AIOKafkaConsumer:
        s = self.p.settings
        return AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers(self.p.app),
            group_id=s.app_id + GROUP_SUFFIX,
            client_id=s.app_id + GROUP_SUFFIX,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            # as the Faust consumer's (streams.app): joins in 1.5-3 s on Tansu, not ~30 s
            session_timeout_ms=int(s.consumer_session_timeout * 1000),
            heartbeat_interval_ms=int(s.heartbeat_interval * 1000),
            fetch_max_wait_ms=s.fetch_max_wait_ms,
        )

    async def on_start(self) -> None:
        # started with the app, before its producer: the group join (half the session
        # timeout on Tansu) runs alongside the Faust consumer's instead of after it
        self.consumer = self.make_consumer()
        await self.consumer.start()
        # after start: subscribed before, start() would wait for the assignment itself
        self.consumer.subscribe(list(INBOUND), listener=_Listener(self))
        self._loop_task = self.add_future(self._run())

    async def on_stop(self) -> None:
        """Finish the batch in hand (commit included), then leave the group."""
        self._stopping = True
        task = self._loop_task
        if task is not None and not task.done():
            done, _ = await asyncio.wait({task}, timeout=STOP_WAIT)
            if not done:
                log.warning("intake batch still running at stop; cancelled, to be redone")
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self.consumer is not None:
            await self.consumer.stop()

    async def _run(self) -> None:
        consumer = self.consumer
        assert consumer is not None
        producer = self.p.app.producer
        while not producer.started and not self._stopping:  # envelopes go out through it
            await asyncio.sleep(0.05)
        wait_ms = self.p.settings.batch_wait_ms
        while not self._stopping:
            try:
                # all that the fetcher holds, from every partition: handle() takes it in
                # batches, CRM first; one partition's 500 records at a time would run web
                # events ahead of the lead.created that gives their lead its owner
                batch = await consumer.getmany(timeout_ms=wait_ms)
            except KafkaError as exc:
                log.warning("intake fetch failed; retrying", error=repr(exc))
                await asyncio.sleep(self.retry_pause)
                continue
            if not batch:
                continue
            self.idle.clear()
            try:
                await self.handle(consumer, batch)
            finally:
                self.idle.set()

    async def handle(self, consumer: Committer, batch: dict[TopicPartition, list[Record]]) -> None:
        """Ingest one ``getmany`` result in batches of up to ``BATCH_MAX``, committing each.

        The records go CRM first (:func:`in_order`). A batch that cannot be handled is not
        committed, nor is anything after it: the consumer goes back to its first records
        so they are read again (never skipped by a later commit)."""
        records = in_order(batch)
        for start in range(0, len(records), BATCH_MAX):
            owned = consumer.assignment()  # revoked meanwhile: the next owner reads them
            chunk = [r for r in records[start : start + BATCH_MAX] if _tp(r) in owned]
            if not chunk:
                continue
            try:
                await handle_batch(self.p, "ingest", ingest, chunk)
            except Exception as exc:
                self.p.stats["intake.batch_retries"] += 1
                log.error("intake batch failed; reading it again", error=repr(exc), exc_info=exc)
                first: dict[TopicPartition, int] = {}
                for r in records[start:]:
                    first.setdefault(_tp(r), r.offset)
                for tp, offset in first.items():
                    if tp in owned:
                        consumer.seek(tp, offset)
                await asyncio.sleep(self.retry_pause)
                return
            self.p.stats["intake.batches"] += 1
            await self.commit(consumer, {_tp(r): r.offset + 1 for r in chunk})

    async def commit(self, consumer: Committer, offsets: dict[TopicPartition, int]) -> None:
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError, KafkaError) as exc:
            # revoked meanwhile (or the coordinator away): the next owner, or the next
            # commit of this consumer, covers these records; redone ones are dropped by id
            self.p.stats["intake.commits_refused"] += 1
            log.warning("intake commit refused; the batch is redone", error=repr(exc))
            return
        self.committed.update(offsets)

    async def lag(self) -> dict[tuple[str, int], int]:
        """Records not yet committed, per assigned partition (ends as of the last fetch)."""
        consumer = self.consumer
        if consumer is None:
            return {}
        out = {}
        for tp in self.assigned:
            end = consumer.highwater(tp)
            if end is None:
                continue
            if tp not in self.committed:  # committed before this worker owned it
                self.committed[tp] = await consumer.committed(tp) or 0
            out[(tp.topic, tp.partition)] = max(0, end - self.committed[tp])
        return out
