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

Answers change a lead's fields only through the record's one writer,
:func:`crm.record.merge_in_transaction` (a merge with an audit row per field), in the
same transaction as the answers themselves.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import aiosqlite

from crm.record import FieldChange, Source, merge_in_transaction
from crm.store import fetch_one
from nudge.events import LeadFields, LeadUpdated
from nudge.paths import profile_key
from playbooks.conversation import (
    ApplyAnswers,
    AttachNote,
    RepConversations,
    Session,
    Step,
)
from playbooks.replies import Prompt


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


async def asked_since(db: aiosqlite.Connection, rep_id: str, since: dt.datetime) -> int:
    """How many questionnaires were put to the rep (opened, queued or done) since ``since``."""
    row = await fetch_one(
        db,
        "SELECT COUNT(*) FROM conversation_sessions WHERE rep_id = ? AND requested_at >= ?",
        (rep_id, _iso(since)),
    )
    return int(row[0]) if row else 0


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
    changes: list[FieldChange] = []
    for answer in fresh:
        assert answer.field is not None
        source = Source(
            kind=f"questionnaire:{apply.questionnaire_id}",
            at=answer.answered_at,
            questionnaire=apply.questionnaire_id,
            session_id=apply.session_id,
            question_id=answer.question_id,
            rep_id=apply.rep_id,
        )
        changes += await merge_in_transaction(
            db, apply.lead_id, {answer.field: answer.value}, source, now
        )
    return changes


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
        value = change.new_value
        if key == ("deal_value",) and isinstance(value, float):
            value = round(value, 2)  # LeadFields: cents at most
        holder = fields
        for part in key[:-1]:
            holder = holder.setdefault(part, {})
        holder[key[-1]] = value
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
    """Keep a text outside any questionnaire as a note on ``note.lead_id`` — on that lead's
    latest activity with this rep, if any — and return (activity_id, lead_id). A note whose
    lead is not known (``lead_id`` None) is kept unattached: never guessed."""
    activity_id = None
    if note.lead_id is not None:
        row = await fetch_one(
            db,
            # occurred_at is ISO text in UTC, as ingest writes it: orders as text
            """SELECT activity_id FROM activities WHERE rep_id = ? AND lead_id = ?
               ORDER BY occurred_at DESC LIMIT 1""",
            (note.rep_id, note.lead_id),
        )
        activity_id = row[0] if row else None
    await db.execute(
        """INSERT OR IGNORE INTO activity_notes (note_id, rep_id, activity_id, lead_id, channel,
             text, received_at, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
        (
            note.note_id,
            note.rep_id,
            activity_id,
            note.lead_id,
            note.channel,
            note.text,
            _iso(note.received_at),
            _iso(now),
        ),
    )
    await db.commit()
    return activity_id, note.lead_id


async def delivered_prompts(
    db: aiosqlite.Connection, rep_id: str, channel: str, since: dt.datetime
) -> list[Prompt]:
    """What was delivered to the rep on ``channel`` since ``since`` that a reply may answer,
    newest first (``playbooks.replies``): questions, nudges, digests (one prompt per lead
    they name) and "which one?" questions — not acknowledgements."""
    rows = await db.execute_fetchall(
        """SELECT o.nudge_id, o.playbook, o.rule, o.lead_id, o.command_json,
                  COALESCE(o.sent_at, o.updated_at) AS at
           FROM outbox o WHERE o.rep_id = ? AND o.channel = ? AND o.state IN ('sent', 'delivered')
             AND COALESCE(o.sent_at, o.updated_at) >= ?
           ORDER BY at DESC, o.rowid DESC LIMIT 50""",
        (rep_id, channel, _iso(since)),
    )
    found: list[tuple[str, str, dt.datetime, str | None, str | None, str | None]] = []
    for nudge_id, playbook, rule, lead_id, command, at in rows:
        when = dt.datetime.fromisoformat(at)
        if playbook == "questionnaire":
            kind = "closing" if str(nudge_id).endswith(":end") else "question"
            found.append((nudge_id, kind, when, lead_id if lead_id != "-" else None, rule, None))
        elif playbook == "reply":
            if rule == "which":
                found.append((nudge_id, "which", when, None, None, None))
        elif rule == "digest":
            about = json.loads(command).get("about") or [lead_id]
            found += [(nudge_id, "digest", when, lead, None, None) for lead in about]
        else:
            code = json.loads(command).get("code")
            found.append((nudge_id, "nudge", when, lead_id, None, code))
    owned = await db.execute_fetchall(
        """SELECT lead_id FROM leads WHERE owner_rep_id = ? AND company IS NOT NULL
           UNION SELECT lead_id FROM activities WHERE rep_id = ? AND lead_id IS NOT NULL
           LIMIT 1000""",
        (rep_id, rep_id),
    )
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    found += [(f"known:{r[0]}", "known", epoch, str(r[0]), None, None) for r in owned]
    companies = await companies_of(db, {f[3] for f in found if f[3]})
    return [
        Prompt(
            message_id=nudge_id,
            kind=kind,  # type: ignore[arg-type]
            sent_at=when,
            lead_id=lead,
            company=companies.get(lead) if lead else None,
            session_id=session if kind == "question" else None,
            code=code,
        )
        for nudge_id, kind, when, lead, session, code in found
    ]


async def companies_of(db: aiosqlite.Connection, lead_ids: set[str]) -> dict[str, str]:
    """``lead_id → company`` for those of ``lead_ids`` the store has a company for."""
    if not lead_ids:
        return {}
    ids = sorted(lead_ids)
    rows = await db.execute_fetchall(
        f"SELECT lead_id, company FROM leads WHERE lead_id IN ({','.join('?' * len(ids))})", ids
    )
    return {str(r[0]): str(r[1]) for r in rows if r[1]}


async def notes_for(db: aiosqlite.Connection, activity_id: str) -> list[dict[str, Any]]:
    rows = await db.execute_fetchall(
        "SELECT * FROM activity_notes WHERE activity_id = ? ORDER BY received_at", (activity_id,)
    )
    return [dict(r) for r in rows]
