"""The rules in a running worker: the manager's three rules as the README writes them
(a windowed count, a rep-touch condition, an escalation), and `explain` asked of the
live worker over its authenticated route."""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, wait_for

pytestmark = pytest.mark.slow

TOKEN = "test-token-for-explain"

PLAYBOOK = """
name: pricing-interest
owner: sales-manager@example.com
version: 1
rules:
  - id: three-pricing-views
    trigger:
      type: event
      event: page.viewed
      where: {path: {starts_with: /pricing}}
      count: {at_least: 3, within: 1d}
    conditions:
      - not: {field: lead.last_contacted_at, within: 2d}
    cooldown: 3d
    actions:
      - type: nudge
        to: owner
        template: "{{ lead.company }} looked at pricing {{ match.count }}. Call them?"
      - type: escalate
        after: 5s
        to: manager
        template: "ESCALATED {{ lead.company }}: pricing interest and no call"
"""


def ago(minutes: float) -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes)).isoformat()


def events() -> list[dict[str, Any]]:
    rep = {"type": "rep.upserted", "source": "crm", "occurred_at": ago(120), "timezone": "UTC"}
    out: list[dict[str, Any]] = [
        rep | {"event_id": "r-a", "rep_id": "rep-a", "name": "Ana", "manager_rep_id": "rep-m"},
        rep | {"event_id": "r-m", "rep_id": "rep-m", "name": "Max"},
    ]
    for lead, company in (("L1", "Acme"), ("L2", "Birch")):
        out.append(
            {
                "event_id": f"{lead}-c",
                "type": "lead.created",
                "source": "crm",
                "occurred_at": ago(100),
                "lead_id": lead,
                "fields": {"company": company, "owner_rep_id": "rep-a"},
            }
        )
    out.append(  # Birch had a call yesterday: no nudge for Birch
        {
            "event_id": "L2-call",
            "type": "call.ended",
            "source": "voip",
            "occurred_at": ago(60 * 20),
            "lead_id": "L2",
            "rep_id": "rep-a",
            "duration_s": 300,
        }
    )
    for lead in ("L1", "L2"):
        for n, (path, minutes) in enumerate(
            (("/pricing", 30), ("/blog", 20), ("/pricing/x", 10), ("/pricing", 5))
        ):
            out.append(
                {
                    "event_id": f"{lead}-v{n}",
                    "type": "page.viewed",
                    "source": "web",
                    "occurred_at": ago(minutes),
                    "lead_id": lead,
                    "path": path,
                }
            )
    return out


def explain(worker: Any, lead: str, token: str | None = TOKEN) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    req = urllib.request.Request(f"{worker.url}/playbooks/explain?lead={lead}", headers=headers)
    with urllib.request.urlopen(req, timeout=5) as r:
        return dict(json.load(r))


