"""Pipeline benchmark on the embedded broker: ceiling, framework floor, and Nudge end to end.

    python bench/bench_pipeline.py [--leads 4000] [--events-per-lead 4] [--scorer both]

Prints, from one run with the same events:
  1. raw aiokafka consume + JSON decode of the events (the ceiling);
  2. a trivial Faust agent that only counts them (the framework's floor cost);
  3. a quix-streams app that counts per key with RocksDB state and a changelog (what a
     team might pick instead; run from ``bench/.venv-quix``, which ``make bench`` makes);
  4. ``nudge worker`` end to end (ingest → state → rescore → playbooks → delivery, console
     notifier to /dev/null), once with the points scorer and once with a promoted
     300-tree XGBoost model: events/s, CPU per event, ratios to 1, 2 and 3, latency from
     producing an event to the notifier's return (p50/p95/p99) at full load and at half
     load (the same events paced at half the full-load rate), memory per 10k leads.
Each worker pass gets a fresh broker and data dir. Rates swing with the machine's load:
compare CPU per event and back-to-back runs.
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
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _worker import cpu_seconds, get, rss_kb, start_worker, wait_handled, wait_ready  # noqa: E402

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


async def produce(
    bootstrap: str, events: list[dict[str, Any]], rate: float | None = None
) -> dict[str, float]:
    """Produce ``events`` at once, or at about ``rate`` events/s in 10 ms slices; the time
    each was sent, by event id."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks=1)
    await producer.start()
    sent_at: dict[str, float] = {}
    per_slice = max(1, int(rate / 100)) if rate else len(events) or 1
    start = time.perf_counter()
    try:
        for k in range(0, len(events), per_slice):
            delay = start + k / rate - time.perf_counter() if rate else 0.0
            if delay > 0:
                await asyncio.sleep(delay)
            for e in events[k : k + per_slice]:
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
    return run_counter(
        "trivial agent", [sys.executable, str(ROOT / "bench" / "_trivial_agent.py")], env, n
    )


