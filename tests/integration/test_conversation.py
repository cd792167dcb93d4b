"""A post-meeting questionnaire end to end, through a real worker, broker, fake Twilio and
signed inbound webhooks: meeting.ended → activity logged → questions texted after the
wait → the rep's replies → CRM fields updated with audit rows → the lead re-scored."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.twilio_server import FakeTwilio
from tests.integration.test_pipeline import at

pytestmark = pytest.mark.slow

REP_PHONE = "+14155550101"
DEBRIEF = """
name: debrief-test
description: Ask the post-meeting questions 2 s after a meeting (15 min in production).
owner: ops@example.com
version: 1
rules:
  - id: debrief
    trigger: {type: event, event: meeting.ended, where: {duration_s: {gte: 300}}}
    actions:
      - type: wait
        for: 2s
      - type: ask
        questionnaire: post-meeting
        to: owner
        record_on: deal
"""


def rep(rep_id: str = "rep-1", phone: str = REP_PHONE) -> dict[str, Any]:
    """The ``rep.upserted`` event of the rep the tests text."""
    return {
        "event_id": f"{rep_id}-upserted",
        "type": "rep.upserted",
        "occurred_at": at(0),
        "source": "crm",
        "rep_id": rep_id,
        "name": "Rita Rep",
        "phone": phone,
    }


def twilio_env(fake: FakeTwilio) -> dict[str, str]:
    """A worker's settings for sending texts through the fake Twilio."""
    return {
        "TWILIO_ACCOUNT_SID": fake.account_sid,
        "TWILIO_AUTH_TOKEN": fake.auth_token,
        "TWILIO_FROM_NUMBER": "+15005550006",
        "NUDGE_TWILIO_API_URL": fake.url,
    }


async def until(predicate: Any, timeout: float = 30.0, what: str = "") -> Any:
    """Poll without blocking the loop (the fake Twilio server runs on it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.2)
    raise AssertionError(f"not within {timeout} s: {what}")


def rows(db: Path, sql: str) -> list[sqlite3.Row]:
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    try:
        return con.execute(sql).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        con.close()


async def test_post_meeting_questionnaire_updates_the_crm(
    start_worker: Any,
    twilio_fake: FakeTwilio,
    tmp_path: Path,
) -> None:
    """Three texted questions, three texted answers: three audited CRM fields, a new score."""
    playbooks = tmp_path / "playbooks"
    playbooks.mkdir()
    (playbooks / "debrief.yaml").write_text(DEBRIEF)
    worker = start_worker(NUDGE_PLAYBOOKS=str(playbooks), **twilio_env(twilio_fake))
    status, body = worker.post_events(
        [
            rep(),
            {
                "event_id": "l1",
                "type": "lead.created",
                "occurred_at": at(1),
                "source": "crm",
                "lead_id": "lead-1",
                "email": "cto@acme.example",
                "fields": {"company": "Acme", "owner_rep_id": "rep-1", "deal_value": 20000},
            },
            {
                "event_id": "m1",
                "type": "meeting.ended",
                "occurred_at": at(60),
                "source": "calendar",
                "lead_id": "lead-1",
                "rep_id": "rep-1",
                "duration_s": 1800,
                "attendees": ["cto@acme.example"],
            },
        ]
    )
    assert status == 200, body
    await until(
        lambda: rows(worker.db, "SELECT * FROM activities WHERE activity_id='m1'"),
        what="meeting logged as an activity",
    )
    rescored_before = worker.stats().get("leads.rescored", 0)

    async def reply(text: str, texts_before: int) -> None:
        await until(
            lambda: len(twilio_fake.messages) > texts_before, what=f"a question before {text!r}"
        )
        url = f"{worker.url}/webhooks/twilio/sms"
        code, _ = await twilio_fake.callback(url, twilio_fake.inbound_params(REP_PHONE, text))
        assert code == 200

    await reply("Good", 0)
    first = twilio_fake.messages[0]
    assert first["To"] == REP_PHONE and "Acme" in first["Body"] and "How did it go" in first["Body"]
    await reply("1", 1)  # next step: Proposal
    await reply("next tuesday", 2)  # expected close date
    changes = await until(
        lambda: rows(
            worker.db,
            "SELECT * FROM field_changes WHERE source LIKE 'questionnaire:%' ORDER BY field",
        ),
        timeout=30,
        what="answers written with audit rows",
    )
    fields = {r["field"]: json.loads(r["new_value_json"]) for r in changes}
    assert fields["deal.meeting_rating"] == 4
    assert fields["deal.next_step"] == "proposal"
    assert dt.date.fromisoformat(fields["deal.close_date"]).weekday() == 1  # a Tuesday
    assert all(r["source_questionnaire"] == "post-meeting" for r in changes)
    assert all(r["rep_id"] == "rep-1" and r["lead_id"] == "lead-1" for r in changes)
    await until(
        lambda: worker.stats().get("leads.rescored", 0) > rescored_before,
        what="the lead re-scored after the answers flowed back",
    )
    # nothing was texted twice
    bodies = [m["Body"] for m in twilio_fake.messages]
    assert len(bodies) == len(set(bodies))


PRICING = """
name: pricing-watch
description: every pricing-page visit nudges the owner (test)
owner: ops@example.com
version: 1
rules:
  - id: pricing
    trigger: {type: event, event: page.viewed, where: {path: {starts_with: /pricing}}}
    actions:
      - type: nudge
        to: owner
        template: "{{ lead.company }} is on the pricing page"
