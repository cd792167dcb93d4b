"""HubSpot both ways: the real hubspot-api-client against FakeHubSpot, the real store, real HTTP."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from connectors import hubspot, writer
from connectors.fieldmap import FieldMap
from crm.connector_state import ConnectorState
from crm.store import Store
from nudge.clock import SystemClock
from nudge.errors import ConfigError, EventRejected
from nudge.settings import Settings
from streams.crm_connectors import DEFAULT_FIELD_MAP, load_hubspot, routes
from tests.conftest import STORES
from tests.fakes.fixtures import serving
from tests.fakes.hubspot_server import FakeHubSpot
from tests.unit.connectors.crm_updates import Clock, answer_update, call_update

FMAP = FieldMap.load(DEFAULT_FIELD_MAP)
NOON = dt.datetime(2026, 3, 2, 17, 0, tzinfo=dt.UTC)


Hook = tuple[str, list[Any], list[tuple[str, str]]]
"""The webhook URL, what it published, and what it rejected (reason, route)."""


@pytest.fixture
async def portal() -> AsyncIterator[FakeHubSpot]:
    async with serving(FakeHubSpot()) as fake:
        yield fake


@pytest.fixture
async def hook(portal: FakeHubSpot, store: Store, tmp_path: Path) -> AsyncIterator[Hook]:
    """The /webhooks/hubspot route on a live server; the list collects what it published."""
    published: list[Any] = []
    rejected: list[tuple[str, str]] = []

    async def publish(event: Any) -> None:
        published.append(event)

    async def reject(exc: EventRejected, body: bytes, route: str) -> None:
        rejected.append((exc.reason, route))

    async def get_store() -> Store:
        return store

    settings = Settings(
        data_dir=tmp_path,
        hubspot_access_token=portal.access_token,
        hubspot_client_secret=portal.client_secret,
        hubspot_api_url=portal.url,
    )
    app = web.Application()
    app.router.add_routes(routes(publish, get_store, settings, SystemClock(), reject))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("/webhooks/hubspot")), published, rejected
    finally:
        await server.close()


# -- signatures ------------------------------------------------------------------------------------
def test_signature_v3_fixed_vector_and_window() -> None:
    """HubSpot's v3 scheme: base64 HMAC-SHA256 of method+URI+body+timestamp, 5 minutes at most."""
    now = dt.datetime(2026, 3, 2, 17, 0, tzinfo=dt.UTC)
    ts = str(int(now.timestamp() * 1000))
    uri = "https://nudge.example/webhooks/hubspot"
    body = '[{"eventId":1}]'
    # python3 -c "import hmac,hashlib,base64;print(base64.b64encode(hmac.new(b'secret',
    #   b'POST'+uri+body+ts, hashlib.sha256).digest()))" with the values above
    sig = FakeHubSpot(client_secret="secret").sign("POST", uri, body, ts)
    assert hubspot.signature_ok("secret", "POST", uri, body, ts, sig, now)
    assert not hubspot.signature_ok("secret", "POST", uri, body + " ", ts, sig, now)
    assert not hubspot.signature_ok("other", "POST", uri, body, ts, sig, now)
    assert not hubspot.signature_ok(
        "secret", "POST", uri, body, ts, sig, now + dt.timedelta(minutes=6)
    )
    assert not hubspot.signature_ok("secret", "POST", uri, body, "soon", sig, now)


