"""The connectors' durable state, in tables of their own (migration 0040).

    zoom_participants   attendee emails of a Zoom meeting, until it ends
    crm_writes          each update bound for an external CRM and its state:
                        pending ──write──► done
                           │  └─transient error─► pending (not_before = now + backoff)
                           └─permanent error─► failed;  nothing to write ─► ignored
    crm_links           a lead's record ids in an external CRM
    sync_checkpoints    how far an incremental sync has read

Why rows and not the topic offset alone: an update is acknowledged on Kafka once
it is *recorded* here, so a provider outage never holds the consumer back, and a
redelivered update finds its row and is not recorded twice (``INSERT OR IGNORE``
on the update id). The writer sends only rows it has claimed as due, and marks
them done in the same transaction as the remote id it got back.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from crm.store import Store, fetch_one

STATES = ("pending", "done", "failed", "ignored")


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat()


class ConnectorState:
    """Connectors' tables over an open :class:`~crm.store.Store`."""

    def __init__(self, store: Store) -> None:
        self.db = store.db

    # -- Zoom ------------------------------------------------------------------------------
    async def add_participant(self, meeting_uuid: str, email: str, now: dt.datetime) -> None:
        await self.db.execute(
            "INSERT OR IGNORE INTO zoom_participants VALUES (?, ?, ?)",
            (meeting_uuid, email.lower(), _iso(now)),
        )
        await self.db.commit()

    async def participants(self, meeting_uuid: str) -> list[str]:
        rows = await self.db.execute_fetchall(
            "SELECT email FROM zoom_participants WHERE meeting_uuid = ? ORDER BY email",
            (meeting_uuid,),
        )
        return [str(r[0]) for r in rows]

    async def reps_by_email(self) -> dict[str, str]:
        """Rep email (lower case) → rep id."""
        rows = await self.db.execute_fetchall(
            "SELECT email, rep_id FROM reps WHERE email IS NOT NULL ORDER BY rep_id"
        )
        return {str(r[0]).lower(): str(r[1]) for r in rows}

    # -- writes to external CRMs ---------------------------------------------------------------
    async def record_write(
        self,
        system: str,
        update_id: str,
        lead_id: str,
        kind: str,
        payload: dict[str, Any],
        now: dt.datetime,
        *,
        state: str = "pending",
    ) -> bool:
        """Record an update to write; False when this update id was recorded before."""
        cur = await self.db.execute(
            """INSERT OR IGNORE INTO crm_writes (system, update_id, lead_id, kind, payload, state,
                   attempts, not_before, created_at, updated_at)
               VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?)""",
            (
                system,
                update_id,
                lead_id,
                kind,
                json.dumps(payload),
                state,
                _iso(now),
                _iso(now),
                _iso(now),
            ),
        )
        await self.db.commit()
        return cur.rowcount == 1

    async def due_writes(
        self, system: str, now: dt.datetime, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Pending writes whose time has come, oldest first."""
        rows = await self.db.execute_fetchall(
            """SELECT rowid, * FROM crm_writes WHERE system = ? AND state = 'pending'
               AND not_before <= ? ORDER BY rowid LIMIT ?""",
            (system, _iso(now), limit),
        )
        return [{**dict(r), "payload": json.loads(r["payload"])} for r in rows]

    async def claim_write(
        self, system: str, update_id: str, now: dt.datetime, lease: dt.timedelta
    ) -> bool:
        """Take a due write for ``lease`` (one conditional UPDATE: one worker wins).

        A worker that dies mid-write leaves the row pending; it is due again when the
        lease ends, with ``attempts`` already counted, so the next writer knows to look
        for what the first may have created.
        """
        cur = await self.db.execute(
            """UPDATE crm_writes SET not_before = ?, attempts = attempts + 1, updated_at = ?
               WHERE system = ? AND update_id = ? AND state = 'pending' AND not_before <= ?""",
            (_iso(now + lease), _iso(now), system, update_id, _iso(now)),
        )
        await self.db.commit()
        return cur.rowcount == 1

    async def finish_write(
        self,
        system: str,
        update_id: str,
        state: str,
        now: dt.datetime,
        *,
        remote_id: str | None = None,
        error: str | None = None,
    ) -> None:
        await self.db.execute(
            """UPDATE crm_writes SET state = ?, remote_id = COALESCE(?, remote_id),
                   last_error = ?, updated_at = ?
               WHERE system = ? AND update_id = ?""",
            (state, remote_id, error, _iso(now), system, update_id),
        )
        await self.db.commit()

    async def retry_write(
        self, system: str, update_id: str, not_before: dt.datetime, error: str, now: dt.datetime
    ) -> None:
        await self.db.execute(
            """UPDATE crm_writes SET not_before = ?, last_error = ?, updated_at = ?
               WHERE system = ? AND update_id = ? AND state = 'pending'""",
            (_iso(not_before), error[:500], _iso(now), system, update_id),
        )
        await self.db.commit()

    async def writes(
        self, system: str | None = None, state: str | None = None, limit: int = 200
    ) -> list[dict[str, Any]]:
        """Recorded writes, newest first, for ``nudge connect status``."""
        sql = "SELECT * FROM crm_writes WHERE 1=1"
        args: list[Any] = []
        if system:
            sql += " AND system = ?"
            args.append(system)
        if state:
            sql += " AND state = ?"
            args.append(state)
        sql += " ORDER BY created_at DESC, update_id LIMIT ?"
        args.append(limit)
        return [dict(r) for r in await self.db.execute_fetchall(sql, args)]

    # -- links and checkpoints ---------------------------------------------------------------
    async def link(
        self, system: str, lead_id: str, object_type: str, remote_id: str, now: dt.datetime
    ) -> None:
        await self.db.execute(
            """INSERT INTO crm_links VALUES (?, ?, ?, ?, ?)
               ON CONFLICT (system, lead_id, object_type) DO UPDATE
               SET remote_id = excluded.remote_id, updated_at = excluded.updated_at""",
            (system, lead_id, object_type, remote_id, _iso(now)),
        )
        await self.db.commit()

    async def unlink(self, system: str, lead_id: str, object_type: str, remote_id: str) -> None:
        """Forget the link, if it is still to ``remote_id``."""
        await self.db.execute(
            "DELETE FROM crm_links WHERE system=? AND lead_id=? AND object_type=? AND remote_id=?",
            (system, lead_id, object_type, remote_id),
        )
        await self.db.commit()

    async def linked_leads(self, system: str, object_type: str, remote_id: str) -> list[str]:
        rows = await self.db.execute_fetchall(
            "SELECT lead_id FROM crm_links WHERE system=? AND object_type=? AND remote_id=? "
            "ORDER BY lead_id",
            (system, object_type, remote_id),
        )
        return [str(r[0]) for r in rows]

    async def identities(self, lead_ids: list[str]) -> dict[str, list[tuple[str, str]]]:
        """lead id → its linked ``(kind, value)`` identities (read from the record's contacts)."""
        out: dict[str, list[tuple[str, str]]] = {}
        for lead in lead_ids:
            rows = await self.db.execute_fetchall(
                "SELECT kind, value FROM contacts WHERE lead_id = ? ORDER BY kind, value", (lead,)
            )
            out[lead] = [(str(r[0]), str(r[1])) for r in rows]
        return out

    async def remote_id(self, system: str, lead_id: str, object_type: str) -> str | None:
        row = await fetch_one(
            self.db,
            "SELECT remote_id FROM crm_links WHERE system=? AND lead_id=? AND object_type=?",
            (system, lead_id, object_type),
        )
        return str(row[0]) if row else None

    async def checkpoint(self, system: str, obj: str) -> str | None:
        row = await fetch_one(
            self.db,
            "SELECT cursor FROM sync_checkpoints WHERE system = ? AND object = ?",
            (system, obj),
        )
        return str(row[0]) if row else None

    async def set_checkpoint(self, system: str, obj: str, cursor: str, now: dt.datetime) -> None:
        await self.db.execute(
            """INSERT INTO sync_checkpoints VALUES (?, ?, ?, ?)
               ON CONFLICT (system, object) DO UPDATE
               SET cursor = excluded.cursor, updated_at = excluded.updated_at""",
            (system, obj, cursor, _iso(now)),
        )
        await self.db.commit()
