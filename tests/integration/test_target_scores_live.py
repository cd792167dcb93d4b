"""Churn and cross-sell models score a running worker's customers; the churn playbook and
the seed's call example text the reps; ``simulate`` says exactly what the worker did.

Real parts: a worker subprocess on the real broker, models trained and promoted with the
CLI on generated customers, the real Twilio SDK against the fake, the SQLite record.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from nudge.events import STREAM_OF, LeadCreated, event_to_json
from playbooks.loader import EXAMPLES
from scoring.synthetic_customers import CATALOGUE, generate_customers
from tests.fakes.twilio_server import FakeTwilio

pytestmark = pytest.mark.slow

OWNER_PHONE, CALLER_PHONE = "+14155550101", "+14155550102"
TARGETS = ("churn", "cross_sell:payroll", "cross_sell:insurance")


async def cli(env: dict[str, str], cwd: Path, *args: str) -> str:
    """``nudge ARGS`` in a subprocess, without blocking the loop the fake Twilio runs on."""
    out = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


async def until(predicate: Any, timeout: float, what: Any) -> Any:
    """Poll without blocking the loop (the fake Twilio server runs on it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await asyncio.to_thread(predicate)
        if value:
            return value
        await asyncio.sleep(0.3)
    raise AssertionError(f"not within {timeout} s: {what()}")


def live_events() -> list[dict[str, Any]]:
    """Customers the models never saw (another seed), owned by rep-1, with a call from
    rep-2 on day 20 of each, and the two reps."""
    world = generate_customers(n=30, days=45, seed=99)
    events: list[dict[str, Any]] = []
    for e in world.events:
        data = json.loads(event_to_json(e))
        if isinstance(e, LeadCreated):
            data["fields"]["owner_rep_id"] = "rep-1"
            call_at = e.occurred_at + dt.timedelta(days=20, minutes=7)
            events.append(
                {
                    "event_id": f"{e.lead_id}-call",
                    "type": "call.started",
                    "occurred_at": call_at.isoformat(),
                    "source": "phone",
                    "lead_id": e.lead_id,
                    "rep_id": "rep-2",
                    "direction": "inbound",
                }
            )
        events.append(data)
    events.sort(key=lambda d: (d["occurred_at"], d["event_id"]))
    reps = [
        {
            "event_id": f"rep-{n}",
            "type": "rep.upserted",
            "occurred_at": "2025-12-31T00:00:00+00:00",
            "source": "crm",
            "rep_id": f"rep-{n}",
            "name": f"Rep {n}",
            "phone": phone,
        }
        for n, phone in ((1, OWNER_PHONE), (2, CALLER_PHONE))
    ]
    return reps + events


def waves(events: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The events in posting waves that keep each lead's events in time order.

    The worker reads the CRM, call and web topics independently, so a lead's event on
    one topic may overtake its earlier event on another (as in production, where sources
    deliver late). ``simulate`` replays in time order; to compare the two on the same
    order, a lead's event from another topic than its previous one waits for the next
    wave, posted once the worker has processed the ones before."""
    out: list[list[dict[str, Any]]] = [[]]
    last: dict[str, tuple[int, str]] = {}
    for e in events:
        lead, stream = e.get("lead_id"), STREAM_OF.get(e["type"], "web")
        wave = 0
        if lead is not None:
            wave, was = last.get(lead, (0, stream))
            wave += was != stream
            last[lead] = (wave, stream)
        while len(out) <= wave:
            out.append([])
        out[wave].append(e)
    return out


def outbox(db: Path) -> list[tuple[str, str, str, str]]:
    con = sqlite3.connect(db)
    try:
        rows = con.execute("SELECT rule, lead_id, rep_id, text FROM outbox ORDER BY nudge_id")
        return sorted(rows.fetchall())
    except sqlite3.OperationalError:
        return []
    finally:
        con.close()


async def test_models_score_live_customers_and_playbooks_fire_as_simulated(
    start_worker: Any, twilio_fake: FakeTwilio, tmp_path: Path
) -> None:
    playbooks = tmp_path / "playbooks"
    playbooks.mkdir()
    for name in ("churn-watch.yaml", "call-cross-sell.yaml"):
        shutil.copy(EXAMPLES / name, playbooks / name)
    products = tmp_path / "products.yaml"
    products.write_text(yaml.safe_dump(CATALOGUE, sort_keys=False))
    worker = start_worker(
        NUDGE_PLAYBOOKS=str(playbooks),
        NUDGE_PRODUCTS=str(products),
        NUDGE_MIN_CONVERSIONS="20",
        NUDGE_DECISION_CLOCK="event",  # decisions at the events' (2026) times, as simulate
        NUDGE_DAILY_LIMIT="100000",
        TWILIO_ACCOUNT_SID=twilio_fake.account_sid,
        TWILIO_AUTH_TOKEN=twilio_fake.auth_token,
        TWILIO_FROM_NUMBER="+15005550006",
        NUDGE_TWILIO_API_URL=twilio_fake.url,
    )
    # three small models from a generated history, promoted while the worker runs
    history = tmp_path / "history.ndjson"
    await cli(
        worker.env,
        tmp_path,
        "model",
        "synth",
        "--customers",
        "250",
        "--days",
        "150",
        "--seed",
        "11",
        "--out",
        str(history),
    )
    versions = {}
    for target in TARGETS:
        train = ("model", "train", "--events", str(history), "--target", target, "--promote")
        out = json.loads(await cli(worker.env, tmp_path, *train))
        assert out["promoted"] and out["positives"] >= 20, out
        versions[target] = out["version"]

    events = live_events()
    feed = tmp_path / "live.ndjson"
    feed.write_text("".join(json.dumps(e) + "\n" for e in events))
    simulate = ("playbooks", "simulate", "--events", str(feed), "--format", "json")
    simulated = json.loads(await cli(worker.env, tmp_path, *simulate))
    expected = sorted(
        (o["rule"], o["lead_id"], o["rep_id"], o["command"]["text"])
        for o in simulated["outcomes"]
        if o["command"]["kind"] == "nudge"
    )
    rules = {rule for rule, *_ in expected}
    assert {"churn-risk", "top-two-on-call"} <= rules, expected

    posted = 0
    for wave in waves(events):
        for start in range(0, len(wave), 400):
            status, body = await asyncio.to_thread(worker.post_events, wave[start : start + 400])
            assert status in (200, 202), body
        posted += sum(1 for e in wave if "lead_id" in e)
        await until(
            lambda n=posted: worker.stats().get("leads.rescored", 0) >= n,  # type: ignore[misc]
            timeout=180,
            what=lambda: worker.stats(),
        )
    await until(
        lambda: len(outbox(worker.db)) >= len(expected),
        timeout=60,
        what=lambda: (len(outbox(worker.db)), len(expected)),
    )
    assert outbox(worker.db) == expected

    # the texts as the reps read them, through the real Twilio client
    await until(
        lambda: len(twilio_fake.messages) >= len(expected),
        timeout=60,
        what=lambda: (len(twilio_fake.messages), len(expected)),
    )
    sent = sorted((m["To"], m["Body"]) for m in twilio_fake.messages)
    want = sorted((OWNER_PHONE if r == "rep-1" else CALLER_PHONE, t) for _, _, r, t in expected)
    assert sent == want
    calls = [t for rule, _, rep, t in expected if rule == "top-two-on-call"]
    assert all(t.startswith("On the line: Customer ") for t in calls)
    two = [t for t in calls if "payroll" in t and "insurance" in t]
    assert two, calls  # customers owning neither product hear both, best first
    churn = [t for rule, _, rep, t in expected if rule == "churn-risk"]
    assert all("to leave within 30 days" in t for t in churn)
    # every score the worker kept says which model made it
    con = sqlite3.connect(worker.db)
    try:
        states = [json.loads(s) for (s,) in con.execute("SELECT state_json FROM leads")]
    finally:
        con.close()
    made_by = {
        name: t["score"]["model_version"] for s in states for name, t in s["targets"].items()
    }
    assert made_by and all(versions[name] == v for name, v in made_by.items()), made_by
    # every decision the rules made is in the record with its propensity (no exploration
    # here: all 1), the nudges and the calls with nothing to offer alike
    con = sqlite3.connect(worker.db)
    try:
        logged = con.execute("SELECT rule, lead_id, nudged, propensity FROM decisions").fetchall()
        signals = con.execute("SELECT COUNT(DISTINCT event_id || lead_id) FROM decisions")
        decided = signals.fetchone()[0]
    finally:
        con.close()
    assert {(rule, lead) for rule, lead, nudged, _ in logged if nudged} == {
        (rule, lead) for rule, lead, _, _ in expected
    }
    assert {p for *_, p in logged} == {1.0}
    assert any(rule == "top-two-on-call" and not nudged for rule, _, nudged, _ in logged)
    # and evaluate-policy weighs them: the same playbooks agree with every decision
    judged = json.loads(
        await cli(
            worker.env,
            tmp_path,
            *("model", "evaluate-policy", "--from-store", "--events", str(feed)),
            *("--playbooks", str(playbooks)),
        )
    )
    assert judged["decisions"] == decided and judged["agree"] == decided