# -- in --------------------------------------------------------------------------------------------
async def test_contact_creation_is_read_in_batch_and_becomes_lead_created(
    portal: FakeHubSpot, hook: Hook
) -> None:
    """A signed contact.creation batch → one batch read → lead.created with mapped fields, stable id."""
    url, published, _ = hook
    cid = portal.add(
        "contacts",
        {
            "email": "ann@acme.example",
            "firstname": "Ann",
            "lastname": "Lee",
            "company": "Acme",
            "jobtitle": "CFO",
            "phone": "+14155550177",
        },
    )
    other = portal.add("contacts", {"email": "bo@globex.example", "company": "Globex"})
    batch = [
        portal.notification("contact.creation", cid),
        portal.notification("contact.creation", other),
    ]
    status, answer = await portal.webhook(url, batch)
    assert status == 200, answer
    assert [r for r in portal.requests if "batch/read" in r[1]] == [
        ("POST", "/crm/v3/objects/contacts/batch/read")
    ]
    first = published[0]
    assert first.type == "lead.created" and first.lead_id == f"hubspot-{cid}"
    assert first.event_id == f"hubspot:{batch[0]['eventId']}"
    assert first.email == "ann@acme.example" and first.phone == "+14155550177"
    assert (first.fields.company, first.fields.title, first.fields.contact_name) == (
        "Acme",
        "CFO",
        "Ann Lee",
    )
    # HubSpot retries the same batch: the same event ids come out (ingest drops the repeats)
    await portal.webhook(url, batch)
    assert [e.event_id for e in published[2:]] == [e.event_id for e in published[:2]]


async def test_deal_stage_change_names_each_associated_contact(
    portal: FakeHubSpot, hook: Hook, store: Store
) -> None:
    """deal.propertyChange dealstage=closedwon → deal.won for the deal's contact, and the deal is linked."""
    url, published, _ = hook
    cid = portal.add("contacts", {"email": "ann@acme.example"})
    deal = portal.add("deals", {"dealname": "Acme", "dealstage": "closedwon", "amount": "12000"})
    portal.associate("deals", deal, "contacts", cid)
    note = portal.notification(
        "deal.propertyChange", deal, propertyName="dealstage", propertyValue="closedwon"
    )
    assert (await portal.webhook(url, [note]))[0] == 200
    (event,) = published
    assert event.type == "deal.won" and event.lead_id == f"hubspot-{cid}" and event.amount == 12000
    assert await ConnectorState(store).remote_id("hubspot", f"hubspot-{cid}", "deal") == deal


async def test_deletions_mark_the_lead_and_the_deal_deleted_not_lost(
    portal: FakeHubSpot, hook: Hook, store: Store
) -> None:
    """contact.deletion → lead.updated stage deleted; deal.deletion → deal.stage_changed to
    deleted for the deal's linked lead, and the link is dropped (no write goes to a deleted
    deal). Nothing becomes deal.lost; a retry gives the same event ids."""
    url, published, _ = hook
    state = ConnectorState(store)
    now = dt.datetime.now(dt.UTC)
    await state.link("hubspot", "hubspot-501", "deal", "901", now)
    batch = [
        portal.notification("contact.deletion", "500", changeFlag="DELETED"),
        portal.notification("deal.deletion", "901", changeFlag="DELETED"),
    ]
    status, answer = await portal.webhook(url, batch)
    assert status == 200, answer
    contact, deal = published
    assert (contact.type, contact.lead_id, contact.fields.stage) == (
        "lead.updated",
        "hubspot-500",
        "deleted",
    )
    assert contact.event_id == f"hubspot:{batch[0]['eventId']}"
    assert (deal.type, deal.lead_id, deal.to_stage) == (
        "deal.stage_changed",
        "hubspot-501",
        "deleted",
    )
    assert await state.remote_id("hubspot", "hubspot-501", "deal") is None
    assert not [r for r in portal.requests if "batch/read" in r[1]]  # nothing to read back
    assert (await portal.webhook(url, batch[:1]))[0] == 200
    assert published[2].event_id == contact.event_id


