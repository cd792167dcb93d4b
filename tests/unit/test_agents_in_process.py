"""Intake's and the agents' batching, envelopes, one-at-a-time redo and offsets, in
process (tests/harness.py)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError

from nudge.clock import FixedClock
from nudge.events import RepUpserted
from nudge.signals import NudgeCommand
from scoring.state import event_key
from streams import agents, scheduler
from streams.batching import BATCH_MAX
from streams.intake import _Listener
from streams.views import readiness
from tests.harness import AgentHarness, page_view

AT = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC).isoformat()


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[AgentHarness]:
    harness = AgentHarness(tmp_path, partitions=4)
    yield harness
    await harness.close()


WEB0, WEB1 = TopicPartition("web.events", 0), TopicPartition("web.events", 1)


async def test_intake_hands_a_batch_on_in_one_envelope_per_partition(h: AgentHarness) -> None:
    events = [page_view(f"L{i}", 0) for i in range(40)]
    await h.intake([h.record("web.events", e, partition=i % 2) for i, e in enumerate(events)])
    activity = h.topics["lead.activity"]
    assert 1 <= len(activity.sent) <= 4  # one message per destination partition, not 40
    assert len({s.partition for s in activity.sent}) == len(activity.sent)
    assert sorted(item["event_id"] for _, item in activity.items()) == sorted(
        e["event_id"] for e in events
    )
    assert h.dead() == []
    # committed once, after the envelopes: past the last record of each partition read
    assert h.consumer.commits == [{WEB0: 20, WEB1: 20}]
    assert h.p.intake.committed == {WEB0: 20, WEB1: 20}


async def test_a_bad_event_is_dead_lettered_with_its_field_and_the_rest_go_on(
    h: AgentHarness,
) -> None:
    bad = {**page_view("L1", 1), "occurred_at": "2026-03-02T09:00:00"}  # no time zone
    batch = [page_view("L0", 0), bad, page_view("L2", 2)]
    await h.intake([h.record("web.events", e) for e in batch])
    got = sorted(i["event_id"] for _, i in h.topics["lead.activity"].items())
    assert got == ["L0-v0", "L2-v2"]
    [dead] = h.dead()
    assert "occurred_at" in dead["reason"]
    assert (dead["topic"], dead["partition"], dead["offset"]) == ("web.events", 0, 1)
    assert h.consumer.commits == [{WEB0: 3}]


async def test_a_lead_touched_several_times_in_a_batch_is_written_once(h: AgentHarness) -> None:
    writes: list[str] = []

    class Table(dict[str, Any]):
        def __setitem__(self, key: str, value: Any) -> None:
            writes.append(key)
            super().__setitem__(key, value)

    h.p.leads = Table()
    await h.intake([h.record("web.events", page_view("L7", n)) for n in range(5)])
    envelopes = h.topics["lead.activity"].sent
    batch = [h.message("lead.activity", s.value, key=s.key) for s in envelopes]
    await h.run("lead", agents.lead, batch)
    assert writes == ["L7"]
    assert sorted(h.p.leads["L7"]["seen"]) == sorted(event_key(f"L7-v{n}") for n in range(5))


async def test_a_batch_that_fails_as_a_whole_is_redone_one_message_at_a_time(
    h: AgentHarness,
) -> None:
    h.topics["lead.activity"].fail_next = 1  # the broker refuses the batch's first produce
    events = [page_view(f"L{i}", i) for i in range(5)]
    await h.intake([h.record("web.events", e) for e in events])
    got = sorted(item["event_id"] for _, item in h.topics["lead.activity"].items())
    assert got == sorted(e["event_id"] for e in events)
    assert h.dead() == []
    assert h.consumer.commits == [{WEB0: 5}]


async def test_only_the_message_that_fails_alone_is_dead_lettered(h: AgentHarness) -> None:
    h.topics["lead.activity"].refuse = b"L3-v3"  # this one never goes through
    events = [page_view(f"L{i}", i) for i in range(6)]
    await h.intake([h.record("web.events", e) for e in events])
    got = sorted(item["event_id"] for _, item in h.topics["lead.activity"].items())
    assert got == sorted(e["event_id"] for e in events if e["event_id"] != "L3-v3")
    [dead] = h.dead()
    assert "ingest agent failed" in dead["reason"] and "ConnectionError" in dead["reason"]
    assert dead["offset"] == 3
    assert h.consumer.commits == [{WEB0: 6}]


async def test_a_batch_that_cannot_be_handled_is_read_again_not_committed(
    h: AgentHarness,
) -> None:
    """The record fails alone and its dead letter is refused too: nothing is committed and
    the consumer goes back to the batch's first records, so none is skipped."""
    h.topics["lead.activity"].refuse = b"L3-v3"
    h.topics["events.dead"].refuse = b"L3-v3"
    records = [h.record("web.events", page_view(f"L{i}", i), partition=i % 2) for i in range(6)]
    await h.intake(records)
    assert h.consumer.commits == []
    assert sorted(h.consumer.seeks) == [(WEB0, 0), (WEB1, 0)]
    assert h.p.stats["intake.batch_retries"] == 1
    h.topics["lead.activity"].refuse = h.topics["events.dead"].refuse = None
    await h.intake(records)  # read again: now it goes through
    assert h.consumer.commits == [{WEB0: 3, WEB1: 3}]
    ids = [item["event_id"] for _, item in h.topics["lead.activity"].items()]
    assert set(ids) == {f"L{i}-v{i}" for i in range(6)}  # repeats are dropped by id downstream


