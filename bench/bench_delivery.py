"""The delivery agent's own work per nudge, in process: outbox, policy, SQLite, a notifier.

    python bench/bench_delivery.py [--reps 50] [--nudges 20] [--batch 100]

Builds one worker's pipeline (``streams.app.build``, never started: no broker), a fresh
SQLite record with ``--reps`` reps, and hands the delivery agent's batch handler
``--reps`` × ``--nudges`` nudge commands in micro-batches of ``--batch`` (``--batch 1``:
one message at a time, as a batch of one). Every nudge is sent through the console
notifier (into a buffer), so what is measured is the agent's path: snooze check,
reply code, outbox, the per-rep drain, the claim, the policy and the trace. Prints
nudges/s and CPU per nudge, with the date, the machine and its load.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import io
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import faust  # noqa: E402
from faust.types.tuples import Message  # noqa: E402

from notifiers.console import ConsoleNotifier  # noqa: E402
from nudge.clock import FixedClock  # noqa: E402
from nudge.events import RepUpserted  # noqa: E402
from nudge.logs import configure_logging  # noqa: E402
from nudge.settings import Settings  # noqa: E402
from nudge.signals import NudgeCommand  # noqa: E402
from streams import agents  # noqa: E402
from streams.app import build  # noqa: E402
from streams.topics import BY_NAME  # noqa: E402

NOON = dt.datetime(2026, 3, 2, 12, tzinfo=dt.UTC)
OFFER = ". Reply 1 to log a call, 2 to snooze."


def commands(reps: int, nudges: int) -> list[NudgeCommand]:
    """``nudges`` per rep, interleaved across reps as hot leads arrive; half offer codes."""
    return [
        NudgeCommand(
            nudge_id=f"n-{r}-{n}",
            rep_id=f"rep-{r}",
            lead_id=f"L-{r}-{n}",
            text=f"Lead L-{r}-{n} is hot" + (OFFER if n % 2 else ""),
            playbook="hot-lead",
            rule="hot",
            trigger_event_id=f"e-{r}-{n}",
            created_at=NOON,
        )
        for n in range(nudges)
        for r in range(reps)
    ]


async def run(reps: int, nudges: int, batch: int, data_dir: Path) -> dict[str, Any]:
    settings = Settings(data_dir=data_dir, daily_limit=nudges + 1)
    console = io.StringIO()
    p = build(
        settings,
        "kafka://127.0.0.1:9",  # never connected: the app is not started
        notifiers={"console": ConsoleNotifier(console)},
        clock=FixedClock(NOON),
    )
    store = await p.store()
    for r in range(reps):
        await store.upsert_rep(
            RepUpserted(
                type="rep.upserted",
                event_id=f"ev-rep-{r}",
                occurred_at=NOON,
                source="bench",
                rep_id=f"rep-{r}",
                name=f"Rep {r}",
                timezone="UTC",
            )
        )
    events = []
    for offset, cmd in enumerate(commands(reps, nudges)):
        raw = cmd.model_dump_json().encode()
        msg = Message(
            BY_NAME["nudges"].name, 0, offset, time.time(), 0, [], cmd.rep_id.encode(), raw, None
        )
        events.append(faust.Event(p.app, cmd.rep_id.encode(), raw, {}, msg))
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for i in range(0, len(events), batch):
        await agents.handle_batch(p, "delivery", agents.delivery, events[i : i + batch])
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    sent = len(await store.outbox("sent"))
    await p.close()
    return {"nudges": len(events), "sent": sent, "cpu": cpu, "wall": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=50)
    parser.add_argument("--nudges", type=int, default=20, help="nudges per rep")
    parser.add_argument("--batch", type=int, default=100, help="nudges per micro-batch")
    args = parser.parse_args()
    configure_logging(level="warning")
    with tempfile.TemporaryDirectory() as tmp:
        r = asyncio.run(run(args.reps, args.nudges, args.batch, Path(tmp)))
    print(
        f"# {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, "
        f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}, SQLite"
    )
    print(
        f"delivery: {args.reps} reps x {args.nudges} nudges, batches of {args.batch}: "
        f"{r['sent']}/{r['nudges']} sent, {r['nudges'] / r['wall']:,.0f} nudges/s, "
        f"{r['cpu'] / r['nudges'] * 1e6:,.0f} µs CPU per nudge"
    )


if __name__ == "__main__":
    main()
