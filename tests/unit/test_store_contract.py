"""One contract for both stores: SQLite (the embedded default) and PostgreSQL.

Every test runs on each (``STORES``); the concurrency tests open two stores on one
database, as two workers on two hosts would, and race them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from crm.outbox import Outbox
from crm.schedules import Schedules
from crm.store import Store, normalise_identity
from nudge.signals import NudgeCommand, ScheduleStep
from tests.fakes.fixtures import add_rep

NOW = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """Where a store lives: a SQLite file, or a fresh PostgreSQL database's URL."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres").database())
    return tmp_path / "nudge.db"


def command(n: int, rep_id: str = "rep-1") -> NudgeCommand:
    return NudgeCommand(
        nudge_id=f"n_{n}",
        rep_id=rep_id,
        lead_id=f"L{n}",
        text=f"nudge {n}",
        playbook="p",
        rule="r",
        trigger_event_id=f"e{n}",
        created_at=NOW,
    )


def step(n: int, due: dt.datetime = NOW) -> ScheduleStep:
    return ScheduleStep(
        schedule_id=f"s{n:03d}",
        due_at=due,
        partition_key=f"lead-{n}",
        purpose="continue",
        lead_id=f"lead-{n}",
        playbook="p",
        rule="r",
        trigger_event_id=f"e{n}",
        created_at=NOW,
    )


async def test_migrations_apply_once_and_are_recorded(location: Path | str) -> None:
    """Opening the same database twice applies each migration once; both stores end at the
    same version."""
    store = await Store.open(location)
    version = await store.migrate()
    await store.close()
    store = await Store.open(location)
    try:
        assert await store.migrate() == version >= 40
        rows = await store.db.execute_fetchall("SELECT version FROM schema_version")
        assert len(rows) == len({r[0] for r in rows})
    finally:
        await store.close()


async def test_two_workers_migrating_at_once(location: Path | str) -> None:
    """Two workers opening a new database at the same moment both end up on a migrated one."""
    a, b = await asyncio.gather(Store.open(location), Store.open(location))
    try:
        assert await a.migrate() == await b.migrate()
    finally:
        await a.close()
        await b.close()


async def test_outbox_claim_has_one_winner_across_connections(location: Path | str) -> None:
    """The same nudge enqueued twice is one row; claimed by two stores at once, by one."""
    a, b = await Store.open(location), await Store.open(location)
    try:
        await add_rep(a)
        oa, ob = Outbox(a), Outbox(b)
        assert await oa.enqueue(command(1), NOW)
        assert not await ob.enqueue(command(1), NOW)
        for n in range(2, 12):
            await oa.enqueue(command(n), NOW)
        wins = await asyncio.gather(
            *(o.claim(f"n_{n}", NOW) for n in range(1, 12) for o in (oa, ob))
        )
        assert sum(wins) == 11
        assert [r["state"] for r in await a.outbox()] == ["sending"] * 11
        # the order a rep's nudges arrived in is kept (rowid / seq)
        await oa.requeue("n_5", NOW, NOW, reason="x", error_code=None)
        await oa.requeue("n_3", NOW, NOW, reason="x", error_code=None)
        assert [r["nudge_id"] for r in await ob.pending_for_rep("rep-1")] == ["n_3", "n_5"]
    finally:
        await a.close()
        await b.close()


async def test_stale_sending_is_retaken_by_one(location: Path | str) -> None:
    """A row left in sending is taken over by exactly one of two reconcilers."""
    a, b = await Store.open(location), await Store.open(location)
    try:
        await add_rep(a)
        oa, ob = Outbox(a), Outbox(b)
        await oa.enqueue(command(1), NOW)
        await oa.claim("n_1", NOW)
        await oa.sending("n_1", NOW, "sms")
        later = NOW + dt.timedelta(minutes=5)
        [row] = await oa.stale_sending(later - dt.timedelta(seconds=60))
        assert row["channel"] == "sms"
        wins = await asyncio.gather(
            oa.retake("n_1", row["updated_at"], later), ob.retake("n_1", row["updated_at"], later)
        )
        assert sorted(wins) == [False, True]
        assert await ob.stale_sending(later - dt.timedelta(seconds=60)) == []
    finally:
        await a.close()
        await b.close()


