"""``nudge events send FILE|-`` and ``nudge events sample``.

``send`` validates NDJSON line by line and reports each bad line by number and
field; the good ones are produced to their inbound topic (``KAFKA_URL`` set) or
posted to a running worker's ``POST /events`` (no ``KAFKA_URL``: the worker owns
the embedded broker). ``--check`` validates only, needs no broker, and exits 1
when any line is bad.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import urllib.error
import urllib.request
from typing import Any, TextIO

from nudge.errors import ConfigError, EventRejected
from nudge.events import STREAM_OF, event_to_json, parse_event
from nudge.settings import Settings
from streams.topics import TOPIC_FOR_STREAM

BATCH = 500


def register(sub: Any) -> None:
    events = sub.add_parser("events", help="validate and send events")
    ev = events.add_subparsers(dest="events_command", metavar="SUBCOMMAND", required=True)
    send = ev.add_parser("send", help="validate NDJSON and produce the good lines")
    send.add_argument("file", help="NDJSON file, or - for standard input")
    send.add_argument("--check", action="store_true", help="validate only; no broker needed")
    send.add_argument("--url", help="worker to POST to (default http://127.0.0.1:NUDGE_WEB_PORT)")
    send.set_defaults(func=_send)
    sample = ev.add_parser("sample", help="write the generated sample day as NDJSON")
    sample.add_argument("--out", default="-", help="file to write (default: standard output)")
    sample.add_argument("--seed", type=int, default=7)
    sample.set_defaults(func=_sample)


def validate_lines(stream: TextIO) -> tuple[list[tuple[int, Any]], list[str]]:
    """(good (line, event) pairs, problems as ``line N: field: message``)."""
    good, problems = [], []
    for number, line in enumerate(stream, 1):
        if not line.strip():
            continue
        try:
            good.append((number, parse_event(line.strip())))
        except EventRejected as exc:
            problems.append(f"line {number}: {exc.reason}")
    return good, problems


def _open(path: str) -> TextIO:
    if path == "-":
        return sys.stdin
    try:
        return open(path, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None


def _send(args: argparse.Namespace) -> int:
    stream = _open(args.file)
    try:
        good, problems = validate_lines(stream)
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{args.file}: not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from None
    name = "<stdin>" if args.file == "-" else args.file
    for problem in problems:
        print(f"{name}: {problem}", file=sys.stderr)
    print(f"{name}: {len(good)} valid, {len(problems)} invalid", file=sys.stderr)
    if args.check:
        return 1 if problems else 0
    if good:
        settings = Settings()
        if settings.kafka_url:
            asyncio.run(_produce(settings.kafka_url, [e for _, e in good]))
            print(f"produced {len(good)} events to {settings.kafka_url}", file=sys.stderr)
        else:
            url = args.url or f"http://127.0.0.1:{settings.web_port}"
            _post(url, [e for _, e in good], settings)
            print(f"posted {len(good)} events to {url}/events", file=sys.stderr)
    return 1 if problems else 0


async def _produce(kafka_url: str, events: list[Any]) -> None:
    from aiokafka import AIOKafkaProducer

    from streams.views import event_key

    servers = kafka_url.replace("kafka://", "").replace(";", ",")
    producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all")
    await producer.start()
    try:
        for event in events:
            topic = TOPIC_FOR_STREAM[STREAM_OF[event.type]]
            await producer.send(topic, event_to_json(event), key=event_key(event))
        await producer.flush()
    finally:
        await producer.stop()


def chunks(lines: list[bytes], max_bytes: int, max_lines: int = BATCH) -> list[bytes]:
    """NDJSON bodies of at most ``max_bytes`` (and ``max_lines`` lines) each, in order."""
    bodies: list[bytes] = []
    current: list[bytes] = []
    size = 0
    for line in lines:
        if current and (size + len(line) + 1 > max_bytes or len(current) >= max_lines):
            bodies.append(b"\n".join(current))
            current, size = [], 0
        current.append(line)
        size += len(line) + 1
    if current:
        bodies.append(b"\n".join(current))
    return bodies


def _post(url: str, events: list[Any], settings: Settings) -> None:
    """POST the events in bodies under the worker's size limit, with the API token if set."""
    headers = {"Content-Type": "application/x-ndjson"}
    if settings.api_token:
        headers["Authorization"] = f"Bearer {settings.api_token[0].get_secret_value()}"
    max_bytes = settings.web_max_body_bytes - 1024
    for body in chunks([event_to_json(e) for e in events], max_bytes):
        request = urllib.request.Request(
            url.rstrip("/") + "/events", data=body, method="POST", headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                json.load(response)
        except urllib.error.HTTPError as exc:
            raise ConfigError(
                f"the worker at {url} refused the events: HTTP {exc.code} "
                f"{exc.read()[:300].decode(errors='replace')}"
            ) from None
        except urllib.error.URLError as exc:
            raise ConfigError(
                f"cannot reach a worker at {url} ({exc.reason}); start one with `nudge worker`, "
                "or set KAFKA_URL to produce to Kafka directly"
            ) from None


def _sample(args: argparse.Namespace) -> int:
    from cli.sample import generate, to_ndjson

    text = to_ndjson(generate(args.seed))
    if args.out == "-":
        sys.stdout.write(text)
    else:
        with open(args.out, "w", encoding="utf-8") as fh:
            fh.write(text)
    return 0
