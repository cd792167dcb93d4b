"""Pipeline benchmark on the embedded broker: ceiling, framework floor, and Nudge end to end.

    python bench/bench_pipeline.py [--leads 5000] [--events-per-lead 4]

Prints, from one run on one broker with the same events:
  1. raw aiokafka consume + JSON decode of the events (the ceiling);
  2. a trivial Faust agent that only counts them (the framework's floor cost);
  3. ``nudge worker`` end to end: ingest → state → rescore → playbooks → delivery
     (console notifier to /dev/null), and its ratio to 1 and 2;
  4. latency from producing an event to the notifier's return (outbox), p50/p95/p99;
  5. rescoring time per event (in process) and worker memory per 10k leads.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from broker import EmbeddedBroker, free_port  # noqa: E402
from nudge.events import parse_event  # noqa: E402
from scoring.points import PointsScorer  # noqa: E402
from scoring.state import LeadState, apply_event  # noqa: E402

T0 = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)
PATHS = ["/", "/blog/a", "/product", "/customers", "/about", "/careers"]


def REPS(leads: int) -> int:
    return max(1, leads // 10)


def make_events(
    leads: int, per_lead: int, seed: int = 1, prefix: str = "", hot_share: float = 0.03
) -> tuple[list[dict[str, Any]], int]:
    """lead.created for every lead, then web events; ~3 % of leads turn hot."""
    rng = random.Random(seed)
    # one rep per 10 leads: a rep's daily limit (20) must not hide nudges
    events: list[dict[str, Any]] = [
        {
            "event_id": f"{prefix}rep{r}",
            "type": "rep.upserted",
            "occurred_at": T0.isoformat(),
            "source": "bench",
            "rep_id": f"{prefix}rep-{r}",
            "name": f"Bench Rep {r}",
        }
        for r in range(REPS(leads))
    ]
    hot = set(rng.sample(range(leads), max(1, int(leads * hot_share))))
    for i in range(leads):
        events.append(
            {
                "event_id": f"{prefix}c{i}",
                "type": "lead.created",
                "source": "crm",
                "occurred_at": T0.isoformat(),
                "lead_id": f"{prefix}L{i}",
                "email": f"{prefix}p{i}@x{i}.example",
                "fields": {
                    "company": f"Company {i}",
                    "owner_rep_id": f"{prefix}rep-{i % REPS(leads)}",
                    "deal_value": 10000,
                },
            }
        )
    n = 0
    for k in range(per_lead):
        for i in range(leads):
            n += 1
            at = (T0 + dt.timedelta(seconds=60 + n)).isoformat()
            who = {"email": f"{prefix}p{i}@x{i}.example"} if n % 2 else {"lead_id": f"{prefix}L{i}"}
            if i in hot and k < 3:
                ev = (
                    {"type": "form.submitted", "form": "demo-request"}
                    if k == 0
                    else {"type": "page.viewed", "path": "/pricing"}
                )
            else:
                ev = {"type": "page.viewed", "path": rng.choice(PATHS)}
            events.append(
                {"event_id": f"{prefix}w{n}", "occurred_at": at, "source": "web", **who, **ev}
            )
    return events, len(hot)


def topic_of(event: dict[str, Any]) -> str:
    return "crm.events" if event["type"].split(".")[0] in ("lead", "rep", "deal") else "web.events"


def key_of(event: dict[str, Any]) -> bytes:
    return str(event.get("lead_id") or event.get("email") or event.get("rep_id")).encode()


async def produce(bootstrap: str, events: list[dict[str, Any]]) -> dict[str, float]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks=1)
    await producer.start()
    sent_at: dict[str, float] = {}
    try:
        for e in events:
            sent_at[e["event_id"]] = time.time()
            await producer.send(topic_of(e), json.dumps(e).encode(), key=key_of(e))
        await producer.flush()
    finally:
        await producer.stop()
    return sent_at


async def raw_consume(bootstrap: str, n: int) -> float:
    consumer = AIOKafkaConsumer(
        "crm.events",
        "web.events",
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    seen, start = 0, 0.0
    try:
        async for msg in consumer:
            if seen == 0:
                start = time.perf_counter()
            json.loads(msg.value)
            seen += 1
            if seen >= n:
                break
    finally:
        await consumer.stop()
    return n / (time.perf_counter() - start)


def trivial_agent(broker_url: str, n: int) -> tuple[float, float]:
    """Events/s and CPU seconds per event of a Faust agent that only counts."""
    env = {
        **os.environ,
        "BENCH_BROKER": broker_url,
        "BENCH_TOPIC": "web.events",
        "BENCH_N": str(n),
        "PYTHONPATH": str(ROOT),
    }
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "_trivial_agent.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    elapsed = [line for line in out.stdout.splitlines() if line.startswith("ELAPSED ")]
    if not elapsed:
        raise SystemExit(f"trivial agent failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    _, wall, _, cpu = elapsed[-1].split()
    return n / float(wall), float(cpu) / n


def get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=5) as r:
        data: dict[str, Any] = json.load(r)
        return data


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (steadier than wall time on a busy VM)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rescore_timing(events: list[dict[str, Any]], limit: int = 20000) -> tuple[float, float]:
    """p50, p99 µs of apply_event + rescore + record_score, in process."""
    scorer, states, times = PointsScorer(), {}, []
    parsed = [parse_event(e) for e in events[:limit] if e["type"] != "rep.upserted"]
    for ev in parsed:
        lead = ev.lead_id or ev.email or ""
        state = states.setdefault(lead, LeadState(lead))
        t = time.perf_counter()
        if apply_event(state, ev):  # type: ignore[arg-type]
            state.record_score(scorer.rescore(state, ev, T0))  # type: ignore[arg-type]
        times.append((time.perf_counter() - t) * 1e6)
    times.sort()
    return times[len(times) // 2], times[int(len(times) * 0.99)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--leads", type=int, default=5000)
    ap.add_argument("--events-per-lead", type=int, default=4)
    ap.add_argument(
        "--storage",
        choices=["memory", "persistent"],
        default="memory",
        help="the embedded broker's storage (NUDGE_BROKER_STORAGE)",
    )
    args = ap.parse_args()
    events, hot = make_events(args.leads, args.events_per_lead)
    lead_events = sum(1 for e in events if e["type"] != "rep.upserted")
    web_events = sum(1 for e in events if topic_of(e) == "web.events")
    print(
        f"events: {len(events)} ({args.leads} leads, {hot} turning hot), "
        f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
        f"broker storage: {args.storage}"
    )

    with (
        tempfile.TemporaryDirectory() as tmp,
        EmbeddedBroker(storage=args.storage, data_dir=Path(tmp)) as broker,
    ):
        port = free_port()
        env = {
            **os.environ,
            "KAFKA_URL": broker.url,
            "NUDGE_DATA_DIR": tmp,
            "NUDGE_WEB_PORT": str(port),
            "NUDGE_LOG_LEVEL": "error",
            "PYTHONPATH": str(ROOT),
            "NUDGE_QUIET_HOURS_START": "00:00",
            "NUDGE_QUIET_HOURS_END": "00:00",
        }
        log_path = Path(tempfile.gettempdir()) / "bench_pipeline_worker.log"
        worker_log = open(log_path, "wb")  # noqa: SIM115 - closed with the worker
        print(f"worker log: {log_path}")
        worker = subprocess.Popen(
            [sys.executable, "-m", "cli", "worker"],
            env=env,
            stdout=subprocess.DEVNULL,  # the console notifier's boxes
            stderr=worker_log,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                try:
                    if get(base + "/ready").get("ready"):
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("worker did not become ready")
                time.sleep(0.2)
            rss_ready, cpu_ready = rss_kb(worker.pid), cpu_seconds(worker.pid)
            start = time.perf_counter()
            asyncio.run(produce(broker.bootstrap, events))
            produced = time.perf_counter() - start
            while True:
                s = get(base + "/stats")
                if s.get("signals.evaluated", 0) + s.get(
                    "signals.skipped", 0
                ) >= lead_events and s.get("nudges.handled", 0) >= s.get("playbook.fired", 0):
                    break
                if time.perf_counter() - start > 600:
                    raise SystemExit(f"pipeline did not finish: {s}")
                time.sleep(0.05)
            e2e_s = time.perf_counter() - start
            rss_done, cpu_done = rss_kb(worker.pid), cpu_seconds(worker.pid)
            fired = s.get("playbook.fired", 0)

            # latency: hot bursts, paced, on an idle worker
            lat_events, _ = make_events(40, 3, seed=2, prefix="lat-", hot_share=1.0)
            sent_at: dict[str, float] = {}
            for e in lat_events:
                sent_at.update(asyncio.run(produce(broker.bootstrap, [e])))
            time.sleep(3)
            # sent_at is the notifier's return; updated_at may be a later receipt

            con = sqlite3.connect(Path(tmp) / "nudge.db")
            states = dict(con.execute("SELECT state, COUNT(*) FROM outbox GROUP BY state"))
            print(f"outbox: {states}")
            rows = con.execute(
                "SELECT command_json, COALESCE(sent_at, updated_at) FROM outbox WHERE state='sent' "
                "AND lead_id LIKE 'lat-%'"
            ).fetchall()
            latencies = sorted(
                (
                    dt.datetime.fromisoformat(u).timestamp()
                    - sent_at[json.loads(c)["trigger_event_id"]]
                )
                * 1000
                for c, u in rows
                if json.loads(c)["trigger_event_id"] in sent_at
            )
        finally:
            worker.terminate()
            worker.wait(timeout=30)
            worker_log.close()

        raw_rate = asyncio.run(raw_consume(broker.bootstrap, len(events)))
        trivial_rate, trivial_cpu = trivial_agent(broker.url, web_events)

    e2e_rate = lead_events / e2e_s
    p50, p99 = rescore_timing(events)
    q = (
        (lambda p: latencies[min(len(latencies) - 1, int(len(latencies) * p))])
        if latencies
        else (lambda p: float("nan"))
    )
    print(f"produce            {len(events) / produced:10.0f} events/s")
    print(f"raw aiokafka       {raw_rate:10.0f} events/s   (ceiling: consume + json decode)")
    print(f"trivial Faust      {trivial_rate:10.0f} events/s   (floor cost: count only)")
    print(f"nudge end to end   {e2e_rate:10.0f} events/s   ({fired} rules fired)")
    cpu_per_event = (cpu_done - cpu_ready) / lead_events
    print(
        f"  CPU per event      {cpu_per_event * 1e6:10.0f} µs   "
        f"(trivial agent: {trivial_cpu * 1e6:.0f} µs; all threads, steadier than rates)"
    )
    print(f"  ratio to ceiling     {e2e_rate / raw_rate:6.1%}")
    print(f"  ratio to trivial     {e2e_rate / trivial_rate:6.1%}")
    print(f"  CPU ratio to trivial {trivial_cpu / cpu_per_event:6.1%}")
    print(
        f"latency event→notifier (n={len(latencies)}): p50 {q(0.5):.0f} ms, "
        f"p95 {q(0.95):.0f} ms, p99 {q(0.99):.0f} ms"
    )
    print(f"rescoring per event  p50 {p50:.0f} µs, p99 {p99:.0f} µs (points scorer, in process)")
    print(
        f"worker memory        {(rss_done - rss_ready) / 1024 / args.leads * 10000:.0f} MiB "
        f"per 10k leads (RSS {rss_ready // 1024} → {rss_done // 1024} MiB)"
    )


if __name__ == "__main__":
    main()