async def test_schedule_leases_never_overlap(location: Path | str) -> None:
    """Two schedulers on two connections claim due rows at once: every row goes to exactly
    one of them; a lapsed lease is offered again, a done row never."""
    first, second = await Schedules.open(location), await Schedules.open(location)
    try:
        assert await first.add_many([step(n) for n in range(40)], NOW) == 40
        assert await second.add_many([step(n) for n in range(40)], NOW) == 0
        got = await asyncio.gather(first.due(NOW, limit=25), second.due(NOW, limit=25))
        ids = [s.schedule_id for batch in got for s in batch]
        assert len(ids) == len(set(ids)) == 40
        await first.done("s000", NOW)
        lapsed = NOW + dt.timedelta(minutes=6)
        again = {s.schedule_id for s in await second.due(lapsed, limit=100)}
        assert "s000" not in again and len(again) == 39
    finally:
        await first.close()
        await second.close()


async def test_reps_identities_and_attempts(location: Path | str) -> None:
    """Reps upsert, identities resolve normalised, attempts number from 1, opt-outs stick."""
    store = await Store.open(location)
    try:
        await add_rep(store, "rep-9", phone="+14155550199")
        rep: Any = await store.get_rep("rep-9")
        assert rep is not None and rep["phone"] == "+14155550199"
        email = ("email", normalise_identity("email", "Jane@Acme.com"))
        await store.link_identities({email: "lead-1"})
        again = ("email", normalise_identity("email", " jane@ACME.com"))
        assert await store.resolve_many([again, ("email", "nobody@x.com")]) == {again: "lead-1"}
        outbox = Outbox(store)
        await outbox.enqueue(command(1, "rep-9"), NOW)
        await outbox.log_attempt("n_1", NOW, channel="sms", outcome="transient", error_code="503")
        await outbox.log_attempt("n_1", NOW, channel="sms", outcome="sent")
        assert [a["attempt"] for a in await outbox.attempts("n_1")] == [1, 2]
        await outbox.set_sms_opt_out("+14155550199", True, NOW, rep_id="rep-9", reason="STOP")
        assert await outbox.sms_opted_out("+14155550199", "rep-9")
        await outbox.set_sms_opt_out("+14155550199", False, NOW, rep_id="rep-9", reason="START")
        assert not await outbox.sms_opted_out("+14155550199", "rep-9")
        assert await outbox.first_sight("SM1", NOW) and not await outbox.first_sight("SM1", NOW)
    finally:
        await store.close()


async def test_a_lead_s_fields_are_merged_never_overwritten_with_less(
    location: Path | str,
) -> None:
    """The record's one writer merges: fields it is not given keep their values, each
    change has one audit row, and the lead agent's flush (score, checkpoint, its CRM fields)
    erases nothing — the checkpoint is what a lost table is rebuilt from."""
    from crm.record import LeadFlush, Source

    store = await Store.open(location)
    try:
        crm = Source(kind="crm", at=NOW, event_id="e1")
        await store.merge_fields(
            "L1", {"lead.company": "Acme", "lead.owner_rep_id": "r1"}, crm, NOW
        )
        answer = Source(kind="questionnaire:q", at=NOW, session_id="s1", question_id="q1")
        changes = await store.merge_fields(
            "L1", {"deal.next_step": "demo", "lead.custom.seats": 12}, answer, NOW
        )
        assert [c.field for c in changes] == ["deal.next_step", "lead.custom.seats"]
        assert await store.merge_fields("L1", {"lead.company": "Acme"}, crm, NOW) == []
        score = {"value": 0.7, "model_version": "points-v1"}
        flush = LeadFlush("L1", [({"lead.stage": "demo"}, crm)], score, {"counters": {"x": 1.0}})
        assert await store.save_lead_states([flush], NOW) == 1
        profile = await store.lead_profile("L1")
        assert profile == {
            "company": "Acme",
            "owner_rep_id": "r1",
            "stage": "demo",
            "custom": {"seats": 12},
            "deal": {"next_step": "demo", "deal_id": "L1:deal"},
        }
        assert await store.lead_states(["L1", "L2"]) == {"L1": (profile, {"counters": {"x": 1.0}})}
        (deal,) = await store.deals("L1")
        assert (deal["stage"], deal["next_step"]) == ("demo", "demo")
    finally:
        await store.close()


