"""Conversation storage: sessions, answers, the field-change audit trail, notes.

Functions take the CRM store's connection (``store.db``) rather than extending
:class:`crm.store.Store`, so this module can grow without touching the store.
Tables come from ``migrations/0005_conversations.sql``.

Every write is idempotent, because Kafka redelivers:

- :func:`apply_answers` inserts each answer keyed by (session, question); an answer
  already there is not applied again, so a replayed :class:`ApplyAnswers` neither
  changes a field twice nor adds a second audit row.
- :func:`attach_note` is keyed by the reply's id.
- :func:`save_step` upserts session rows and the rep's handled ids.

The agent's order is: carry out a step's instructions (all idempotent), then
:func:`save_step`, then commit the Kafka offset. A crash in between replays the
same input against the old state, which yields the same ids, which are no-ops.

Field paths map onto the lead's ``profile_json`` via
:func:`playbooks.questionnaire.profile_key`; ``stage``, ``deal_value``, ``company``
and ``contact_name`` are also mirrored into their columns, as ``Store.save_lead`` does.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import aiosqlite
from pydantic import BaseModel, ConfigDict

from crm.store import fetch_one
from nudge.events import LeadFields, LeadUpdated
from playbooks.conversation import (
    ApplyAnswers,
    AttachNote,
    RepConversations,
    Session,
    Step,
)
from playbooks.questionnaire import profile_key

COLUMNS = ("company", "contact_name", "stage", "deal_value")
"""Profile keys that also have a column of their own in ``leads``."""


class FieldChange(BaseModel):
    """One audit row: a field's value before and after an answer changed it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lead_id: str
    field: str
    old_value: Any
    new_value: Any
    source: str
    source_questionnaire: str | None
    session_id: str | None
    question_id: str | None
    rep_id: str | None
    answered_at: dt.datetime


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat()


async def _in_transaction(db: aiosqlite.Connection) -> None:
    await db.execute("BEGIN IMMEDIATE")


# --- sessions --------------------------------------------------------------------------


async def save_step(db: aiosqlite.Connection, step: Step, now: dt.datetime) -> None:
    """Persist the sessions a step changed and the rep's handled ids, in one transaction."""
    await _in_transaction(db)
    try:
        for session in step.changed:
            await _upsert_session(db, session, now)
        await db.execute(
            """INSERT INTO conversation_reps (rep_id, recent_ids_json, updated_at)
               VALUES (?, ?, ?)
               ON CONFLICT (rep_id) DO UPDATE SET recent_ids_json=excluded.recent_ids_json,
                 updated_at=excluded.updated_at""",
            (step.state.rep_id, json.dumps(step.state.recent_ids), _iso(now)),
        )
        await db.commit()
    except BaseException:
        await db.rollback()
        raise


async def _upsert_session(db: aiosqlite.Connection, session: Session, now: dt.datetime) -> None:
    req = session.request
    await db.execute(
        """INSERT INTO conversation_sessions (session_id, rep_id, channel, questionnaire_id,
             lead_id, request_id, status, session_json, requested_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (session_id) DO UPDATE SET status=excluded.status,
             session_json=excluded.session_json, updated_at=excluded.updated_at""",
        (
            session.session_id,
            req.rep_id,
            req.channel,
            session.questionnaire.id,
            req.lead_id,
            req.request_id,
            session.status,
            session.model_dump_json(),
            _iso(req.requested_at),
            _iso(now),
        ),
    )


async def load_state(db: aiosqlite.Connection, rep_id: str) -> RepConversations:
    """A rep's open sessions (active and queued, oldest first) and handled ids."""
    rows = await db.execute_fetchall(
        """SELECT session_json FROM conversation_sessions
           WHERE rep_id = ? AND status IN ('active', 'queued')
           ORDER BY requested_at, rowid""",
        (rep_id,),
    )
    sessions = [Session.model_validate_json(r[0]) for r in rows]
    row = await fetch_one(
        db, "SELECT recent_ids_json FROM conversation_reps WHERE rep_id = ?", (rep_id,)
    )
    recent = json.loads(row[0]) if row else []
    return RepConversations(rep_id=rep_id, sessions=sessions, recent_ids=recent)