async def test_merge_moves_the_merged_contacts_identities_to_the_surviving_lead(
    portal: FakeHubSpot, hook: Hook, store: Store
) -> None:
    """contact.merge → the merged lead's email, phone and visitor id each on a lead.updated of
    the surviving lead (ingest links an identity to the lead an event names, so later web or
    call events land there), and the merged lead marked merged; ids stable across retries."""
    url, published, _ = hook
    survivor = portal.add("contacts", {"email": "ann@acme.example"})
    merged = portal.add("contacts", {"email": "ann.lee@acme.example"})
    await store.link_identities(
        {
            ("email", "ann.lee@acme.example"): f"hubspot-{merged}",
            ("phone", "+14155550177"): f"hubspot-{merged}",
            ("visitor", "anon-7"): f"hubspot-{merged}",
            ("email", "ann@acme.example"): f"hubspot-{survivor}",
        }
    )
    note = portal.merge(survivor, [merged])
    status, answer = await portal.webhook(url, [note])
    assert status == 200, answer
    moved = [e for e in published if e.lead_id == f"hubspot-{survivor}"]
    assert {(e.email, e.phone, e.visitor_id) for e in moved} == {
        ("ann.lee@acme.example", None, None),
        (None, "+14155550177", None),
        (None, None, "anon-7"),
    }
    assert all(e.type == "lead.updated" for e in moved)
    (gone,) = [e for e in published if e.lead_id == f"hubspot-{merged}"]
    assert gone.fields.stage == "merged"
    first = sorted(e.event_id for e in published)
    assert (await portal.webhook(url, [note]))[0] == 200
    assert sorted(e.event_id for e in published[len(first) :]) == first


async def test_association_change_links_and_unlinks_a_deal_once_for_both_sides(
    portal: FakeHubSpot, hook: Hook, store: Store
) -> None:
    """A deal associated to a contact: its stage lands on the contact's lead and the deal is
    linked; HubSpot's two notifications (one per side) give one event id. Unlinked: the link
    is dropped and the lead's stage reads "no deal"."""
    url, published, _ = hook
    state = ConnectorState(store)
    cid = portal.add("contacts", {"email": "ann@acme.example"})
    deal = portal.add("deals", {"dealname": "Acme", "dealstage": "qualifiedtobuy"})
    portal.associate("deals", deal, "contacts", cid)
    both = [
        portal.association_change(
            "contact.associationChange", cid, deal, "CONTACT_TO_DEAL", removed=False
        ),
        portal.association_change(
            "deal.associationChange", deal, cid, "DEAL_TO_CONTACT", removed=False
        ),
    ]
    both[1]["occurredAt"] = both[0]["occurredAt"]
    status, answer = await portal.webhook(url, both)
    assert status == 200, answer
    assert {(e.type, e.lead_id, e.to_stage) for e in published} == {
        ("deal.stage_changed", f"hubspot-{cid}", "qualifiedtobuy")
    }
    assert len({e.event_id for e in published}) == 1
    assert await state.remote_id("hubspot", f"hubspot-{cid}", "deal") == deal

    published.clear()
    removed = portal.association_change(
        "contact.associationChange", cid, deal, "CONTACT_TO_DEAL", removed=True
    )
    assert (await portal.webhook(url, [removed]))[0] == 200
    (event,) = published
    assert (event.type, event.lead_id, event.fields.stage) == (
        "lead.updated",
        f"hubspot-{cid}",
        "no deal",
    )
    assert await state.remote_id("hubspot", f"hubspot-{cid}", "deal") is None


async def test_forged_stale_and_malformed_webhooks(portal: FakeHubSpot, hook: Hook) -> None:
    """Wrong secret or a 6-minute-old timestamp → 401 and no API read; a signed non-HubSpot body → 400."""
    url, published, rejected = hook
    cid = portal.add("contacts", {"email": "ann@acme.example"})
    note = [portal.notification("contact.creation", cid)]
    assert (await portal.webhook(url, note, secret="forged"))[0] == 401
    assert (await portal.webhook(url, note, age_s=360))[0] == 401
    assert portal.requests == [] and published == [] and rejected == []
    status, _ = await portal.webhook(url, {"not": "a list"})  # type: ignore[arg-type]
    assert status == 400
    # a signed body that is not HubSpot's shape goes to the same accounting as /events
    [(reason, route)] = rejected
    assert "array" in reason and route == "/webhooks/hubspot"


async def test_api_outage_answers_503_so_hubspot_retries(portal: FakeHubSpot, hook: Hook) -> None:
    """When the objects cannot be read, the batch gets 503 (HubSpot retries it) and nothing is published."""
    url, published, _ = hook
    cid = portal.add("contacts", {"email": "ann@acme.example"})
    portal.outage = 503
    assert (await portal.webhook(url, [portal.notification("contact.creation", cid)]))[0] == 503
    assert published == []


