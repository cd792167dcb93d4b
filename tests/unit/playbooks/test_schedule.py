"""The scheduler: pure timing maths, and the durable store's claim-then-fire rows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from crm.schedules import Schedules
from nudge.signals import ScheduleStep
from playbooks.schedule import date_due, next_run

from .helpers import NOW

NY = ZoneInfo("America/New_York")


def test_next_weekday_run_in_the_reps_zone() -> None:
    """Friday 14:00 New York → next weekday 08:30 is Monday 08:30 New York."""
    friday = dt.datetime(2026, 3, 6, 19, 0, tzinfo=dt.UTC)
    due = next_run(dt.time(8, 30), ["mon", "tue", "wed", "thu", "fri"], NY, friday)
    assert due.astimezone(NY) == dt.datetime(2026, 3, 9, 8, 30, tzinfo=NY)


def test_next_run_across_spring_forward() -> None:
    """Across the March DST change 08:30 local stays 08:30 local (UTC offset moves)."""
    before = next_run(dt.time(8, 30), ["fri"], NY, dt.datetime(2026, 3, 6, 0, 0, tzinfo=dt.UTC))
    after = next_run(dt.time(8, 30), ["mon"], NY, dt.datetime(2026, 3, 9, 0, 0, tzinfo=dt.UTC))
    assert (before.hour, after.hour) == (13, 12)


def test_date_due_before_a_date_and_late_creation() -> None:
    """120 days before a date is due then; a lead created inside the window is due now."""
    far = date_due("2026-12-01", -dt.timedelta(days=120), dt.time(9), NY, NOW)
    assert far is not None and far.astimezone(NY).date() == dt.date(2026, 8, 3)
    near = date_due("2026-04-01", -dt.timedelta(days=120), dt.time(9), NY, NOW)
    assert near == NOW
    assert date_due("2025-01-01", -dt.timedelta(days=120), dt.time(9), NY, NOW) is None
    assert date_due("not a date", -dt.timedelta(days=1), dt.time(9), NY, NOW) is None


def step(sid: str, minutes: int, key: str = "L1") -> ScheduleStep:
    return ScheduleStep(
        schedule_id=sid,
        due_at=NOW + dt.timedelta(minutes=minutes),
        partition_key=key,
        purpose="continue",
        lead_id=key,
        playbook="p",
        rule="r",
        trigger_event_id="e",
        created_at=NOW,
    )


async def test_add_is_idempotent_and_due_claims_in_order(tmp_path: Path) -> None:
    """The same id twice is one row; due rows come oldest first and only once."""
    s = await Schedules.open(tmp_path / "crm.db")
    try:
        assert await s.add(step("b", 10)) and await s.add(step("a", 5))
        assert not await s.add(step("a", 99))
        assert await s.due(NOW, 10) == []
        claimed = await s.due(NOW + dt.timedelta(minutes=30), 10)
        assert [c.schedule_id for c in claimed] == ["a", "b"]
        assert await s.due(NOW + dt.timedelta(minutes=31), 10) == []
    finally:
        await s.close()


async def test_restart_between_claim_and_done_offers_the_row_again(tmp_path: Path) -> None:
    """A claimed row whose worker died comes back after its lease; a done row never does."""
    path = tmp_path / "crm.db"
    s = await Schedules.open(path)
    await s.add(step("a", 0))
    await s.add(step("b", 0))
    [a, b] = await s.due(NOW, 10, lease=dt.timedelta(minutes=5))
    await s.done(a.schedule_id)
    await s.close()
    s = await Schedules.open(path)  # the "restarted" worker
    try:
        assert await s.due(NOW + dt.timedelta(minutes=1), 10) == []
        again = await s.due(NOW + dt.timedelta(minutes=6), 10)
        assert [r.schedule_id for r in again] == ["b"]
        assert again[0] == b
    finally:
        await s.close()


async def test_due_by_partition_keys_and_cancel(tmp_path: Path) -> None:
    """A worker asks only for its keys; cancelled rows are never due."""
    s = await Schedules.open(tmp_path / "crm.db")
    try:
        await s.add(step("a", 0, "L1"))
        await s.add(step("b", 0, "L2"))
        await s.add(step("c", 0, "L2"))
        await s.cancel("c")
        assert [r.schedule_id for r in await s.due(NOW, 10, keys={"L2"})] == ["b"]
        assert await s.next_due_at() == NOW
    finally:
        await s.close()


async def test_schedules_migration_applies_to_a_database_already_past_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database migrated by a branch with 0003 but without 0002 still gets the table."""
    import crm.store
    from crm.store import Store

    real = crm.store.MIGRATIONS
    other = tmp_path / "other"
    other.mkdir()
    (other / "0001_initial.sql").write_text((real / "0001_initial.sql").read_text())
    (other / "0003_other.sql").write_text("CREATE TABLE other_branch (a TEXT)")
    monkeypatch.setattr(crm.store, "MIGRATIONS", other)
    store = await Store.open(tmp_path / "crm.db")
    await store.close()
    (other / "0002_schedules.sql").write_text((real / "0002_schedules.sql").read_text())
    s = await Schedules.open(tmp_path / "crm.db")
    try:
        assert await s.add(step("a", 0))
    finally:
        await s.close()


async def test_concurrent_adds_and_claims_share_one_connection(tmp_path: Path) -> None:
    """Adds from agents interleaved with the timer's claims neither fail nor lose rows."""
    import asyncio

    from crm.schedules import Schedules

    schedules = await Schedules.open(tmp_path / "nudge.db")
    now = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)

    def step(i: int) -> ScheduleStep:
        return ScheduleStep(
            schedule_id=f"s{i}",
            due_at=now,
            partition_key=f"L{i % 3}",
            purpose="continue",
            lead_id=f"L{i % 3}",
            playbook="p",
            rule="r",
            trigger_event_id=f"e{i}",
            created_at=now,
        )

    claimed: list[str] = []

    async def claim() -> None:
        for _ in range(100):
            claimed.extend(s.schedule_id for s in await schedules.due(now, 5))

    await asyncio.gather(claim(), claim(), *(schedules.add(step(i), now) for i in range(300)))
    claimed.extend(s.schedule_id for s in await schedules.due(now, 100))
    await schedules.close()
    assert sorted(claimed) == sorted(f"s{i}" for i in range(300))
