"""The data inventory on a generated history with a known structure: calls come only in
the two days before a purchase (short-horizon signal), email engagement is higher all
along for leads that will buy (long-horizon signal), web visits are noise."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

from nudge.events import LeadEvent, parse_event
from scoring.inventory import inventory, silo_features

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
END = 220.0
"""Day the generated history ends: nothing happens after it."""


def generated(n_leads: int = 500, seed: int = 5) -> list[LeadEvent]:
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []

    def ev(kind: str, lead: str, t: float, **extra: Any) -> None:
        out.append(
            {
                "event_id": f"{lead}-{len(out)}",
                "type": kind,
                "source": "gen",
                "lead_id": lead,
                "occurred_at": (T0 + dt.timedelta(days=t)).isoformat(),
                **extra,
            }
        )

    for i in range(n_leads):
        lead = f"L{i}"
        born = rng.uniform(0, 80)
        buys = rng.random() < 0.45
        close = born + rng.expovariate(1 / 45) if buys else 1e9  # non-buyers stay open
        ev("lead.created", lead, born, fields={"company": f"Co {i}"})
        for _ in range(3 if buys and close < END else 0):  # calls just before buying
            ev("call.ended", lead, close - rng.uniform(0.05, 2.0), duration_s=300)
        if not buys and rng.random() < 0.3:  # the odd call that leads nowhere
            ev("call.ended", lead, rng.uniform(born, born + 90), duration_s=120)
        # email and web histories reach back before the CRM record (matched later by
        # identity), so their 30-day counts do not reveal the lead's age, which predicts
        # on its own here (leads that waited long without buying are mostly non-buyers)
        rate = 0.12 if buys else 0.04  # opens per day, all life long
        t = born - 60
        while (t := t + rng.expovariate(rate)) < min(close, END):
            ev("email.opened", lead, t, campaign="news")
        t = born - 60
        while (t := t + rng.expovariate(0.1)) < min(close, END):
            ev("page.viewed", lead, t, path="/blog")
        if buys and close < END:
            ev("deal.won", lead, close)
    events = []
    for raw in out:
        e = parse_event(raw)
        assert not hasattr(e, "rep_id") or e.type != "rep.upserted"
        events.append(e)
    return events  # type: ignore[return-value]


def test_inventory_counts_and_short_versus_long_horizon_power() -> None:
    """Counts per type and silo are exact; calls predict well at 1 day and poorly at 90;
    email keeps its power at 90 days; web is a coin at every horizon."""
    events = generated()
    result = inventory(events, step=dt.timedelta(days=4))
    calls = [e for e in events if e.type == "call.ended"]
    by_type = {t["type"]: t for t in result["types"]}
    assert by_type["call.ended"]["events"] == len(calls)
    assert by_type["call.ended"]["leads"] == len({e.lead_id for e in calls})
    assert by_type["lead.created"]["leads"] == result["leads"] == 500
    auc = {s["silo"]: s["auc"] for s in result["silos"]}
    assert auc["call"]["1"] >= 0.8, auc
    assert auc["call"]["90"] <= 0.65, auc
    assert auc["call"]["1"] - auc["call"]["90"] >= 0.2, auc
    assert auc["email"]["90"] >= 0.6, auc
    for h in ("1", "7", "30", "90"):
        assert 0.4 <= auc["web"][h] <= 0.6, auc


def test_silo_features_use_only_the_past() -> None:
    """Counts in the last 1/7/30 days and recency (capped at 30 days), at the cut-off only."""
    day = 86400.0
    stamps = [0.0, 5 * day, 9.5 * day, 20 * day]
    f = silo_features(stamps, 10 * day)
    assert f[:3] == [math.log1p(1), math.log1p(2), math.log1p(3)]
    assert abs(f[3] - 0.5 / 30) < 1e-9
    assert silo_features([], 10 * day)[3] == 1.0
    assert silo_features([0.0], 100 * day) == [0.0, 0.0, 0.0, 1.0]


def test_inventory_command_writes_the_file_the_cockpit_shows(tmp_path: Path) -> None:
    """`nudge model inventory --events FILE` writes <data_dir>/reports/inventory.json."""
    events = tmp_path / "events.ndjson"
    events.write_text(
        "\n".join(e.model_dump_json(exclude_none=True) for e in generated(n_leads=120)) + "\n"
    )
    env = {**os.environ, "NUDGE_DATA_DIR": str(tmp_path / "var")}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "cli",
            "model",
            "inventory",
            "--events",
            str(events),
            "--step-days",
            "10",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    written = json.loads((tmp_path / "var" / "reports" / "inventory.json").read_text())
    assert written == json.loads(run.stdout)
    assert written["leads"] == 120 and written["file"] == str(events)
    assert {s["silo"] for s in written["silos"]} == {"call", "email", "transaction", "web"}
    bad = subprocess.run(
        [sys.executable, "-m", "cli", "model", "inventory", "--events", str(tmp_path / "no")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2 and "no such file" in bad.stderr


def test_inventory_from_the_records_snapshots_matches_the_event_history() -> None:
    """Snapshot rows (type, lead, time) give the same inventory as the events they came
    from, outcomes included."""
    from scoring.inventory import from_snapshots, inventory_of

    events = generated(n_leads=150)
    rows = [
        {"lead_id": e.lead_id, "event_type": e.type, "occurred_at": e.occurred_at.timestamp()}
        for e in events
    ]
    step = dt.timedelta(days=10)
    assert inventory_of(from_snapshots(rows), step=step) == inventory(events, step=step)