async def test_a_commit_refused_after_a_revoke_is_not_fatal(h: AgentHarness) -> None:
    """The group moved on while the batch was handled: the commit is refused, intake counts
    it and goes on; the partition's new owner reads the batch again."""
    h.consumer.refuse = CommitFailedError("the group has already rebalanced")
    await h.intake([h.record("web.events", page_view("L1", 1))])
    assert h.consumer.commits == []
    assert h.p.intake.committed == {}
    assert h.p.stats["intake.commits_refused"] == 1
    await h.intake([h.record("web.events", page_view("L2", 2))])  # the next batch commits as usual
    assert h.consumer.commits == [{WEB0: 2}]


async def test_a_timer_that_fails_never_stops_the_worker(h: AgentHarness) -> None:
    """Faust stops the worker when a timer raises; the pipeline's timers log, count and
    go on to the next tick (a database outage is counted apart)."""
    from nudge.errors import StoreUnavailable

    failures: list[BaseException] = [RuntimeError("boom"), StoreUnavailable("down")]
    ran: list[int] = []

    async def flaky() -> None:
        ran.append(1)
        if failures:
            raise failures.pop(0)

    tick = h.p.timer(1.0)(flaky)
    for _ in range(3):
        await tick()
    assert len(ran) == 3
    assert h.p.stats["timers.flaky.failed"] == 1
    assert h.p.stats["timers.store_unavailable"] == 1


async def test_a_revoke_waits_for_the_batch_in_hand_and_ready_follows_the_assignment(
    h: AgentHarness,
) -> None:
    """The group takes partitions away while a batch is in hand: the revoke waits for it
    to be committed (up to half the session); ``/ready`` says intake is ready once assigned."""
    assert (await readiness(h.p))["intake"] == "joining its group"
    listener = _Listener(h.p.intake)
    await listener.on_partitions_assigned({WEB0})
    assert (await readiness(h.p))["intake"] is True
    h.p.intake.idle.clear()  # a batch in hand
    revoke = asyncio.ensure_future(listener.on_partitions_revoked({WEB0}))
    await asyncio.sleep(0.1)
    assert not revoke.done()
    h.p.intake.idle.set()  # committed
    await asyncio.wait_for(revoke, 1)


def nudge(n: int, rep: str = "rep-1") -> dict[str, Any]:
    return {
        "nudge_id": f"n{n}",
        "rep_id": rep,
        "lead_id": f"L{n}",
        "text": f"nudge number {n}",
        "playbook": "p",
        "rule": "r",
        "trigger_event_id": f"e{n}",
        "created_at": AT,
    }


async def add_reps(h: AgentHarness, *reps: str) -> None:
    store = await h.p.store()
    for rep in reps:
        event = {"type": "rep.upserted", "event_id": f"ev-{rep}", "occurred_at": AT}
        await store.upsert_rep(
            RepUpserted(**event, source="test", rep_id=rep, name=rep, timezone="UTC")
        )


async def test_delivery_takes_a_batch_and_a_bad_command_is_dead_lettered_alone(
    h: AgentHarness,
) -> None:
    """The batch fails on the command that does not parse; redone one at a time, the
    others are sent, each rep's in order, and only that one is dead-lettered."""
    h.p.clock = FixedClock(dt.datetime.fromisoformat(AT).replace(hour=12))
    await add_reps(h, "rep-1", "rep-2")
    bad = {**nudge(3), "created_at": "yesterday"}
    batch = [nudge(1), nudge(2, "rep-2"), bad, nudge(4), nudge(5, "rep-2")]
    await h.run("delivery", agents.delivery, [h.message("nudges", c) for c in batch])
    store = await h.p.store()
    assert {r["nudge_id"]: r["state"] for r in await store.outbox()} == {
        f"n{n}": "sent" for n in (1, 2, 4, 5)
    }
    shown = h.console.getvalue()
    assert shown.index("number 1") < shown.index("number 4")
    assert shown.index("number 2") < shown.index("number 5")
    [dead] = h.dead()
    assert "delivery agent failed" in dead["reason"] and "created_at" in dead["reason"]
    assert h.p.stats["nudges.sent"] == 4 and h.p.stats["delivery.errors"] == 1