async def test_two_writers_merging_one_lead_at_once_lose_nothing(location: Path | str) -> None:
    """Two stores (two workers) merge different fields of one lead concurrently: every
    field lands, each with its audit row."""
    from crm.record import Source

    a, b = await Store.open(location), await Store.open(location)
    try:

        async def write(store: Store, prefix: str) -> None:
            for i in range(15):
                source = Source(kind="crm", at=NOW, event_id=f"{prefix}{i}")
                await store.merge_fields("L1", {f"lead.custom.{prefix}{i}": i}, source, NOW)

        await asyncio.gather(write(a, "a"), write(b, "b"))
        profile = await a.lead_profile("L1")
        assert profile is not None
        assert profile["custom"] == {f"{p}{i}": i for p in "ab" for i in range(15)}
        rows = await a.db.execute_fetchall("SELECT COUNT(*) FROM field_changes")
        assert rows[0][0] == 30
    finally:
        await a.close()
        await b.close()


async def test_rule_counts_add_up_per_day(location: Path | str) -> None:
    """Two workers' flushes of one day's counters add up; days stay apart."""
    from crm.reads import Reads

    store = await Store.open(location)
    try:
        await store.add_rule_counts("2026-03-01", {("pb", "r", "fired"): 2})
        await store.add_rule_counts("2026-03-02", {("pb", "r", "fired"): 1, ("pb", "r", "cap"): 4})
        await store.add_rule_counts("2026-03-02", {("pb", "r", "fired"): 5})
        reads = Reads(store)
        assert await reads.rule_counts() == {("pb", "r"): {"fired": 8, "cap": 4}}
        assert await reads.rule_counts("2026-03-02") == {("pb", "r"): {"fired": 6, "cap": 4}}
    finally:
        await store.close()


async def test_one_tasks_rollback_never_takes_anothers_writes(location: Path | str) -> None:
    """Agents share one store connection. A writes and has not committed; B writes and
    commits; A rolls back: B's row is kept and A's is not (a transaction shared by both
    let A's end decide B's write: on PostgreSQL a failed commit by one dropped the other's
    writes while the other believed them kept; on SQLite B's commit kept A's row)."""
    store = await Store.open(location)
    a_wrote, a_done = asyncio.Event(), asyncio.Event()

    async def a() -> None:
        await store.db.execute(
            "INSERT INTO rule_counts (day, playbook, rule, outcome, n) VALUES ('d', 'p', 'a', 'x', 1)"
        )
        a_wrote.set()
        await asyncio.sleep(0.2)  # B tries to write meanwhile
        await store.db.rollback()
        a_done.set()

    async def b() -> None:
        await a_wrote.wait()
        await store.add_rule_counts("d", {("p", "b", "x"): 1})

    try:
        await asyncio.wait_for(asyncio.gather(a(), b()), timeout=10)
        rows = await store.db.execute_fetchall("SELECT rule FROM rule_counts ORDER BY rule")
        assert [r[0] for r in rows] == ["b"]
    finally:
        await store.close()


def insert(rule: str) -> str:
    return f"INSERT INTO rule_counts (day, playbook, rule, outcome, n) VALUES ('d', 'p', '{rule}', 'x', 1)"


async def rules(store: Store) -> list[str]:
    return [
        r[0] for r in await store.db.execute_fetchall("SELECT rule FROM rule_counts ORDER BY rule")
    ]


async def test_an_error_in_a_transaction_ends_it_and_frees_the_connection(
    location: Path | str,
) -> None:
    """A task's failing statement rolls back its whole transaction (what it wrote before
    is gone) and another task's write goes ahead instead of waiting for a commit that
    never comes."""
    store = await Store.open(location)

    async def a() -> None:
        await store.db.execute(insert("a"))
        with pytest.raises(Exception, match="no_such_table"):
            await store.db.execute("INSERT INTO no_such_table (x) VALUES (1)")

    try:
        await asyncio.wait_for(a(), timeout=10)
        await asyncio.wait_for(store.add_rule_counts("d", {("p", "b", "x"): 1}), timeout=10)
        assert await rules(store) == ["b"]
    finally:
        await store.close()


