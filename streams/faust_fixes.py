"""Fixes to Faust (faust-streaming 0.15.3, aiokafka 0.14) that the takeover tests need.

Each wraps one method once per process and says what it fixes and how it was
found; :func:`streams.app.make_app` applies them all, on Tansu and on Apache Kafka
alike: they are about Faust and aiokafka, not the broker (the survive tests pass on
both with them; the Tansu-only correction of partition ends is in :mod:`broker.offsets`
and applied only there). They are small on purpose. :data:`UPSTREAM` records a hash of
the source of every method patched or replaced here, as it was when the fix was
written; ``tests/unit/test_faust_fixes.py`` fails as soon as an upgrade changes one, so
the fix is re-read (and the survive tests re-run) before it is trusted again.

Checked against Apache Kafka (the three-node cluster of ``deploy/kafka/``), fix by fix:
:func:`fetch_only_active_partitions`, :func:`seek_before_resuming_streams` and
:func:`seek_uncommitted_to_beginning` close races inside the client (aiokafka reading an
empty partition set as "all", Faust clearing its queues after the seek, aiokafka skipping
a partition with no committed offset); no broker answer enters them, so Kafka needs them
as much as Tansu. :func:`limit_fetch_wait` was written for Tansu, but measured on Kafka it
pays too (below). ``tests/unit/test_faust_fixes.py`` checks a worker on Kafka gets these
four and not Tansu's end-offset corrections.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from faust.tables import TableManager

from nudge.logs import get_logger

log = get_logger(__name__)

UPSTREAM: dict[tuple[str, str], str] = {
    # (module, Class.method): sha256 of the method's source (decorators excluded), as in
    # faust-streaming 0.15.3 and aiokafka 0.14.0
    ("faust.transport.drivers.aiokafka", "AIOKafkaConsumerThread.getmany"): "689c79c162d4c198",
    (
        "faust.transport.drivers.aiokafka",
        "AIOKafkaConsumerThread._create_worker_consumer",
    ): "684c167041ff0044",
    (
        "faust.transport.drivers.aiokafka",
        "AIOKafkaConsumerThread.seek_to_committed",
    ): "cfaf5d02cabe8bfc",
    ("faust.tables.recovery", "Recovery.on_recovery_completed"): "2720e26cb703b2fa",
    ("faust.tables.manager", "TableManager.on_start"): "5e67c90893df7194",
    # what seek_uncommitted_to_beginning relies on: it skips partitions with no offset
    ("aiokafka.consumer.consumer", "AIOKafkaConsumer.seek_to_committed"): "2e1afb490c831751",
}
"""The upstream source each fix here was written against; see :func:`upstream_source`."""


def upstream_source(module: str, qualname: str) -> str:
    """The source of ``Class.method`` as its module's file has it: patching in this
    process (``inspect.getsource`` of the attribute would show our wrapper) cannot hide
    an upstream change."""
    import ast
    import importlib
    import inspect

    source = inspect.getsource(importlib.import_module(module))
    class_name, method = qualname.split(".")
    for node in ast.parse(source).body:
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and item.name == method:
                    return ast.get_source_segment(source, item) or ""
    raise LookupError(f"{module}.{qualname} not found")


def source_hash(module: str, qualname: str) -> str:
    """First 16 hex digits of the sha256 of :func:`upstream_source`."""
    import hashlib

    return hashlib.sha256(upstream_source(module, qualname).encode()).hexdigest()[:16]


def fetch_only_active_partitions() -> None:
    """Hand aiokafka a copy of Faust's active partitions for each fetch, not the live set.

    Faust passes its own set of active (unpaused) partitions to aiokafka's
    ``fetched_records`` and keeps changing it while the call waits for data.
    When a rebalance's recovery pauses the changelog partitions, that set can
    become empty mid-call, and aiokafka reads an empty set as "every
    partition": it hands over records of paused stream partitions, Faust
    discards them as not active, and aiokafka's position has moved past them,
    so they are never read (seen with ``DBG`` prints in the survive test: records
    of the taken-over partitions delivered during the post-recovery seek and
    dropped, a survivor that then never consumed them). A copy taken when the
    fetch starts keeps aiokafka's filter what Faust asked for.
    """
    from faust.transport.drivers import aiokafka as driver

    thread_cls: Any = driver.AIOKafkaConsumerThread
    if getattr(thread_cls.getmany, "_nudge_copies", False):
        return
    original = thread_cls.getmany

    async def getmany(self: Any, active_partitions: Any, timeout: float) -> Any:
        snapshot = None if active_partitions is None else set(active_partitions)
        return await original(self, snapshot, timeout)

    getmany._nudge_copies = True  # type: ignore[attr-defined]
    thread_cls.getmany = getmany


def seek_before_resuming_streams() -> None:
    """Seek the stream partitions to their committed offsets *before* resuming them.

    At the end of a table recovery Faust (``Recovery.on_recovery_completed``)
    resumes the stream partitions, awaits the seek to their committed offsets,
    and then resumes flow, which clears every stream queue. Records the
    fetcher delivered after the seek but before the clear (~100 ms) were
    thrown away, and not read again: the read offset had moved past them, so
    a lead taken over lost its text (1 run in 12 of the two-worker survive
    test). Here the same steps run in a safe order: seek while the stream
    partitions are still paused, clear the queues, and only then resume the
    partitions, so whatever is fetched afterwards comes from the committed
    offset and stays queued. Nothing else in the method changes.
    """
    from faust.tables.recovery import Recovery

    if getattr(Recovery.on_recovery_completed, "_nudge_fixed", False):
        return

    async def on_recovery_completed(self: Any, generation_id: int = 0) -> None:
        app: Any = self.app
        consumer = app.consumer
        self.log.info("Restore complete!")
        await app.on_rebalance_complete.send()
        self._set_recovery_ended()
        callbacks = [
            asyncio.ensure_future(
                table.on_recovery_completed(
                    self.actives_for_table[table], self.standbys_for_table[table]
                )
            )
            for table in self.tables.values()
        ]
        if callbacks:
            await asyncio.wait(callbacks)
        assignment = consumer.assignment()
        if app.consumer_generation_id != generation_id:
            self.log.warning("Recovery rebalancing again")
            return
        if assignment:
            self.log.info("Seek stream partitions to committed offsets.")
            await self._wait(consumer.perform_seek(), timeout=app.conf.broker_request_timeout)
        self.completed.set()
        app.flow_control.resume()  # clears the stream queues: nothing after the seek is in them
        consumer.resume_partitions({tp for tp in assignment if not self._is_changelog_tp(tp)})
        consumer.resume_flow()
        await app._fetcher.maybe_start()
        self.tables.on_actives_ready()
        if not app.assignor.assigned_standbys():
            self.tables.on_standbys_ready()
        app.on_rebalance_end()
        self.log.info("Worker ready")

    on_recovery_completed._nudge_fixed = True  # type: ignore[attr-defined]
    cast(Any, Recovery).on_recovery_completed = on_recovery_completed


def limit_fetch_wait(max_wait_ms: int) -> None:
    """Make Faust's worker consumer wait at most ``max_wait_ms`` for an idle fetch.

    Faust hard-codes ``fetch_max_wait_ms=1500``. Tansu holds every fetch for the
    full wait: measured 552 ms per hop against 2 ms with 100 ms, i.e. over a
    second from event to text across the pipeline's hops. Kafka answers a fetch as
    soon as data arrives, yet the shorter wait pays there too: ``bench_scaleout.py
    --workers 1 --leads 300`` on the three-node cluster (2026-11-30, 2-core machine
    shared, load 7-10), twice each: 414 and 400 events/s with 100 ms against 298 and
    291 with 1500 ms, 853/813 against 1053/1233 µs of worker CPU per event, latency
    p50 847/1095 against 1058/1132 ms. (Likely cause: aiokafka keeps one fetch per
    broker in flight and leaves partitions with records still buffered out of it, so
    records arriving for those wait for that fetch to return.) The knob is private in
    Faust, so this wraps its consumer factory once per process.
    """
    from faust.transport.drivers import aiokafka as driver

    thread_cls: Any = driver.AIOKafkaConsumerThread
    original = getattr(thread_cls, "_nudge_original_create", thread_cls._create_worker_consumer)

    def create(self: Any, transport: Any) -> Any:
        consumer = original(self, transport)
        if hasattr(consumer, "_fetch_max_wait_ms"):
            consumer._fetch_max_wait_ms = max_wait_ms
        else:  # pragma: no cover - a future aiokafka renamed it
            log.warning("cannot lower the consumer's fetch wait; expect ~1 s latency per hop")
        return consumer

    thread_cls._nudge_original_create = original
    thread_cls._create_worker_consumer = create


def seek_uncommitted_to_beginning() -> None:
    """Make Faust's seek to committed offsets also rewind partitions that have none.

    After every rebalance Faust drops what its stream queues held and counts on
    the seek to committed offsets to read it again. aiokafka's
    ``seek_to_committed`` skips a partition whose committed offset is missing
    (or 0), so records of such a partition that were fetched, not yet handled
    and dropped — a partition consumed for less than a commit interval before
    a rebalance, e.g. on a worker killed before its first commit — were never
    read again, and the commit stopped at the gap ("the stall": partitions 2
    and 3 of every stream topic in the survive test, 16-18 of 20 nudges).

    So here every such partition (changelogs excepted: recovery positions
    those itself) is sought to its beginning, which is where
    ``consumer_auto_offset_reset="earliest"`` puts it anyway.
    """
    from aiokafka import AIOKafkaConsumer
    from faust.transport.drivers import aiokafka as driver

    thread_cls: Any = driver.AIOKafkaConsumerThread
    if getattr(thread_cls.seek_to_committed, "_nudge_rewinds", False):
        return

    async def seek_to_committed(self: Any) -> Any:
        consumer: AIOKafkaConsumer = self._ensure_consumer()
        changelogs = self.app.tables.changelog_topics

        async def seek() -> Any:
            committed = await consumer.seek_to_committed()
            missing = [tp for tp, offset in committed.items() if not offset]
            missing = [tp for tp in missing if tp.topic not in changelogs]
            if missing:
                for tp, offset in (await consumer.beginning_offsets(missing)).items():
                    consumer.seek(tp, offset)
            return committed

        return await self.call_thread(seek)

    seek_to_committed._nudge_rewinds = True  # type: ignore[attr-defined]
    thread_cls.seek_to_committed = seek_to_committed


class PromptTableManager(TableManager):
    """Faust's table manager without the one-second sleep its ``on_start`` begins with.

    Faust sleeps 1 s before it closes the list of tables and starts recovery, which gives
    tables declared while the app starts (in an agent's body, say) time to register.
    Nudge declares its tables in :func:`streams.app.build`, before the app starts; a table
    declared later is refused loudly (``add`` raises "Too late to add tables"), never
    missed. The sleep was a whole second of every worker's start-up (measured with a
    trace of the services' starts: ``TableManager`` started, then nothing for 1.0 s).
    """

    async def on_start(self) -> None:
        if not self.should_stop:
            await self._update_channels()
            await self.recovery.start()
