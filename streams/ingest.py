"""Ingest's work on one batch of inbound records: validate, resolve identities, forward by lead.

The batches come from :mod:`streams.intake`, which reads the inbound topics with
aiokafka (not through a Faust agent) and commits their offsets after this work's
envelopes are acknowledged.

Identity work is done for the whole batch at once — one query for the
identities the cache does not know, one commit for the links events make (with
the unmatched activities each link claims), one commit for what stays unmatched
— so SQLite costs a few round trips per batch, not one or more per event.

Order is what the lead agent needs: the events that name their lead are
forwarded first and are on the broker before the links they make are written,
then the unmatched events those links claim, then the events that name their
lead only by email, phone or visitor id — so a lead's profile (its owner) comes
before them, in this worker and in any other that resolves through the link.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, TypeAlias

from aiokafka.structs import ConsumerRecord

from crm.store import normalise_identity
from nudge.errors import EventRejected
from nudge.events import LeadEvent, RepUpserted, event_to_json, parse_event
from nudge.logs import get_logger
from streams.batching import Envelopes
from streams.pipeline import Pipeline
from streams.rejections import reject

log = get_logger(__name__)

IDENTITY_CACHE_MAX = 200_000
"""Identities kept in the worker's read-through cache of the contacts table."""

IDENTITY_KINDS = (("email", "email"), ("phone", "phone"), ("visitor_id", "visitor"))
"""(event attribute, identity kind)."""

Ident = tuple[str, str]
"""(kind, normalised value)."""

Record: TypeAlias = ConsumerRecord[bytes, bytes]
"""An inbound record as intake reads it: value, topic, partition and offset are used."""


def identities(event: LeadEvent) -> list[Ident]:
    """The event's identities, normalised, in order of preference."""
    return [
        (kind, normalise_identity(kind, value))
        for attr, kind in IDENTITY_KINDS
        if (value := getattr(event, attr))
    ]


@dataclass
class Accepted:
    record: Record
    event: LeadEvent
    lead_id: str | None = None


async def ingest_batch(p: Pipeline, records: list[Record], out: Envelopes) -> list[tuple[str, str]]:
    """Validate and route one batch of inbound records (see the module docstring).

    Returns the unmatched activities the batch's links claimed, ``(lead_id,
    activity_id)``, to be marked claimed once ``out`` is flushed.
    """
    accepted = [a for r in records if (a := await _validate(p, r)) is not None]
    if not accepted:
        return []
    store = await p.store()
    cache = p.identities
    if len(cache) > IDENTITY_CACHE_MAX:
        cache.clear()

    # 1. events that name their lead go first, and are on the broker before the links
    #    they make are written: another worker that resolves through a link then finds
    #    the lead's record (its owner) already ahead of what it forwards
    links: dict[Ident, str] = {}
    for a in accepted:
        if a.event.lead_id:
            a.lead_id = a.event.lead_id
            await _forward(p, a, out)
            for ident in identities(a.event):
                if cache.get(ident) != a.lead_id and ident not in links:
                    links[ident] = a.lead_id
    claims: list[tuple[str, str]] = []
    if links:
        await out.flush()
        await store.link_identities(links)
        cache.update(links)
        claims += _forward_waiting(p, await store.waiting(links), links, out)

    # 2. events that do not name their lead: the cache, then one query for the rest
    rest = [a for a in accepted if a.lead_id is None]
    unknown = {ident for a in rest for ident in identities(a.event) if ident not in cache}
    if unknown:
        cache.update(await store.resolve_many(sorted(unknown)))
    unmatched: list[Accepted] = []
    for a in rest:
        a.lead_id = next((cache[i] for i in identities(a.event) if i in cache), None)
        if a.lead_id is None:
            unmatched.append(a)
        else:
            await _forward(p, a, out)
    if unmatched:
        claims += await _keep_unmatched(p, unmatched, out)
    return claims


