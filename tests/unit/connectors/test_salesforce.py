"""Salesforce both ways: the real simple-salesforce over HTTPS against FakeSalesforce, the real store."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors import salesforce, writer
from connectors.fieldmap import FieldMap
from crm.connector_state import ConnectorState
from crm.store import Store
from tests.conftest import STORES
from tests.fakes.salesforce_server import FakeSalesforce
from tests.fakes.threaded import served
from tests.unit.connectors.crm_updates import Clock, answer_update, call_update

FMAP = FieldMap.load(Path(salesforce.__file__).with_name("salesforce_fields.yaml"))
T0 = dt.datetime(2026, 3, 2, 15, 0, tzinfo=dt.UTC)


@pytest.fixture
def org(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSalesforce]:
    with served(FakeSalesforce(tmp_path / "tls")) as fake:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(fake.ca_file))
        yield fake


def client(org: FakeSalesforce) -> salesforce.Salesforce:
    return salesforce.Salesforce(org.url, access_token=org.token)


def start(when: dt.datetime) -> dict[str, str]:
    return {obj: salesforce.soql_time(when) for obj in salesforce.QUERIES}


def test_sync_reads_changes_since_the_checkpoint_page_by_page(org: FakeSalesforce) -> None:
    """Leads, stage history and calls changed since the cursor become events; older ones and
    Nudge's own tasks do not; the cursors move to the newest SystemModstamp read."""
    org.page_size = 2
    old = org.add(
        "Lead", {"Email": "old@acme.example", "Company": "Old"}, at=T0 - dt.timedelta(days=3)
    )
    leads = [
        org.add(
            "Lead",
            {
                "Email": f"b{i}@acme.example",
                "Company": f"Acme {i}",
                "FirstName": "B",
                "LastName": str(i),
            },
            at=T0 + dt.timedelta(minutes=i),
        )
        for i in range(5)
    ]
    contact = org.add("Contact", {"Email": "cfo@globex.example", "LastName": "Gray"}, at=T0)
    opp = org.add(
        "Opportunity", {"Name": "Globex", "StageName": "Closed Won", "ContactId": contact}, at=T0
    )
    org.add(
        "OpportunityHistory",
        {"OpportunityId": opp, "StageName": "Closed Won", "Amount": 42000},
        at=T0 + dt.timedelta(hours=1),
    )
    org.add(
        "Task",
        {"WhoId": contact, "TaskSubtype": "Call", "CallDurationInSeconds": 600},
        at=T0 + dt.timedelta(hours=2),
    )
    org.add(
        "Task",
        {"WhoId": contact, "TaskSubtype": "Call", "Nudge_Update_Id__c": "activity:x"},
        at=T0 + dt.timedelta(hours=2),
    )
    result = salesforce.sync(client(org), start(T0), FMAP)
    by_type: dict[str, list[dict[str, Any]]] = {}
    for e in result.events:
        by_type.setdefault(e["type"], []).append(e)
    assert sorted(e["lead_id"] for e in by_type["lead.updated"]) == sorted(
        [salesforce.lead_id(i) for i in leads] + [salesforce.lead_id(contact)]
    )
    assert salesforce.lead_id(old) not in {e["lead_id"] for e in result.events}
    assert by_type["lead.updated"][0]["fields"]["company"] == "Acme 0"
    (won,) = by_type["deal.won"]
    assert won["lead_id"] == salesforce.lead_id(contact) and won["amount"] == 42000
    (call,) = by_type["call.ended"]
    assert call["duration_s"] == 600
    assert result.deals == {salesforce.lead_id(contact): opp}
    assert result.cursors["Lead"] == salesforce.soql_time(T0 + dt.timedelta(minutes=4))
    assert any("query/01g" in path for _m, path in org.requests)  # nextRecordsUrl was followed
    # the next sync re-reads only the boundary instant: the same event ids, nothing new
    again = salesforce.sync(client(org), result.cursors, FMAP)
    assert {e["event_id"] for e in again.events} <= {e["event_id"] for e in result.events}


def test_opportunity_stage_history_becomes_stage_changes_with_stable_ids(
    org: FakeSalesforce,
) -> None:
    """Each OpportunityHistory row after the checkpoint → deal.stage_changed (or deal.lost /
    deal.won when it closes) for the opportunity's contact, in order, with an id of the row
    and its SystemModstamp; a re-read of the boundary gives the same ids."""
    contact = org.add("Contact", {"Email": "cfo@initech.example", "LastName": "Lumb"}, at=T0)
    opp = org.add(
        "Opportunity",
        {"Name": "Initech", "StageName": "Prospecting", "ContactId": contact},
        at=T0,
    )
    for i, stage in enumerate(["Qualification", "Negotiation/Review", "Closed Lost"]):
        org.add(
            "OpportunityHistory",
            {"OpportunityId": opp, "StageName": stage},
            at=T0 + dt.timedelta(hours=i + 1),
        )
    result = salesforce.sync(client(org), start(T0), FMAP)
    deals = [e for e in result.events if e["type"].startswith("deal.")]
    assert [(e["type"], e.get("to_stage"), e["lead_id"]) for e in deals] == [
        ("deal.stage_changed", "Qualification", salesforce.lead_id(contact)),
        ("deal.stage_changed", "Negotiation/Review", salesforce.lead_id(contact)),
        ("deal.lost", None, salesforce.lead_id(contact)),
    ]
    assert all(e["event_id"].startswith("salesforce:OpportunityHistory:") for e in deals)
    again = salesforce.sync(client(org), result.cursors, FMAP)
    assert {e["event_id"] for e in again.events if e["type"].startswith("deal.")} <= {
        e["event_id"] for e in deals
    }


