"""``nudge connect check|backfill|status``: is the CRM wired right, its history, what was written.

``check`` loads the field map (``NUDGE_HUBSPOT_FIELD_MAP`` or the bundled one), reads
the portal's property definitions with the access token, and reports every mapped
property that does not exist or whose type differs, as ``file:line: ...``; it also
checks that calls and notes have the ``nudge_update_id`` property that keeps
engagements from being written twice. Exit 0 when all is well, 1 with problems.

``backfill`` reads the portal's history since ``--since`` (contacts, deal stage
history, calls; :mod:`connectors.hubspot_backfill`) into an NDJSON file of
validated events in time order, printing progress, for ``nudge model train --events``.

``status`` lists what the connector agents recorded for each ``crm.updates``
message: pending (with the next try and the last error), done (with the CRM's id),
failed (the CRM refused it: the reason) or ignored (why nothing was written).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from connectors import hubspot, salesforce
from connectors.fieldmap import FieldMap
from connectors.hubspot_backfill import events, parse_since
from crm.connector_state import STATES, ConnectorState
from crm.store import Store
from nudge.errors import ConfigError, EventRejected
from nudge.events import event_to_json, parse_event
from nudge.settings import Settings
from streams.crm_connectors import DEFAULT_FIELD_MAP, SALESFORCE_FIELD_MAP, salesforce_client

OBJECT_TYPES = {"contact": "contacts", "deal": "deals"}


def register(sub: Any) -> None:
    connect = sub.add_parser("connect", help="check a CRM connection; list what was written to it")
    cp = connect.add_subparsers(dest="connect_command", metavar="SUBCOMMAND", required=True)
    check = cp.add_parser("check", help="check the field map against the CRM's properties")
    check.add_argument("system", choices=["hubspot", "salesforce"])
    check.add_argument("--map", help="field map YAML (default: the CRM's setting or bundled)")
    check.set_defaults(func=_check)
    backfill = cp.add_parser("backfill", help="read the CRM's history into an NDJSON event file")
    backfill.add_argument("system", choices=["hubspot", "salesforce"])
    backfill.add_argument("--since", default="2y", help="how far back: 2y, 18m, 90d or a date (2y)")
    backfill.add_argument(
        "--out", required=True, type=Path, help="NDJSON file to write (mode 0600)"
    )
    backfill.add_argument(
        "--map", help="field map YAML (default: NUDGE_HUBSPOT_FIELD_MAP or bundled)"
    )
    backfill.set_defaults(func=_backfill)
    status = cp.add_parser("status", help="each update bound for a CRM and its state")
    status.add_argument("--system", default=None, help="only this CRM (hubspot)")
    status.add_argument("--state", choices=STATES, default=None)
    status.add_argument("--limit", type=int, default=50)
    status.add_argument("--json", action="store_true", help="one JSON record per line")
    status.set_defaults(func=_status)


def problems(
    fmap: FieldMap,
    types: dict[str, dict[str, str]],
    *,
    crm: str = "HubSpot",
    objects: dict[str, str] = OBJECT_TYPES,
) -> list[str]:
    """Every mapping the CRM cannot take, as ``file:line: ...`` (pure: ``types`` per object)."""
    out = []
    for m in sorted(fmap.fields.values(), key=lambda m: m.line):
        known = types.get(objects[m.object], {})
        where = f"{fmap.path}:{m.line}: {m.field}"
        if m.property not in known:
            out.append(f"{where}: {crm} has no {objects[m.object]} field {m.property!r}")
        elif known[m.property] != m.type:
            out.append(
                f"{where}: {m.property!r} is of type {known[m.property]!r} in {crm}; "
                f"the map says {m.type!r}"
            )
    return out


def _connect(args: Any) -> tuple[hubspot.HubSpot, FieldMap]:
    settings = Settings()
    if settings.hubspot_access_token is None:
        raise ConfigError(
            "set HUBSPOT_ACCESS_TOKEN (a private app token with crm.objects and crm.schemas scopes)"
        )
    path = Path(args.map) if args.map else settings.hubspot_field_map or DEFAULT_FIELD_MAP
    fmap = FieldMap.load(path)
    token = settings.hubspot_access_token.get_secret_value()
    return hubspot.HubSpot(token, settings.hubspot_api_url), fmap


def _hubspot_check(args: Any) -> tuple[FieldMap, list[str]]:
    hs, fmap = _connect(args)
    types = {t: hs.property_types(t) for t in ("contacts", "deals", "calls", "notes")}
    found = problems(fmap, types)
    for engagement in ("calls", "notes"):
        if hubspot.MARKER not in types.get(engagement, {}):
            found.append(
                f"HubSpot {engagement} have no {hubspot.MARKER!r} property: create it (a single-line "
                "text property) so a retried write is recognised and not logged twice"
            )
    return fmap, found


def _salesforce(args: Any) -> tuple[salesforce.Salesforce, FieldMap]:
    settings = Settings()
    sf = salesforce_client(settings)
    if sf is None:
        raise ConfigError("set SALESFORCE_INSTANCE_URL and SALESFORCE_ACCESS_TOKEN")
    path = Path(args.map) if args.map else settings.salesforce_field_map or SALESFORCE_FIELD_MAP
    return sf, FieldMap.load(path)


def _salesforce_check(args: Any) -> tuple[FieldMap, list[str]]:
    sf, fmap = _salesforce(args)
    types = {o: salesforce.field_types(sf, o) for o in ("Lead", "Opportunity", "Task")}
    found = problems(
        fmap, types, crm="Salesforce", objects={"contact": "Lead", "deal": "Opportunity"}
    )
    if types["Task"].get(salesforce.MARKER + "*external") != "yes":
        found.append(
            f"Salesforce Task has no external id field {salesforce.MARKER!r}: create it (text, "
            "External ID, Unique) so a retried write updates its Task instead of adding one"
        )
    return fmap, found


def _check(args: Any) -> int:
    fmap, found = (_hubspot_check if args.system == "hubspot" else _salesforce_check)(args)
    for line in found:
        print(line)
    if not found:
        crm = "HubSpot" if args.system == "hubspot" else "Salesforce"
        print(f"{fmap.path}: {len(fmap.fields)} fields map onto {crm} fields of the right type")
    return 1 if found else 0


def _backfill(args: Any) -> int:
    now = dt.datetime.now(dt.UTC)
    since = parse_since(args.since, now)

    def progress(kind: str, n: int) -> None:
        print(f"{kind}: {n:,} read", file=sys.stderr, flush=True)

    if args.system == "hubspot":
        hs, fmap = _connect(args)
        history: Iterable[dict[str, Any]] = events(hs, fmap, since, progress)
    else:
        sf, fmap = _salesforce(args)
        history = salesforce.backfill(sf, fmap, since, progress)
    good: list[tuple[str, bytes]] = []
    rejected = 0
    for raw in history:
        try:
            event = parse_event(raw)
        except EventRejected as exc:
            rejected += 1
            print(f"skipped {raw.get('event_id')}: {exc.reason}", file=sys.stderr)
            continue
        good.append((event.occurred_at.isoformat(), event_to_json(event)))
    good.sort(key=lambda item: item[0])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "wb") as out:
        for _, line in good:
            out.write(line + b"\n")
    print(
        f"{len(good):,} events since {since.date()} written to {args.out}"
        + (f" ({rejected} skipped)" if rejected else "")
        + f"; train with: nudge model train --events {args.out}",
        file=sys.stderr,
    )
    return 0


def _status(args: Any) -> int:
    async def run() -> list[dict[str, Any]]:
        store = await Store.open(Settings().store_location)
        try:
            return await ConnectorState(store).writes(args.system, args.state, args.limit)
        finally:
            await store.close()

    rows = asyncio.run(run())
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return 0
    if not rows:
        print("no CRM writes recorded")
    for r in rows:
        extra = r["remote_id"] or r["last_error"] or ""
        when = f" next {r['not_before']}" if r["state"] == "pending" else ""
        print(
            f"{r['created_at'][:19]} {r['system']:<10} {r['state']:<8} {r['kind']:<8} {r['lead_id']:<20} {r['update_id']}{when} {extra}".rstrip()
        )
    return 0