def test_manager_rules_and_explain_in_a_running_worker(start_worker: Any, tmp_path: Path) -> None:
    folder = tmp_path / "pb"
    folder.mkdir()
    (folder / "pricing.yaml").write_text(PLAYBOOK)
    worker = start_worker(NUDGE_PLAYBOOKS=str(folder), NUDGE_API_TOKEN=TOKEN)
    status, _ = worker.post_events(events())
    assert status == 200

    # 1 + 3: the third pricing view within a day nudges Acme's owner, then escalates
    wait_for(
        lambda: "Acme looked at pricing 3 within 1d" in worker.output(),
        timeout=60,
        message=worker.stats,
    )
    wait_for(lambda: "ESCALATED Acme" in worker.output(), timeout=60, message=worker.stats)
    assert worker.output().count("Acme looked at pricing") == 1  # the 4th view does not re-fire
    # 2: Birch's owner called yesterday: no nudge, and explain says why
    birch = wait_for(
        lambda: [e for e in explain(worker, "L2")["evaluations"] if e["outcome"] == "conditions"],
        timeout=30,
    )
    assert "lead.last_contacted_at" in birch[0]["reason"]
    assert "Birch looked at pricing" not in worker.output()

    # the route is closed without the token
    with pytest.raises(urllib.error.HTTPError) as refused:
        explain(worker, "L2", token=None)
    assert refused.value.code == 401

    # and the command asks the running worker
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NUDGE_API_TOKEN": TOKEN}
    out = subprocess.run(
        [sys.executable, "-m", "cli", "playbooks", "explain", "--lead", "L1", "--url", worker.url],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    assert "pricing-interest/three-pricing-views  on page.viewed: fired" in out
    assert "count was 1 within 1d, fires when it reaches 3" in out
    assert "delivery to rep-a: send" in out

    # the worker adds its evaluation counts to the record (the cockpit's Playbooks page)
    def counts() -> dict[str, int]:
        with sqlite3.connect(worker.db) as db:
            rows = db.execute(
                "SELECT outcome, SUM(n) FROM rule_counts "
                "WHERE playbook = 'pricing-interest' AND rule = 'three-pricing-views' "
                "GROUP BY outcome"
            ).fetchall()
        return {str(o): int(n) for o, n in rows}

    wait_for(lambda: counts().get("conditions") == 1, timeout=30, message=counts)
    assert counts()["fired"] == 2  # the nudge, then its escalation step


SAMPLE_DAY = ROOT / "cli" / "sample_day.ndjson"
POLICY_OF_STATE = {"sent": "send", "delivered": "send", "held": "hold", "suppressed": "suppress"}


def test_live_worker_and_simulate_agree_on_the_sample_day(
    start_worker: Any, tmp_path: Path
) -> None:
    """The same events through a running worker and through `simulate` (same settings): the
    sets of (rule, lead, rep, delivery decision) are equal."""
    from cli.demo import drained
    from tests.integration.test_pipeline import outbox

    worker = start_worker()
    status, body = worker.post_events(SAMPLE_DAY.read_bytes())
    assert status == 207 and body["rejected"] == 2  # the sample's two deliberately bad lines
    wait_for(lambda: drained(worker.stats(), body["accepted"]), timeout=120, message=worker.stats)
    live = {
        (f"{r['playbook']}/{r['rule']}", r["lead_id"], r["rep_id"], POLICY_OF_STATE[r["state"]])
        for r in wait_for(lambda: outbox(worker.db), timeout=30)
    }

    env = {**worker.env, "NUDGE_DATA_DIR": str(tmp_path / "sim")}  # the worker's settings
    out = subprocess.run(
        [sys.executable, "-m", "cli", "playbooks", "simulate", "--events", str(SAMPLE_DAY), "--format", "json"],
        env=env, capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    simulated = {
        (f"{o['playbook']}/{o['rule']}", o["lead_id"], o["rep_id"], o["decision"])
        for o in json.loads(out)["outcomes"]
        if o["command"]["kind"] == "nudge"
    }
    assert len(live) >= 5
    assert live == simulated


def generated_week(history: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A week of a generated history: (its reps and leads, its web and email activity).

    Each lead is owned by one of three reps (the synthetic history has no owners, and nudges
    need one). A worker keeps each lead's events in order within one inbound stream, not
    across streams (Kafka orders a partition, not topics), and a score's path — what
    `score.jumped` reads — depends on that order; so the records go first and the
    activity, all on the web stream, after them: every lead's events then arrive in time
    order, as simulate replays them.
    """
    from nudge.events import STREAM_OF

    events = [json.loads(line) for line in history.read_text().splitlines() if line.strip()]
    times = sorted(e["occurred_at"] for e in events)
    start = dt.datetime.fromisoformat(times[len(times) // 2])
    end = start + dt.timedelta(days=7)
    week = [
        e
        for e in events
        if start <= dt.datetime.fromisoformat(e["occurred_at"]) < end
        and STREAM_OF[e["type"]] == "web"
    ]
    active = {e["lead_id"] for e in week}
    reps = ["rep-a", "rep-b", "rep-c"]
    created = []
    for e in events:
        if e["type"] == "lead.created" and e["lead_id"] in active:
            owner = reps[int(e["lead_id"].lstrip("L")) % len(reps)]
            created.append(e | {"fields": e["fields"] | {"owner_rep_id": owner}})
    first = min(e["occurred_at"] for e in created)
    rep_events = [
        {
            "event_id": f"rep-{rep}",
            "type": "rep.upserted",
            "occurred_at": first,
            "source": "crm",
            "rep_id": rep,
            "name": rep,
            "timezone": "America/New_York",
        }
        for rep in reps
    ]
    return rep_events + created, week


WARM = """
name: warm
owner: ops@example.com
version: 1
rules:
  - id: warming
    trigger: {type: score.crossed_above, value: 40%}
    cooldown: 1d
    actions: [{type: nudge, template: "{{ lead.company }} warming: {{ score.value | pct }}"}]
  - id: jumped
    trigger: {type: score.jumped, by: 15%, within: 2d}
    actions: [{type: nudge, template: "{{ lead.company }} jumped to {{ score.value | pct }}"}]
"""


def test_live_worker_and_simulate_agree_on_a_generated_week_with_a_promoted_model(
    start_worker: Any, tmp_path: Path
) -> None:
    """A generated week, scored by a promoted XGBoost model, through a worker deciding on the
    events' clock (NUDGE_DECISION_CLOCK=event) and through `simulate`: same decisions."""
    from cli.demo import drained
    from tests.integration.test_model_promotion import model_version
    from tests.integration.test_pipeline import outbox

    folder = tmp_path / "pb"
    folder.mkdir()
    default = ROOT / "playbooks" / "default" / "hot-lead.yaml"
    (folder / "hot-lead.yaml").write_text(default.read_text())
    (folder / "warm.yaml").write_text(WARM)
    worker = start_worker(NUDGE_DECISION_CLOCK="event", NUDGE_PLAYBOOKS=str(folder))

    def cli(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "cli", *args],
            env=worker.env, capture_output=True, text=True, timeout=300, cwd=tmp_path,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    history = tmp_path / "history.ndjson"
    cli("model", "synth", "--leads", "1200", "--out", str(history))
    cli("model", "train", "--events", str(history))
    version = cli("model", "list").split()[0]
    cli("model", "promote", version)

    records, activity = generated_week(history)
    file = tmp_path / "week.ndjson"
    file.write_text("\n".join(json.dumps(e) for e in records + activity) + "\n")
    for part, total in ((records, len(records)), (activity, len(records) + len(activity))):
        status, body = worker.post_events(part)
        assert status == 200, body
        wait_for(lambda n=total: drained(worker.stats(), n), timeout=300, message=worker.stats)
    live = {
        (f"{r['playbook']}/{r['rule']}", r["lead_id"], r["rep_id"], POLICY_OF_STATE[r["state"]])
        for r in outbox(worker.db)
    }
    out = cli("playbooks", "simulate", "--events", str(file), "--format", "json")
    doc = json.loads(out)
    simulated = {
        (f"{o['playbook']}/{o['rule']}", o["lead_id"], o["rep_id"], o["decision"])
        for o in doc["outcomes"]
        if o["command"]["kind"] == "nudge"
    }
    scored_by = {model_version(worker.db, lead) for _, lead, _, _ in live}
    assert scored_by == {version}, scored_by  # the promoted model scored, live and simulated
    assert all(
        o["command"]["text"] and "rule-based" not in o["command"]["text"] for o in doc["outcomes"]
    )
    assert len(live) >= 5 and len({rule for rule, _, _, _ in live}) >= 2, live
    assert live == simulated
