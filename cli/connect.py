"""``nudge connect check hubspot`` and ``nudge connect status``: is the CRM wired right, and what was written.

``check`` loads the field map (``NUDGE_HUBSPOT_FIELD_MAP`` or the bundled one), reads
the portal's property definitions with the access token, and reports every mapped
property that does not exist or whose type differs, as ``file:line: ...``; it also
checks that calls and notes have the ``nudge_update_id`` property that keeps
engagements from being written twice. Exit 0 when all is well, 1 with problems.

``status`` lists what the connector agents recorded for each ``crm.updates``
message: pending (with the next try and the last error), done (with the CRM's id),
failed (the CRM refused it: the reason) or ignored (why nothing was written).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from connectors import hubspot
from connectors.fieldmap import FieldMap
from crm.connector_state import STATES, ConnectorState
from crm.store import Store
from nudge.errors import ConfigError
from nudge.settings import Settings

OBJECT_TYPES = {"contact": "contacts", "deal": "deals"}


def register(sub: Any) -> None:
    connect = sub.add_parser("connect", help="check a CRM connection; list what was written to it")
    cp = connect.add_subparsers(dest="connect_command", metavar="SUBCOMMAND", required=True)
    check = cp.add_parser("check", help="check the field map against the CRM's properties")
    check.add_argument("system", choices=["hubspot"])
    check.add_argument("--map", help="field map YAML (default: NUDGE_HUBSPOT_FIELD_MAP or bundled)")
    check.set_defaults(func=_check)
    status = cp.add_parser("status", help="each update bound for a CRM and its state")
    status.add_argument("--system", default=None, help="only this CRM (hubspot)")
    status.add_argument("--state", choices=STATES, default=None)
    status.add_argument("--limit", type=int, default=50)
    status.add_argument("--json", action="store_true", help="one JSON record per line")
    status.set_defaults(func=_status)


def problems(fmap: FieldMap, types: dict[str, dict[str, str]]) -> list[str]:
    """Every mapping the portal cannot take, as ``file:line: ...`` (pure: ``types`` per object)."""
    out = []
    for m in sorted(fmap.fields.values(), key=lambda m: m.line):
        known = types.get(OBJECT_TYPES[m.object], {})
        where = f"{fmap.path}:{m.line}: {m.field}"
        if m.property not in known:
            out.append(f"{where}: HubSpot has no {m.object} property {m.property!r}")
        elif known[m.property] != m.type:
            out.append(
                f"{where}: {m.property!r} is of type {known[m.property]!r} in HubSpot; "
                f"the map says {m.type!r}"
            )
    for engagement in ("calls", "notes"):
        if hubspot.MARKER not in types.get(engagement, {}):
            out.append(
                f"HubSpot {engagement} have no {hubspot.MARKER!r} property: create it (a single-line "
                "text property) so a retried write is recognised and not logged twice"
            )
    return out


def _check(args: Any) -> int:
    settings = Settings()
    if settings.hubspot_access_token is None:
        raise ConfigError(
            "set HUBSPOT_ACCESS_TOKEN (a private app token with crm.objects and crm.schemas scopes)"
        )
    from pathlib import Path

    from streams.crm_connectors import DEFAULT_FIELD_MAP

    path = Path(args.map) if args.map else settings.hubspot_field_map or DEFAULT_FIELD_MAP
    fmap = FieldMap.load(path)
    hs = hubspot.HubSpot(settings.hubspot_access_token.get_secret_value(), settings.hubspot_api_url)
    types = {t: hs.property_types(t) for t in ("contacts", "deals", "calls", "notes")}
    found = problems(fmap, types)
    for line in found:
        print(line)
    if not found:
        print(f"{path}: {len(fmap.fields)} fields map onto HubSpot properties of the right type")
    return 1 if found else 0


def _status(args: Any) -> int:
    async def run() -> list[dict[str, Any]]:
        store = await Store.open(Settings().database)
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
