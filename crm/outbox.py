"""The outbox's delivery side: queue, claim, hold, retry, finish, and the SMS opt-out list.

Why a separate module: :mod:`crm.store` owns the first outbox claim; delivery
needs more states and a strict order, and keeping them here leaves the store small.

The outbox row of a nudge moves like this (``rowid`` is the order it arrived in)::

    queued ──claim──► sending ──► sent ──(status callback)──► delivered | failed
      ▲  │                 │
      │  └─hold─► held     ├─transient error─► queued (not_before = now + backoff)
      └──────────┘         └─permanent error─► failed (error_code)
    queued | held ──► suppressed (reason)

:meth:`Outbox.claim` is one conditional UPDATE, so exactly one caller wins and a
nudge id is sent at most once, across retries, redeliveries and restarts. The
sender stamps ``updated_at`` before every call to the provider (:meth:`Outbox.sending`);
a row left in ``sending`` by a crash stops being stamped, and once it is older than
``NUDGE_RECONCILE_AFTER`` one worker takes it over (:meth:`Outbox.retake`, a
compare-and-set on that stamp) and looks it up in the provider's own log
(:mod:`delivery.reconcile`): found, it is marked sent; not found, it is queued again.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

from crm.store import Store
from nudge.signals import CONVERSATION_PLAYBOOKS, NudgeCommand

PENDING = ("queued", "held")


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat()


class Outbox:
    """Delivery's view of the outbox, over an open :class:`~crm.store.Store`."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.db = store.db

    async def _rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        return [dict(r) for r in await self.db.execute_fetchall(sql, args)]

    async def _one(self, sql: str, args: tuple[Any, ...] = ()) -> dict[str, Any] | None:
        rows = await self._rows(sql, args)
        return rows[0] if rows else None

    # -- queue and claim -------------------------------------------------------------
    async def enqueue(self, cmd: NudgeCommand, now: dt.datetime) -> bool:
        """Record ``cmd`` as queued. False: this nudge id is already in the outbox."""
        cur = await self.db.execute(_INSERT, _row(cmd, now, "queued", None))
        await self.db.commit()
        return cur.rowcount == 1

    async def enqueue_many(
        self, rows: list[tuple[NudgeCommand, str, str | None]], now: dt.datetime
    ) -> None:
        """Record a batch's nudges in one commit, each ``(command, state, reason)``: queued,
        or suppressed at once (snoozed). A nudge id already in the outbox keeps its row."""
        if rows:
            await self.db.executemany(
                _INSERT, [_row(cmd, now, state, reason) for cmd, state, reason in rows]
            )
            await self.db.commit()

    async def existing(self, nudge_ids: list[str]) -> set[str]:
        """Those of ``nudge_ids`` already in the outbox."""
        found: set[str] = set()
        for chunk in _chunks(nudge_ids):
            rows = await self._rows(
                f"SELECT nudge_id FROM outbox WHERE nudge_id IN ({','.join('?' * len(chunk))})",
                tuple(chunk),
            )
            found.update(str(r["nudge_id"]) for r in rows)
        return found

    async def snoozed(self, pairs: list[tuple[str, str]], now: dt.datetime) -> set[tuple[str, str]]:
        """Those ``(rep_id, lead_id)`` of ``pairs`` whose nudges the rep snoozed past ``now``."""
        found: set[tuple[str, str]] = set()
        wanted = set(pairs)
        for chunk in _chunks(sorted({rep for rep, _ in wanted})):
            rows = await self._rows(
                f"SELECT rep_id, lead_id, until FROM snoozes "
                f"WHERE rep_id IN ({','.join('?' * len(chunk))})",
                tuple(chunk),
            )
            found.update(
                (str(r["rep_id"]), str(r["lead_id"]))
                for r in rows
                if (r["rep_id"], r["lead_id"]) in wanted
                and dt.datetime.fromisoformat(r["until"]) > now
            )
        return found

    async def recent_codes(self, rep_id: str, limit: int = 30) -> list[str]:
        """The reply-code letters of the rep's latest coded nudges, newest first."""
        rows = await self._rows(
            f"""SELECT command_json FROM outbox WHERE rep_id=? AND playbook NOT IN
               ({",".join("?" * len(CONVERSATION_PLAYBOOKS))}) ORDER BY rowid DESC LIMIT ?""",
            (rep_id, *CONVERSATION_PLAYBOOKS, limit),
        )
        codes = (json.loads(r["command_json"]).get("code") for r in rows)
        return [c for c in codes if c]

    async def claim(self, nudge_id: str, now: dt.datetime, channel: str | None = None) -> bool:
        """Move a due queued/held row to ``sending``. False: someone else has it, or not due.

        ``channel``: the one the first call to a provider goes out on, right after the claim
        (its stamp is the claim's); ``None`` until :meth:`sending` names one — a ``sending``
        row with no channel never reached a provider."""
        cur = await self.db.execute(
            """UPDATE outbox SET state='sending', channel=?, attempts=attempts+1, updated_at=?
               WHERE nudge_id=? AND state IN ('queued', 'held')
                 AND (not_before IS NULL OR not_before <= ?)""",
            (channel, _iso(now), nudge_id, _iso(now)),
        )
        await self.db.commit()
        return cur.rowcount == 1

    async def sending(self, nudge_id: str, now: dt.datetime, channel: str) -> None:
        """Stamp a claimed row just before a call to the provider: the channel it goes out
        on, and ``updated_at`` (a row whose stamp grows old was left by a dead sender)."""
        await self.db.execute(
            "UPDATE outbox SET channel=?, updated_at=? WHERE nudge_id=? AND state='sending'",
            (channel, _iso(now), nudge_id),
        )
        await self.db.commit()

    async def stale_sending(self, before: dt.datetime) -> list[dict[str, Any]]:
        """Rows in ``sending`` not stamped since ``before``, oldest first."""
        return await self._rows(
            """SELECT rowid AS seq, * FROM outbox WHERE state='sending' AND updated_at < ?
               ORDER BY rowid""",
            (_iso(before),),
        )

    async def retake(self, nudge_id: str, stamp: str, now: dt.datetime) -> bool:
        """Take over a stale ``sending`` row still stamped ``stamp``: one caller wins, and
        the others see a fresh stamp and leave it."""
        cur = await self.db.execute(
            "UPDATE outbox SET updated_at=? WHERE nudge_id=? AND state='sending' AND updated_at=?",
            (_iso(now), nudge_id, stamp),
        )
        await self.db.commit()
        return cur.rowcount == 1

    async def provider_ids(self, rep_id: str) -> set[str]:
        """Provider message ids already recorded for the rep's nudges."""
        rows = await self._rows(
            "SELECT provider_id FROM outbox WHERE rep_id=? AND provider_id IS NOT NULL", (rep_id,)
        )
        return {str(r["provider_id"]) for r in rows}

    async def get(self, nudge_id: str) -> dict[str, Any] | None:
        return await self._one("SELECT rowid AS seq, * FROM outbox WHERE nudge_id=?", (nudge_id,))

    async def get_many(self, nudge_ids: list[str]) -> dict[str, dict[str, Any]]:
        """``nudge_id → row`` for those of ``nudge_ids`` in the outbox."""
        found: dict[str, dict[str, Any]] = {}
        for chunk in _chunks(sorted(set(nudge_ids))):
            for row in await self._rows(
                f"SELECT rowid AS seq, * FROM outbox "
                f"WHERE nudge_id IN ({','.join('?' * len(chunk))})",
                tuple(chunk),
            ):
                found[str(row["nudge_id"])] = row
        return found

    async def pending_for_rep(self, rep_id: str) -> list[dict[str, Any]]:
        """The rep's queued and held nudges, oldest first: the order they must go out in."""
        return await self._rows(
            """SELECT rowid AS seq, * FROM outbox WHERE rep_id=? AND state IN ('queued', 'held')
               ORDER BY rowid""",
            (rep_id,),
        )

    async def due_reps(self, now: dt.datetime) -> list[str]:
        """Reps with at least one nudge that may go now, the longest-waiting first."""
        rows = await self._rows(
            """SELECT rep_id, MIN(rowid) AS first FROM outbox
               WHERE state IN ('queued', 'held') AND (not_before IS NULL OR not_before <= ?)
               GROUP BY rep_id ORDER BY first""",
            (_iso(now),),
        )
        return [r["rep_id"] for r in rows]

    # -- outcomes --------------------------------------------------------------------
    async def _set(
        self, nudge_id: str, now: dt.datetime, *, commit: bool = True, **fields: Any
    ) -> None:
        cols = ", ".join(f"{k}=?" for k in fields)
        await self.db.execute(
            f"UPDATE outbox SET {cols}, updated_at=? WHERE nudge_id=?",
            (*fields.values(), _iso(now), nudge_id),
        )
        if commit:
            await self.db.commit()

    async def hold(
        self, nudge_id: str, now: dt.datetime, not_before: dt.datetime, *, reason: str
    ) -> None:
        """Park a nudge until ``not_before`` (quiet hours). It is released by a drain."""
        await self._set(nudge_id, now, state="held", not_before=_iso(not_before), reason=reason)

    async def requeue(
        self,
        nudge_id: str,
        now: dt.datetime,
        not_before: dt.datetime,
        *,
        reason: str,
        error_code: str | None,
    ) -> None:
        """Put a nudge back after a transient failure, to be retried from ``not_before``
        (also a ``sending`` row the provider turned out never to have received)."""
        await self._set(
            nudge_id,
            now,
            state="queued",
            not_before=_iso(not_before),
            reason=reason,
            error_code=error_code,
        )

    async def mark_sent(
        self,
        nudge_id: str,
        now: dt.datetime,
        *,
        channel: str,
        provider_id: str | None,
        commit: bool = True,
    ) -> None:
        await self._set(
            nudge_id,
            now,
            commit=commit,
            state="sent",
            channel=channel,
            provider_id=provider_id,
            sent_at=_iso(now),
            reason=None,
            error_code=None,
        )

    async def mark_failed(
        self, nudge_id: str, now: dt.datetime, *, reason: str, error_code: str | None
    ) -> None:
        await self._set(nudge_id, now, state="failed", reason=reason, error_code=error_code)

    async def mark_suppressed(self, nudge_id: str, now: dt.datetime, *, reason: str) -> None:
        await self._set(nudge_id, now, state="suppressed", reason=reason)

    async def log_attempt(
        self,
        nudge_id: str,
        now: dt.datetime,
        *,
        channel: str | None,
        outcome: str,
        error_code: str | None = None,
        detail: str | None = None,
        commit: bool = True,
    ) -> None:
        """Append one row to ``delivery_attempts`` (attempt numbers count from 1)."""
        await self.db.execute(
            """INSERT INTO delivery_attempts (nudge_id, attempt, channel, at, outcome,
                                              error_code, detail)
               VALUES (?, (SELECT COALESCE(MAX(attempt), 0) + 1 FROM delivery_attempts
                           WHERE nudge_id = ?), ?, ?, ?, ?, ?)""",
            (nudge_id, nudge_id, channel, _iso(now), outcome, error_code, detail),
        )
        if commit:
            await self.db.commit()

    async def sent(
        self, nudge_id: str, now: dt.datetime, *, channel: str, provider_id: str | None
    ) -> None:
        """The provider took the nudge: its ``sent`` attempt and state, in one commit."""
        await self.log_attempt(nudge_id, now, channel=channel, outcome="sent", commit=False)
        await self.mark_sent(nudge_id, now, channel=channel, provider_id=provider_id)

    async def attempts(self, nudge_id: str) -> list[dict[str, Any]]:
        return await self._rows(
            "SELECT * FROM delivery_attempts WHERE nudge_id=? ORDER BY attempt", (nudge_id,)
        )

    async def record_status(
        self, provider_id: str, status: str, now: dt.datetime, *, error_code: str | None = None
    ) -> dict[str, Any] | None:
        """Apply a provider delivery receipt to the row it belongs to; returns that row."""
        row = await self._one("SELECT * FROM outbox WHERE provider_id=?", (provider_id,))
        if row is None:
            return None
        if status == "delivered":
            await self._set(row["nudge_id"], now, state="delivered", delivered_at=_iso(now))
        elif status in ("undelivered", "failed"):
            await self._set(
                row["nudge_id"],
                now,
                state="failed",
                reason=f"provider reported {status}",
                error_code=error_code,
            )
        return row

    async def sent_since(self, rep_id: str, since: dt.datetime) -> int:
        """How many nudges went to the rep since ``since`` (for the daily limit): not the
        questions and acknowledgements of a conversation."""
        row = await self._one(
            f"""SELECT COUNT(*) AS n FROM outbox WHERE rep_id=? AND state IN ('sent', 'delivered')
               AND sent_at >= ? AND playbook NOT IN
               ({",".join("?" * len(CONVERSATION_PLAYBOOKS))})""",
            (rep_id, _iso(since), *CONVERSATION_PLAYBOOKS),
        )
        return int(row["n"]) if row else 0

    async def sent_to_rep(self, rep_id: str, after_seq: int = 0) -> list[dict[str, Any]]:
        """What the rep has been sent, in order, after outbox row ``after_seq``."""
        return await self._rows(
            """SELECT rowid AS seq, * FROM outbox WHERE rep_id=? AND rowid > ?
               AND state IN ('sent', 'delivered') ORDER BY rowid""",
            (rep_id, after_seq),
        )

    # -- reps, opt-out, inbound dedupe -------------------------------------------------
    async def rep_by(
        self,
        *,
        phone: str | None = None,
        slack_user_id: str | None = None,
        normalise: Callable[[str], str | None] = lambda s: s,
    ) -> dict[str, Any] | None:
        """The rep a phone number (compared after ``normalise``) or Slack user id belongs to."""
        if slack_user_id is not None:
            return await self._one("SELECT * FROM reps WHERE slack_user_id=?", (slack_user_id,))
        if phone is None:
            return None
        for row in await self._rows("SELECT * FROM reps WHERE phone IS NOT NULL ORDER BY rep_id"):
            if normalise(row["phone"]) == phone:
                return row
        return None

    async def sms_opted_out(self, phone: str | None, rep_id: str | None = None) -> bool:
        """True when the number is on our suppression list or the rep is flagged."""
        if rep_id is not None:
            rep = await self._one("SELECT sms_opted_out FROM reps WHERE rep_id=?", (rep_id,))
            if rep and rep["sms_opted_out"]:
                return True
        if phone is None:
            return False
        return await self._one("SELECT 1 FROM sms_suppressions WHERE phone=?", (phone,)) is not None

    async def set_sms_opt_out(
        self, phone: str, opted_out: bool, now: dt.datetime, *, rep_id: str | None, reason: str
    ) -> None:
        """STOP adds the number to the list (and flags the rep); START removes both."""
        if opted_out:
            await self.db.execute(
                """INSERT INTO sms_suppressions (phone, reason, at) VALUES (?, ?, ?)
                   ON CONFLICT (phone) DO UPDATE SET reason=excluded.reason, at=excluded.at""",
                (phone, reason, _iso(now)),
            )
        else:
            await self.db.execute("DELETE FROM sms_suppressions WHERE phone=?", (phone,))
        if rep_id is not None:
            await self.db.execute(
                "UPDATE reps SET sms_opted_out=?, updated_at=? WHERE rep_id=?",
                (int(opted_out), _iso(now), rep_id),
            )
        await self.db.commit()

    async def seen(self, reply_id: str) -> bool:
        """True when this inbound id was handled before."""
        return (
            await self._one("SELECT 1 FROM inbound_seen WHERE reply_id=?", (reply_id,))
        ) is not None

    async def first_sight(self, reply_id: str, now: dt.datetime) -> bool:
        """True the first time an inbound id is seen; False for a provider's retry."""
        cur = await self.db.execute(
            "INSERT OR IGNORE INTO inbound_seen (reply_id, received_at) VALUES (?, ?)",
            (reply_id, _iso(now)),
        )
        await self.db.commit()
        return cur.rowcount == 1


_INSERT = """INSERT OR IGNORE INTO outbox (nudge_id, rep_id, lead_id, channel, state, playbook,
                                       rule, text, command_json, created_at, updated_at, reason)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""


def _row(cmd: NudgeCommand, now: dt.datetime, state: str, reason: str | None) -> tuple[Any, ...]:
    return (
        cmd.nudge_id,
        cmd.rep_id,
        cmd.lead_id,
        cmd.channel,
        state,
        cmd.playbook,
        cmd.rule,
        cmd.text,
        cmd.model_dump_json(),
        _iso(now),
        _iso(now),
        reason,
    )


def _chunks(values: list[str], size: int = 500) -> list[list[str]]:
    return [values[i : i + size] for i in range(0, len(values), size)]
