"""Which broker a worker talks to: the embedded Tansu, or Apache Kafka (or a compatible one).

Only one thing depends on it: Tansu under-reports partition ends
(:mod:`broker.offsets`), and the correction for that costs a fetch per partition end
asked for, which a Kafka broker, whose answers are right, does not need. Everything
else (the Faust fixes in ``streams/faust_fixes.py``) is about Faust and aiokafka and
applies to both engines (checked on Kafka: see that module).

``NUDGE_BROKER_ENGINE=auto`` decides from the broker itself: with no ``KAFKA_URL`` the
worker starts Tansu; otherwise a DescribeCluster request tells the cluster id, and the
embedded broker always runs with :data:`broker.objectstore.CLUSTER`. A Tansu started
some other way can be named with ``NUDGE_BROKER_ENGINE=tansu``.
"""

from __future__ import annotations

import asyncio
from typing import Literal

from broker.objectstore import CLUSTER

Engine = Literal["tansu", "kafka"]


def bootstrap_of(url: str) -> str:
    """``kafka://h1:9092;h2:9092`` (Faust's spelling) → ``h1:9092,h2:9092`` (aiokafka's)."""
    hosts = [h.split("://", 1)[-1] for h in url.replace(",", ";").split(";") if h.strip()]
    return ",".join(hosts)


def detect_engine(kafka_url: str | None, timeout: float = 10.0) -> Engine:
    """``tansu`` for the embedded broker or one reporting its cluster id, else ``kafka``.

    If the broker cannot be asked (not up yet), the answer is ``tansu``: its corrections
    only ever raise a reported end to the true one, so on Kafka they cost a round trip
    and change nothing.
    """
    if not kafka_url:
        return "tansu"
    try:
        cluster_id = asyncio.run(asyncio.wait_for(_cluster_id(bootstrap_of(kafka_url)), timeout))
    except Exception:
        return "tansu"
    return "tansu" if cluster_id == CLUSTER else "kafka"


async def _cluster_id(bootstrap: str) -> str | None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    await admin.start()
    try:
        cluster_id = (await admin.describe_cluster()).get("cluster_id")
        return str(cluster_id) if cluster_id else None
    finally:
        await admin.close()
