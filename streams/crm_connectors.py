"""The CRMs on the worker: HubSpot's webhook route, the Salesforce sync, the writers.

    POST /webhooks/hubspot   signed notification batches → objects read in batches
                             → lead.* / deal.* events on crm.events
    hubspot-writer agent     crm.updates → a crm_writes row per update (then acked)
    timer (2 s)              due rows → HubSpot (connectors.writer.drain)

    salesforce-writer agent  crm.updates → a crm_writes row per update
    timers                   due rows → Salesforce in /composite batches (2 s);
                             incremental Salesforce sync on the leader worker
                             (NUDGE_SALESFORCE_SYNC_INTERVAL), checkpoint saved after the
                             events are on the broker

The route answers 200 once the events are on the broker, 401 for a bad or stale
signature, 400 for a body that is not HubSpot's, and 503 when HubSpot's API could
not be read — HubSpot then retries the batch (with the same event ids, so the
retry is harmless). Everything is off until ``HUBSPOT_ACCESS_TOKEN`` is set; the
route refuses every request while ``HUBSPOT_CLIENT_SECRET`` is unset.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from faust.types import EventT

from connectors import hubspot, hubspot_backfill, salesforce, writer
from connectors.fieldmap import FieldMap
from crm.connector_state import ConnectorState
from crm.store import Store
from notifiers.inbound import public_url
from nudge.clock import Clock
from nudge.errors import ConfigError, EventRejected
from nudge.events import STREAM_OF, event_to_json, parse_event
from nudge.logs import get_logger
from nudge.settings import Settings
from streams.agents import _agent
from streams.pipeline import Pipeline
from streams.sources import Rejected
from streams.views import error_response

log = get_logger(__name__)

DRAIN_INTERVAL = 2.0
INITIAL_LOAD_INTERVAL = 10.0
"""Seconds between checks whether HubSpot's initial load is still to do (it runs once)."""
READ_BUDGET = 4.0
"""Seconds the HubSpot webhook may spend reading objects: HubSpot gives up on an answer after
5 s and retries the batch, so a slow API gets a 503 (retried) rather than a timed-out call."""
DEFAULT_FIELD_MAP = Path(hubspot.__file__).with_name("hubspot_fields.yaml")

Publish = Callable[[Any], Awaitable[Any]]
StoreSource = Callable[[], Awaitable[Store]]


def field_map(settings: Settings) -> FieldMap:
    return FieldMap.load(settings.hubspot_field_map or DEFAULT_FIELD_MAP)


def client(settings: Settings) -> hubspot.HubSpot | None:
    token = settings.hubspot_access_token
    return hubspot.HubSpot(token.get_secret_value(), settings.hubspot_api_url) if token else None


