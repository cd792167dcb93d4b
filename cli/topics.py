"""``nudge topics create|list``: the topic-init step for a real Kafka cluster.

Creates every topic of :data:`streams.topics.TOPICS` with ``NUDGE_PARTITIONS``
partitions and ``NUDGE_REPLICATION`` replicas, and the tables' changelog topics
compacted (``cleanup.policy=compact``), as Faust would name them. Topics that
exist are left alone (and reported), so the step can run on every deploy.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from nudge.errors import ConfigError
from nudge.settings import Settings
from streams.topics import TABLES, TOPICS


def register(sub: Any) -> None:
    topics = sub.add_parser("topics", help="create or list Nudge's Kafka topics")
    tp = topics.add_subparsers(dest="topics_command", metavar="SUBCOMMAND", required=True)
    create = tp.add_parser("create", help="create missing topics (idempotent)")
    create.set_defaults(func=_create)
    lst = tp.add_parser("list", help="list the topics on the broker")
    lst.set_defaults(func=_list)


def planned(settings: Settings) -> list[tuple[str, dict[str, str]]]:
    """(topic, config) for every topic Nudge needs, changelogs compacted."""
    out: list[tuple[str, dict[str, str]]] = [(t.name, {}) for t in TOPICS]
    out += [(f"{settings.app_id}-{t}-changelog", {"cleanup.policy": "compact"}) for t in TABLES]
    return out


def _bootstrap(settings: Settings) -> str:
    if not settings.kafka_url:
        raise ConfigError(
            "set KAFKA_URL: topics are created on a real Kafka cluster "
            "(the embedded broker creates them by itself)"
        )
    return settings.kafka_url.replace("kafka://", "").replace(";", ",")


def _create(args: argparse.Namespace) -> int:
    settings = Settings()
    return asyncio.run(_create_async(settings, _bootstrap(settings)))


async def _create_async(settings: Settings, bootstrap: str) -> int:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        new = [
            NewTopic(
                name,
                num_partitions=settings.partitions,
                replication_factor=settings.replication,
                topic_configs=config,
            )
            for name, config in planned(settings)
            if name not in existing
        ]
        for name, _ in planned(settings):
            print(f"{'exists ' if name in existing else 'create '} {name}", file=sys.stderr)
        if new:
            await admin.create_topics(new)
    finally:
        await admin.close()
    return 0


def _list(args: argparse.Namespace) -> int:
    settings = Settings()
    bootstrap = _bootstrap(settings)

    async def run() -> list[str]:
        from aiokafka.admin import AIOKafkaAdminClient

        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            return sorted(await admin.list_topics())
        finally:
            await admin.close()

    for name in asyncio.run(run()):
        print(name)
    return 0
