"""One lead's record as a person reads it: ``nudge leads show`` and the tests read this.

Everything comes from the store (its owners, see :mod:`crm.record`): the profile and
its deals, the score with its model version and reasons (the lead agent's last
checkpoint), the last events (activities, and web and other events from the score
snapshots) and notes, the nudges and their delivery states, the open
conversation about the lead, and every answer and field change with who and when.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import aiosqlite

from crm.record import clean_profile, deals, fetch_one

RECENT = 20
"""How many of the latest events, nudges and field changes are shown."""


async def lead_record(db: aiosqlite.Connection, lead_id: str) -> dict[str, Any] | None:
    """The lead's record (``None``: the store has never heard of it)."""
    row = await fetch_one(db, "SELECT * FROM leads WHERE lead_id = ?", (lead_id,))
    if row is None:
        return None
    state = json.loads(row["state_json"]) if row["state_json"] else {}
    score = state.get("score")
    if score is None and row["score"] is not None:
        score = {"value": row["score"], "model_version": row["model_version"], "reasons": []}

    async def rows(sql: str, *params: Any) -> list[dict[str, Any]]:
        return [dict(r) for r in await db.execute_fetchall(sql, (lead_id, *params))]

    events = await last_events(db, lead_id)
    nudges = await rows(
        """SELECT nudge_id, rep_id, channel, state, reason, playbook, rule, text, created_at,
                  sent_at FROM outbox WHERE lead_id = ? ORDER BY created_at DESC LIMIT ?""",
        RECENT,
    )
    sessions = await rows(
        """SELECT session_id, rep_id, channel, questionnaire_id, status, requested_at
           FROM conversation_sessions WHERE lead_id = ? AND status IN ('active', 'queued')
           ORDER BY requested_at""",
    )
    answers = await rows(
        """SELECT questionnaire_id, question_id, field, value_json, raw_text, rep_id,
                  answered_at, session_id FROM questionnaire_answers
           WHERE lead_id = ? ORDER BY answered_at""",
    )
    for answer in answers:
        answer["value"] = json.loads(answer.pop("value_json"))
    changes = await rows(
        """SELECT field, old_value_json, new_value_json, source, rep_id, event_id, session_id,
                  question_id, answered_at AS at FROM field_changes
           WHERE lead_id = ? ORDER BY change_id DESC LIMIT ?""",
        RECENT,
    )
    for change in changes:
        old, new = change.pop("old_value_json"), change.pop("new_value_json")
        change["old"] = json.loads(old) if old is not None else None
        change["new"] = json.loads(new) if new is not None else None
    notes = await rows(
        """SELECT note_id, rep_id, activity_id, text, received_at FROM activity_notes
           WHERE lead_id = ? ORDER BY received_at DESC LIMIT ?""",
        RECENT,
    )
    return {
        "lead_id": lead_id,
        "profile": clean_profile(json.loads(row["profile_json"])),
        "deals": await deals(db, lead_id),
        "score": score,
        "events": events,
        "notes": notes,
        "nudges": nudges,
        "open_conversations": sessions,
        "answers": answers,
        "field_changes": changes,
        "updated_at": row["updated_at"],
    }


async def last_events(db: aiosqlite.Connection, lead_id: str) -> list[dict[str, Any]]:
    """The lead's latest events, newest first: its activities (calls, meetings, replies)
    and every other event it was scored on — web visits, emails, CRM changes — from the
    score snapshots (an event logged as an activity is listed once)."""
    found = {
        r["event_id"]: dict(r)
        for r in await db.execute_fetchall(
            """SELECT activity_id AS event_id, type, occurred_at, rep_id, duration_s
               FROM activities WHERE lead_id = ? ORDER BY occurred_at DESC LIMIT ?""",
            (lead_id, RECENT),
        )
    }
    scored = await db.execute_fetchall(
        """SELECT event_id, event_type, occurred_at FROM score_snapshots WHERE lead_id = ?
           ORDER BY occurred_at DESC LIMIT ?""",
        (lead_id, RECENT),
    )
    for event_id, event_type, epoch in scored:
        when = dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat()
        found.setdefault(event_id, {"event_id": event_id, "type": event_type, "occurred_at": when})
    newest = sorted(found.values(), key=lambda e: dt.datetime.fromisoformat(e["occurred_at"]))
    return newest[::-1][:RECENT]


def as_text(record: dict[str, Any]) -> str:
    """The record for a terminal: short sections, newest first."""
    p = record["profile"]
    lines = [f"{p.get('company') or record['lead_id']} ({record['lead_id']})"]
    lines += [f"  {k}: {v}" for k, v in p.items() if k not in ("custom", "deal")]
    lines += [f"  custom.{k}: {v}" for k, v in (p.get("custom") or {}).items()]
    score = record["score"]
    if score:
        lines.append(f"score: {score['value']:.2f} ({score.get('model_version')})")
        lines += [f"  - {r}" for r in score.get("reasons") or []]
    for title, key, fmt in (
        (
            "deals",
            "deals",
            "{deal_id}: {stage} {value} {status} close {close_date} next {next_step}",
        ),
        ("events", "events", "{occurred_at} {type} {event_id}"),
        ("nudges", "nudges", "{created_at} [{state}] {text}"),
        ("open conversations", "open_conversations", "{questionnaire_id} ({status}) {channel}"),
        (
            "answers",
            "answers",
            "{answered_at} {rep_id} {questionnaire_id}/{question_id}: {raw_text}",
        ),
        ("field changes", "field_changes", "{at} {field}: {old} → {new} ({source})"),
        ("notes", "notes", "{received_at} {rep_id}: {text}"),
    ):
        if record[key]:
            lines.append(f"{title}:")
            lines += ["  " + fmt.format_map(_Blank(r)) for r in record[key]]
    return "\n".join(lines)


class _Blank(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "-"