class HubSpotHook:
    def __init__(
        self,
        publish: Publish,
        store: StoreSource,
        settings: Settings,
        clock: Clock,
        rejected: Rejected | None = None,
    ) -> None:
        self.publish, self.store, self.settings, self.clock = publish, store, settings, clock
        self.rejected = rejected
        """Counts, logs and dead-letters a signed body that is not HubSpot's shape."""
        secret = settings.hubspot_client_secret
        self.secret = secret.get_secret_value() if secret else ""
        if self.secret:  # at start-up, not on the event loop at the first signed request
            hubspot.load_sdk()
        self.hs = client(settings)
        self.fmap = field_map(settings)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        uri = public_url(
            request.path_qs,
            configured=self.settings.public_url,
            scheme=request.scheme,
            host=request.host,
            headers=request.headers,
        )
        try:
            text = body.decode()
        except UnicodeDecodeError:
            text = ""
        if (
            not hubspot.signature_ok(
                self.secret,
                request.method,
                uri,
                text,
                request.headers.get("X-HubSpot-Request-Timestamp"),
                request.headers.get("X-HubSpot-Signature-v3"),
                self.clock.now(),
            )
            or not text
        ):
            log.warning("hubspot webhook refused: bad signature", path=request.path)
            return error_response(401, "invalid signature")
        try:
            notes = hubspot.notifications(body)
        except EventRejected as exc:
            if self.rejected is not None:
                await self.rejected(exc, body, request.path)
            return web.json_response({"error": exc.reason}, status=400)
        if self.hs is None:
            return web.json_response({"error": "HUBSPOT_ACCESS_TOKEN is not set"}, status=503)
        try:
            events, skipped = await asyncio.wait_for(self._events(notes), READ_BUDGET)
        except (hubspot.CrmError, TimeoutError) as exc:
            log.warning("hubspot webhook: API read failed; HubSpot will retry", error=repr(exc))
            return web.json_response({"error": "HubSpot API unavailable, retry"}, status=503)
        for event in events:
            await self.publish(event)
        return web.json_response({"accepted": len(events), "skipped": skipped})

    async def _events(self, notes: list[hubspot.Notification]) -> tuple[list[Any], int]:
        assert self.hs is not None
        contacts = sorted(
            {
                n.object_id
                for n in notes
                if n.object_type == "contact"
                and n.action in ("creation", "propertyChange", "restore")
            }
        )
        linked = {
            pair[0]
            for n in notes
            if not n.association_removed and (pair := hubspot.deal_contact(n)) is not None
        }
        changed = sorted(
            {
                n.object_id
                for n in notes
                if n.object_type == "deal" and n.action in ("creation", "propertyChange")
            }
        )
        deals = sorted(set(changed) | linked)
        contact_props = (
            await asyncio.to_thread(
                self.hs.read, "contacts", contacts, hubspot.contact_properties(self.fmap)
            )
            if contacts
            else {}
        )
        deal_props = (
            await asyncio.to_thread(
                self.hs.read, "deals", deals, ["dealstage", "amount", "dealname"]
            )
            if deals
            else {}
        )
        deal_contacts = (
            await asyncio.to_thread(self.hs.associated, "deals", "contacts", changed)
            if changed
            else {}
        )
        state = ConnectorState(await self.store())
        now = self.clock.now()
        raw: list[dict[str, Any]] = []
        skipped = 0
        for n in notes:
            if n.action in ("deletion", "merge", "associationChange"):
                found = await self._lifecycle(state, n, deal_props, now)
                raw += found
                skipped += not found
            elif n.object_type == "contact" and n.object_id in contact_props:
                raw.append(hubspot.contact_event(n, contact_props[n.object_id], self.fmap))
            elif n.object_type == "deal" and n.object_id in deal_props:
                for cid in deal_contacts.get(n.object_id, []):
                    await state.link(hubspot.SYSTEM, hubspot.lead_id(cid), "deal", n.object_id, now)
                raw += hubspot.deal_events(
                    n, deal_props[n.object_id], deal_contacts.get(n.object_id, [])
                )
            else:
                skipped += 1
        events = []
        for item in raw:
            try:
                events.append(parse_event(item))
            except EventRejected as exc:
                skipped += 1
                log.warning(
                    "hubspot object not usable", event_id=item.get("event_id"), reason=exc.reason
                )
        return events, skipped

    async def _lifecycle(
        self,
        state: ConnectorState,
        n: hubspot.Notification,
        deal_props: dict[str, dict[str, Any]],
        now: Any,
    ) -> list[dict[str, Any]]:
        """A deletion, merge or association change: what it needs from the record, the links it
        changes, and its events (:func:`connectors.hubspot.lifecycle_events`)."""
        system = hubspot.SYSTEM
        if n.action == "deletion" and n.object_type == "deal":
            leads = await state.linked_leads(system, "deal", n.object_id)
            for lead in leads:
                await state.unlink(system, lead, "deal", n.object_id)
            return hubspot.lifecycle_events(n, deal_leads=leads)
        if n.action == "merge":
            found = await state.identities([hubspot.lead_id(m) for m in n.merged_ids])
            identities = {m: found.get(hubspot.lead_id(m), []) for m in n.merged_ids}
            return hubspot.lifecycle_events(n, merged_identities=identities)
        pair = hubspot.deal_contact(n)
        if pair is not None:
            deal, contact = pair
            if n.association_removed:
                await state.unlink(system, hubspot.lead_id(contact), "deal", deal)
            elif deal in deal_props:
                await state.link(system, hubspot.lead_id(contact), "deal", deal, now)
            else:
                return []  # the deal is gone already: its deletion says the rest
            return hubspot.lifecycle_events(n, deal_props=deal_props.get(deal))
        return hubspot.lifecycle_events(n)


def routes(
    publish: Publish,
    store: StoreSource,
    settings: Settings,
    clock: Clock,
    rejected: Rejected | None = None,
) -> list[web.RouteDef]:
    hook = HubSpotHook(publish, store, settings, clock, rejected)
    return [web.post("/webhooks/hubspot", hook.handle)]


async def load_hubspot(
    hs: hubspot.HubSpot,
    fmap: FieldMap,
    state: ConnectorState,
    publish: Publish,
    flush: Callable[[], Awaitable[Any]],
    now: Any,
) -> int | None:
    """The HubSpot initial load, once: contacts published (and flushed), deals linked, then
    marked done. ``None`` when it was done before. A crash midway redoes it with the same
    event ids, which ingest drops."""
    if await state.checkpoint(hubspot.SYSTEM, "initial") is not None:
        return None
    events, deals = await asyncio.to_thread(hubspot_backfill.current, hs, fmap, now)
    sent = 0
    for raw in events:
        try:
            await publish(parse_event(raw))
            sent += 1
        except EventRejected as exc:
            log.warning(
                "hubspot contact not usable", event_id=raw.get("event_id"), reason=exc.reason
            )
    await flush()
    for lead, deal in deals.items():
        await state.link(hubspot.SYSTEM, lead, "deal", deal, now)
    await state.set_checkpoint(hubspot.SYSTEM, "initial", "done", now)
    return sent