async def test_a_task_that_ends_with_its_transaction_open_has_it_rolled_back(
    location: Path | str,
) -> None:
    """A write never committed (a bug) does not hold the connection for ever: when its
    task ends, its transaction is rolled back and the next task's write goes ahead."""
    store = await Store.open(location)

    async def forgets_to_commit() -> None:
        await store.db.execute(insert("a"))

    try:
        await asyncio.create_task(forgets_to_commit())
        await asyncio.wait_for(store.add_rule_counts("d", {("p", "b", "x"): 1}), timeout=10)
        assert await rules(store) == ["b"]
    finally:
        await store.close()


async def test_reads_do_not_wait_for_another_tasks_transaction(location: Path | str) -> None:
    """While one task's transaction is open, another task's reads go through."""
    store = await Store.open(location)
    read = asyncio.Event()

    async def a() -> None:
        await store.db.execute(insert("a"))
        await asyncio.wait_for(read.wait(), timeout=5)  # B's read ends while A's is open
        await store.db.commit()

    async def b() -> None:
        await store.reps_in_team("t")
        read.set()

    try:
        await asyncio.wait_for(asyncio.gather(a(), b()), timeout=10)
        assert await rules(store) == ["a"]
    finally:
        await store.close()


async def test_waiting_for_ones_own_transaction_is_an_error_not_a_hang(
    location: Path | str,
) -> None:
    """The trap: a task that holds a transaction and awaits another task writing on the
    same connection waits for itself. The other task gets 'database is locked' naming
    the holder after the lock timeout, as StoreUnavailable (nothing of it was written:
    the agents redo it); the holder's transaction is still its own."""
    from nudge.errors import StoreUnavailable

    store = await Store.open(location)
    store.db.lock_timeout = 0.3

    async def holder() -> None:
        await store.db.execute(insert("a"))
        other = asyncio.create_task(store.add_rule_counts("d", {("p", "b", "x"): 1}))
        with pytest.raises(StoreUnavailable, match="database is locked: task 'holder'"):
            await other
        await store.db.commit()

    try:
        await asyncio.wait_for(asyncio.create_task(holder(), name="holder"), timeout=10)
        assert await rules(store) == ["a"]
    finally:
        await store.close()


async def test_a_claim_and_adds_from_other_tasks_on_one_connection(location: Path | str) -> None:
    """The scheduler's claim (``BEGIN IMMEDIATE``, a read, updates) and other tasks' adds
    run at once on one connection: no add lands inside the claim's transaction (where
    it would commit it half-way, or its ``BEGIN`` fail inside another), every row is
    added once and claimed once."""
    schedules = await Schedules.open(location)
    try:
        claimed: list[str] = []

        async def claim() -> None:
            for _ in range(20):
                claimed.extend(s.schedule_id for s in await schedules.due(NOW, limit=5))
                await asyncio.sleep(0)

        async def add(first: int) -> None:
            for n in range(first, first + 40, 4):
                await schedules.add_many([step(n), step(n + 1)], NOW)

        await asyncio.wait_for(asyncio.gather(claim(), add(0), add(2), claim()), timeout=30)
        claimed.extend(s.schedule_id for s in await schedules.due(NOW, limit=100))
        assert sorted(claimed) == [f"s{n:03d}" for n in range(40)]
    finally:
        await schedules.close()


async def test_a_write_opens_the_running_tasks_own_transaction(location: Path | str) -> None:
    """A write (after a comment line too) opens a transaction the writing task holds, and
    no other task sees as its own; a read alone opens none."""
    store = await Store.open(location)
    try:
        await store.reps_in_team("t")
        assert not store.db.in_transaction
        await store.db.execute("-- a comment first\n" + insert("a"))
        assert store.db.in_transaction

        async def other() -> bool:
            return bool(store.db.in_transaction)

        assert not await asyncio.create_task(other())
        await store.db.commit()
        assert not store.db.in_transaction
        assert await rules(store) == ["a"]
    finally:
        await store.close()


async def test_a_transaction_left_open_at_close_leaves_no_error_behind(
    location: Path | str,
) -> None:
    """A task that ends with its transaction open while the store closes (a worker
    stopping): the roll-back that finds the store closed is logged, never an unhandled
    task error."""
    import gc

    store = await Store.open(location)
    errors: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, context: errors.append(context))

    async def forgets_to_commit() -> None:
        await store.db.execute(insert("a"))

    try:
        await asyncio.create_task(forgets_to_commit())
        await store.close()
        for _ in range(5):
            await asyncio.sleep(0.05)
        gc.collect()
        assert errors == []
    finally:
        loop.set_exception_handler(None)
