"""The durable half of the scheduler: ``ScheduleStep`` rows in SQLite.

Every delayed thing is one row (see ``crm/migrations/0002_schedules.sql``), keyed
by the step's deterministic ``schedule_id``: adding the same step twice keeps one
row, so re-planning after a restart repeats nothing. :meth:`Schedules.due`
*claims* rows (state ``claimed`` with a lease) inside one write transaction, so
two workers sharing the file never both take a row; the worker fires it and calls
:meth:`Schedules.done`. If it dies in between, the lease runs out and the row is
offered again — firing twice is harmless because every command it issues has a
deterministic id that the outbox refuses to send twice. Nothing is lost.

``partition_key`` is the lead id (rep id for digests), so a worker that owns some
keys can ask only for those (``keys=``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Any

import aiosqlite

from crm.store import fetch_one
from nudge.signals import ScheduleStep

DEFAULT_LEASE = dt.timedelta(minutes=5)


def stamp(when: dt.datetime) -> str:
    """Fixed-width UTC text, so SQL compares times as strings correctly."""
    if when.tzinfo is None:
        raise ValueError("naive datetime: a timezone is required")
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Schedules:
    """Schedule rows on a migrated CRM connection (``crm.store.Store.db``)."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self.db = db

    @classmethod
    async def open(cls, path: Path | str) -> Schedules:
        """Open (and migrate) the CRM database at ``path``; for tools and tests."""
        from crm.store import Store

        store = await Store.open(path)
        return cls(store.db)

    async def close(self) -> None:
        await self.db.close()

    async def add(self, step: ScheduleStep, now: dt.datetime | None = None) -> bool:
        """Store ``step``; ``False`` if a row with its id exists already (nothing changes)."""
        added = await self.add_many([step], now)
        return added == 1

    async def add_many(self, steps: Iterable[ScheduleStep], now: dt.datetime | None = None) -> int:
        """Store several steps in one transaction; return how many were new."""
        at = stamp(now or dt.datetime.now(dt.UTC))
        count = 0
        for step in steps:
            cur = await self.db.execute(
                """INSERT OR IGNORE INTO schedules (schedule_id, partition_key, due_at, purpose,
                                                    step_json, created_at, updated_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?)""",
                (
                    step.schedule_id,
                    step.partition_key,
                    stamp(step.due_at),
                    step.purpose,
                    step.model_dump_json(),
                    at,
                    at,
                ),
            )
            count += cur.rowcount
        await self.db.commit()
        return count

    async def due(
        self,
        now: dt.datetime,
        limit: int = 100,
        *,
        keys: Collection[str] | None = None,
        lease: dt.timedelta = DEFAULT_LEASE,
    ) -> list[ScheduleStep]:
        """Claim up to ``limit`` rows due at ``now`` (or whose claim lapsed), oldest first."""
        if keys is not None and not keys:
            return []
        key_sql, params = "", [stamp(now), stamp(now)]
        if keys is not None:
            key_sql = f" AND partition_key IN ({','.join('?' * len(keys))})"
            params += list(keys)
        await self.db.execute("BEGIN IMMEDIATE")
        try:
            rows = list(
                await self.db.execute_fetchall(
                    f"""SELECT schedule_id, step_json FROM schedules
                        WHERE ((state = 'pending' AND due_at <= ?)
                               OR (state = 'claimed' AND claimed_until <= ?)){key_sql}
                        ORDER BY due_at, schedule_id LIMIT ?""",
                    (*params, limit),
                )
            )
            until, at = stamp(now + lease), stamp(now)
            for row in rows:
                await self.db.execute(
                    """UPDATE schedules SET state = 'claimed', claimed_until = ?,
                         attempts = attempts + 1, updated_at = ? WHERE schedule_id = ?""",
                    (until, at, row[0]),
                )
            await self.db.commit()
        except BaseException:
            await self.db.rollback()
            raise
        return [ScheduleStep.model_validate_json(row[1]) for row in rows]

    async def done(self, schedule_id: str, now: dt.datetime | None = None) -> None:
        """The row fired (its commands are on their way): never offer it again."""
        await self._set(schedule_id, "done", now)

    async def release(self, schedule_id: str, now: dt.datetime | None = None) -> None:
        """Firing failed before anything was issued: offer the row again at once."""
        await self._set(schedule_id, "pending", now)

    async def cancel(self, schedule_id: str, now: dt.datetime | None = None) -> None:
        await self._set(schedule_id, "cancelled", now, only_open=True)

    async def cancel_partition(self, key: str, now: dt.datetime | None = None) -> int:
        """Cancel every open row of a lead (e.g. the lead was deleted)."""
        cur = await self.db.execute(
            """UPDATE schedules SET state = 'cancelled', updated_at = ?
               WHERE partition_key = ? AND state IN ('pending', 'claimed')""",
            (stamp(now or dt.datetime.now(dt.UTC)), key),
        )
        await self.db.commit()
        return cur.rowcount

    async def rows(self, key: str | None = None) -> list[dict[str, Any]]:
        """Every row (of one partition), soonest first; for tools and tests."""
        sql = "SELECT * FROM schedules" + (" WHERE partition_key = ?" if key else "")
        rows = await self.db.execute_fetchall(sql + " ORDER BY due_at", (key,) if key else ())
        return [dict(r) for r in rows]

    async def next_due_at(self) -> dt.datetime | None:
        """When the next pending row is due (lets the worker sleep until then)."""
        row = await fetch_one(self.db, "SELECT MIN(due_at) FROM schedules WHERE state = 'pending'")
        if not row or row[0] is None:
            return None
        return dt.datetime.strptime(str(row[0]), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)

    async def _set(
        self, schedule_id: str, state: str, now: dt.datetime | None, *, only_open: bool = False
    ) -> None:
        extra = " AND state IN ('pending', 'claimed')" if only_open else ""
        await self.db.execute(
            f"UPDATE schedules SET state = ?, claimed_until = NULL, updated_at = ? "
            f"WHERE schedule_id = ?{extra}",
            (state, stamp(now or dt.datetime.now(dt.UTC)), schedule_id),
        )
        await self.db.commit()