def run_counter(name: str, command: list[str], env: dict[str, str], n: int) -> tuple[float, float]:
    """Run a counting subprocess that prints ``ELAPSED wall CPU cpu``: events/s, CPU s/event."""
    out = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    elapsed = [line for line in out.stdout.splitlines() if line.startswith("ELAPSED ")]
    if not elapsed:
        raise SystemExit(f"{name} failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    _, wall, _, cpu = elapsed[-1].split()
    return n / float(wall), float(cpu) / n


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


QUIX_PYTHON = ROOT / "bench" / ".venv-quix" / "bin" / "python"


def quix_counter(bootstrap: str, n: int) -> tuple[float, float] | None:
    """Events/s and CPU s per event of a quix-streams per-key counter; None if not set up."""
    if not QUIX_PYTHON.exists():
        return None
    with tempfile.TemporaryDirectory() as state_dir:
        env = {
            **os.environ,
            "BENCH_BOOTSTRAP": bootstrap,
            "BENCH_TOPIC": "web.events",
            "BENCH_N": str(n),
            "BENCH_STATE_DIR": state_dir,
        }
        command = [str(QUIX_PYTHON), str(ROOT / "bench" / "_quix_counter.py")]
        return run_counter("quix counter", command, env, n)


def progress(what: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {what}", file=sys.stderr, flush=True)


def quantiles(values: list[float]) -> tuple[float, float, float]:
    if not values:
        return (float("nan"),) * 3
    v = sorted(values)
    return tuple(v[min(len(v) - 1, int(len(v) * q))] for q in (0.5, 0.95, 0.99))  # type: ignore[return-value]


def worker_pass(
    events: list[dict[str, Any]],
    lead_events: int,
    *,
    model: bool,
    rate: float | None,
    storage: str,
    keep: Any = None,
    model_leads: int = 1000,
) -> dict[str, Any]:
    """One fresh broker and worker; produce the events (paced if ``rate``); measure."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        EmbeddedBroker(storage=storage, data_dir=Path(tmp)) as broker,  # type: ignore[arg-type]
    ):
        version = None
        if model:
            from _model import promote_reference_model

            progress("training the 300-tree reference model")
            version = promote_reference_model(Path(tmp), leads=model_leads)
        progress(
            f"worker pass: {'model' if model else 'points'}, {'paced' if rate else 'full load'}"
        )
        port = free_port()
        env = {
            **os.environ,
            "KAFKA_URL": broker.url,
            "NUDGE_DATA_DIR": tmp,
            "NUDGE_WEB_PORT": str(port),
            "NUDGE_LOG_LEVEL": "error",
            "NUDGE_MIN_CONVERSIONS": "0",
            "PYTHONPATH": str(ROOT),
            "NUDGE_QUIET_HOURS_START": "00:00",
            "NUDGE_QUIET_HOURS_END": "00:00",
        }
        fd, name = tempfile.mkstemp(prefix="bench_pipeline_worker_", suffix=".log")
        log_path = Path(name)  # one per run: benches running at once keep their own logs
        worker_log = os.fdopen(fd, "wb")
        worker = start_worker(env, stderr=worker_log)
        try:
            base = f"http://127.0.0.1:{port}"
            started = time.monotonic()
            wait_ready(base, started + 60, f"worker did not become ready; see {log_path}")
            ready_s = time.monotonic() - started
            rss_ready, cpu_ready = rss_kb(worker.pid), cpu_seconds(worker.pid)
            start = time.perf_counter()
            sent_at = asyncio.run(produce(broker.bootstrap, events, rate))
            s = wait_handled(lambda: get(base + "/stats"), lead_events, start, poll=0.05)
            e2e_s = time.perf_counter() - start
            rss_done, cpu_done = rss_kb(worker.pid), cpu_seconds(worker.pid)
            time.sleep(1.5)  # last sends reach the outbox
            con = sqlite3.connect(Path(tmp) / "nudge.db")
            rows = con.execute(
                "SELECT command_json, COALESCE(sent_at, updated_at) FROM outbox WHERE state='sent'"
            ).fetchall()
            con.close()
            latencies = [
                (dt.datetime.fromisoformat(u).timestamp() - sent_at[trigger]) * 1000
                for c, u in rows
                if (trigger := json.loads(c).get("trigger_event_id")) in sent_at
            ]
        finally:
            worker.terminate()
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()  # never left running behind a failed run
            worker_log.close()
        log_path.unlink()  # kept only when the run failed: the error names it
        if keep is not None:
            keep(broker)
    return {
        "rate": lead_events / e2e_s,
        "cpu": (cpu_done - cpu_ready) / lead_events,
        "latency": quantiles(latencies),
        "nudges": len(latencies),
        "fired": s.get("playbook.fired", 0),
        "mem_mib": (rss_done - rss_ready) / 1024,
        "ready_s": ready_s,
        "version": version,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--leads", type=int, default=4000)
    ap.add_argument("--events-per-lead", type=int, default=4)
    ap.add_argument("--scorer", choices=["points", "model", "both"], default="both")
    ap.add_argument("--no-half-load", action="store_true", help="skip the paced half-load passes")
    ap.add_argument(
        "--model-leads", type=int, default=1000, help="generated leads the model is trained on"
    )
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
        f"{dt.date.today()}: {len(events)} events ({args.leads} leads, {hot} turning hot), "
        f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
        f"broker storage: {args.storage}, load average {os.getloadavg()[0]:.1f} at the start"
    )
    floors: dict[str, Any] = {}

    def measure_floors(broker: EmbeddedBroker) -> None:
        progress("ceiling, trivial Faust agent, quix-streams counter")
        floors["raw"] = asyncio.run(raw_consume(broker.bootstrap, len(events)))
        floors["trivial"] = trivial_agent(broker.url, web_events)
        floors["quix"] = quix_counter(broker.bootstrap, web_events)

    scorers = ["points", "model"] if args.scorer == "both" else [args.scorer]
    results: dict[str, dict[str, Any]] = {}
    for i, scorer in enumerate(scorers):
        full = worker_pass(
            events,
            lead_events,
            model=scorer == "model",
            rate=None,
            storage=args.storage,
            keep=measure_floors if i == 0 else None,
            model_leads=args.model_leads,
        )
        half = None
        if not args.no_half_load:
            half = worker_pass(
                events,
                lead_events,
                model=scorer == "model",
                rate=full["rate"] / 2,
                storage=args.storage,
                model_leads=args.model_leads,
            )
        results[scorer] = {"full": full, "half": half}

    raw, (trivial, trivial_cpu), quix = floors["raw"], floors["trivial"], floors["quix"]
    print(f"raw aiokafka          {raw:10.0f} events/s   (ceiling: consume + json decode)")
    print(
        f"trivial Faust         {trivial:10.0f} events/s   {trivial_cpu * 1e6:6.0f} µs CPU/event (count only)"
    )
    if quix:
        print(
            f"quix-streams counter  {quix[0]:10.0f} events/s   {quix[1] * 1e6:6.0f} µs CPU/event (per-key count, RocksDB + changelog)"
        )
    else:
        print("quix-streams counter  skipped: run `make bench` once to create bench/.venv-quix")
    for scorer, r in results.items():
        full, half = r["full"], r["half"]
        label = (
            "points scorer" if scorer == "points" else f"300-tree XGBoost model {full['version']}"
        )
        print(f"nudge, {label}:")
        print(
            f"  end to end          {full['rate']:10.0f} events/s   {full['cpu'] * 1e6:6.0f} µs CPU/event"
            f"   ({full['fired']} rules fired, {full['nudges']} texts)"
        )
        ratios = f"  ratio to ceiling {full['rate'] / raw:6.1%}, to trivial {full['rate'] / trivial:6.1%}"
        ratios += f" (CPU {trivial_cpu / full['cpu']:6.1%})"
        if quix:
            ratios += f", to quix counter {full['rate'] / quix[0]:6.1%}"
        print(ratios)
        print(
            "  latency event→notifier  p50 {:.0f} ms, p95 {:.0f} ms, p99 {:.0f} ms at full load".format(
                *full["latency"]
            )
        )
        if half:
            print(
                "                          p50 {:.0f} ms, p95 {:.0f} ms, p99 {:.0f} ms at half load ".format(
                    *half["latency"]
                )
                + f"({half['rate']:.0f} events/s offered, n={half['nudges']})"
            )
        print(
            f"  worker memory       {full['mem_mib'] / args.leads * 10000:10.0f} MiB per 10k leads;"
            f" ready after {full['ready_s']:.1f} s"
        )
    p50, p99 = rescore_timing(events)
    print(f"rescoring per event  p50 {p50:.0f} µs, p99 {p99:.0f} µs (points scorer, in process)")
    print(f"load average {os.getloadavg()[0]:.1f} at the end (the machine's other work)")


if __name__ == "__main__":
    main()
