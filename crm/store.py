"""The aiosqlite system of record, with versioned migrations.

Migrations are the numbered ``crm/migrations/NNNN_*.sql`` files, applied in order
inside one transaction each and recorded in ``schema_version``; a database newer
than the code is refused rather than guessed at. WAL mode lets two workers on one
machine share the file.

The outbox is the single source of truth for "was this nudge delivered":
:mod:`crm.outbox` claims a nudge (``sending``) only if no one has before, so
the same nudge id is never sent twice, across retries, redeliveries and
restarts. A crash between claim and send leaves the row in ``sending``: it is
reported at start-up (:meth:`Store.in_flight`) instead of being sent again.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import aiosqlite

from crm import record, sqlite
from nudge.events import RepUpserted

MIGRATIONS = Path(__file__).with_name("migrations")


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


async def fetch_one(db: aiosqlite.Connection, sql: str, params: Any = ()) -> Any:
    """The first row of a query, read in one call on the connection's thread (or ``None``).

    Reads on the shared connection are never left as an open cursor across an
    ``await``: an unfinished SELECT holds a read snapshot, and when another
    coroutine's write runs on the same connection in between, SQLite must upgrade
    that stale snapshot, which it refuses at once ("database is locked" — WAL
    mode, ``busy_timeout`` does not apply). Use ``execute_fetchall`` for many rows.
    """
    rows = await db.execute_fetchall(sql, params)
    return next(iter(rows), None)


async def _wal(db: aiosqlite.Connection, attempts: int = 100) -> None:
    """Switch to WAL. A new file that another worker is switching at the same moment
    answers "database is locked" at once — SQLite's busy timeout does not cover a
    journal-mode change — so wait a little and try again (up to ~5 s)."""
    for attempt in range(attempts):
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            await asyncio.sleep(0.05)


class Store:
    """One connection to the CRM database. Use :meth:`open` to get a migrated store."""

    kind = "sqlite"
    """``sqlite``, or ``postgresql`` for a store opened on a URL (:mod:`crm.pg`)."""

    def __init__(self, db: aiosqlite.Connection, path: Path | str) -> None:
        self.db = db
        self.path = path

    @classmethod
    async def open(cls, path: Path | str) -> Store:
        """The SQLite file at ``path``, or the PostgreSQL database a ``postgresql://`` URL
        names (the same interface, migrations and SQL; see :mod:`crm.pg`)."""
        if isinstance(path, str) and path.startswith(("postgresql://", "postgres://")):
            from crm import pg

            store = cls(await pg.connect(path), path)  # type: ignore[arg-type]
            store.kind = "postgresql"
            await pg.migrate(store)
            return store
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        db = await sqlite.connect(path, timeout=30)
        db.row_factory = aiosqlite.Row
        await _wal(db)
        await db.execute("PRAGMA synchronous=NORMAL")
        await db.execute("PRAGMA busy_timeout=30000")
        store = cls(db, path)
        await store.migrate()
        return store

    async def close(self) -> None:
        await self.db.close()

    async def migrate(self) -> int:
        """Apply every migration not yet recorded (gaps too); return the highest version.

        Migrations are applied by set membership, not "above the current version":
        files from branches developed side by side may land out of number order.
        """
        await self.db.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at TEXT)"
        )
        applied = {
            int(r[0]) for r in await self.db.execute_fetchall("SELECT version FROM schema_version")
        }
        current = max(applied, default=0)
        files = sorted(MIGRATIONS.glob("[0-9][0-9][0-9][0-9]_*.sql"))
        latest = int(files[-1].name[:4]) if files else 0
        if current > latest:
            raise RuntimeError(
                f"{self.path}: schema version {current} is newer than this code ({latest})"
            )
        for file in files:
            version = int(file.name[:4])
            if version in applied:
                continue
            await self.db.execute("BEGIN IMMEDIATE")
            try:
                if await fetch_one(  # another worker got there first
                    self.db, "SELECT 1 FROM schema_version WHERE version = ?", (version,)
                ):
                    await self.db.rollback()
                    continue
                for statement in file.read_text().split(";\n"):
                    if statement.strip():
                        await self.db.execute(statement)
                await self.db.execute("INSERT INTO schema_version VALUES (?, ?)", (version, _now()))
                await self.db.commit()
            except BaseException:
                await self.db.rollback()
                raise
            current = max(current, version)
        return current

    # -- reps ---------------------------------------------------------------------
    async def upsert_rep(self, rep: RepUpserted) -> None:
        await self.db.execute(
            """INSERT INTO reps (rep_id, name, phone, email, slack_user_id, timezone,
                                 manager_rep_id, team, updated_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (rep_id) DO UPDATE SET name=excluded.name, phone=excluded.phone,
                 email=excluded.email, slack_user_id=excluded.slack_user_id,
                 timezone=excluded.timezone, manager_rep_id=excluded.manager_rep_id,
                 team=excluded.team, updated_at=excluded.updated_at""",
            (
                rep.rep_id,
                rep.name,
                rep.phone,
                rep.email,
                rep.slack_user_id,
                rep.timezone,
                rep.manager_rep_id,
                rep.team,
                _now(),
            ),
        )
        await self.db.commit()

    async def reps_in_team(self, team: str) -> list[str]:
        """The ids of the reps of ``team`` (a playbook's ``to: team``)."""
        rows = await self.db.execute_fetchall("SELECT rep_id FROM reps WHERE team = ?", (team,))
        return [str(r[0]) for r in rows]

    async def get_rep(self, rep_id: str) -> dict[str, Any] | None:
        row = await fetch_one(self.db, "SELECT * FROM reps WHERE rep_id = ?", (rep_id,))
        return dict(row) if row else None

    # -- identity -------------------------------------------------------------------
    async def resolve_many(self, idents: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """``(kind, normalised value) → lead_id`` for those of ``idents`` that are linked."""
        found: dict[tuple[str, str], str] = {}
        for kind in {k for k, _ in idents}:
            values = sorted({v for k, v in idents if k == kind})
            for chunk in _chunks(values):
                rows = await self.db.execute_fetchall(
                    f"SELECT value, lead_id FROM contacts WHERE kind = ? "
                    f"AND value IN ({','.join('?' * len(chunk))})",
                    (kind, *chunk),
                )
                found.update({(kind, str(r[0])): str(r[1]) for r in rows})
        return found

    async def link_identities(self, links: dict[tuple[str, str], str]) -> None:
        """Link each ``(kind, normalised value) → lead_id``, in one commit."""
        now = _now()
        await self.db.executemany(
            """INSERT INTO contacts (kind, value, lead_id, seen_at) VALUES (?, ?, ?, ?)
               ON CONFLICT (kind, value) DO UPDATE SET lead_id=excluded.lead_id,
                 seen_at=excluded.seen_at""",
            [(kind, value, lead_id, now) for (kind, value), lead_id in links.items()],
        )
        await self.db.commit()

    async def waiting(
        self, idents: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], list[tuple[str, dict[str, Any]]]]:
        """The unmatched activities under each ``(kind, normalised value)``:
        ``(activity_id, event)``, oldest first.

        Events on different topics are not ordered against each other, so a web visit
        can arrive before the CRM record that names its email; it is kept, not dropped,
        and found here once the identity is linked. Finding does not take: an activity
        stays unmatched until :meth:`mark_claimed` (call it once it is forwarded, so a
        crash in between leaves it to be found again)."""
        idents = list(idents)
        found: dict[tuple[str, str], list[tuple[str, dict[str, Any]]]] = {}
        for kind, column in IDENTITY_COLUMNS.items():
            values = sorted({v for k, v in idents if k == kind})
            for chunk in _chunks(values):
                rows = await self.db.execute_fetchall(
                    f"SELECT activity_id, {column}, detail_json FROM activities "
                    f"WHERE lead_id IS NULL AND {column} IN ({','.join('?' * len(chunk))}) "
                    f"ORDER BY occurred_at",
                    chunk,
                )
                for activity_id, value, detail in rows:
                    found.setdefault((kind, str(value)), []).append(
                        (str(activity_id), json.loads(detail))
                    )
        return found

    async def mark_claimed(self, claims: list[tuple[str, str]]) -> None:
        """Assign unmatched activities to their lead: ``(lead_id, activity_id)``; one commit."""
        await self.db.executemany(
            "UPDATE activities SET lead_id = ? WHERE activity_id = ? AND lead_id IS NULL", claims
        )
        await self.db.commit()

    async def log_unmatched(
        self, events: list[tuple[str, str, dt.datetime, dict[str, Any]]]
    ) -> None:
        """Record activities no lead is known for yet — ``(id, type, occurred_at, detail)`` —
        with their identities, to be claimed when one is linked; one commit."""
        await self.db.executemany(
            ACTIVITY_INSERT,
            [_activity_row(i, None, None, t, at, None, detail) for i, t, at, detail in events],
        )
        await self.db.commit()

    # -- leads and activities ---------------------------------------------------------
    async def merge_fields(
        self, lead_id: str, values: dict[str, Any], source: record.Source, now: dt.datetime
    ) -> list[record.FieldChange]:
        """The one writer of a lead's fields: a merge with an audit row per change
        (:func:`crm.record.merge_fields`)."""
        return await record.merge_fields(self.db, lead_id, values, source, now)

    async def save_lead_states(self, flushes: list[record.LeadFlush], now: dt.datetime) -> int:
        """The lead agent's batched write: CRM fields merged, score and checkpoint saved."""
        return await record.save_states(self.db, flushes, now)

    async def lead_states(
        self, lead_ids: list[str]
    ) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
        """``lead_id → (profile, checkpoint)``: what a lost table entry is rebuilt from."""
        return await record.load_states(self.db, lead_ids)

    async def lead_profile(self, lead_id: str) -> dict[str, Any] | None:
        return await record.profile(self.db, lead_id)

    async def deals(self, lead_id: str) -> list[dict[str, Any]]:
        return await record.deals(self.db, lead_id)

    async def snooze(self, rep_id: str, lead_id: str, until: dt.datetime) -> None:
        await self.db.execute(
            """INSERT INTO snoozes (rep_id, lead_id, until) VALUES (?, ?, ?)
               ON CONFLICT (rep_id, lead_id) DO UPDATE SET until = excluded.until""",
            (rep_id, lead_id, until.astimezone(dt.UTC).isoformat()),
        )
        await self.db.commit()

    async def publish_model(
        self, target: str, version: str, model_json: str, meta_json: str, now: dt.datetime
    ) -> None:
        """Keep a model in the record for workers on other hosts (once per version)."""
        await self.db.execute(
            """INSERT INTO published_models (target, version, model_json, meta_json, published_at)
               VALUES (?, ?, ?, ?, ?) ON CONFLICT (target, version) DO NOTHING""",
            (target, version, model_json, meta_json, now.isoformat()),
        )
        await self.db.commit()

    async def set_promotion(self, target: str, version: str | None, now: dt.datetime) -> None:
        """The model ``target``'s workers use from now on (None: none)."""
        await self.db.execute(
            """INSERT INTO model_promotions (target, version, promoted_at) VALUES (?, ?, ?)
               ON CONFLICT (target) DO UPDATE
               SET version = excluded.version, promoted_at = excluded.promoted_at""",
            (target, version, now.isoformat()),
        )
        await self.db.commit()

    async def promotions(self) -> dict[str, str | None]:
        """target → the promoted version (None: none) for every target ever promoted."""
        rows = await self.db.execute_fetchall("SELECT target, version FROM model_promotions")
        return {str(r[0]): (str(r[1]) if r[1] is not None else None) for r in rows}

    async def published_model(self, target: str, version: str) -> tuple[str, str] | None:
        """``(model_json, meta_json)`` of a published model, or None."""
        rows = list(
            await self.db.execute_fetchall(
                "SELECT model_json, meta_json FROM published_models "
                "WHERE target = ? AND version = ?",
                (target, version),
            )
        )
        return (str(rows[0][0]), str(rows[0][1])) if rows else None

    async def add_rule_counts(self, day: str, counts: dict[tuple[str, str, str], int]) -> None:
        """Add (playbook, rule, outcome) → evaluations to the UTC ``day``'s counters."""
        await self.db.executemany(
            """INSERT INTO rule_counts (day, playbook, rule, outcome, n) VALUES (?, ?, ?, ?, ?)
               ON CONFLICT (day, playbook, rule, outcome)
               DO UPDATE SET n = rule_counts.n + excluded.n""",
            [(day, pb, rule, outcome, n) for (pb, rule, outcome), n in counts.items()],
        )
        await self.db.commit()

    async def save_snapshots(self, rows: list[dict[str, Any]]) -> None:
        """Record score snapshots (``scoring.state.snapshot_row``: state_json is a JSON
        string) once per event id."""
        await self.db.executemany(
            """INSERT OR IGNORE INTO score_snapshots (event_id, lead_id, event_type, occurred_at,
                                                    model_version, score, state_json)
               VALUES (?, ?, ?, ?, ?, ?, ?)""",
            [
                (
                    r["event_id"],
                    r["lead_id"],
                    r["event_type"],
                    r["occurred_at"],
                    r["model_version"],
                    r["score"],
                    r["state_json"],
                )
                for r in rows
            ],
        )
        await self.db.commit()

    async def save_decisions(self, rows: list[dict[str, Any]]) -> None:
        """Record the rules' decisions to nudge or not (``playbooks.decisions.Logged.row``),
        once per (event, lead, playbook, rule): a redelivered signal is not logged twice."""
        await self.db.executemany(
            """INSERT OR IGNORE INTO decisions (event_id, lead_id, playbook, rule, at, nudged,
                                               propensity, signal_json)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
            [
                (
                    r["event_id"],
                    r["lead_id"],
                    r["playbook"],
                    r["rule"],
                    r["at"],
                    int(r["nudged"]),
                    r["propensity"],
                    r["signal_json"],
                )
                for r in rows
            ],
        )
        await self.db.commit()

    async def decisions(self) -> list[dict[str, Any]]:
        """Every logged decision, oldest first, with ``signal_json`` as stored."""
        return [
            dict(r)
            for r in await self.db.execute_fetchall(
                "SELECT * FROM decisions ORDER BY at, event_id, playbook, rule"
            )
        ]

    async def snapshots(self) -> list[dict[str, Any]]:
        """Every score snapshot, oldest first, with ``state_json`` decoded."""
        rows = [
            dict(r)
            for r in await self.db.execute_fetchall(
                "SELECT * FROM score_snapshots ORDER BY occurred_at, event_id"
            )
        ]
        for row in rows:
            row["state_json"] = json.loads(row["state_json"])
        return rows

    async def log_activity(
        self,
        activity_id: str,
        lead_id: str | None,
        type_: str,
        occurred_at: dt.datetime,
        *,
        rep_id: str | None = None,
        duration_s: float | None = None,
        detail: dict[str, Any] | None = None,
    ) -> bool:
        """Record an activity once per id. With no lead, its identities are kept to match later."""
        cur = await self.db.execute(
            ACTIVITY_INSERT,
            _activity_row(activity_id, lead_id, rep_id, type_, occurred_at, duration_s, detail),
        )
        await self.db.commit()
        return cur.rowcount == 1

    # -- outbox -------------------------------------------------------------------------
    async def outbox(self, state: str | None = None) -> list[dict[str, Any]]:
        sql = (
            "SELECT * FROM outbox" + (" WHERE state = ?" if state else "") + " ORDER BY created_at"
        )
        return [dict(r) for r in await self.db.execute_fetchall(sql, (state,) if state else ())]

    async def in_flight(self) -> list[dict[str, Any]]:
        """Nudges claimed but never finished: a worker died mid-send."""
        return await self.outbox("sending")


IDENTITY_COLUMNS = {"email": "email", "phone": "phone", "visitor": "visitor_id"}
"""Identity kind → the column of ``activities`` that keeps it while unmatched."""

ACTIVITY_INSERT = """INSERT OR IGNORE INTO activities
    (activity_id, lead_id, rep_id, type, occurred_at, duration_s, detail_json,
     email, phone, visitor_id)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""


def _activity_row(
    activity_id: str,
    lead_id: str | None,
    rep_id: str | None,
    type_: str,
    occurred_at: dt.datetime,
    duration_s: float | None,
    detail: dict[str, Any] | None,
) -> tuple[Any, ...]:
    detail = detail or {}
    idents = [
        normalise_identity(kind, str(detail[column]))
        if lead_id is None and detail.get(column)
        else None
        for kind, column in IDENTITY_COLUMNS.items()
    ]
    return (
        activity_id,
        lead_id,
        rep_id,
        type_,
        occurred_at.isoformat(),
        duration_s,
        json.dumps(detail, default=str),
        *idents,
    )


def _chunks(values: list[str], size: int = 500) -> list[list[str]]:
    return [values[i : i + size] for i in range(0, len(values), size)]


def normalise_identity(kind: str, value: str) -> str:
    """Emails compare case-insensitively; phones by their digits (and a leading +)."""
    value = value.strip()
    if kind == "email":
        return value.lower()
    if kind == "phone":
        digits = "".join(c for c in value if c.isdigit())
        return ("+" if value.startswith("+") else "") + digits
    return value