def register(p: Pipeline) -> None:
    """The writer agents, drain timers, the Salesforce sync and the HubSpot initial load."""
    register_salesforce(p)
    hs = client(p.settings)
    if hs is None:
        return
    fmap = field_map(p.settings)

    async def publish(event: Any) -> None:
        await p.crm_events.send(key=str(event.lead_id).encode(), value=event_to_json(event))

    async def initial() -> None:
        try:
            sent = await load_hubspot(
                hs,
                fmap,
                ConnectorState(await p.store()),
                publish,
                p.app.producer.flush,
                p.clock.now(),
            )
        except hubspot.CrmError as exc:
            log.warning("hubspot initial load failed; retried", error=str(exc))
            return
        if sent is not None:
            p.stats["hubspot.initial"] += sent

    p.timer(INITIAL_LOAD_INTERVAL, on_leader=True)(initial)

    async def record(pipeline: Pipeline, event: EventT[Any]) -> None:
        state = ConnectorState(await pipeline.store())
        update = await writer.record(state, hubspot.SYSTEM, event.value, pipeline.clock.now())
        pipeline.stats[f"crm_writes.recorded.{update.kind}"] += 1

    _agent(p, "hubspot-writer", p.crm_updates, record)

    async def drain() -> None:
        state = ConnectorState(await p.store())
        written = await writer.drain(state, hs, fmap, p.clock.now)
        if written:
            p.stats["crm_writes.written"] += written

    p.timer(DRAIN_INTERVAL)(drain)


# -- Salesforce --------------------------------------------------------------------------------
SALESFORCE_FIELD_MAP = Path(salesforce.__file__).with_name("salesforce_fields.yaml")


def salesforce_client(settings: Settings) -> salesforce.Salesforce | None:
    if not settings.salesforce_instance_url:
        return None
    if settings.salesforce_access_token is not None:
        return salesforce.Salesforce(
            settings.salesforce_instance_url,
            access_token=settings.salesforce_access_token.get_secret_value(),
        )
    if settings.salesforce_username and settings.salesforce_password:
        token = settings.salesforce_security_token
        return salesforce.Salesforce(
            settings.salesforce_instance_url,
            username=settings.salesforce_username,
            password=settings.salesforce_password.get_secret_value(),
            security_token=token.get_secret_value() if token else "",
        )
    raise ConfigError(
        "SALESFORCE_INSTANCE_URL is set: also set SALESFORCE_ACCESS_TOKEN, or "
        "SALESFORCE_USERNAME, SALESFORCE_PASSWORD and SALESFORCE_SECURITY_TOKEN"
    )


async def sync_salesforce(p: Pipeline, sf: salesforce.Salesforce, fmap: FieldMap) -> int:
    """One incremental read: events to their topics, flushed, then links and checkpoints saved.

    A first run is the initial load (:func:`connectors.salesforce.initial_load`).
    """
    state = ConnectorState(await p.store())
    now = p.clock.now()
    cursors = {}
    for obj in salesforce.QUERIES:
        cursor = await state.checkpoint(salesforce.SYSTEM, obj)
        if cursor is not None:
            cursors[obj] = cursor
    if len(cursors) < len(salesforce.QUERIES):  # never synced: the initial load
        result = await asyncio.to_thread(salesforce.initial_load, sf, fmap, now)
    else:
        result = await asyncio.to_thread(salesforce.sync, sf, cursors, fmap)
    sent = 0
    for raw in result.events:
        try:
            event = parse_event(raw)
        except EventRejected as exc:
            log.warning(
                "salesforce record not usable", event_id=raw.get("event_id"), reason=exc.reason
            )
            continue
        topic = p.call_events if STREAM_OF[event.type] == "call" else p.crm_events
        await topic.send(key=str(raw["lead_id"]).encode(), value=event_to_json(event))
        sent += 1
    await p.app.producer.flush()  # the events are on the broker before the checkpoint moves
    for lead, opp in result.deals.items():
        await state.link(salesforce.SYSTEM, lead, "deal", opp, now)
    for obj, cursor in result.cursors.items():
        await state.set_checkpoint(salesforce.SYSTEM, obj, cursor, now)
    return sent


def register_salesforce(p: Pipeline) -> None:
    sf = salesforce_client(p.settings)
    if sf is None:
        return
    fmap = FieldMap.load(p.settings.salesforce_field_map or SALESFORCE_FIELD_MAP)

    async def record(pipeline: Pipeline, event: EventT[Any]) -> None:
        state = ConnectorState(await pipeline.store())
        await writer.record(state, salesforce.SYSTEM, event.value, pipeline.clock.now())

    _agent(p, "salesforce-writer", p.crm_updates, record)

    async def drain() -> None:
        written = await salesforce.drain(ConnectorState(await p.store()), sf, fmap, p.clock.now)
        if written:
            p.stats["crm_writes.written"] += written

    async def sync() -> None:
        try:
            p.stats["salesforce.synced"] += await sync_salesforce(p, sf, fmap)
        except hubspot.CrmError as exc:
            log.warning("salesforce sync failed; retried next interval", error=str(exc))

    p.timer(DRAIN_INTERVAL)(drain)
    p.timer(p.settings.salesforce_sync_interval, on_leader=True)(sync)
