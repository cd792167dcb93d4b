"""``nudge dead list`` and ``nudge dead replay``: what landed in ``events.dead``, and a retry.

``list`` reads the whole topic (no consumer group, nothing committed) and prints
offset, source (the inbound topic and offset, or the line of a ``POST /events``
body), reason and the start of the payload. ``replay`` re-validates each
dead message (after a schema fix or a corrected connector, say); those that now
pass are produced back to their inbound topic, the others are reported again.
It commits its position in the consumer group ``<app_id>-dead-replay``, so a
message is replayed at most once; ``--from-start`` forgets that position.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sys
from typing import Any

from nudge.errors import ConfigError, EventRejected
from nudge.events import STREAM_OF, event_to_json, parse_event
from nudge.settings import Settings
from streams.topics import TOPIC_FOR_STREAM

IDLE_MS = 1500


def register(sub: Any) -> None:
    dead = sub.add_parser("dead", help="inspect and replay rejected events (events.dead)")
    dp = dead.add_subparsers(dest="dead_command", metavar="SUBCOMMAND", required=True)
    lst = dp.add_parser("list", help="show what landed in events.dead and why")
    lst.add_argument("--json", action="store_true", help="one JSON record per line")
    lst.set_defaults(func=_list)
    replay = dp.add_parser("replay", help="re-validate dead events; produce those that pass")
    replay.add_argument("--from-start", action="store_true", help="ignore the saved position")
    replay.set_defaults(func=_replay)


def _bootstrap() -> tuple[Settings, str]:
    settings = Settings()
    if not settings.kafka_url:
        raise ConfigError(
            "set KAFKA_URL to the broker the worker uses (a worker started without "
            "it prints the embedded broker's URL)"
        )
    return settings, settings.kafka_url.replace("kafka://", "").replace(";", ",")


def raw_payload(record: dict[str, Any]) -> bytes:
    """The payload as originally received."""
    if "raw_base64" in record:
        return base64.b64decode(record["raw_base64"])
    return str(record.get("raw", "")).encode()


async def read_dead(bootstrap: str, group: str | None, from_start: bool = False) -> Any:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        "events.dead",
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    if from_start:
        await consumer.seek_to_beginning()
    return consumer


async def _drain(consumer: Any) -> list[Any]:
    out: list[Any] = []
    while True:
        batch = await consumer.getmany(timeout_ms=IDLE_MS)
        if not batch:
            return out
        for messages in batch.values():
            out += messages


def _list(args: argparse.Namespace) -> int:
    _, bootstrap = _bootstrap()

    async def run() -> int:
        consumer = await read_dead(bootstrap, None)
        try:
            messages = await _drain(consumer)
        finally:
            await consumer.stop()
        for m in messages:
            record = json.loads(m.value)
            if args.json:
                print(json.dumps({"offset": m.offset, **record}))
            else:
                if record.get("source") == "http":
                    src = f"POST /events line {record.get('line') or '-'}"
                else:
                    src = f"{record.get('topic', '?')}[{record.get('partition', '?')}]@{record.get('offset', '?')}"
                print(f"#{m.offset:<6} {src:<24} {record['reason']}")
                print(f"        {raw_payload(record)[:120]!r}")
        print(f"{len(messages)} dead events", file=sys.stderr)
        return 0

    return asyncio.run(run())


def _replay(args: argparse.Namespace) -> int:
    settings, bootstrap = _bootstrap()

    async def run() -> int:
        from aiokafka import AIOKafkaProducer

        from streams.views import event_key

        consumer = await read_dead(bootstrap, f"{settings.app_id}-dead-replay", args.from_start)
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await producer.start()
        replayed = still_bad = 0
        try:
            for m in await _drain(consumer):
                record = json.loads(m.value)
                try:
                    event = parse_event(raw_payload(record))
                except EventRejected as exc:
                    still_bad += 1
                    print(f"#{m.offset}: still invalid: {exc.reason}", file=sys.stderr)
                    continue
                topic = TOPIC_FOR_STREAM[STREAM_OF[event.type]]
                await producer.send_and_wait(topic, event_to_json(event), key=event_key(event))
                replayed += 1
            await consumer.commit()
        finally:
            await producer.stop()
            await consumer.stop()
        print(f"replayed {replayed}, still invalid {still_bad}", file=sys.stderr)
        return 1 if still_bad else 0

    return asyncio.run(run())
