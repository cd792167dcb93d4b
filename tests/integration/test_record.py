"""The record end to end: what the store holds about a lead survives a worker restart on
the memory broker, and every reply lands on the lead and question it answers.

Each test repeats one reproduction of the record's known faults through a real worker, the
real Tansu broker, the fake Twilio and signed inbound webhooks, and reads the record the way
a user does: ``nudge leads show ID --format json``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from broker import EmbeddedBroker
from tests.conftest import ROOT, WorkerProcess
from tests.fakes.twilio_server import FakeTwilio
from tests.integration.test_conversation import DEBRIEF, REP_PHONE, rep, twilio_env, until

pytestmark = pytest.mark.slow


@functools.cache
def t0() -> dt.datetime:
    """The leads' events happen in the hour and ten minutes before the file's first test
    builds them, as they do for a live team: the answers a worker merges are events of
    *now*, and a lead's score decays with the time between its events, so events stamped
    months earlier would decay the score to nothing the moment the answers are scored."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=70)


def at(minutes: float) -> str:
    return (t0() + dt.timedelta(minutes=minutes)).isoformat()


def show(worker: WorkerProcess, lead_id: str) -> dict[str, Any]:
    """The lead's record as ``nudge leads show ID --format json`` prints it."""
    out = subprocess.run(
        [sys.executable, "-m", "cli", "leads", "show", lead_id, "--format", "json"],
        env=worker.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if out.returncode == 1 and "no lead" in out.stderr:
        return dict(EMPTY)  # not in the record yet
    assert out.returncode == 0, out.stderr
    record: dict[str, Any] = json.loads(out.stdout)
    return record


EMPTY: dict[str, Any] = {
    "profile": {},
    "deals": [],
    "score": None,
    "events": [],
    "notes": [],
    "nudges": [],
    "open_conversations": [],
    "answers": [],
    "field_changes": [],
}


def lead(n: int, company: str, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": f"l{n}",
        "type": "lead.created",
        "occurred_at": at(1),
        "source": "crm",
        "lead_id": f"lead-{n}",
        "email": f"buyer{n}@{company.lower()}.example",
        "fields": {"company": company, "owner_rep_id": "rep-1", **fields},
    }


def meeting(n: int, minute: float) -> dict[str, Any]:
    return {
        "event_id": f"m{n}-{minute}",
        "type": "meeting.ended",
        "occurred_at": at(minute),
        "source": "calendar",
        "lead_id": f"lead-{n}",
        "rep_id": "rep-1",
        "duration_s": 1800,
    }


async def text(worker: WorkerProcess, fake: FakeTwilio, body: str) -> None:
    """The rep texts ``body`` to Nudge (a signed inbound webhook, as Twilio sends it)."""
    url = f"{worker.url}/webhooks/twilio/sms"
    code, _ = await fake.callback(url, fake.inbound_params(REP_PHONE, body))
    assert code == 200


async def texted(fake: FakeTwilio, n: int, what: str) -> str:
    """Wait until Nudge has texted ``n`` messages; the last one's body."""
    await until(lambda: len(fake.messages) >= n, what=what)
    return fake.messages[n - 1]["Body"]


PRICING_AFTER = """
name: pricing-after
description: a pricing visit after the meeting nudges the owner, naming the deal's next step
owner: ops@example.com
version: 1
rules:
  - id: pricing
    trigger: {type: event, event: page.viewed, where: {path: {starts_with: /pricing/after}}}
    actions:
      - type: nudge
        to: owner
        template: "{{ lead.company }} is back on pricing; next step {{ deal.next_step }}"
"""


def visit(n: int, minute: float, path: str) -> dict[str, Any]:
    return {
        "event_id": f"v{n}-{minute}",
        "type": "page.viewed",
        "occurred_at": at(minute),
        "source": "web",
        "lead_id": f"lead-{n}",
        "path": path,
    }


async def test_restart_on_the_memory_broker_keeps_what_the_store_holds(
    start_worker: Any, twilio_fake: FakeTwilio, tmp_path: Path
) -> None:
    """Reproduction 1: a worker stopped and started again on a fresh memory broker (its
    tables lost) keeps the lead's company, owner, deal value and answers, its score, and
    nudges the owner by name after the next event."""
    books = tmp_path / "books"
    books.mkdir()
    (books / "debrief.yaml").write_text(DEBRIEF)
    (books / "pricing.yaml").write_text(PRICING_AFTER)
    worker = start_worker(NUDGE_PLAYBOOKS=str(books), **twilio_env(twilio_fake))
    intent = [visit(1, m, "/pricing") for m in (10, 12, 14, 16)]
    worker.post_events([rep(), lead(1, "Acme", deal_value=20000), *intent, meeting(1, 60)])
    await texted(twilio_fake, 1, "the first question")
    await text(worker, twilio_fake, "Good")
    await texted(twilio_fake, 2, "the second question")
    await text(worker, twilio_fake, "None")  # next step: none → why not?
    await texted(twilio_fake, 3, "the follow-up")
    await text(worker, twilio_fake, "budget freeze")
    await texted(twilio_fake, 4, "the close date question")
    await text(worker, twilio_fake, "done")
    before = await until(
        lambda: (
            (r := show(worker, "lead-1"))["profile"].get("custom", {}).get("no_next_step_reason")
            and r["score"]
            and r
        ),
        what="answers in the record",
    )
    score_before = before["score"]["value"]

    await texted(twilio_fake, 5, "the closing text")
    await asyncio.to_thread(worker.kill, signal.SIGTERM)
    fresh = EmbeddedBroker(log_file=tmp_path / "broker2.log")  # the memory broker restarts
    await asyncio.to_thread(fresh.start)  # (its readiness probe runs its own event loop)
    try:
        worker.env["KAFKA_URL"] = fresh.url
        await asyncio.to_thread(worker.start)
        texts = len(twilio_fake.messages)
        worker.post_events([visit(1, 66, "/pricing/after")])
        body = await texted(twilio_fake, texts + 1, "the owner nudged after the restart")
        assert body == "Acme is back on pricing; next step none"
        # flushes what it holds; waited for off the loop that serves the fake Twilio
        await asyncio.to_thread(worker.kill, signal.SIGTERM)
        after = show(worker, "lead-1")
    finally:
        worker.kill()
        fresh.stop()
    profile = after["profile"]
    assert profile["company"] == "Acme"
    assert profile["owner_rep_id"] == "rep-1"
    assert profile["deal_value"] == 20000
    assert profile["custom"]["no_next_step_reason"] == "budget freeze"
    assert profile["deal"]["next_step"] == "none"
    assert [d["next_step"] for d in after["deals"]] == ["none"]
    assert after["answers"][0]["value"] == 4 and after["answers"][0]["rep_id"] == "rep-1"
    assert after["score"]["value"] >= score_before - 0.05, (score_before, after["score"])


PRICING_B = """
name: pricing-watch
description: every pricing-page visit nudges the owner
owner: ops@example.com
version: 1
rules:
  - id: pricing
    trigger: {type: event, event: page.viewed, where: {path: {starts_with: /pricing}}}
    actions:
      - type: nudge
        to: owner
        template: "{{ lead.company }} is on the pricing page. Reply 1 to log a call"
"""


async def test_a_code_answers_the_nudge_it_came_with_not_an_open_question(
    start_worker: Any, twilio_fake: FakeTwilio, tmp_path: Path
) -> None:
    """Reproductions 3 and 4 (limits): with an open question on A and a later nudge on B,
    "1" logs a call on B (acknowledged by name), A gets no rating; the questions do not
    use up the daily nudge limit of 1, so B's nudge goes out."""
    books = tmp_path / "books"
    books.mkdir()
    (books / "debrief.yaml").write_text(DEBRIEF)
    (books / "pricing.yaml").write_text(PRICING_B)
    worker = start_worker(
        NUDGE_PLAYBOOKS=str(books), NUDGE_DAILY_LIMIT="1", **twilio_env(twilio_fake)
    )
    worker.post_events([rep(), lead(1, "Acme"), lead(2, "Birchwood"), meeting(1, 60)])
    first = await texted(twilio_fake, 1, "the question on Acme")
    assert "How did it go" in first and "Acme" in first
    worker.post_events([visit(2, 70, "/pricing")])
    second = await texted(twilio_fake, 2, "the nudge on Birchwood")
    assert second.startswith("Birchwood is on the pricing page")
    await text(worker, twilio_fake, "1")
    assert await texted(twilio_fake, 3, "the acknowledgement") == "Logged a call with Birchwood."
    record_b = await until(
        lambda: (
            (r := show(worker, "lead-2"))
            and {"call.ended", "nudge.log_call"} <= {e["type"] for e in r["events"]}
            and r
        ),
        what="the call on Birchwood",
    )
    types = sorted(e["type"] for e in record_b["events"])  # the web visit is listed too
    assert types == ["call.ended", "lead.created", "nudge.log_call", "page.viewed"], types
    record_a = show(worker, "lead-1")
    assert record_a["answers"] == [] and "deal" not in record_a["profile"]
    assert [c["questionnaire_id"] for c in record_a["open_conversations"]] == ["post-meeting"]


FURNITURE = """
name: furniture
description: one question after a meeting
owner: ops@example.com
version: 1
rules:
  - id: ask
    trigger: {type: event, event: meeting.ended}
    actions:
      - type: ask
        questionnaire: furniture-depreciated
        to: owner
"""


async def test_a_question_that_was_not_delivered_takes_no_answer(
    start_worker: Any, twilio_fake: FakeTwilio, tmp_path: Path
) -> None:
    """Reproduction 4: the question fails to send (Twilio refuses it), so "nope" is not its
    answer: no field is written, and Nudge asks which lead the text is about."""
    (tmp_path / "furniture.yaml").write_text(FURNITURE)
    worker = start_worker(
        NUDGE_PLAYBOOKS=str(tmp_path / "furniture.yaml"), **twilio_env(twilio_fake)
    )
    twilio_fake.fail_next(400, 21211)  # the question is refused: never delivered
    worker.post_events([rep(), lead(1, "Acme")])
    await until(lambda: show(worker, "lead-1")["profile"].get("owner_rep_id"), what="the lead")
    worker.post_events([meeting(1, 60)])
    await until(lambda: twilio_fake.requests >= 1, what="the question attempted")
    await text(worker, twilio_fake, "nope")
    assert await texted(twilio_fake, 1, "the reply to 'nope'") == (
        "Which lead is that note about? Send it again starting with the company, "
        "e.g. 'Acme: call back Monday'."
    )
    record = show(worker, "lead-1")
    assert record["answers"] == []
    assert "furniture_depreciated" not in record["profile"].get("custom", {})
    assert not [c for c in record["field_changes"] if c["source"].startswith("questionnaire")]


async def test_a_note_lands_on_the_lead_the_rep_talks_about(
    start_worker: Any, twilio_fake: FakeTwilio, tmp_path: Path
) -> None:
    """Reproduction 5: after a meeting with A and a nudge about B, a free-text reply is a
    note on B (the lead of the latest message) and is acknowledged by name; a text naming
    Acme is a note on A."""
    (tmp_path / "pricing.yaml").write_text(PRICING_B)
    worker = start_worker(NUDGE_PLAYBOOKS=str(tmp_path / "pricing.yaml"), **twilio_env(twilio_fake))
    worker.post_events([rep(), lead(1, "Acme"), lead(2, "Birchwood"), meeting(1, 60)])
    await until(lambda: show(worker, "lead-1")["events"], what="the meeting logged")
    worker.post_events([visit(2, 70, "/pricing")])
    await texted(twilio_fake, 1, "the nudge on Birchwood")
    await text(worker, twilio_fake, "they want a demo next week")
    assert await texted(twilio_fake, 2, "the acknowledgement") == "Noted on Birchwood."
    await text(worker, twilio_fake, "Acme asked for references")
    assert await texted(twilio_fake, 3, "the second acknowledgement") == "Noted on Acme."
    assert [n["text"] for n in show(worker, "lead-2")["notes"]] == ["they want a demo next week"]
    notes_a = show(worker, "lead-1")["notes"]
    assert [(n["text"], n["activity_id"]) for n in notes_a] == [
        ("Acme asked for references", "m1-60")
    ]


async def test_an_answer_and_a_crm_update_of_one_lead_both_stay(
    start_worker: Any, twilio_fake: FakeTwilio, tmp_path: Path
) -> None:
    """Reproduction 2: an answer (merged by the record's writer) and a CRM update with
    events about the same lead land together; neither overwrites the other, each has its
    audit row, and the worker's final flush on SIGTERM keeps both."""
    (tmp_path / "furniture.yaml").write_text(FURNITURE)
    worker = start_worker(
        NUDGE_PLAYBOOKS=str(tmp_path / "furniture.yaml"), **twilio_env(twilio_fake)
    )
    worker.post_events([rep(), lead(1, "Acme", deal_value=20000)])
    await until(lambda: show(worker, "lead-1")["profile"].get("owner_rep_id"), what="the lead")
    worker.post_events([meeting(1, 60)])
    assert "furniture fully depreciated" in await texted(twilio_fake, 1, "the question")
    await text(worker, twilio_fake, "yes")
    stage = {**lead(1, "Acme"), "event_id": "l1-stage", "type": "lead.updated"}
    stage["occurred_at"], stage["fields"] = at(61), {"stage": "proposal"}
    worker.post_events([stage, *(visit(1, 61 + m, f"/docs/{m}") for m in range(5))])
    assert "saved 1 answer on Acme" in await texted(twilio_fake, 2, "the closing text")
    await until(
        lambda: (
            (p := show(worker, "lead-1")["profile"]).get("stage") == "proposal"
            and p.get("custom", {}).get("furniture_depreciated") is True
        ),
        what="the answer and the CRM stage both in the record",
    )
    await asyncio.to_thread(worker.kill, signal.SIGTERM)
    record = show(worker, "lead-1")
    profile = record["profile"]
    assert (profile["company"], profile["stage"], profile["deal_value"]) == (
        "Acme",
        "proposal",
        20000,
    )
    assert profile["custom"]["furniture_depreciated"] is True
    audited = {(c["field"], c["source"]) for c in record["field_changes"]}
    assert ("lead.custom.furniture_depreciated", "questionnaire:furniture-depreciated") in audited
    assert ("lead.stage", "crm") in audited, audited


NEXT_STEP = """
name: next-step
description: a pricing visit while the deal's next step is a demo reminds the owner of it
owner: ops@example.com
version: 1
rules:
  - id: demo
    trigger: {type: event, event: page.viewed}
    conditions:
      - {field: deal.next_step, eq: demo}
    actions:
      - type: nudge
        to: owner
        template: "{{ lead.company }} is back; demo booked, close {{ deal.close_date }}"
"""


async def test_deal_answers_are_deal_fields_the_playbooks_read(
    start_worker: Any, twilio_fake: FakeTwilio, tmp_path: Path
) -> None:
    """Reproduction 6: `deal.next_step` and `deal.close_date` answers are written to the
    lead's deal (not `lead.custom.deal_*`); a playbook whose condition and template read
    them is accepted and fires on the next visit."""
    books = tmp_path / "books"
    books.mkdir()
    (books / "debrief.yaml").write_text(DEBRIEF)
    (books / "next-step.yaml").write_text(NEXT_STEP)
    worker = start_worker(NUDGE_PLAYBOOKS=str(books), **twilio_env(twilio_fake))
    worker.post_events([rep(), lead(1, "Acme", deal_value=20000), meeting(1, 60)])
    worker.post_events([visit(1, 61, "/pricing")])  # no next step yet: no nudge
    for n, answer in enumerate(("Great", "Demo", "2026-12-15"), start=1):
        await texted(twilio_fake, n, f"question {n}")
        await text(worker, twilio_fake, answer)
    assert "saved 3 answers on Acme" in await texted(twilio_fake, 4, "the closing text")
    record = await until(lambda: (r := show(worker, "lead-1"))["deals"] and r, what="the deal")
    [deal] = record["deals"]
    assert (deal["next_step"], deal["close_date"]) == ("demo", "2026-12-15")
    assert not [k for k in record["profile"].get("custom", {}) if k.startswith("deal")]
    worker.post_events([visit(1, 90, "/pricing")])
    assert await texted(twilio_fake, 5, "the nudge reading the deal") == (
        "Acme is back; demo booked, close 2026-12-15"
    )


CAPPED = """
name: pricing-capped
description: pricing visits nudge the owner, one a day; the rest in a digest 2 s later
owner: ops@example.com
version: 1
guards: {max_per_rep_per_day: 1, digest_after: 2s}
rules:
  - id: pricing
    trigger: {type: event, event: page.viewed, where: {path: {starts_with: /pricing}}}
    actions:
      - type: nudge
        to: owner
        template: "{{ lead.company }} is on the pricing page. Reply 1 to log a call"
"""


async def test_a_code_after_a_digest_asks_which_one(
    start_worker: Any, twilio_fake: FakeTwilio, tmp_path: Path
) -> None:
    """Reproduction 5 (digests): after a digest about two leads, "1" is not applied to
    whichever came last: Nudge asks which one in one line, and "1B" logs the call on the
    lead the letter named, acknowledged by name."""
    (tmp_path / "capped.yaml").write_text(CAPPED)
    worker = start_worker(NUDGE_PLAYBOOKS=str(tmp_path / "capped.yaml"), **twilio_env(twilio_fake))
    leads = [lead(1, "Acme"), lead(2, "Birchwood"), lead(3, "Cobalt")]
    worker.post_events([rep(), *leads])
    for n in (1, 2, 3):
        await until(lambda n=n: show(worker, f"lead-{n}")["profile"].get("owner_rep_id"))
    worker.post_events([visit(1, 70, "/pricing")])
    first = await texted(twilio_fake, 1, "the first nudge")
    assert first == "Acme is on the pricing page. Reply 1A to log a call"
    worker.post_events([visit(2, 71, "/pricing"), visit(3, 72, "/pricing")])
    digest = await texted(twilio_fake, 2, "the digest")
    assert "Birchwood" in digest and "Cobalt" in digest, digest
    await text(worker, twilio_fake, "1")
    which = await texted(twilio_fake, 3, "the which-one question")
    assert which.startswith("Which one? Reply 1") and "\n" not in which, which
    letters = dict(
        part.split(" ", 1)
        for part in which.removeprefix("Which one? Reply ").rstrip(".").split(", ")
    )
    assert set(letters.values()) == {"Acme", "Birchwood", "Cobalt"}, which
    assert letters["1A"] == "Acme"  # the letter its own message offered
    code = next(c for c, company in letters.items() if company == "Cobalt")
    await text(worker, twilio_fake, code)
    assert await texted(twilio_fake, 4, "the acknowledgement") == "Logged a call with Cobalt."
    calls = await until(
        lambda: [e for e in show(worker, "lead-3")["events"] if e["type"] == "call.ended"],
        what="the call on Cobalt",
    )
    assert len(calls) == 1
    for other in ("lead-1", "lead-2"):
        assert not [e for e in show(worker, other)["events"] if e["type"] == "call.ended"]
    await text(worker, twilio_fake, "2A")  # the first nudge's own code, messages later
    assert await texted(twilio_fake, 5, "the snooze") == "Snoozed Acme for a day."


async def test_questions_have_their_own_daily_limit(
    start_worker: Any, twilio_fake: FakeTwilio, tmp_path: Path
) -> None:
    """Reproduction 4 (limits): with one questionnaire a day, a second meeting asks
    nothing (counted); with one nudge a day, the question did not use it up."""
    books = tmp_path / "books"
    books.mkdir()
    (books / "furniture.yaml").write_text(FURNITURE)
    (books / "pricing.yaml").write_text(PRICING_B)
    worker = start_worker(
        NUDGE_PLAYBOOKS=str(books),
        NUDGE_DAILY_LIMIT="1",
        NUDGE_QUESTIONNAIRE_DAILY_LIMIT="1",
        **twilio_env(twilio_fake),
    )
    worker.post_events([rep(), lead(1, "Acme"), lead(2, "Birchwood")])
    for n in (1, 2):
        await until(lambda n=n: show(worker, f"lead-{n}")["profile"].get("owner_rep_id"))
    worker.post_events([meeting(1, 60)])
    assert "Acme" in await texted(twilio_fake, 1, "the question on Acme")
    worker.post_events([meeting(2, 61)])
    await until(lambda: worker.stats().get("questionnaires.over_limit") == 1, what="the second ask")
    assert show(worker, "lead-2")["open_conversations"] == []
    worker.post_events([visit(2, 70, "/pricing")])
    assert (await texted(twilio_fake, 2, "the nudge")).startswith("Birchwood is on the pricing")
    assert len(twilio_fake.messages) == 2


async def test_a_lead_with_two_deals(
    start_worker: Any, twilio_fake: FakeTwilio, tmp_path: Path
) -> None:
    """Deal events name their deal: a stage change of another deal while the current one
    is open is kept on that deal alone; once the current deal is lost, the other one
    becomes the lead's current deal — as `nudge leads show` lists them."""
    worker = start_worker(**twilio_env(twilio_fake))
    first = lead(1, "Acme", stage="demo", deal={"deal_id": "D1", "next_step": "contract"})
    worker.post_events([rep(), first])
    await until(lambda: show(worker, "lead-1")["deals"], what="the first deal")

    def deal_event(n: int, kind: str, **body: Any) -> dict[str, Any]:
        return {"event_id": f"d{n}", "type": kind, "occurred_at": at(1 + n), "source": "crm",
                "lead_id": "lead-1", **body}  # fmt: skip

    worker.post_events([deal_event(1, "deal.stage_changed", to_stage="proposal", deal_id="D2")])
    record = await until(
        lambda: len((r := show(worker, "lead-1"))["deals"]) == 2 and r, what="the second deal"
    )
    assert (record["profile"]["stage"], record["profile"]["deal"]["deal_id"]) == ("demo", "D1")
    worker.post_events([deal_event(2, "deal.lost", deal_id="D1")])
    worker.post_events([deal_event(3, "deal.won", deal_id="D2", amount=5000)])
    record = await until(
        lambda: (r := show(worker, "lead-1"))["profile"].get("status") == "won" and r,
        what="D2 won as the current deal",
    )
    assert record["profile"]["deal"]["deal_id"] == "D2"
    assert record["profile"]["stage"] == "proposal"  # what the store held about D2
    deals = {d["deal_id"]: (d["stage"], d["status"], d["next_step"]) for d in record["deals"]}
    assert deals == {"D1": ("demo", "lost", "contract"), "D2": ("proposal", "won", None)}