async def test_a_slow_api_answers_503_within_hubspots_time_limit(
    portal: FakeHubSpot, hook: Hook
) -> None:
    """When reading the objects takes longer than HubSpot waits (5 s), the batch gets a 503 in time."""
    url, published, _ = hook
    cid = portal.add("contacts", {"email": "ann@acme.example"})
    portal.read_latency = 6.0
    started = time.monotonic()
    status, _ = await portal.webhook(url, [portal.notification("contact.creation", cid)])
    assert status == 503 and time.monotonic() - started < 5.0
    assert published == []


@STORES
async def test_initial_load_publishes_every_contact_once_and_links_deals(
    portal: FakeHubSpot, store: Store
) -> None:
    """The first load: each contact as a hubspot.initial lead.updated, deals linked to their
    contacts' leads; a second call does nothing."""
    cids = [
        portal.add("contacts", {"email": f"c{i}@acme.example", "company": "Acme"}) for i in range(3)
    ]
    deal = portal.add("deals", {"dealname": "Acme", "dealstage": "qualifiedtobuy"})
    portal.associate("deals", deal, "contacts", cids[0])
    published: list[Any] = []

    async def publish(event: Any) -> None:
        published.append(event)

    async def flush() -> None:
        published.append("flushed")

    state = ConnectorState(store)
    hs = hubspot.HubSpot(portal.access_token, portal.url)
    now = dt.datetime.now(dt.UTC)
    assert await load_hubspot(hs, FMAP, state, publish, flush, now) == 3
    events, last = published[:-1], published[-1]
    assert last == "flushed"
    assert sorted(e.lead_id for e in events) == sorted(f"hubspot-{c}" for c in cids)
    assert {e.source for e in events} == {"hubspot.initial"} and {e.type for e in events} == {
        "lead.updated"
    }
    assert await state.remote_id("hubspot", f"hubspot-{cids[0]}", "deal") == deal
    assert await load_hubspot(hs, FMAP, state, publish, flush, now) is None
    assert len(published) == 4


# -- out -------------------------------------------------------------------------------------------
@STORES
async def test_answers_and_calls_written_once_despite_redelivery(
    portal: FakeHubSpot, store: Store
) -> None:
    """An answer becomes a deal property, a call a call engagement on contact and deal; redelivery writes nothing twice."""
    cid = portal.add("contacts", {"email": "ann@acme.example"})
    deal = portal.add("deals", {"dealname": "Acme"})
    lead = f"hubspot-{cid}"
    state, clock = ConnectorState(store), Clock(NOON)
    await state.link("hubspot", lead, "deal", deal, clock())
    hs = hubspot.HubSpot(portal.access_token, portal.url)
    for raw in (answer_update(lead, "deal.next_step", "send proposal"), call_update(lead)) * 2:
        await writer.record(state, "hubspot", raw, clock())
    assert await writer.drain(state, hs, FMAP, clock) == 2
    assert await writer.drain(state, hs, FMAP, clock) == 0
    assert portal.objects["deals"][deal]["properties"]["hs_next_step"] == "send proposal"
    (call,) = portal.engagements("calls", cid)
    assert call["properties"]["hs_call_duration"] == "312000"
    assert ("calls", call["id"], "deals", deal) in portal.associations
    rows = await state.writes("hubspot")
    assert sorted(r["state"] for r in rows) == ["done", "done"]


