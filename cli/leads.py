"""``nudge leads show ID [--format json]``: one lead's record, read from the store.

Profile and deals, score with model version and reasons, last events, nudges and their
states, the open conversation, answers and field changes with who and when
(:mod:`crm.lead_view`). It reads the database the worker writes (``NUDGE_DATA_DIR``)
and needs no broker.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from crm.lead_view import as_text, lead_record
from crm.store import Store
from nudge.errors import NudgeError
from nudge.settings import Settings


def register(sub: Any) -> None:
    leads = sub.add_parser("leads", help="see what Nudge holds about a lead")
    lp = leads.add_subparsers(dest="leads_command", metavar="SUBCOMMAND", required=True)
    show = lp.add_parser("show", help="one lead's record: profile, deals, score, nudges, answers")
    show.add_argument("lead_id", help="the lead's id")
    show.add_argument("--format", choices=("text", "json"), default="text")
    show.set_defaults(func=_show)


def _show(args: argparse.Namespace) -> int:
    record = asyncio.run(_read(Settings(), args.lead_id))
    if record is None:
        raise NudgeError(f"no lead {args.lead_id!r} in {Settings().database}")
    print(json.dumps(record, indent=2, default=str) if args.format == "json" else as_text(record))
    return 0


async def _read(settings: Settings, lead_id: str) -> dict[str, Any] | None:
    store = await Store.open(settings.database)
    try:
        return await lead_record(store.db, lead_id)
    finally:
        await store.close()
