"""The local Apache Kafka cluster of ``deploy/kafka/``: three KRaft nodes that keep every
acknowledged write with one of them down."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.kafka]


async def _describe(bootstrap: str, topic: str) -> tuple[dict[str, Any], dict[str, str], int]:
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [meta] = await admin.describe_topics([topic])
        [configs] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        values = {name: value for name, value, *_ in configs.resources[0][4]}
        cluster = await admin.describe_cluster()
        return meta, values, len(cluster["brokers"])
    finally:
        await admin.close()


async def _produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", request_timeout_ms=15000)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=value)
    finally:
        await producer.stop()


async def _consume(bootstrap: str, topic: str, count: int) -> list[bytes]:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    got: list[bytes] = []
    try:
        async with asyncio.timeout(30):
            while len(got) < count:
                batch = await consumer.getmany(timeout_ms=1000)
                got += [r.value for records in batch.values() for r in records if r.value]
    finally:
        await consumer.stop()
    return got


def test_topics_are_replicated_three_times_and_survive_a_dead_node(kafka_cluster: Any) -> None:
    """A topic created with the broker defaults has 3 in-sync replicas and
    min.insync.replicas=2; with one node SIGKILLed, writes with acks=all still succeed and
    every acknowledged record is read back; the node then rejoins."""
    kafka_cluster.reset()
    bootstrap = kafka_cluster.bootstrap
    asyncio.run(_produce(bootstrap, "cluster.check", [b"before-%d" % i for i in range(20)]))
    meta, configs, brokers = asyncio.run(_describe(bootstrap, "cluster.check"))
    assert brokers == 3
    assert configs["min.insync.replicas"] == "2"
    assert meta["partitions"]
    for partition in meta["partitions"]:
        assert len(partition["replicas"]) == 3 and len(partition["isr"]) == 3, partition

    victim = kafka_cluster.nodes[0]
    kafka_cluster.kill(victim)
    try:
        asyncio.run(_produce(bootstrap, "cluster.check", [b"after-%d" % i for i in range(20)]))
        got = asyncio.run(_consume(bootstrap, "cluster.check", 40))
    finally:
        kafka_cluster.start_node(victim)
        kafka_cluster.wait_ready()
    assert sorted(got) == sorted(
        [b"before-%d" % i for i in range(20)] + [b"after-%d" % i for i in range(20)]
    )
    _, _, brokers = asyncio.run(_describe(bootstrap, "cluster.check"))
    assert brokers == 3


def test_engine_is_told_apart_by_the_broker(kafka_cluster: Any, broker: Any) -> None:
    """A worker pointed at the Kafka cluster skips the Tansu-only corrections; pointed at a
    Tansu broker through KAFKA_URL (as in the tests), it applies them."""
    from broker.engine import detect_engine

    assert detect_engine(kafka_cluster.url) == "kafka"
    assert broker.engine == "tansu"
    assert detect_engine(broker.url) == "tansu"