def test_initial_load_brings_people_as_they_are_and_no_history(org: FakeSalesforce) -> None:
    """The first sync loads every Lead and Contact (source salesforce.initial), no old stage
    changes or calls; the people's cursors continue from the newest record."""
    old = org.add(
        "Lead", {"Email": "old@acme.example", "Company": "Old"}, at=T0 - dt.timedelta(days=300)
    )
    contact = org.add("Contact", {"Email": "c@globex.example"}, at=T0 - dt.timedelta(days=3))
    opp = org.add("Opportunity", {"Name": "G", "ContactId": contact}, at=T0 - dt.timedelta(days=3))
    org.add(
        "OpportunityHistory",
        {"OpportunityId": opp, "StageName": "Closed Won"},
        at=T0 - dt.timedelta(days=2),
    )
    org.add("Task", {"WhoId": contact, "TaskSubtype": "Call"}, at=T0 - dt.timedelta(days=2))
    result = salesforce.initial_load(client(org), FMAP, T0)
    assert sorted(e["lead_id"] for e in result.events) == sorted(
        map(salesforce.lead_id, (old, contact))
    )
    assert {e["type"] for e in result.events} == {"lead.updated"}
    assert {e["source"] for e in result.events} == {"salesforce.initial"}
    assert result.cursors["Contact"] == salesforce.soql_time(T0 - dt.timedelta(days=3))
    assert (
        result.cursors["Task"] == result.cursors["OpportunityHistory"] == salesforce.soql_time(T0)
    )


@STORES
async def test_writes_go_in_one_composite_and_land_once(org: FakeSalesforce, store: Store) -> None:
    """A lead field, a deal field and a call go in one /composite request; redelivery writes nothing twice."""
    lead_rec = org.add("Lead", {"Email": "a@acme.example"})
    opp = org.add("Opportunity", {"Name": "Acme"})
    lead = salesforce.lead_id(lead_rec)
    state, clock = ConnectorState(store), Clock(T0)
    await state.link("salesforce", lead, "deal", opp, clock())
    for raw in (
        answer_update(lead, "lead.title", "CFO"),
        answer_update(lead, "deal.next_step", "proposal", "q2"),
        call_update(lead, "twilio-call:CA9"),
    ) * 2:
        await writer.record(state, "salesforce", raw, clock())
    assert await salesforce.drain(state, client(org), FMAP, clock) == 3
    assert await salesforce.drain(state, client(org), FMAP, clock) == 0
    assert [p for _m, p in org.requests].count("/services/data/v59.0/composite") == 1
    assert org.objects["Lead"][lead_rec]["Title"] == "CFO"
    assert org.objects["Opportunity"][opp]["NextStep"] == "proposal"
    (task,) = org.objects["Task"].values()
    assert (
        task["WhoId"] == lead_rec and task["WhatId"] == opp and task["CallDurationInSeconds"] == 312
    )
    assert task["Nudge_Update_Id__c"] == "activity:twilio-call:CA9"


@STORES
async def test_limits_and_outages_defer_and_a_retried_call_is_upserted_not_doubled(
    org: FakeSalesforce, store: Store
) -> None:
    """REQUEST_LIMIT_EXCEEDED and 503 keep writes pending with backoff; a write redone after a
    crash upserts the same Task by its external id."""
    lead_rec = org.add("Contact", {"Email": "a@acme.example"})
    lead = salesforce.lead_id(lead_rec)
    state, clock = ConnectorState(store), Clock(T0)
    sf = client(org)
    update = await writer.record(state, "salesforce", call_update(lead, "twilio-call:CA9"), clock())
    org.fail_next(403, "REQUEST_LIMIT_EXCEEDED")
    assert await salesforce.drain(state, sf, FMAP, clock) == 0
    (row,) = await state.writes("salesforce")
    assert row["state"] == "pending" and "REQUEST_LIMIT_EXCEEDED" in row["last_error"]
    org.outage = 503
    clock.at += dt.timedelta(minutes=1)
    assert await salesforce.drain(state, sf, FMAP, clock) == 0
    org.outage = None
    # a writer that sent the composite and died before marking the row: the Task exists
    clock.at += dt.timedelta(minutes=20)
    sub = salesforce.subrequest(update, FMAP, lead_rec, None)
    assert isinstance(sub, dict)
    await state.claim_write("salesforce", update.update_id, clock(), writer.LEASE)
    sf.composite([{**sub, "referenceId": "w0"}])
    clock.at += writer.LEASE + dt.timedelta(seconds=1)
    assert await salesforce.drain(state, sf, FMAP, clock) == 1
    assert len(org.objects["Task"]) == 1
    (row,) = await state.writes("salesforce")
    assert row["state"] == "done"


