"""``nudge demo``: the whole stack on one machine, on a bundled day of events.

Starts the embedded broker and a worker in this process (console notifier, a
fresh SQLite file under ``<data_dir>/demo``), replays the sample day at
accelerated speed once the worker is consuming, waits until every event has
gone all the way through, prints a summary and exits 0.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path

from broker import free_port
from cli.sample import SAMPLE_FILE
from nudge.events import STREAM_OF
from nudge.settings import Settings
from streams.pipeline import Pipeline
from streams.topics import TOPIC_FOR_STREAM
from streams.worker import run_worker

SETTLE_TIMEOUT = 60.0


def _key(event: dict[str, object]) -> bytes:
    ident = (
        event.get("lead_id")
        or event.get("rep_id")
        or event.get("email")
        or event.get("visitor_id")
        or event.get("phone")
        or "unknown"
    )
    return str(ident).encode()


def drained(stats: dict[str, int], produced: int) -> bool:
    """True once every produced event has passed every agent it reaches (by the counters of
    ``/stats``)."""
    s = stats
    return (
        s.get("events.in", 0) >= produced
        and s.get("leads.rescored", 0) + s.get("events.duplicate", 0)
        >= s.get("events.accepted", 0) - s.get("reps.upserted", 0)
        and s.get("signals.evaluated", 0)
        + s.get("signals.skipped", 0)
        + s.get("playbook.errors", 0)
        >= s.get("leads.rescored", 0)
        and nudges_settled(s)
    )


def nudges_settled(s: dict[str, int]) -> bool:
    """Every nudge the playbooks sent to delivery was handled or dead-lettered (a rule that
    fires may send none: a cooldown or a daily cap holds it)."""
    return s.get("nudges.handled", 0) + s.get("delivery.errors", 0) >= s.get("nudges.dispatched", 0)


async def replay(p: Pipeline, lines: list[str], speed: float) -> None:
    """Produce the sample to the inbound topics, keeping its rhythm ``speed`` times faster."""
    topics = {
        t: p.app.topic(t, key_serializer="raw", value_serializer="raw")
        for t in TOPIC_FOR_STREAM.values()
    }
    started = time.monotonic()
    first: dt.datetime | None = None
    print(f"▶ replaying {len(lines)} events at {speed:g}× …", flush=True)
    for line in lines:
        try:
            event = json.loads(line)
            at = dt.datetime.fromisoformat(event["occurred_at"])
            if at.tzinfo is None:
                at = at.replace(tzinfo=dt.UTC)
            topic = TOPIC_FOR_STREAM[STREAM_OF.get(event.get("type"), "web")]
        except (ValueError, KeyError, TypeError):
            at, topic, event = first or dt.datetime.now(dt.UTC), "web.events", {}
        first = first or at
        due = (at - first).total_seconds() / speed
        delay = due - (time.monotonic() - started)
        if delay > 0:
            await asyncio.sleep(delay)
        await topics[topic].send(key=_key(event), value=line.encode())
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while not drained(p.stats, len(lines)) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    await asyncio.sleep(0.5)


def _summary(p: Pipeline, produced: int, seconds: float) -> str:
    s = p.stats
    return "\n".join(
        [
            "",
            "── Nudge demo summary " + "─" * 26,
            f"events produced   {produced}",
            f"  accepted        {s['events.accepted']}",
            f"  rejected        {s['events.rejected']}  (see topic events.dead)",
            f"  unmatched       {s['events.unmatched']}",
            f"leads re-scored   {s['leads.rescored']}",
            f"rules fired       {s['playbook.fired']}",
            f"nudges sent       {s['nudges.sent']}",
            f"  held            {s['nudges.held']}  (quiet hours)",
            f"  suppressed      {s['nudges.suppressed']}",
            f"  failed          {s['nudges.failed']}",
            f"time              {seconds:.1f} s",
            "─" * 48,
        ]
    )


def run_demo(*, speed: float = 2000.0, events_file: str | None = None) -> int:
    base = Settings()
    demo_dir = base.data_dir / "demo"
    shutil.rmtree(demo_dir, ignore_errors=True)
    settings = base.model_copy(
        update={
            "kafka_url": None,
            "data_dir": demo_dir,
            "db_path": None,
            "notifier": "console",
            "web_port": free_port(),
            "app_id": f"nudge-demo-{os.getpid()}",
            "log_level": "warning" if base.log_level == "info" else base.log_level,
            # The sample day is replayed now, whatever the wall clock says: a demo at
            # night would otherwise hold every text for quiet hours. Workers keep them.
            "quiet_hours_start": "00:00",
            "quiet_hours_end": "00:00",
        }
    )
    source = Path(events_file) if events_file else SAMPLE_FILE
    lines = [line for line in source.read_text().splitlines() if line.strip()]
    outcome: dict[str, object] = {}
    started = time.monotonic()

    async def on_ready(p: Pipeline) -> None:
        print(f"✔ worker consuming after {time.monotonic() - started:.1f} s", flush=True)
        try:
            await replay(p, lines, speed)
            outcome["ok"] = drained(p.stats, len(lines))
            print(_summary(p, len(lines), time.monotonic() - started), flush=True)
            if not outcome["ok"]:
                print(
                    f"✘ not every event made it through within {SETTLE_TIMEOUT:.0f} s",
                    file=sys.stderr,
                )
        finally:
            os.kill(os.getpid(), signal.SIGTERM)

    print("Starting the embedded broker and a worker …", flush=True)
    run_worker(settings, on_ready=on_ready)
    return 0 if outcome.get("ok") else 1
