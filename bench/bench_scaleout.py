"""Scale-out benchmark: 1, 2 and 3 workers on the three-node Kafka cluster and PostgreSQL.

    python bench/bench_scaleout.py [--leads 2000] [--workers 1,2,3] [--partitions 6]
    make bench-scaleout

For each worker count: empty topics (``nudge topics create``, replication 3), a fresh
PostgreSQL database, that many ``nudge worker`` processes (each its own data dir, one
consumer group), then the same events as ``bench_pipeline.py`` produced at once.
Prints events/s from the first event produced until every event was evaluated and every
fired nudge handled (summed over the workers' ``/stats``), the workers' CPU per event,
and the latency from producing a hot lead's last event to its nudge's ``sent_at``
(p50/p99, paced bursts on idle workers). The cluster (3 JVMs) and PostgreSQL run on the
same machine as the workers, so on 2 cores the figures show where the CPU goes, not what
more machines would give: see bench/README.md for how it grows with cores and partitions.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._worker import cpu_seconds, get, start_worker, wait_handled, wait_ready  # noqa: E402
from bench.bench_pipeline import make_events, produce, topic_of  # noqa: E402
from broker import free_port  # noqa: E402
from tests.kafka import KafkaCluster  # noqa: E402
from tests.postgres import PostgresServer  # noqa: E402


def start_workers(
    n: int, env: dict[str, str], tmp: Path
) -> list[tuple[subprocess.Popen[bytes], str]]:
    workers = []
    for i in range(n):
        port = free_port()
        wenv = {**env, "NUDGE_DATA_DIR": str(tmp / f"w{i}"), "NUDGE_WEB_PORT": str(port)}
        proc = start_worker(wenv, stderr=open(tmp / f"w{i}.log", "wb"))  # noqa: SIM115
        workers.append((proc, f"http://127.0.0.1:{port}"))
    deadline = time.monotonic() + 120
    for _, base in workers:
        wait_ready(base, deadline, "workers did not become ready")
    return workers


def total(workers: list[tuple[subprocess.Popen[bytes], str]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for _, base in workers:
        for k, v in get(base + "/stats").items():
            if isinstance(v, int):
                out[k] = out.get(k, 0) + v
    return out


def run(n: int, cluster: Any, pg: PostgresServer, args: argparse.Namespace) -> str:
    cluster.reset()
    db = pg.database()
    events, _ = make_events(args.leads, 4)
    lead_events = sum(1 for e in events if e["type"] != "rep.upserted")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        env = {
            **os.environ,
            "KAFKA_URL": cluster.url,
            "NUDGE_DATABASE_URL": db,
            "NUDGE_APP_ID": f"bench-{n}-{time.time_ns()}",
            "NUDGE_PARTITIONS": str(args.partitions),
            "NUDGE_REPLICATION": "3",
            "NUDGE_LOG_LEVEL": "error",
            "PYTHONPATH": str(ROOT),
            "NUDGE_QUIET_HOURS_START": "00:00",
            "NUDGE_QUIET_HOURS_END": "00:00",
            "NUDGE_DAILY_LIMIT": "100000",
        }
        subprocess.run(
            [sys.executable, "-m", "cli", "topics", "create"],
            env=env,
            check=True,
            capture_output=True,
        )
        workers = start_workers(n, env, tmp)
        try:
            time.sleep(3)  # the group settles (every worker got partitions)
            cpu0 = sum(cpu_seconds(p.pid) for p, _ in workers)
            start = time.perf_counter()
            asyncio.run(produce(cluster.bootstrap, events))
            wait_handled(lambda: total(workers), lead_events, start, poll=0.1)
            elapsed = time.perf_counter() - start
            cpu = sum(cpu_seconds(p.pid) for p, _ in workers) - cpu0
            lat_events, _ = make_events(30, 3, seed=2, prefix=f"lat{n}-", hot_share=1.0)
            sent_at: dict[str, float] = {}
            for e in lat_events:
                sent_at.update(asyncio.run(produce(cluster.bootstrap, [e])))
            time.sleep(5)
            import psycopg

            with psycopg.connect(db) as conn:
                rows = conn.execute(
                    "SELECT command_json, sent_at FROM outbox WHERE state='sent' AND lead_id LIKE %s",
                    (f"lat{n}-%",),
                ).fetchall()
            lat = sorted(
                (
                    dt.datetime.fromisoformat(u).timestamp()
                    - sent_at[json.loads(c)["trigger_event_id"]]
                )
                * 1000
                for c, u in rows
                if json.loads(c)["trigger_event_id"] in sent_at
            )
        finally:
            for p, _ in workers:
                p.terminate()
            for p, _ in workers:
                p.wait(timeout=60)
    q = (lambda p: lat[min(len(lat) - 1, int(len(lat) * p))]) if lat else (lambda p: float("nan"))
    return (
        f"{n} worker(s): {lead_events / elapsed:7.0f} events/s, "
        f"{cpu / lead_events * 1e6:5.0f} µs worker CPU per event, "
        f"latency (n={len(lat)}) p50 {q(0.5):.0f} ms, p99 {q(0.99):.0f} ms"
    )


def machine() -> str:
    """Cores, CPU model and the load average now (others' work on a shared machine)."""
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{os.cpu_count()} cores ({model}), Python {sys.version.split()[0]}, load {load}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--leads", type=int, default=2000)
    ap.add_argument("--workers", default="1,2,3")
    ap.add_argument("--partitions", type=int, default=6)
    args = ap.parse_args()
    web = sum(1 for e in make_events(args.leads, 4)[0] if topic_of(e) == "web.events")
    print(
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {machine()}: {args.leads} leads "
        f"({web} web events), {args.partitions} partitions; Kafka 3 nodes (replication 3) "
        "and PostgreSQL on this machine"
    )
    pg_dir = Path(tempfile.mkdtemp(prefix="nudge-pg-"))
    try:
        with (
            tempfile.TemporaryDirectory() as kdir,
            KafkaCluster(Path(kdir)) as cluster,
            PostgresServer(pg_dir) as pg,
        ):
            for n in (int(x) for x in args.workers.split(",")):
                print(run(n, cluster, pg, args), flush=True)
    finally:
        shutil.rmtree(pg_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
