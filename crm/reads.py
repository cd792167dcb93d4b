"""Read-only questions about the record, for the manager's cockpit and reports.

Why a module of its own: the cockpit must read the record through the store's
interface (so it works on every store Nudge supports) and never write to it. Every
method here is one or a few SELECTs returning plain dicts; nothing here writes, and
nothing outside ``crm/`` needs to know the tables. Times are returned as the store
keeps them (ISO strings, epoch seconds for score snapshots).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from crm.store import Store, _chunks

PENDING_STATES = ("queued", "held", "sending")
"""Outbox states of a nudge that has not gone out yet."""

REP_ACTIVITY_TYPES = ("call.started", "call.ended", "meeting.ended", "call.logged")
"""Activities that are a rep's own touch of a lead (not the lead's web visits)."""


def _rows(rows: Any) -> list[dict[str, Any]]:
    return [dict(r) for r in rows]


def _marks(values: Sequence[Any]) -> str:
    return ",".join("?" * len(values))


class Reads:
    """Read-only queries over one :class:`crm.store.Store`."""

    def __init__(self, store: Store) -> None:
        self.db = store.db

    async def _all(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return _rows(await self.db.execute_fetchall(sql, tuple(params)))

    # -- rules ----------------------------------------------------------------------
    async def rule_counts(
        self, since_day: str | None = None
    ) -> dict[tuple[str, str], dict[str, int]]:
        """(playbook, rule) → outcome → evaluations, summed over the days from ``since_day``
        (a ``YYYY-MM-DD`` UTC day; None: every day recorded)."""
        out: dict[tuple[str, str], dict[str, int]] = {}
        for r in await self._all(
            "SELECT playbook, rule, outcome, SUM(n) AS n FROM rule_counts WHERE day >= ? "
            "GROUP BY playbook, rule, outcome",
            [since_day or ""],
        ):
            out.setdefault((r["playbook"], r["rule"]), {})[r["outcome"]] = int(r["n"])
        return out

    async def explored_decisions(self, since: str) -> list[dict[str, Any]]:
        """Decisions since ``since`` (ISO) that an exploration coin took part in
        (propensity below 1), as ``{"playbook", "rule", "lead_id", "at", "treated",
        "propensity"}`` with ``propensity`` the chance of being nudged the lead had."""
        rows = await self._all(
            "SELECT playbook, rule, lead_id, at, nudged, propensity FROM decisions "
            "WHERE propensity < 1 AND at >= ? ORDER BY at",
            [since],
        )
        return [
            {
                "playbook": r["playbook"],
                "rule": r["rule"],
                "lead_id": r["lead_id"],
                "at": r["at"],
                "treated": bool(r["nudged"]),
                # logged: the chance of what was decided; the lift wants the chance of a nudge
                "propensity": r["propensity"] if r["nudged"] else 1.0 - r["propensity"],
            }
            for r in rows
        ]

    # -- reps and teams -------------------------------------------------------------
    async def reps(self) -> list[dict[str, Any]]:
        return await self._all("SELECT * FROM reps ORDER BY team, name")

    async def stages(self) -> list[str]:
        rows = await self._all(
            "SELECT DISTINCT stage FROM leads WHERE stage IS NOT NULL ORDER BY stage"
        )
        return [str(r["stage"]) for r in rows]

    async def playbook_names(self) -> list[str]:
        rows = await self._all("SELECT DISTINCT playbook FROM outbox ORDER BY playbook")
        return [str(r["playbook"]) for r in rows]

    # -- leads ----------------------------------------------------------------------
    async def leads(
        self,
        *,
        rep: str | None = None,
        team: str | None = None,
        stage: str | None = None,
        playbook: str | None = None,
        status: str | None = "open",
        order: str = "ev",
        limit: int = 200,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Leads with their owner, ranked by expected value (``ev``: score × deal value,
        unknown values last) or by ``score``; filtered by owner, team, stage, playbook and
        status (``open`` by default; None: all)."""
        where, params = _where(
            ("l.status = ?", status or None),
            ("l.owner_rep_id = ?", rep or None),
            ("r.team = ?", team or None),
            ("l.stage = ?", stage or None),
            ("l.lead_id IN (SELECT lead_id FROM outbox WHERE playbook = ?)", playbook or None),
        )
        rank = (
            "l.score * l.deal_value IS NULL, l.score * l.deal_value DESC, l.score DESC"
            if order == "ev"
            else "l.score IS NULL, l.score DESC"
        )
        sql = (
            "SELECT l.*, r.name AS owner_name, r.team AS team FROM leads l "
            "LEFT JOIN reps r ON r.rep_id = l.owner_rep_id"
            + where
            + f" ORDER BY {rank}, l.lead_id LIMIT ? OFFSET ?"
        )
        rows = await self._all(sql, [*params, limit, offset])
        for row in rows:
            _decode_lead(row)
        return rows

    async def lead(self, lead_id: str) -> dict[str, Any] | None:
        rows = await self._all(
            "SELECT l.*, r.name AS owner_name, r.team AS team FROM leads l "
            "LEFT JOIN reps r ON r.rep_id = l.owner_rep_id WHERE l.lead_id = ?",
            [lead_id],
        )
        return _decode_lead(rows[0]) if rows else None

    async def score_points(self, lead_ids: Sequence[str]) -> dict[str, list[tuple[float, float]]]:
        """lead_id → ``(epoch seconds, score)`` of every recorded score, in the order they
        were computed (events of different streams can be processed out of event-time
        order; the scores follow processing)."""
        out: dict[str, list[tuple[float, float]]] = {}
        for chunk in _chunks(list(lead_ids)):
            for r in await self.db.execute_fetchall(
                "SELECT lead_id, occurred_at, score FROM score_snapshots "
                f"WHERE lead_id IN ({_marks(chunk)}) ORDER BY rowid",
                chunk,
            ):
                out.setdefault(str(r[0]), []).append((float(r[1]), float(r[2])))
        return out

    async def last_rep_touch(self, lead_ids: Sequence[str]) -> dict[str, str]:
        """lead_id → when a rep last touched it: a call or meeting, an answer or a note."""
        out: dict[str, str] = {}
        for chunk in _chunks(list(lead_ids)):
            m = _marks(chunk)
            for r in await self.db.execute_fetchall(
                f"""SELECT lead_id, MAX(at) FROM (
                      SELECT lead_id, occurred_at AS at FROM activities
                        WHERE lead_id IN ({m}) AND rep_id IS NOT NULL
                      UNION ALL SELECT lead_id, answered_at FROM questionnaire_answers
                        WHERE lead_id IN ({m})
                      UNION ALL SELECT lead_id, received_at FROM activity_notes
                        WHERE lead_id IN ({m})) AS touches
                    GROUP BY lead_id""",
                [*chunk, *chunk, *chunk],
            ):
                if r[1]:
                    out[str(r[0])] = str(r[1])
        return out

    async def nudge_counts(self, lead_ids: Sequence[str]) -> dict[str, dict[str, int]]:
        """lead_id → ``{"total": n, "pending": k}`` of its nudges."""
        out: dict[str, dict[str, int]] = {}
        for chunk in _chunks(list(lead_ids)):
            for r in await self.db.execute_fetchall(
                "SELECT lead_id, COUNT(*), "
                f"SUM(CASE WHEN state IN ({_marks(PENDING_STATES)}) THEN 1 ELSE 0 END) FROM outbox "
                f"WHERE lead_id IN ({_marks(chunk)}) GROUP BY lead_id",
                [*PENDING_STATES, *chunk],
            ):
                out[str(r[0])] = {"total": int(r[1]), "pending": int(r[2] or 0)}
        return out

    async def snapshots_for(self, lead_id: str) -> list[dict[str, Any]]:
        """Every scored event of a lead (type, time, score, model version) in the order the
        scores were computed (see :meth:`score_points`)."""
        return await self._all(
            "SELECT event_id, event_type, occurred_at, model_version, score "
            "FROM score_snapshots WHERE lead_id = ? ORDER BY rowid",
            [lead_id],
        )

    async def activities_for(self, lead_id: str) -> list[dict[str, Any]]:
        rows = await self._all(
            "SELECT activity_id, rep_id, type, occurred_at, duration_s, detail_json "
            "FROM activities WHERE lead_id = ? ORDER BY occurred_at",
            [lead_id],
        )
        for row in rows:
            row["detail"] = json.loads(row.pop("detail_json") or "{}")
        return rows

    async def nudges(
        self,
        *,
        lead_id: str | None = None,
        rep_id: str | None = None,
        playbook: str | None = None,
        rule: str | None = None,
        limit: int = 1000,
    ) -> list[dict[str, Any]]:
        """Outbox rows (newest first) with the exploration flag and propensity decoded."""
        where, params = _where(
            ("o.lead_id = ?", lead_id),
            ("o.rep_id = ?", rep_id),
            ("o.playbook = ?", playbook),
            ("o.rule = ?", rule),
        )
        rows = await self._all(
            "SELECT o.*, l.company FROM outbox o LEFT JOIN leads l ON l.lead_id = o.lead_id"
            + where
            + " ORDER BY o.created_at DESC LIMIT ?",
            [*params, limit],
        )
        for row in rows:
            command = json.loads(row.pop("command_json") or "{}")
            row["exploration"] = bool(command.get("exploration", False))
            row["propensity"] = float(command.get("propensity", 1.0))
            row["reasons"] = list(command.get("reasons", []))
        return rows

    async def attempts_for(self, nudge_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for chunk in _chunks(list(nudge_ids)):
            for row in await self._all(
                f"SELECT * FROM delivery_attempts WHERE nudge_id IN ({_marks(chunk)}) "
                "ORDER BY nudge_id, attempt",
                chunk,
            ):
                out.setdefault(str(row["nudge_id"]), []).append(row)
        return out

    async def deals_for(self, lead_id: str) -> list[dict[str, Any]]:
        """The lead's deals (the record's own reader), most recently changed first."""
        from crm.record import deals

        return await deals(self.db, lead_id)

    async def answers_for(self, lead_id: str) -> list[dict[str, Any]]:
        rows = await self._all(
            "SELECT * FROM questionnaire_answers WHERE lead_id = ? ORDER BY answered_at",
            [lead_id],
        )
        for row in rows:
            row["value"] = json.loads(row.pop("value_json"))
        return rows

    async def field_changes_for(self, lead_id: str) -> list[dict[str, Any]]:
        rows = await self._all(
            "SELECT * FROM field_changes WHERE lead_id = ? ORDER BY answered_at, change_id",
            [lead_id],
        )
        for row in rows:
            for key in ("old_value", "new_value"):
                raw = row.pop(f"{key}_json")
                row[key] = json.loads(raw) if raw is not None else None
        return rows

    async def notes_for(self, lead_id: str) -> list[dict[str, Any]]:
        return await self._all(
            "SELECT * FROM activity_notes WHERE lead_id = ? ORDER BY received_at", [lead_id]
        )

    # -- reps' behaviour ------------------------------------------------------------------
    async def rep_replies(self) -> list[dict[str, Any]]:
        """Every reply a rep made about a lead: answers, notes and logged touches."""
        return await self._all(
            f"""SELECT rep_id, lead_id, answered_at AS at, 'answer' AS kind
                  FROM questionnaire_answers WHERE lead_id IS NOT NULL
                UNION ALL SELECT rep_id, lead_id, received_at, 'note' FROM activity_notes
                  WHERE lead_id IS NOT NULL
                UNION ALL SELECT rep_id, lead_id, occurred_at, type FROM activities
                  WHERE rep_id IS NOT NULL AND lead_id IS NOT NULL
                  AND type IN ({_marks(REP_ACTIVITY_TYPES)})
                ORDER BY at""",
            REP_ACTIVITY_TYPES,
        )

    async def sessions(self) -> list[dict[str, Any]]:
        """Questionnaire sessions (no answers): who, which, status, when asked."""
        return await self._all(
            "SELECT session_id, rep_id, questionnaire_id, lead_id, status, requested_at, "
            "updated_at FROM conversation_sessions ORDER BY requested_at"
        )

    async def first_answers(self) -> dict[str, str]:
        """session_id → when its first answer came."""
        rows = await self._all(
            "SELECT session_id, MIN(answered_at) AS at FROM questionnaire_answers "
            "GROUP BY session_id"
        )
        return {str(r["session_id"]): str(r["at"]) for r in rows}

    async def sms_suppressions(self) -> list[dict[str, Any]]:
        return await self._all("SELECT * FROM sms_suppressions ORDER BY at")

    async def snapshots(self) -> list[dict[str, Any]]:
        """Every score snapshot with its feature state decoded, oldest first (for the
        model's win/loss drivers)."""
        rows = await self._all("SELECT * FROM score_snapshots ORDER BY occurred_at, event_id")
        for row in rows:
            row["state_json"] = json.loads(row["state_json"])
        return rows

    # -- outcomes -------------------------------------------------------------------------
    async def outcomes(self) -> dict[str, dict[str, Any]]:
        """lead_id → ``{"status", "won_at"}`` (epoch seconds of its ``deal.won``, if any)."""
        out = {
            str(r["lead_id"]): {"status": r["status"], "won_at": None}
            for r in await self._all("SELECT lead_id, status FROM leads")
        }
        for r in await self._all(
            "SELECT lead_id, MIN(occurred_at) AS at FROM score_snapshots "
            "WHERE event_type = 'deal.won' GROUP BY lead_id"
        ):
            out.setdefault(str(r["lead_id"]), {"status": "won", "won_at": None})
            out[str(r["lead_id"])]["won_at"] = float(r["at"])
        return out


def _decode_lead(row: dict[str, Any]) -> dict[str, Any]:
    row["profile"] = json.loads(row.pop("profile_json", None) or "{}")
    raw = row.pop("score_json", None)
    checkpoint = row.pop("state_json", None)  # where the record keeps the derived state
    if not raw and checkpoint:
        raw = json.dumps(json.loads(checkpoint).get("score"))
    row["score_detail"] = json.loads(raw) if raw else None
    score, value = row.get("score"), row.get("deal_value")
    row["expected_value"] = (
        round(float(score) * float(value), 2) if score is not None and value is not None else None
    )
    return row


def _where(*conditions: tuple[str, Any]) -> tuple[str, list[Any]]:
    """`` WHERE a AND b`` of the conditions whose value is given (not None), and the values."""
    given = [(clause, value) for clause, value in conditions if value is not None]
    sql = " WHERE " + " AND ".join(clause for clause, _ in given) if given else ""
    return sql, [value for _, value in given]