@STORES
async def test_refused_subrequests_fail_with_salesforce_message(
    org: FakeSalesforce, store: Store, tmp_path: Path
) -> None:
    """A field Salesforce does not have fails that write only, with INVALID_FIELD; the others land."""
    lead_rec = org.add("Lead", {"Email": "a@acme.example"})
    lead = salesforce.lead_id(lead_rec)
    bad_map = tmp_path / "map.yaml"
    bad_map.write_text(
        "fields:\n  lead.title: {property: Title, type: string}\n"
        "  lead.custom.budget: {property: Budget__c, type: string}\n"
    )
    fmap = FieldMap.load(bad_map)
    state, clock = ConnectorState(store), Clock(T0)
    await writer.record(
        state, "salesforce", answer_update(lead, "lead.custom.budget", "50k"), clock()
    )
    await writer.record(
        state, "salesforce", answer_update(lead, "lead.title", "CEO", "q2"), clock()
    )
    assert await salesforce.drain(state, client(org), fmap, clock) == 1
    states = {
        r["update_id"].rsplit(":", 1)[1]: (r["state"], r["last_error"])
        for r in await state.writes("salesforce")
    }
    assert states["lead.title"] == ("done", None)
    assert (
        states["lead.custom.budget"][0] == "failed"
        and "INVALID_FIELD" in states["lead.custom.budget"][1]
    )


def test_check_names_file_and_line_and_the_missing_external_id(
    org: FakeSalesforce,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`nudge connect check salesforce` passes on the bundled map; a missing field, a wrong type
    and a Task without the external id field are each reported; exit 1."""
    from cli import main

    monkeypatch.setenv("SALESFORCE_INSTANCE_URL", org.url)
    monkeypatch.setenv("SALESFORCE_ACCESS_TOKEN", org.token)
    assert main(["connect", "check", "salesforce"]) == 0
    assert "fields map onto Salesforce fields of the right type" in capsys.readouterr().out
    bad = tmp_path / "sf.yaml"
    bad.write_text(
        "fields:\n  lead.title: {property: Title, type: string}\n"
        "  lead.custom.budget: {property: Budget__c, type: string}\n"
        "  deal.value: {property: Amount, type: string}\n"
    )
    from tests.fakes import salesforce_server

    monkeypatch.setitem(
        salesforce_server.FIELDS, "Task", salesforce_server.FIELDS["Task"] - {"Nudge_Update_Id__c"}
    )
    assert main(["connect", "check", "salesforce", "--map", str(bad)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{bad}:3: lead.custom.budget: Salesforce has no Lead field 'Budget__c'"
    assert (
        out[1]
        == f"{bad}:4: deal.value: 'Amount' is of type 'number' in Salesforce; the map says 'string'"
    )
    assert out[2].startswith("Salesforce Task has no external id field 'Nudge_Update_Id__c'")


@pytest.mark.slow  # ~1 min: 3,000 people read and a model trained
def test_backfill_salesforce_then_train(
    org: FakeSalesforce,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A generated org's two years become point-in-time events in time order (0600), and train a model."""
    import os
    import stat

    from cli import main
    from tests.fakes.salesforce_server import generate_org
    from tests.unit.connectors.test_backfill import train

    made = generate_org(org, 3000, now=dt.datetime.now(dt.UTC))
    monkeypatch.setenv("SALESFORCE_INSTANCE_URL", org.url)
    monkeypatch.setenv("SALESFORCE_ACCESS_TOKEN", org.token)
    monkeypatch.setenv("NUDGE_DATA_DIR", str(tmp_path / "var"))
    out = tmp_path / "sf.ndjson"
    assert main(["connect", "backfill", "salesforce", "--since", "2y", "--out", str(out)]) == 0
    assert "Lead:" in capsys.readouterr().err
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    events = [json.loads(line) for line in out.read_text().splitlines()]
    count = {
        k: sum(e["type"] == k for e in events) for k in ("lead.created", "call.ended", "deal.won")
    }
    assert count == {
        "lead.created": made["people"],
        "call.ended": made["calls"],
        "deal.won": made["won"],
    }
    assert [e["occurred_at"] for e in events] == sorted(e["occurred_at"] for e in events)
    summary = train(out, tmp_path / "var")
    assert summary["positives"] >= 200
