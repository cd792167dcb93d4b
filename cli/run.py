"""``nudge worker`` and ``nudge demo``."""

from __future__ import annotations

import argparse
from typing import Any

from nudge.settings import Settings
from streams.worker import run_worker


def register(sub: Any) -> None:
    worker = sub.add_parser(
        "worker", help="run a long-lived worker (embedded broker if no KAFKA_URL)"
    )
    worker.add_argument("--web-port", type=int, help="override NUDGE_WEB_PORT")
    worker.add_argument("--verbose", action="store_true", help="show Faust's own log lines")
    worker.set_defaults(func=_worker)

    demo = sub.add_parser("demo", help="run the whole stack on a bundled day of sample events")
    demo.add_argument(
        "--speed",
        type=float,
        default=2000.0,
        help="replay speed: sample seconds per real second (default 2000)",
    )
    demo.add_argument("--events", help="NDJSON file to replay instead of the bundled sample")
    demo.set_defaults(func=_demo)


def _worker(args: argparse.Namespace) -> int:
    settings = Settings()
    if args.web_port is not None:
        settings = settings.model_copy(update={"web_port": args.web_port})
    return run_worker(settings, quiet=not args.verbose)


def _demo(args: argparse.Namespace) -> int:
    from cli.demo import run_demo

    return run_demo(speed=args.speed, events_file=args.events)