async def test_crm_records_go_first_so_a_lead_has_its_owner_before_its_views(
    h: AgentHarness,
) -> None:
    """One fetch holds page views and the ``lead.created`` produced before them, on other
    topics: intake hands the lead's record on first, whatever order the fetch gave."""
    created = {
        "event_id": "c1",
        "type": "lead.created",
        "source": "crm",
        "occurred_at": AT,
        "lead_id": "L1",
        "fields": {"company": "Acme", "owner_rep_id": "rep-1"},
    }
    await h.intake(
        [h.record("web.events", page_view("L1", n)) for n in range(3)]
        + [h.record("crm.events", created)]
    )
    got = [item["event_id"] for key, item in h.topics["lead.activity"].items() if key == "L1"]
    assert got == ["c1", "L1-v0", "L1-v1", "L1-v2"]
    assert h.consumer.commits == [{WEB0: 3, TopicPartition("crm.events", 0): 1}]


async def test_a_fetch_larger_than_a_batch_is_handled_and_committed_batch_by_batch(
    h: AgentHarness,
) -> None:
    records = [h.record("web.events", page_view(f"L{i}", i)) for i in range(BATCH_MAX + 20)]
    await h.intake(records)
    assert h.consumer.commits == [{WEB0: BATCH_MAX}, {WEB0: BATCH_MAX + 20}]
    assert len(h.topics["lead.activity"].items()) == BATCH_MAX + 20


async def test_a_failed_batch_stops_the_fetch_there_and_reads_it_again(h: AgentHarness) -> None:
    """The first batch of a fetch is committed; the second cannot be handled: nothing after
    it is handled, and the consumer goes back to its first record."""
    records = [h.record("web.events", page_view(f"L{i}", i)) for i in range(2 * BATCH_MAX + 5)]
    bad = f"L{BATCH_MAX + 3}-v{BATCH_MAX + 3}".encode()
    h.topics["lead.activity"].refuse = h.topics["events.dead"].refuse = bad
    await h.intake(records)
    assert h.consumer.commits == [{WEB0: BATCH_MAX}]
    assert h.consumer.seeks == [(WEB0, BATCH_MAX)]
    ids = {item["event_id"] for _, item in h.topics["lead.activity"].items()}
    assert f"L{2 * BATCH_MAX}-v{2 * BATCH_MAX}" not in ids  # the third batch waits its turn


async def test_a_hot_lead_with_no_owner_yet_is_texted_once_its_owner_is_known(
    tmp_path: Path,
) -> None:
    """A lead's web visits reach Nudge before the CRM record naming its owner: the hot-lead
    rule fires with no one to text, and the nudge waits (a durable step) instead of being
    dropped; once the record has arrived and the step comes due, the owner is texted —
    through intake, the lead, playbook and delivery stages and the scheduler."""
    start = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
    clock = FixedClock(start)
    h = AgentHarness(tmp_path, clock=clock, partitions=1)
    read = {"lead.activity": 0, "lead.signals": 0, "nudges": 0}

    async def run_stages() -> None:
        """Each stage on what the one before it handed on since the last call."""
        for topic, name, handle in (
            ("lead.activity", "lead", agents.lead),
            ("lead.signals", "playbook", agents.playbook),
            ("nudges", "delivery", agents.delivery),
        ):
            new = h.topics[topic].sent[read[topic] :]
            read[topic] += len(new)
            if new:
                await h.run(name, handle, [h.message(topic, s.value, key=s.key) for s in new])

    def web(n: int, kind: dict[str, Any]) -> dict[str, Any]:
        at = (start + dt.timedelta(seconds=n)).isoformat()
        return {"event_id": f"w{n}", "occurred_at": at, "source": "web", "lead_id": "L1"} | kind

    try:
        rep = {
            "event_id": "r1",
            "type": "rep.upserted",
            "occurred_at": start.isoformat(),
            "source": "crm",
            "rep_id": "rep-1",
            "name": "Ana",
            "phone": "+14155550100",
        }
        await h.intake([h.record("crm.events", rep)])
        form = {"type": "form.submitted", "form": "demo-request"}
        pricing = {"type": "page.viewed", "path": "/pricing"}
        await h.intake(
            [h.record("web.events", web(n, k)) for n, k in ((1, form), (2, pricing), (3, pricing))]
        )
        await run_stages()
        assert h.topics["nudges"].sent == []  # no owner: no one to text yet
        [waiting] = await (await h.p.schedules()).due(start + dt.timedelta(minutes=1), 10)
        assert waiting.purpose == "continue" and waiting.lead_id == "L1"
        await (await h.p.schedules()).release(waiting.schedule_id, start)

        created = {
            "event_id": "c1",
            "type": "lead.created",
            "source": "crm",
            "occurred_at": (start + dt.timedelta(seconds=4)).isoformat(),
            "lead_id": "L1",
            "fields": {"company": "Acme", "owner_rep_id": "rep-1"},
        }
        await h.intake([h.record("crm.events", created)])
        await run_stages()
        clock.advance(minutes=1, seconds=1)
        assert await scheduler.fire_due(h.p) == 1
        await run_stages()
        [sent] = h.topics["nudges"].sent
        nudge = NudgeCommand.model_validate_json(sent.value)
        assert (nudge.rep_id, nudge.lead_id, nudge.rule) == ("rep-1", "L1", "crossed-70")
        [row] = await (await h.p.store()).outbox("sent")
        assert row["nudge_id"] == nudge.nudge_id
    finally:
        await h.close()
