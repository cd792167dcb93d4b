"""A portal's history as point-in-time Nudge events, for ``nudge model train --events``.

    contacts  → lead.created at each contact's createdate (mapped fields, owner)
    deals     → deal.stage_changed / deal.won / deal.lost at each ``dealstage`` change
                (the property's history), for every contact on the deal
    calls     → call.ended at ``hs_timestamp`` with its duration, for every contact on it

Lists are read page by page through ``/crm/v3/objects/{type}`` (no search, which stops
at 10,000 results), with association ids and property history on the same page.
Event ids are ``hubspot:backfill:...`` and lead ids ``hubspot-<contact id>``, the same
leads the live webhooks name. Events before ``since`` are left out.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from typing import Any

from connectors.fieldmap import FieldMap
from connectors.hubspot import (
    LOST,
    WON,
    HubSpot,
    Notification,
    contact_event,
    contact_properties,
    lead_id,
)
from nudge.errors import ConfigError

Progress = Callable[[str, int], None]


def parse_since(text: str, now: dt.datetime) -> dt.datetime:
    """``2y``, ``18m``, ``90d`` (before ``now``) or an ISO date."""
    match = re.fullmatch(r"(\d+)([ymd])", text.strip())
    if match:
        n, unit = int(match[1]), match[2]
        return now - dt.timedelta(days=n * {"y": 365, "m": 30, "d": 1}[unit])
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            f"--since {text!r}: use 2y, 18m, 90d or a date such as 2024-01-31"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def pages(
    hs: HubSpot,
    object_type: str,
    properties: list[str],
    *,
    history: list[str] | None = None,
    associations: list[str] | None = None,
) -> Iterator[Any]:
    after: str | None = None
    while True:
        kwargs: dict[str, Any] = {"limit": 50 if history else 100, "properties": properties}
        if after:
            kwargs["after"] = after
        if history:
            kwargs["properties_with_history"] = history
        if associations:
            kwargs["associations"] = associations
        page = hs._call(hs.client.crm.objects.basic_api.get_page, object_type, **kwargs)
        yield from page.results or []
        nxt = page.paging.next if page.paging else None
        if not nxt or not nxt.after:
            return
        after = nxt.after


def _when(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if not value:
        return None
    text = str(value)
    if text.isdigit():
        return dt.datetime.fromtimestamp(int(text) / 1000, dt.UTC)
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _contacts_of(obj: Any) -> list[str]:
    assoc = (obj.associations or {}).get("contacts")
    return [str(a.id) for a in (assoc.results if assoc else []) or []]


def events(
    hs: HubSpot, fmap: FieldMap, since: dt.datetime, progress: Progress
) -> Iterator[dict[str, Any]]:
    """Every event of the portal's history since ``since``, object type by object type."""
    n = 0
    for obj in pages(hs, "contacts", [*contact_properties(fmap), "createdate"]):
        created = _when(obj.properties.get("createdate")) or _when(obj.created_at)
        n += 1
        if n % 500 == 0:
            progress("contacts", n)
        if created is None or created < since:
            continue
        note = Notification(
            f"backfill:contact:{obj.id}", "contact", "creation", str(obj.id), created
        )
        yield contact_event(note, obj.properties, fmap)
    progress("contacts", n)
    n = 0
    for obj in pages(
        hs, "deals", ["dealstage", "amount"], history=["dealstage"], associations=["contacts"]
    ):
        n += 1
        if n % 500 == 0:
            progress("deals", n)
        contacts = _contacts_of(obj)
        changes = sorted(
            (
                (_when(v.timestamp), v.value)
                for v in (obj.properties_with_history or {}).get("dealstage", []) or []
            ),
            key=lambda c: c[0] or since,
        )
        previous = None
        for i, (when, stage) in enumerate(changes):
            if when is None or not stage:
                continue
            for cid in contacts:
                if when < since:
                    continue
                base = {
                    "event_id": f"hubspot:backfill:deal:{obj.id}:{i}:{cid}",
                    "occurred_at": when.isoformat(),
                    "source": "hubspot",
                    "lead_id": lead_id(cid),
                }
                if stage in WON:
                    amount = obj.properties.get("amount")
                    yield {**base, "type": "deal.won", **({"amount": amount} if amount else {})}
                elif stage in LOST:
                    yield {**base, "type": "deal.lost"}
                else:
                    yield {
                        **base,
                        "type": "deal.stage_changed",
                        "to_stage": stage,
                        **({"from_stage": previous} if previous else {}),
                    }
            previous = stage
    progress("deals", n)
    n = 0
    for obj in pages(
        hs,
        "calls",
        ["hs_timestamp", "hs_call_duration", "hs_call_direction"],
        associations=["contacts"],
    ):
        n += 1
        if n % 500 == 0:
            progress("calls", n)
        when = _when(obj.properties.get("hs_timestamp")) or _when(obj.created_at)
        if when is None or when < since:
            continue
        try:
            seconds = float(obj.properties.get("hs_call_duration") or 0) / 1000
        except ValueError:
            seconds = 0.0
        inbound = obj.properties.get("hs_call_direction") == "INBOUND"
        for cid in _contacts_of(obj):
            yield {
                "type": "call.ended",
                "event_id": f"hubspot:backfill:call:{obj.id}:{cid}",
                "occurred_at": when.isoformat(),
                "source": "hubspot",
                "lead_id": lead_id(cid),
                "duration_s": min(seconds, 7 * 24 * 3600),
                "direction": "inbound" if inbound else "outbound",
            }
    progress("calls", n)


def current(
    hs: HubSpot, fmap: FieldMap, now: dt.datetime
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The initial load: every contact as it is now (source ``hubspot.initial``: it updates the
    record and score but fires no rule), and each deal's contacts (lead id → deal id), so
    answers about a deal can be written back before the deal changes."""
    events = []
    for obj in pages(hs, "contacts", [*contact_properties(fmap), "lastmodifieddate"]):
        when = _when(obj.properties.get("lastmodifieddate")) or _when(obj.updated_at) or now
        note = Notification(f"initial:{obj.id}", "contact", "update", str(obj.id), min(when, now))
        event = contact_event(note, obj.properties, fmap)
        event["source"] = "hubspot.initial"
        events.append(event)
    deals: dict[str, str] = {}
    for obj in pages(hs, "deals", ["dealstage"], associations=["contacts"]):
        for cid in _contacts_of(obj):
            deals[lead_id(cid)] = str(obj.id)
    return events, deals
