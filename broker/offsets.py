"""Corrections, in this process's aiokafka, for the partition ends Tansu under-reports."""

from __future__ import annotations

import asyncio
from typing import Any

from broker.objectstore import ObjectStore

UPSTREAM: dict[tuple[str, str], str] = {
    # (module, Class.method): sha256 prefix of the method's source in aiokafka 0.14.0,
    # checked by tests/unit/test_faust_fixes.py (see streams.faust_fixes.UPSTREAM)
    ("aiokafka.consumer.fetcher", "Fetcher.end_offsets"): "e2656f2a604f9ef4",
    ("aiokafka.consumer.consumer", "AIOKafkaConsumer.end_offsets"): "3a97928eb8fe7723",
}
"""The aiokafka methods wrapped here, as they were when the corrections were written."""


def correct_end_offsets(store: ObjectStore) -> None:
    """Make this process's aiokafka consumers see the true end of each partition.

    Tansu 0.6.0's S3 engine answers ListOffsets(latest) from the listing of batch
    objects, whose ``LastModified`` has one-second resolution: when several batches
    land in the same second it reports the end of the first of them. (Fetch
    responses carry the right high watermark. The in-memory engine has a related
    under-report, see :func:`correct_batch_end_offsets`.) Faust reads a table's
    changelog up to that offset when it recovers, so it would stop early and lose
    state. ``end_offsets`` is corrected here with
    the watermark object Tansu keeps per partition in the bucket, never lowered.
    """
    from aiokafka import AIOKafkaConsumer

    original = AIOKafkaConsumer.end_offsets
    if getattr(original, "_nudge_store", None) is store:
        return
    original = getattr(original, "_nudge_original", original)

    async def end_offsets(self: AIOKafkaConsumer, partitions: Any) -> Any:
        offsets = await original(self, partitions)
        highs = await asyncio.to_thread(
            lambda: {tp: store.high_watermark(tp.topic, tp.partition) for tp in offsets}
        )
        return {
            tp: max(offset, highs[tp]) if highs[tp] is not None else offset
            for tp, offset in offsets.items()
        }

    end_offsets._nudge_store = store  # type: ignore[attr-defined]
    end_offsets._nudge_original = original  # type: ignore[attr-defined]
    AIOKafkaConsumer.end_offsets = end_offsets


def _restore_end_offsets(store: ObjectStore) -> None:
    """Undo :func:`correct_end_offsets` when the store it reads from stops."""
    from aiokafka import AIOKafkaConsumer

    current = AIOKafkaConsumer.end_offsets
    if getattr(current, "_nudge_store", None) is store:
        AIOKafkaConsumer.end_offsets = current._nudge_original


def correct_batch_end_offsets() -> None:
    """Make this process's aiokafka consumers see the true end of each partition, on any engine.

    Tansu 0.6.0 (memory engine too) answers ListOffsets(latest) with the base
    offset of a partition's last record batch plus one, as if every batch held
    one record: after a batch of 5 records at offsets 6..10 it reports 7, not
    11. Producers batch whenever they have several records at once (a changelog
    flush, ``producer_linger``), so the end Faust reads a table's changelog up to
    when a worker takes a partition over is often short by a few records. The
    recovery stops there, having re-applied older values over what a standby
    had already read, and the table loses the last updates of the worker that
    died (a re-sent event is then scored again). A fetch from that batch's base
    offset carries the right high watermark, so each reported end is checked
    with one such fetch per broker (Kafka, whose answers are right, gives the
    same numbers) and never lowered.
    """
    from aiokafka.consumer.fetcher import Fetcher

    original = Fetcher.end_offsets
    if getattr(original, "_nudge_batch_end", False):
        return

    async def end_offsets(self: Fetcher, partitions: Any, timeout_ms: int) -> Any:
        offsets = await original(self, partitions, timeout_ms)
        highs = await _fetch_high_watermarks(self._client, self._isolation_level, offsets)
        return {tp: max(offset, highs.get(tp, offset)) for tp, offset in offsets.items()}

    end_offsets._nudge_batch_end = True  # type: ignore[attr-defined]
    Fetcher.end_offsets = end_offsets


async def _fetch_high_watermarks(client: Any, isolation_level: int, ends: Any) -> dict[Any, int]:
    """The high watermark a fetch at ``end - 1`` reports, per partition with records.

    Tansu answers a fetch with ``max_wait_time=0`` with no partitions at all,
    hence the short wait (there are records at that offset, so it is not spent).
    A failed look-up leaves that partition's reported end as it was.
    """
    from aiokafka import TopicPartition
    from aiokafka.protocol.fetch import FetchRequest

    by_node: dict[int, dict[str, list[tuple[int, int, int]]]] = {}
    for tp, end in ends.items():
        node = client.cluster.leader_for_partition(tp)
        if end and end > 0 and node is not None and node >= 0:
            by_node.setdefault(node, {}).setdefault(tp.topic, []).append((tp.partition, end - 1, 1))
    highs: dict[Any, int] = {}
    for node, topics in by_node.items():
        request = FetchRequest(100, 1, 1, isolation_level, list(topics.items()))
        try:
            response = await client.send(node, request)
        except Exception:  # the reported ends stand; recovery is no worse than before
            continue
        for topic, partitions in response.topics:
            for partition, error_code, high, *_ in partitions:
                if error_code == 0 and high >= 0:
                    highs[TopicPartition(topic, partition)] = high
    return highs
