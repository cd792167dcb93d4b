"""Draining recorded CRM writes to the CRM: claim, write, finish — or back off and retry.

The connector agent records each ``crm.updates`` message as a ``crm_writes`` row
(:mod:`crm.connector_state`) and acknowledges it on Kafka; a timer calls
:func:`drain` to write the due rows. Why not write from the agent: during a CRM
outage the agent would block its partition, and a worker killed between the
write and the commit would redo writes nobody can see were done. Here a row is
claimed for a lease, written, then marked ``done`` with the remote id; a
transient error (429 with ``Retry-After``, 5xx, network) puts it back with a
backoff and ends the pass — the CRM is down or asking us to slow down, and the
next rows would only add to it; a permanent error marks it ``failed`` with the
reason, for ``nudge connect status``.

At most :data:`PER_PASS` rows are written per pass; with the worker's two-second
timer that is ~4 writes a second, well under HubSpot's burst limit of 100
requests per 10 seconds for the smallest private app (each write is 1–3 calls).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from typing import Any

from connectors import hubspot
from connectors.fieldmap import FieldMap
from connectors.hubspot import CrmPermanent, CrmTransient
from connectors.updates import Update, read_update
from crm.connector_state import ConnectorState
from nudge.logs import get_logger

log = get_logger(__name__)

PER_PASS = 8
LEASE = dt.timedelta(seconds=30)
"""How long a claimed write is left to its writer; a write cut off by a crash is retried after it."""
MAX_BACKOFF = 15 * 60.0


def backoff(attempts: int, retry_after: float | None) -> float:
    """Seconds before the next try: what the CRM asked for, else 2, 4, 8 ... up to 15 min."""
    if retry_after is not None:
        return min(retry_after, MAX_BACKOFF)
    return min(2.0 ** max(1, attempts), MAX_BACKOFF)


async def record(state: ConnectorState, system: str, raw: bytes, now: dt.datetime) -> Update:
    """Record one ``crm.updates`` message for ``system`` (a repeat of an id records nothing)."""
    update = read_update(raw)
    payload: dict[str, Any] = {
        "field": update.field,
        "value": update.value,
        "detail": update.detail,
        "reason": update.reason,
    }
    await state.record_write(
        system,
        update.update_id,
        update.lead_id,
        update.kind,
        payload,
        now,
        state="ignored" if update.kind == "ignored" else "pending",
    )
    return update


async def drain(
    state: ConnectorState,
    hs: hubspot.HubSpot,
    fmap: FieldMap,
    now: Callable[[], dt.datetime],
    *,
    limit: int = PER_PASS,
) -> int:
    """Write the due HubSpot rows; the number written. Stops at the first transient error."""
    written = 0
    for row in await state.due_writes(hubspot.SYSTEM, now(), limit=limit):
        uid = row["update_id"]
        if not await state.claim_write(hubspot.SYSTEM, uid, now(), LEASE):
            continue  # another worker took it
        update = Update.stored(row)
        write = hubspot.plan(update, fmap)
        if write.skipped:
            await state.finish_write(hubspot.SYSTEM, uid, "ignored", now(), error=write.skipped)
            continue
        contact = hubspot.contact_id(row["lead_id"]) or await state.remote_id(
            hubspot.SYSTEM, row["lead_id"], "contact"
        )
        if contact is None:
            await state.finish_write(
                hubspot.SYSTEM, uid, "ignored", now(), error="the lead has no HubSpot contact"
            )
            continue
        deal = await state.remote_id(hubspot.SYSTEM, row["lead_id"], "deal")
        try:
            remote = await asyncio.to_thread(
                hubspot.execute, hs, write, contact, deal, uid, row["attempts"] > 0
            )
        except CrmTransient as exc:
            wait = backoff(row["attempts"] + 1, exc.retry_after)
            await state.retry_write(
                hubspot.SYSTEM, uid, now() + dt.timedelta(seconds=wait), str(exc), now()
            )
            log.warning(
                "crm write deferred",
                system=hubspot.SYSTEM,
                update_id=uid,
                wait_s=wait,
                error=str(exc),
            )
            break
        except CrmPermanent as exc:
            await state.finish_write(hubspot.SYSTEM, uid, "failed", now(), error=str(exc)[:500])
            log.warning("crm write failed", system=hubspot.SYSTEM, update_id=uid, error=str(exc))
            continue
        await state.finish_write(hubspot.SYSTEM, uid, "done", now(), remote_id=remote)
        written += 1
    return written