@STORES
async def test_rate_limit_and_outage_back_off_and_lose_nothing(
    portal: FakeHubSpot, store: Store
) -> None:
    """429 with Retry-After defers the write that long; an outage keeps it pending; it lands once after."""
    cid = portal.add("contacts", {"email": "ann@acme.example"})
    lead = f"hubspot-{cid}"
    state, clock = ConnectorState(store), Clock(NOON)
    hs = hubspot.HubSpot(portal.access_token, portal.url)
    await writer.record(state, "hubspot", call_update(lead), clock())
    await writer.record(state, "hubspot", answer_update(lead, "lead.company", "Acme Corp"), clock())
    portal.fail_next(429, retry_after=7)
    assert await writer.drain(state, hs, FMAP, clock) == 0  # the pass stops at the 429
    (deferred,) = [r for r in await state.writes("hubspot") if r["last_error"]]
    assert "429" in deferred["last_error"]
    assert dt.datetime.fromisoformat(deferred["not_before"]) == clock() + dt.timedelta(seconds=7)
    portal.outage = 503
    clock.at += dt.timedelta(seconds=8)
    assert await writer.drain(state, hs, FMAP, clock) == 0
    assert {r["state"] for r in await state.writes("hubspot")} == {"pending"}
    portal.outage = None
    clock.at += dt.timedelta(minutes=20)
    assert await writer.drain(state, hs, FMAP, clock) == 2
    assert len(portal.engagements("calls", cid)) == 1
    assert portal.objects["contacts"][cid]["properties"]["company"] == "Acme Corp"


@STORES
async def test_a_write_cut_off_after_the_create_is_not_repeated(
    portal: FakeHubSpot, store: Store
) -> None:
    """A writer that died after HubSpot created the call (lease ran out) finds it instead of creating another."""
    cid = portal.add("contacts", {"email": "ann@acme.example"})
    lead = f"hubspot-{cid}"
    state, clock = ConnectorState(store), Clock(NOON)
    hs = hubspot.HubSpot(portal.access_token, portal.url)
    update = await writer.record(state, "hubspot", call_update(lead), clock())
    # the first writer: claims, creates at HubSpot, dies before marking the row done
    assert await state.claim_write("hubspot", update.update_id, clock(), writer.LEASE)
    write = hubspot.plan(update, FMAP)
    await asyncio.to_thread(hubspot.execute, hs, write, cid, None, update.update_id, False)
    clock.at += writer.LEASE + dt.timedelta(seconds=1)
    assert await writer.drain(state, hs, FMAP, clock) == 1
    assert len(portal.engagements("calls", cid)) == 1


@STORES
async def test_unmapped_and_foreign_updates_are_listed_not_written(
    portal: FakeHubSpot, store: Store
) -> None:
    """Unmapped fields, leads with no contact and HubSpot's own activities end 'ignored' with the reason."""
    state, clock = ConnectorState(store), Clock(NOON)
    hs = hubspot.HubSpot(portal.access_token, portal.url)
    await writer.record(
        state, "hubspot", answer_update("hubspot-5", "lead.custom.shoe_size", 9), clock()
    )
    await writer.record(
        state, "hubspot", answer_update("web-lead-1", "lead.company", "X", "q2"), clock()
    )
    await writer.record(
        state, "hubspot", b'{"kind": "nudge_reply", "lead_id": "L", "action": "snooze"}', clock()
    )
    await writer.drain(state, hs, FMAP, clock)
    reasons = {r["lead_id"]: (r["state"], r["last_error"]) for r in await state.writes("hubspot")}
    assert reasons["hubspot-5"] == (
        "ignored",
        "lead.custom.shoe_size is not in the field map hubspot_fields.yaml",
    )
    assert reasons["web-lead-1"] == ("ignored", "the lead has no HubSpot contact")
    assert reasons["L"][0] == "ignored"
    assert portal.requests == []


def test_field_map_errors_name_file_and_line(tmp_path: Path) -> None:
    """A bad field name, type or object is reported with file:line, all at once."""
    path = tmp_path / "fields.yaml"
    path.write_text(
        "fields:\n  lead.company: {property: company, type: text}\n  lead.shoe: {property: x}\n"
        "  deal.stage: {property: dealstage, object: company}\n"
    )
    with pytest.raises(ConfigError) as info:
        FieldMap.load(path)
    lines = str(info.value).splitlines()
    assert lines[0].startswith(f"{path}:2: lead.company: type 'text'")
    assert lines[1].startswith(f"{path}:3: 'lead.shoe': not a lead field")
    assert lines[2].startswith(f"{path}:4: deal.stage: object 'company'")
