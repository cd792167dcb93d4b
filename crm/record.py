"""The lead's record: who owns which fact, and the one writer of a lead's fields.

Who owns what (the store is the system of record; everything else is derived):

============================  ===============================  ==========================
fact                          owner (source of truth)          written by
============================  ===============================  ==========================
profile and CRM fields        ``leads.profile_json`` (+ the    :func:`merge_fields` only
(company, owner, deal value,  mirrored columns ``company``,
stage, status, custom.*)      ``owner_rep_id`` …)
deals                         ``deals``                        :func:`merge_fields` only
answers                       ``questionnaire_answers``        ``crm.conversations``
field history                 ``field_changes`` (one row per   :func:`merge_fields` only
                              field a merge changed)
activities and notes          ``activities``, ``activity_      ingest, replies
                              notes``
score, features, counters,    the lead agent's Faust table     the lead agent; its
touches, recent event ids     (``leads``)                      checkpoint ``leads.
                                                               state_json`` is a copy
============================  ===============================  ==========================

Rules that follow from it:

- **A merge, never an overwrite.** :func:`merge_fields` sets only the fields it is given;
  a field it is not given keeps its value. Each field it changes gets one audit row
  (old value, new value, source). Giving the value a field already has changes nothing.
- **A lost table is rebuilt from the store.** When the lead agent meets a lead its table
  does not hold (a new lead, or a table lost with a memory broker), it loads the profile
  from ``profile_json`` and the derived state from its last checkpoint
  (:func:`load_states`); then the event is applied on top. The agent writes back only
  the fields its events set (``lead.*`` from the CRM), and its checkpoint and score
  (:func:`save_states`) — never a whole profile.
- **Deals by id.** ``deal.*`` fields (and the lead's stage, value and status, which are
  its current deal's) address the lead's current deal unless a change names another
  (``deal.deal_id``; deal events may carry one): while the current deal is open, another
  deal's fields go to its own ``deals`` row alone (audited as ``deals.<id>.<field>``);
  once the current deal is won or lost, the deal named next becomes the current one,
  with what the store held about it (:func:`nudge.paths.deal_route`, which the lead
  agent's state follows too).
- **Nudge's own changes are written once.** Answers and playbook ``update_crm`` actions
  are merged here by their writer, then sent on as ``lead.updated`` events with a
  ``nudge.`` source so the score and playbooks see them; the lead agent applies those to
  its table but does not merge them again.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import aiosqlite
from pydantic import BaseModel, ConfigDict

from nudge.paths import (
    DEAL_KEY,
    DEAL_KEYS,
    deal_route,
    get_path,
    implicit_deal_id,
    is_deal_path,
    open_deal,
    profile_key,
    set_path,
)

COLUMNS = ("company", "contact_name", "owner_rep_id", "stage", "status", "deal_value")
"""Profile keys that also have a column of their own in ``leads``."""
VIEW_ONLY = ("lead_id", "last_touch_at")
"""Keys of a lead view that are not profile fields (older databases stored them)."""
NUDGE_SOURCE = "nudge."
"""Events whose source starts with this were merged by their writer before being sent."""


@dataclass(frozen=True)
class Source:
    """Who or what changed a field: recorded on every audit row."""

    kind: str
    """``crm`` (the event's source), ``questionnaire:<id>``, ``playbook:<name>``, ``reply``."""
    at: dt.datetime
    event_id: str | None = None
    questionnaire: str | None = None
    session_id: str | None = None
    question_id: str | None = None
    rep_id: str | None = None


class FieldChange(BaseModel):
    """One audit row: a field's value before and after a merge changed it."""

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
    event_id: str | None = None


async def fetch_one(db: aiosqlite.Connection, sql: str, params: Any = ()) -> Any:
    """The first row of a query (read in one call: see ``crm.store.fetch_one``)."""
    rows = await db.execute_fetchall(sql, params)
    return next(iter(rows), None)


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat()


def clean_profile(raw: dict[str, Any] | None) -> dict[str, Any]:
    """A stored profile without the view-only keys older versions kept in it."""
    return {k: v for k, v in (raw or {}).items() if k not in VIEW_ONLY and v is not None}


async def merge_fields(
    db: aiosqlite.Connection,
    lead_id: str,
    values: dict[str, Any],
    source: Source,
    now: dt.datetime,
) -> list[FieldChange]:
    """Merge ``values`` (field path → value) into the lead's record in one transaction.

    The one writer of a lead's fields: see the module docstring. Returns the changes
    made (one audit row each); an unknown lead is created with just these fields.
    """
    try:
        changes = await merge_in_transaction(db, lead_id, values, source, now)
        await db.commit()
    except BaseException:
        await db.rollback()
        raise
    return changes


async def merge_in_transaction(
    db: aiosqlite.Connection,
    lead_id: str,
    values: dict[str, Any],
    source: Source,
    now: dt.datetime,
) -> list[FieldChange]:
    """:func:`merge_fields` inside the caller's transaction.

    The lead's row is locked by a write before it is read — an insert if it is new, then
    an update — so two merges of one lead (two workers, or the lead agent and an answer)
    run one after the other, each on what the other wrote; in SQLite the write takes the
    database's write lock, in PostgreSQL the row's lock (waited for, never skipped)."""
    await db.execute(
        "INSERT OR IGNORE INTO leads (lead_id, profile_json, updated_at) VALUES (?, '{}', ?)",
        (lead_id, _iso(now)),
    )
    await db.execute("UPDATE leads SET updated_at = ? WHERE lead_id = ?", (_iso(now), lead_id))
    row = await fetch_one(db, "SELECT profile_json FROM leads WHERE lead_id = ?", (lead_id,))
    profile = clean_profile(json.loads(row[0]) if row else None)
    route = deal_route(profile, values, lead_id)
    changes: list[FieldChange] = []
    if route == "other":  # another open deal: its fields go to it alone
        deal_id = values["deal.deal_id"]
        other = {p: v for p, v in values.items() if is_deal_path(p)}
        values = {p: v for p, v in values.items() if not is_deal_path(p)}
        changes += await _merge_other_deal(db, lead_id, deal_id, other, source, now)
    before = (profile.get(DEAL_KEY) or {}).get("deal_id")
    if route == "switch":
        open_deal(profile, values["deal.deal_id"])
        await _load_deal(db, profile, values["deal.deal_id"])
    elif before == implicit_deal_id(lead_id) and values.get("deal.deal_id"):
        await db.execute(  # the deal known so far gets the id its CRM gives it
            "UPDATE deals SET deal_id = ? WHERE deal_id = ?", (values["deal.deal_id"], before)
        )
    for path, value in values.items():
        old = before if path == "deal.deal_id" else get_path(profile, path)
        if old == value:
            continue
        set_path(profile, path, value)
        changes.append(_change(lead_id, path, old, value, source))
    if not changes:
        return []
    await _audit(db, changes, now)
    if any(profile_key(c.field)[0] in DEAL_KEYS for c in changes if c.field in values):
        await _save_deal(db, lead_id, profile, now)
    columns = [profile.get(c) for c in COLUMNS]
    columns[COLUMNS.index("status")] = profile.get("status") or "open"
    await db.execute(
        """INSERT INTO leads (lead_id, company, contact_name, owner_rep_id, stage, status,
             deal_value, profile_json, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (lead_id) DO UPDATE SET company=excluded.company,
             contact_name=excluded.contact_name, owner_rep_id=excluded.owner_rep_id,
             stage=excluded.stage, status=excluded.status, deal_value=excluded.deal_value,
             profile_json=excluded.profile_json, updated_at=excluded.updated_at""",
        (lead_id, *columns, json.dumps(profile, default=str), _iso(now)),
    )
    return changes


def _change(lead_id: str, path: str, old: Any, value: Any, source: Source) -> FieldChange:
    return FieldChange(
        lead_id=lead_id,
        field=path,
        old_value=old,
        new_value=value,
        source=source.kind,
        source_questionnaire=source.questionnaire,
        session_id=source.session_id,
        question_id=source.question_id,
        rep_id=source.rep_id,
        answered_at=source.at,
        event_id=source.event_id,
    )


DEAL_COLUMNS = {
    ("stage",): "stage",
    ("deal_value",): "value",
    ("status",): "status",
    (DEAL_KEY, "name"): "name",
    (DEAL_KEY, "close_date"): "close_date",
    (DEAL_KEY, "next_step"): "next_step",
}
"""Where a deal field lives in a ``deals`` row (others: its custom fields)."""


async def _load_deal(db: aiosqlite.Connection, profile: dict[str, Any], deal_id: str) -> None:
    """Fill the lead's (new) current deal with what the store holds about it."""
    row = await fetch_one(db, "SELECT * FROM deals WHERE deal_id = ?", (deal_id,))
    if row is None:
        return
    for key, column in DEAL_COLUMNS.items():
        if row[column] is not None:
            holder = profile
            for part in key[:-1]:
                holder = holder.setdefault(part, {})
            holder[key[-1]] = row[column]
    custom = json.loads(row["fields_json"] or "{}")
    if custom:
        profile[DEAL_KEY]["custom"] = custom


async def _merge_other_deal(
    db: aiosqlite.Connection,
    lead_id: str,
    deal_id: str,
    values: dict[str, Any],
    source: Source,
    now: dt.datetime,
) -> list[FieldChange]:
    """Merge deal fields into deal ``deal_id`` of the lead, which is not its current deal;
    audited as ``deals.<id>.<field>``."""
    row = await fetch_one(db, "SELECT * FROM deals WHERE deal_id = ?", (deal_id,))
    deal = dict(row) if row else {"status": "open"}
    custom = json.loads(deal.get("fields_json") or "{}")
    changes = []
    for path, value in values.items():
        key = profile_key(path)
        if key == (DEAL_KEY, "deal_id"):
            continue
        column = DEAL_COLUMNS.get(key)
        old = deal.get(column) if column else custom.get(key[-1])
        if old == value:
            continue
        if column:
            deal[column] = value
        else:
            custom[key[-1]] = value
        name = column or f"custom.{key[-1]}"
        changes.append(_change(lead_id, f"deals.{deal_id}.{name}", old, value, source))
    await _upsert_deal(db, deal_id, lead_id, {**deal, "custom": custom}, now)
    return changes


async def _audit(db: aiosqlite.Connection, changes: list[FieldChange], now: dt.datetime) -> None:
    await db.executemany(
        """INSERT INTO field_changes (lead_id, field, old_value_json, new_value_json, source,
             source_questionnaire, session_id, question_id, rep_id, answered_at, recorded_at,
             event_id)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        [
            (
                c.lead_id,
                c.field,
                json.dumps(c.old_value, default=str),
                json.dumps(c.new_value, default=str),
                c.source,
                c.source_questionnaire,
                c.session_id,
                c.question_id,
                c.rep_id,
                _iso(c.answered_at),
                _iso(now),
                c.event_id,
            )
            for c in changes
        ],
    )


async def _save_deal(
    db: aiosqlite.Connection, lead_id: str, profile: dict[str, Any], now: dt.datetime
) -> None:
    """Upsert the lead's current deal (``deals``) from the profile it lives in."""
    deal = profile.setdefault(DEAL_KEY, {})
    deal_id = deal.setdefault("deal_id", implicit_deal_id(lead_id))
    row = {column: _dig(profile, key) for key, column in DEAL_COLUMNS.items()}
    await _upsert_deal(db, deal_id, lead_id, {**row, "custom": deal.get("custom") or {}}, now)


def _dig(profile: dict[str, Any], key: tuple[str, ...]) -> Any:
    node: Any = profile
    for part in key:
        node = node.get(part) if isinstance(node, dict) else None
    return node


async def _upsert_deal(
    db: aiosqlite.Connection, deal_id: str, lead_id: str, deal: dict[str, Any], now: dt.datetime
) -> None:
    """Write one ``deals`` row: ``deal`` by column name (:data:`DEAL_COLUMNS`), ``custom``."""
    await db.execute(
        """INSERT INTO deals (deal_id, lead_id, name, stage, value, close_date, next_step,
             status, fields_json, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (deal_id) DO UPDATE SET name=excluded.name, stage=excluded.stage,
             value=excluded.value, close_date=excluded.close_date,
             next_step=excluded.next_step, status=excluded.status,
             fields_json=excluded.fields_json, updated_at=excluded.updated_at""",
        (
            deal_id,
            lead_id,
            deal.get("name"),
            deal.get("stage"),
            deal.get("value"),
            deal.get("close_date"),
            deal.get("next_step"),
            deal.get("status") or "open",
            json.dumps(deal.get("custom") or {}, default=str),
            _iso(now),
            _iso(now),
        ),
    )


async def deals(db: aiosqlite.Connection, lead_id: str) -> list[dict[str, Any]]:
    """The lead's deals, most recently changed first."""
    rows = await db.execute_fetchall(
        "SELECT * FROM deals WHERE lead_id = ? ORDER BY updated_at DESC", (lead_id,)
    )
    out = []
    for r in rows:
        row = dict(r)
        row["custom"] = json.loads(row.pop("fields_json") or "{}")
        out.append(row)
    return out


@dataclass
class LeadFlush:
    """What the lead agent writes for one lead per flush: the fields its (CRM) events set,
    its score and its derived-state checkpoint."""

    lead_id: str
    fields: list[tuple[dict[str, Any], Source]]
    score: dict[str, Any] | None
    state: dict[str, Any]


async def save_states(
    db: aiosqlite.Connection, flushes: Iterable[LeadFlush], now: dt.datetime
) -> int:
    """Merge the CRM fields, then record score and checkpoint, for many leads in one
    transaction; returns the number of field changes made."""
    changed = 0
    try:
        rows = []
        for flush in flushes:
            for values, source in flush.fields:
                changed += len(await merge_in_transaction(db, flush.lead_id, values, source, now))
            rows.append(
                (
                    flush.lead_id,
                    flush.score["value"] if flush.score else None,
                    flush.score["model_version"] if flush.score else None,
                    json.dumps(flush.state, default=str),
                    json.dumps(flush.score, default=str) if flush.score else None,
                    _iso(now),
                )
            )
        await db.executemany(
            """INSERT INTO leads (lead_id, score, model_version, state_json, score_json,
                 updated_at) VALUES (?, ?, ?, ?, ?, ?)
               ON CONFLICT (lead_id) DO UPDATE SET score=excluded.score,
                 model_version=excluded.model_version, state_json=excluded.state_json,
                 score_json=excluded.score_json, updated_at=excluded.updated_at""",
            rows,
        )
        await db.commit()
    except BaseException:
        await db.rollback()
        raise
    return changed


async def load_states(
    db: aiosqlite.Connection, lead_ids: list[str]
) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """``lead_id → (profile, derived-state checkpoint)`` for the leads the store knows."""
    found: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    for i in range(0, len(lead_ids), 500):
        chunk = lead_ids[i : i + 500]
        rows = await db.execute_fetchall(
            f"SELECT lead_id, profile_json, state_json FROM leads "
            f"WHERE lead_id IN ({','.join('?' * len(chunk))})",
            chunk,
        )
        for lead_id, profile, state in rows:
            found[str(lead_id)] = (
                clean_profile(json.loads(profile)),
                json.loads(state) if state else {},
            )
    return found


async def profile(db: aiosqlite.Connection, lead_id: str) -> dict[str, Any] | None:
    """The lead's profile as the store holds it (``None``: unknown lead)."""
    row = await fetch_one(db, "SELECT profile_json FROM leads WHERE lead_id = ?", (lead_id,))
    return clean_profile(json.loads(row[0])) if row else None