"""


def visit(lead: int, n: int) -> dict[str, Any]:
    return {
        "event_id": f"v{lead}-{n}",
        "type": "page.viewed",
        "occurred_at": at(100 + n),
        "source": "web",
        "lead_id": f"lead-{lead}",
        "path": "/pricing",
    }


async def test_replies_to_a_nudge_log_a_call_and_snooze(
    start_worker: Any, twilio_fake: FakeTwilio, tmp_path: Path
) -> None:
    """ "1" logs a call on the nudged lead (the score sees it) and says so; "2" snoozes the lead:
    the next nudge about it is suppressed with that reason, others still go out."""
    (tmp_path / "pricing.yaml").write_text(PRICING)
    worker = start_worker(NUDGE_PLAYBOOKS=str(tmp_path / "pricing.yaml"), **twilio_env(twilio_fake))
    leads = [
        {
            "event_id": f"l{i}",
            "type": "lead.created",
            "occurred_at": at(1),
            "source": "crm",
            "lead_id": f"lead-{i}",
            "fields": {"company": name, "owner_rep_id": "rep-1"},
        }
        for i, name in ((1, "Acme"), (2, "Birchwood"))
    ]
    worker.post_events([rep(), *leads])
    await until(lambda: len(rows(worker.db, "SELECT * FROM leads")) == 2, what="leads stored")
    worker.post_events([visit(1, 1)])
    await until(lambda: len(twilio_fake.messages) == 1, what="the pricing nudge")
    url = f"{worker.url}/webhooks/twilio/sms"
    await twilio_fake.callback(url, twilio_fake.inbound_params(REP_PHONE, "1"))
    await until(lambda: len(twilio_fake.messages) == 2, what="the acknowledgement")
    assert twilio_fake.messages[1]["Body"] == "Logged a call with Acme."
    calls = await until(
        lambda: rows(worker.db, "SELECT * FROM activities WHERE type = 'call.ended'"),
        what="the call logged",
    )
    assert calls[0]["lead_id"] == "lead-1" and calls[0]["rep_id"] == "rep-1"

    await twilio_fake.callback(url, twilio_fake.inbound_params(REP_PHONE, "2"))
    await until(lambda: len(twilio_fake.messages) == 3, what="the snooze acknowledgement")
    assert twilio_fake.messages[2]["Body"] == "Snoozed Acme for a day."
    worker.post_events([visit(1, 2), visit(2, 3)])
    await until(
        lambda: any("Birchwood" in m["Body"] for m in twilio_fake.messages),
        what="the other lead's nudge",
    )
    suppressed = await until(
        lambda: rows(worker.db, "SELECT * FROM outbox WHERE state = 'suppressed'"),
        what="the snoozed nudge",
    )
    assert [r["lead_id"] for r in suppressed] == ["lead-1"]
    assert suppressed[0]["reason"] == "snoozed by the rep"
    assert sum("Acme is on the pricing page" in m["Body"] for m in twilio_fake.messages) == 1