def _forward_waiting(
    p: Pipeline,
    waiting: dict[Ident, list[tuple[str, dict[str, Any]]]],
    lead_of: dict[Ident, str],
    out: Envelopes,
) -> list[tuple[str, str]]:
    """Forward activities that waited for their identity; the claims to mark once sent."""
    claims = []
    for ident, found in waiting.items():
        lead_id = lead_of[ident]
        for activity_id, detail in found:
            p.stats["events.late_matched"] += 1
            out.add(p.activity, lead_id.encode(), event_to_json(_claimed(detail, lead_id)))
            claims.append((lead_id, activity_id))
    return claims


async def _validate(p: Pipeline, record: Record) -> Accepted | None:
    """The event, or ``None`` for a rejected record (dead-lettered) or a rep (stored)."""
    raw = record.value or b""
    topic = record.topic
    p.stats["events.in"] += 1
    try:
        parsed = parse_event(raw)
    except EventRejected as exc:
        p.metrics.events.labels(topic, "rejected").inc()
        await reject(
            p,
            exc,
            raw,
            source="kafka",
            topic=topic,
            partition=record.partition,
            offset=record.offset,
        )
        return None
    if isinstance(parsed, RepUpserted):
        await (await p.store()).upsert_rep(parsed)
        p.stats["events.accepted"] += 1
        p.stats["reps.upserted"] += 1
        p.metrics.events.labels(topic, "accepted").inc()
        return None
    return Accepted(record, parsed)


async def _forward(p: Pipeline, a: Accepted, out: Envelopes) -> None:
    lead_id = a.lead_id
    assert lead_id
    event = a.event
    if event.lead_id != lead_id:
        event = event.model_copy(update={"lead_id": lead_id})
    if event.silo == "call":
        await log_call(p, event, lead_id)
    p.stats["events.accepted"] += 1
    p.metrics.events.labels(a.record.topic, "accepted").inc()
    out.add(p.activity, lead_id.encode(), event_to_json(event))


async def _keep_unmatched(
    p: Pipeline, unmatched: list[Accepted], out: Envelopes
) -> list[tuple[str, str]]:
    """Store events no lead is known for, to be claimed when one is linked.

    Then check once more whether one of their identities was linked meanwhile by
    another worker — between our look-up and our insert, that worker's search for
    waiting events saw nothing — and forward those (a duplicate forward is dropped
    by event id); returns their claims, to be marked once they are sent.
    """
    store = await p.store()
    for a in unmatched:
        p.stats["events.unmatched"] += 1
        p.metrics.events.labels(a.record.topic, "unmatched").inc()
    await store.log_unmatched(
        [
            (e.event_id, e.type, e.occurred_at, e.model_dump(mode="json", exclude_none=True))
            for e in (a.event for a in unmatched)
        ]
    )
    idents = sorted({ident for a in unmatched for ident in identities(a.event)})
    linked = await store.resolve_many(idents)
    if not linked:
        return []
    return _forward_waiting(p, await store.waiting(linked), linked, out)


def _claimed(detail: dict[str, Any], lead_id: str) -> LeadEvent:
    """An unmatched activity's event (as stored), now about ``lead_id``."""
    event = parse_event({**detail, "lead_id": lead_id})
    assert not isinstance(event, RepUpserted)
    return event


async def log_call(p: Pipeline, event: LeadEvent, lead_id: str) -> None:
    """Calls and meetings are logged as CRM activities (and announced on crm.updates)."""
    detail = event.model_dump(mode="json", exclude_none=True)
    new = await (await p.store()).log_activity(
        event.event_id,
        lead_id,
        event.type,
        event.occurred_at,
        rep_id=getattr(event, "rep_id", None),
        duration_s=getattr(event, "duration_s", None),
        detail=detail,
    )
    if new:
        p.stats["activities.logged"] += 1
        update = {"kind": "activity", "lead_id": lead_id, "activity": detail}
        await p.crm_updates.send(
            force=True, key=lead_id.encode(), value=json.dumps(update).encode()
        )
