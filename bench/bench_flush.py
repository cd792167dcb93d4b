"""The once-a-second flush of lead copies and score snapshots: how long it holds the event loop.

    python bench/bench_flush.py [--leads 2000] [--events-per-lead 4]

Folds ``bench_pipeline``'s event mix into lead states (points scorer), queues what the
lead agent queues for the store (each lead's copy and field changes, a snapshot per
event), then runs one ``Pipeline.flush_leads`` into a fresh SQLite record while a
ticker task asks for a 1 ms sleep over and over. Prints the flush's wall time and the
longest the ticker waited beyond its 1 ms (the longest the agents would have been
stalled), and the most CPU the loop's thread spent between two ticks (the same without
the waits a loaded machine adds). The agents' own work is not run: the ticker stands
for them.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_pipeline import make_events  # noqa: E402

from crm.record import Source  # noqa: E402
from nudge.events import RepUpserted, parse_event  # noqa: E402
from nudge.logs import configure_logging  # noqa: E402
from nudge.settings import Settings  # noqa: E402
from scoring.points import PointsScorer  # noqa: E402
from scoring.state import LeadState, apply_event, profile_changes, snapshot_row  # noqa: E402
from streams.app import build  # noqa: E402
from streams.pipeline import Pipeline  # noqa: E402

NOW = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)


def queue(p: Pipeline, items: list[dict[str, Any]]) -> None:
    """What the lead agent leaves for the flush after these events."""
    scorer, states = PointsScorer(), dict[str, LeadState]()
    for item in items:
        event = parse_event(item)
        assert not isinstance(event, RepUpserted)
        lead_id = event.lead_id or event.email or ""
        state = states.setdefault(lead_id, LeadState(lead_id=lead_id))
        changes = profile_changes(event, state.profile)
        if not apply_event(state, event):
            continue
        score = scorer.rescore(state, event, NOW)
        state.record_score(score)
        p.dirty_leads[lead_id] = state
        if changes:
            source = Source(kind=event.source, at=event.occurred_at, event_id=event.event_id)
            p.dirty_fields.setdefault(lead_id, []).append((changes, source))
        p.snapshots.append(snapshot_row(state, event, score))


async def one_flush(data_dir: Path, items: list[dict[str, Any]]) -> tuple[float, float, float, int]:
    p = build(Settings(data_dir=data_dir), "kafka://127.0.0.1:9")  # never connected
    await p.store()
    queue(p, items)
    snaps = len(p.snapshots)
    done, worst, worst_cpu = False, 0.0, 0.0

    async def ticker() -> None:
        nonlocal worst, worst_cpu
        while not done:
            t, cpu = time.perf_counter(), time.thread_time()
            await asyncio.sleep(0.001)
            worst = max(worst, time.perf_counter() - t - 0.001)
            worst_cpu = max(worst_cpu, time.thread_time() - cpu)

    tick = asyncio.create_task(ticker())
    await asyncio.sleep(0.01)
    t0 = time.perf_counter()
    await p.flush_leads()
    wall = time.perf_counter() - t0
    done = True
    await tick
    stored = len(await (await p.store()).snapshots())
    assert stored == snaps, f"{stored} snapshots stored of {snaps}"
    await p.close()
    return wall, worst, worst_cpu, snaps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--leads", type=int, default=2000)
    ap.add_argument("--events-per-lead", type=int, default=4)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    configure_logging(fmt="console", level="warning")
    events, _ = make_events(args.leads, args.events_per_lead)
    items = [e for e in events if e["type"] != "rep.upserted"]
    walls, stalls, cpus = [], [], []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            wall, worst, cpu, snaps = asyncio.run(one_flush(Path(tmp), items))
        walls.append(wall)
        stalls.append(worst)
        cpus.append(cpu)
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"flush of {args.leads} leads and {snaps} snapshots, {dt.date.today()}, "
        f"{platform.machine()} {os.cpu_count()} cores, load {load}, {args.runs} runs"
    )
    print(f"  flush wall time      median {statistics.median(walls) * 1e3:7.1f} ms")
    print(
        f"  longest loop stall   median {statistics.median(stalls) * 1e3:7.1f} ms "
        f"(max {max(stalls) * 1e3:.1f} ms)"
    )
    print(
        f"  longest loop turn    median {statistics.median(cpus) * 1e3:7.1f} ms of CPU "
        f"(max {max(cpus) * 1e3:.1f} ms): the event loop's own work between two ticks; "
        "the stall less the time the machine's load kept the process waiting"
    )


if __name__ == "__main__":
    main()
