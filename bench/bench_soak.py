"""Soak: a worker fed for minutes on the same leads holds steady memory.

    python bench/bench_soak.py [--leads 2000] [--minutes 5] [--rate 300] [--hours-per-round 1]

Starts a worker on the embedded broker and produces page views round after round over
the same leads (every lead once a round; the events' time moves ``--hours-per-round``
a round, so a 5-minute run covers days of each lead's life), paced at ``--rate``
events/s. Every 15 s it prints the worker's resident memory and the events handled.
What a worker that runs for months needs: once every lead has been seen and its
per-lead memory (recent event ids, score history, windows) has filled to what its
time limits keep, memory stops growing. The last line is the growth over the second
half of the run, in MiB per 100k events.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _worker import get, rss_kb, start_worker, wait_ready  # noqa: E402

from broker import EmbeddedBroker, free_port  # noqa: E402

T0 = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)


def lead_created(i: int, reps: int) -> dict[str, Any]:
    return {
        "event_id": f"c{i}",
        "type": "lead.created",
        "source": "crm",
        "occurred_at": T0.isoformat(),
        "lead_id": f"L{i}",
        "fields": {"company": f"Company {i}", "owner_rep_id": f"rep-{i % reps}"},
    }


def page_view(i: int, round_: int, hours: float, leads: int) -> dict[str, Any]:
    at = T0 + dt.timedelta(hours=hours * round_, seconds=i * 3600 * hours / leads)
    return {
        "event_id": f"w{round_}-{i}",
        "type": "page.viewed",
        "source": "web",
        "occurred_at": at.isoformat(),
        "lead_id": f"L{i}",
        "path": "/blog/a" if (i + round_) % 7 else "/pricing",
    }


async def produce(
    bootstrap: str, args: argparse.Namespace, stop_at: float, sent: list[int]
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks=1)
    await producer.start()
    reps = max(1, args.leads // 10)
    try:
        for i in range(args.leads):
            e = lead_created(i, reps)
            await producer.send("crm.events", json.dumps(e).encode(), key=e["lead_id"].encode())
        start, n, round_ = time.perf_counter(), 0, 0
        while time.monotonic() < stop_at:
            round_ += 1
            for i in range(args.leads):
                e = page_view(i, round_, args.hours_per_round, args.leads)
                await producer.send("web.events", json.dumps(e).encode(), key=e["lead_id"].encode())
                n += 1
                sent[0] = n
                if n % 50 == 0 and (delay := start + n / args.rate - time.perf_counter()) > 0:
                    await asyncio.sleep(delay)
                if time.monotonic() >= stop_at:
                    break
        await producer.flush()
    finally:
        await producer.stop()


async def sample(
    pid: int, base: str, stop_at: float, sent: list[int], rows: list[tuple[float, int, int]]
) -> None:
    start = time.monotonic()
    while time.monotonic() < stop_at + 5:
        await asyncio.sleep(15)
        stats = await asyncio.to_thread(get, base + "/stats")
        handled = int(stats.get("leads.rescored", 0))
        rss = rss_kb(pid)
        rows.append((time.monotonic() - start, handled, rss))
        print(
            f"{rows[-1][0]:6.0f} s  {sent[0]:8d} produced  {handled:8d} handled  "
            f"{rss / 1024:7.1f} MiB",
            flush=True,
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--leads", type=int, default=2000)
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--rate", type=float, default=300.0, help="events/s offered")
    ap.add_argument("--hours-per-round", type=float, default=1.0, help="event time per round")
    args = ap.parse_args()
    print(
        f"{dt.date.today()}: soak, {args.leads} leads, {args.rate:.0f} events/s offered for "
        f"{args.minutes:g} min, {args.hours_per_round:g} h of event time a round; machine: "
        f"{os.cpu_count()} cores, Python {sys.version.split()[0]}, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker(data_dir=Path(tmp)) as broker:
        port = free_port()
        env = {
            **os.environ,
            "KAFKA_URL": broker.url,
            "NUDGE_DATA_DIR": tmp,
            "NUDGE_WEB_PORT": str(port),
            "NUDGE_LOG_LEVEL": "error",
            "PYTHONPATH": str(ROOT),
        }
        worker = start_worker(env)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_ready(base, time.monotonic() + 60, "worker did not become ready")
            stop_at = time.monotonic() + args.minutes * 60
            sent: list[int] = [0]
            rows: list[tuple[float, int, int]] = []

            async def run() -> None:
                await asyncio.gather(
                    produce(broker.bootstrap, args, stop_at, sent),
                    sample(worker.pid, base, stop_at, sent, rows),
                )

            asyncio.run(run())
        finally:
            worker.terminate()
            worker.wait(timeout=30)
    half = [r for r in rows if r[0] >= rows[-1][0] / 2]
    if len(half) >= 2 and half[-1][1] > half[0][1]:
        (_, n0, m0), (_, n1, m1) = half[0], half[-1]
        growth = (m1 - m0) / 1024 / (n1 - n0) * 100_000
        print(
            f"second half: {n1 - n0} events, memory {m0 / 1024:.1f} → {m1 / 1024:.1f} MiB, "
            f"{growth:+.1f} MiB per 100k events; load average {os.getloadavg()[0]:.1f}"
        )


if __name__ == "__main__":
    main()