async def get_session(db: aiosqlite.Connection, session_id: str) -> Session | None:
    row = await fetch_one(
        db, "SELECT session_json FROM conversation_sessions WHERE session_id = ?", (session_id,)
    )
    return Session.model_validate_json(row[0]) if row else None


# --- answers and the audit trail ---------------------------------------------------------


async def apply_answers(
    db: aiosqlite.Connection, apply: ApplyAnswers, now: dt.datetime
) -> list[FieldChange]:
    """Store the answers and write them to the lead's fields; return the changes made.

    Answers with no field, or no lead, are stored but change nothing. An answer equal
    to the field's current value is stored without an audit row (nothing changed).
    A lead the store has never seen is created with just these fields.
    """
    await _in_transaction(db)
    try:
        changes = await _apply(db, apply, now)
        await db.commit()
    except BaseException:
        await db.rollback()
        raise
    return changes


async def _apply(
    db: aiosqlite.Connection, apply: ApplyAnswers, now: dt.datetime
) -> list[FieldChange]:
    fresh = []
    for answer in apply.answers:
        cur = await db.execute(
            """INSERT OR IGNORE INTO questionnaire_answers (session_id, question_id,
                 questionnaire_id, rep_id, lead_id, field, value_json, raw_text, answered_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (
                apply.session_id,
                answer.question_id,
                apply.questionnaire_id,
                apply.rep_id,
                apply.lead_id,
                answer.field,
                json.dumps(answer.value),
                answer.raw,
                _iso(answer.answered_at),
            ),
        )
        if cur.rowcount == 1 and answer.field:
            fresh.append(answer)
    if not fresh or apply.lead_id is None:
        return []
    row = await fetch_one(db, "SELECT profile_json FROM leads WHERE lead_id = ?", (apply.lead_id,))
    profile: dict[str, Any] = json.loads(row[0]) if row else {"lead_id": apply.lead_id}
    changes = []
    for answer in fresh:
        assert answer.field is not None
        key = profile_key(answer.field)
        holder = profile
        for part in key[:-1]:
            holder = holder.setdefault(part, {})
        old = holder.get(key[-1])
        if old == answer.value:
            continue
        holder[key[-1]] = answer.value
        change = FieldChange(
            lead_id=apply.lead_id,
            field=answer.field,
            old_value=old,
            new_value=answer.value,
            source=f"questionnaire:{apply.questionnaire_id}",
            source_questionnaire=apply.questionnaire_id,
            session_id=apply.session_id,
            question_id=answer.question_id,
            rep_id=apply.rep_id,
            answered_at=answer.answered_at,
        )
        changes.append(change)
        await db.execute(
            """INSERT INTO field_changes (lead_id, field, old_value_json, new_value_json, source,
                 source_questionnaire, session_id, question_id, rep_id, answered_at, recorded_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (
                change.lead_id,
                change.field,
                json.dumps(old, default=str),
                json.dumps(change.new_value, default=str),
                change.source,
                change.source_questionnaire,
                change.session_id,
                change.question_id,
                change.rep_id,
                _iso(change.answered_at),
                _iso(now),
            ),
        )
    if changes:
        await _write_profile(db, apply.lead_id, profile, exists=row is not None, now=now)
    return changes


async def _write_profile(
    db: aiosqlite.Connection,
    lead_id: str,
    profile: dict[str, Any],
    *,
    exists: bool,
    now: dt.datetime,
) -> None:
    values = [profile.get(c) for c in COLUMNS]
    if exists:
        await db.execute(
            """UPDATE leads SET company=?, contact_name=?, stage=?, deal_value=?,
                 profile_json=?, updated_at=? WHERE lead_id=?""",
            (*values, json.dumps(profile, default=str), _iso(now), lead_id),
        )
    else:
        await db.execute(
            """INSERT INTO leads (company, contact_name, stage, deal_value, profile_json,
                 updated_at, lead_id) VALUES (?, ?, ?, ?, ?, ?, ?)""",
            (*values, json.dumps(profile, default=str), _iso(now), lead_id),
        )


async def field_changes(db: aiosqlite.Connection, lead_id: str) -> list[FieldChange]:
    """The audit trail of one lead, oldest first."""
    rows = await db.execute_fetchall(
        """SELECT lead_id, field, old_value_json, new_value_json, source, source_questionnaire,
                  session_id, question_id, rep_id, answered_at
           FROM field_changes WHERE lead_id = ? ORDER BY answered_at, change_id""",
        (lead_id,),
    )
    return [
        FieldChange(
            lead_id=r[0],
            field=r[1],
            old_value=json.loads(r[2]) if r[2] is not None else None,
            new_value=json.loads(r[3]) if r[3] is not None else None,
            source=r[4],
            source_questionnaire=r[5],
            session_id=r[6],
            question_id=r[7],
            rep_id=r[8],
            answered_at=dt.datetime.fromisoformat(r[9]),
        )
        for r in rows
    ]


def lead_fields_update(changes: list[FieldChange]) -> dict[str, Any]:
    """The changes as a ``nudge.events.LeadFields`` mapping, for a ``lead.updated`` event.

    That event, sent back into ``lead.activity``, is how an answer reaches the lead's
    state, its score and the playbooks.
    """
    fields: dict[str, Any] = {}
    for change in changes:
        key = profile_key(change.field)
        if key == ("deal_value",) and isinstance(change.new_value, float):
            fields["deal_value"] = round(change.new_value, 2)  # LeadFields: cents at most
        elif len(key) == 1:
            fields[key[0]] = change.new_value
        else:
            fields.setdefault("custom", {})[key[1]] = change.new_value
    return fields


def lead_updated_event(apply: ApplyAnswers, changes: list[FieldChange]) -> LeadUpdated | None:
    """The ``lead.updated`` event to produce to ``lead.activity`` (None: nothing changed).

    Its id is derived from the session, so re-applying after a crash produces the same
    event id and ingest's de-duplication drops the repeat.
    """
    if not changes or apply.lead_id is None:
        return None
    return LeadUpdated(
        type="lead.updated",
        event_id=f"{apply.session_id}:answers",
        occurred_at=max(c.answered_at for c in changes),
        source=f"nudge.questionnaire.{apply.questionnaire_id}",
        lead_id=apply.lead_id,
        fields=LeadFields.model_validate(lead_fields_update(changes)),
    )


# --- notes -----------------------------------------------------------------------------


async def attach_note(
    db: aiosqlite.Connection, note: AttachNote, now: dt.datetime
) -> tuple[str | None, str | None]:
    """Attach a stray text to the rep's latest activity; return (activity_id, lead_id)."""
    row = await fetch_one(
        db,
        # occurred_at is ISO text; ordering it as text assumes one offset (UTC), as ingest writes
        """SELECT activity_id, lead_id FROM activities
           WHERE rep_id = ? ORDER BY occurred_at DESC LIMIT 1""",
        (note.rep_id,),
    )
    activity_id, lead_id = (row[0], row[1]) if row else (None, None)
    await db.execute(
        """INSERT OR IGNORE INTO activity_notes (note_id, rep_id, activity_id, lead_id, channel,
             text, received_at, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
        (
            note.note_id,
            note.rep_id,
            activity_id,
            lead_id,
            note.channel,
            note.text,
            _iso(note.received_at),
            _iso(now),
        ),
    )
    await db.commit()
    return activity_id, lead_id


async def notes_for(db: aiosqlite.Connection, activity_id: str) -> list[dict[str, Any]]:
    rows = await db.execute_fetchall(
        "SELECT * FROM activity_notes WHERE activity_id = ? ORDER BY received_at", (activity_id,)
    )
    return [dict(r) for r in rows]
