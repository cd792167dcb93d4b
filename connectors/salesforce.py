"""Salesforce both ways, through ``simple-salesforce``: incremental sync in, composite writes out.

In: :func:`sync` reads what changed since each object's checkpoint with SOQL on
``SystemModstamp`` (``>=``: records sharing the checkpoint's instant are read again and
give the same event ids, so ingest drops them), following ``nextRecordsUrl`` pages:

    Lead, Contact        → lead.updated (profile fields through the field map, owner)
    OpportunityHistory   → deal.stage_changed / deal.won / deal.lost for the
                           opportunity's contact (``Opportunity.ContactId``)
    Task (Call)          → call.ended for the task's ``WhoId``

Event ids are ``salesforce:<object>:<Id>:<SystemModstamp>``; lead ids ``salesforce-<Id>``
(Lead ``00Q...`` or Contact ``003...``). Tasks Nudge wrote itself (``Nudge_Update_Id__c``
set) are not read back. The caller writes the new checkpoints only once the events are
on the broker (:mod:`streams.crm_connectors`). A first sync starts at the moment of
connecting for stage changes and calls (history goes to a training file through the
backfill), and loads every Lead and Contact as it is (:func:`initial_load`, source
``salesforce.initial``), which updates records and scores but fires no playbook rule.

Out: :func:`drain` writes up to 25 due ``crm_writes`` rows in one ``/composite`` request:
fields as ``PATCH`` on the Lead/Contact (or the Opportunity for deal fields), calls,
meetings and notes as Tasks *upserted* on the external id ``Nudge_Update_Id__c`` — a
retried write updates the Task it made instead of making a second. Each subrequest's
status decides its row: 2xx done, 503 / ``REQUEST_LIMIT_EXCEEDED`` retried with backoff,
other errors failed with Salesforce's message.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from connectors.fieldmap import FieldMap, to_crm
from connectors.hubspot import CrmPermanent, CrmTransient
from connectors.updates import Update
from connectors.writer import LEASE, backoff
from crm.connector_state import ConnectorState
from nudge.logs import get_logger

if TYPE_CHECKING:
    from simple_salesforce.api import Salesforce as SalesforceClient

log = get_logger(__name__)

SYSTEM = "salesforce"
VERSION = "59.0"
MARKER = "Nudge_Update_Id__c"
COMPOSITE_MAX = 25
TIMEOUT = 15.0
WON, LOST = ("Closed Won",), ("Closed Lost",)
LEAD_ONLY = frozenset({"Company", "Industry", "NumberOfEmployees"})
"""Lead fields a Contact does not have (they live on its Account, which is not read)."""

QUERIES = {
    "Lead": "SELECT Id, Email, Phone, FirstName, LastName, OwnerId, SystemModstamp{extra} FROM Lead "
    "WHERE SystemModstamp >= {cursor} ORDER BY SystemModstamp ASC",
    "Contact": "SELECT Id, Email, Phone, FirstName, LastName, OwnerId, SystemModstamp{extra} FROM Contact "
    "WHERE SystemModstamp >= {cursor} ORDER BY SystemModstamp ASC",
    "OpportunityHistory": "SELECT Id, OpportunityId, StageName, Amount, CreatedDate, SystemModstamp, "
    "Opportunity.ContactId FROM OpportunityHistory WHERE SystemModstamp >= {cursor} ORDER BY SystemModstamp ASC",
    "Task": "SELECT Id, WhoId, CallDurationInSeconds, CallType, CreatedDate, SystemModstamp, "
    f"{MARKER} FROM Task WHERE TaskSubtype = 'Call' AND SystemModstamp >= {{cursor}} ORDER BY SystemModstamp ASC",
}


def lead_id(record_id: str) -> str:
    return f"salesforce-{record_id}"


def record_id(lead: str) -> str | None:
    return lead.removeprefix("salesforce-") if lead.startswith("salesforce-") else None


def sobject_of(rid: str) -> str:
    return "Lead" if rid.startswith("00Q") else "Contact"


def parse_time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        when = dt.datetime.fromisoformat(
            re.sub(r"([+-]\d\d)(\d\d)$", r"\1:\2", value.replace("Z", "+00:00"))
        )
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def soql_time(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class Salesforce:
    """The REST API through simple-salesforce. Calls block: run them in a thread."""

    def __init__(
        self,
        instance_url: str,
        *,
        access_token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        security_token: str | None = None,
    ) -> None:
        # the SDK (and requests) load only when Salesforce is configured
        import requests
        from simple_salesforce.api import Salesforce as SalesforceClient

        session = requests.Session()
        session.request = _with_timeout(session.request)  # type: ignore[method-assign]
        self.sf: SalesforceClient
        if access_token:
            self.sf = SalesforceClient(
                instance_url=instance_url, session_id=access_token, version=VERSION, session=session
            )
        else:
            self.sf = SalesforceClient(
                username=username,
                password=password,
                security_token=security_token,
                instance_url=instance_url,
                version=VERSION,
                session=session,
            )

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        import requests
        from simple_salesforce.exceptions import SalesforceError

        try:
            return fn(*args, **kwargs)
        except SalesforceError as exc:
            status = getattr(exc, "status", 0)
            content = str(getattr(exc, "content", ""))[:300]
            if status in (429, 503) or status >= 500 or "REQUEST_LIMIT_EXCEEDED" in content:
                raise CrmTransient(f"Salesforce {status}: {content}") from exc
            raise CrmPermanent(f"Salesforce {status}: {content}") from exc
        except requests.RequestException as exc:
            raise CrmTransient(f"Salesforce unreachable: {type(exc).__name__}") from exc

    def query(self, soql: str) -> list[dict[str, Any]]:
        """Every record of a query, following ``nextRecordsUrl``."""
        page = self._call(self.sf.query, soql)
        records = list(page.get("records", []))
        while not page.get("done", True) and page.get("nextRecordsUrl"):
            page = self._call(self.sf.query_more, page["nextRecordsUrl"], identifier_is_url=True)
            records += page.get("records", [])
        return records

    def composite(self, subrequests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        answer = self._call(
            self.sf.restful,
            "composite",
            method="POST",
            json={"allOrNone": False, "compositeRequest": subrequests},
        )
        return list(answer.get("compositeResponse", []))


def _with_timeout(request: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", TIMEOUT)
        return request(*args, **kwargs)

    return call


# -- in --------------------------------------------------------------------------------------------
def person_event(sobject: str, rec: dict[str, Any], fmap: FieldMap) -> dict[str, Any]:
    fields = fmap.profile(rec, ("FirstName", "LastName"), "OwnerId")
    event: dict[str, Any] = {
        "type": "lead.updated",
        "event_id": f"salesforce:{sobject}:{rec['Id']}:{rec.get('SystemModstamp')}",
        "occurred_at": (
            parse_time(rec.get("SystemModstamp")) or dt.datetime.now(dt.UTC)
        ).isoformat(),
        "source": SYSTEM,
        "lead_id": lead_id(rec["Id"]),
        "fields": fields,
    }
    for key, attr in (("email", "Email"), ("phone", "Phone")):
        if rec.get(attr):
            event[key] = rec[attr]
    return event


def stage_event(rec: dict[str, Any]) -> dict[str, Any] | None:
    contact = (rec.get("Opportunity") or {}).get("ContactId")
    stage = rec.get("StageName")
    if not contact or not stage:
        return None
    base = {
        "event_id": f"salesforce:OpportunityHistory:{rec['Id']}:{rec.get('SystemModstamp')}",
        "occurred_at": (parse_time(rec.get("CreatedDate")) or dt.datetime.now(dt.UTC)).isoformat(),
        "source": SYSTEM,
        "lead_id": lead_id(contact),
    }
    if stage in WON:
        return {
            **base,
            "type": "deal.won",
            **({"amount": rec["Amount"]} if rec.get("Amount") is not None else {}),
        }
    if stage in LOST:
        return {**base, "type": "deal.lost"}
    return {**base, "type": "deal.stage_changed", "to_stage": stage}


def call_event(rec: dict[str, Any]) -> dict[str, Any] | None:
    if rec.get(MARKER) or not rec.get("WhoId"):
        return None  # Nudge's own, or not about a person
    return {
        "type": "call.ended",
        "event_id": f"salesforce:Task:{rec['Id']}:{rec.get('SystemModstamp')}",
        "occurred_at": (parse_time(rec.get("CreatedDate")) or dt.datetime.now(dt.UTC)).isoformat(),
        "source": SYSTEM,
        "lead_id": lead_id(rec["WhoId"]),
        "duration_s": min(float(rec.get("CallDurationInSeconds") or 0), 7 * 24 * 3600),
        "direction": "inbound" if rec.get("CallType") == "Inbound" else "outbound",
    }


@dataclass
class SyncResult:
    events: list[dict[str, Any]]
    cursors: dict[str, str]
    deals: dict[str, str]
    """lead id → opportunity id, for writing deal fields back."""


def initial_load(sf: Salesforce, fmap: FieldMap, now: dt.datetime) -> SyncResult:
    """The first sync: every Lead and Contact as it is now (source ``salesforce.initial``:
    it updates the record and scores but fires no rule), and no older stage changes or calls.
    The people's checkpoints continue from the newest record read, the rest from ``now``."""
    mapped = {m.property for m in fmap.reading("contact")}
    extras = {
        "Lead": "".join(f", {p}" for p in sorted(mapped)),
        "Contact": "".join(f", {p}" for p in sorted(mapped - LEAD_ONLY)),
    }
    cursors = {obj: soql_time(now) for obj in QUERIES}
    events = []
    for obj in ("Lead", "Contact"):
        query = QUERIES[obj].replace(" WHERE SystemModstamp >= {cursor}", "")
        newest: str | None = None
        for rec in sf.query(query.format(extra=extras[obj])):
            event = person_event(obj, rec, fmap)
            event["source"] = f"{SYSTEM}.initial"
            events.append(event)
            when = parse_time(rec.get("SystemModstamp"))
            if when is not None:
                newest = max(newest or "", soql_time(when))
        cursors[obj] = newest or soql_time(now)
    return SyncResult(events, cursors, {})


def sync(sf: Salesforce, cursors: dict[str, str], fmap: FieldMap) -> SyncResult:
    """What changed since ``cursors`` (object → SOQL datetime), and the cursors to save after."""
    mapped = {m.property for m in fmap.reading("contact")}
    extras = {
        "Lead": "".join(f", {p}" for p in sorted(mapped)),
        "Contact": "".join(f", {p}" for p in sorted(mapped - LEAD_ONLY)),
    }
    events: list[dict[str, Any]] = []
    new = dict(cursors)
    deals: dict[str, str] = {}
    for obj, template in QUERIES.items():
        cursor = cursors[obj]
        rows = sf.query(template.format(cursor=cursor, extra=extras.get(obj, "")))
        for rec in rows:
            if obj in ("Lead", "Contact"):
                event: dict[str, Any] | None = person_event(obj, rec, fmap)
            elif obj == "OpportunityHistory":
                event = stage_event(rec)
                contact = (rec.get("Opportunity") or {}).get("ContactId")
                if contact and rec.get("OpportunityId"):
                    deals[lead_id(contact)] = rec["OpportunityId"]
            else:
                event = call_event(rec)
            if event is not None:
                events.append(event)
            when = parse_time(rec.get("SystemModstamp"))
            if when is not None:
                new[obj] = max(new[obj], soql_time(when))
    return SyncResult(events, new, deals)


# -- out -------------------------------------------------------------------------------------------
def subrequest(update: Update, fmap: FieldMap, rid: str, deal: str | None) -> dict[str, Any] | str:
    """The composite subrequest of one update, or why nothing is written."""
    base = f"/services/data/v{VERSION}/sobjects"
    if update.kind == "ignored":
        return update.reason or "ignored"
    if update.kind == "field":
        m = fmap.for_field(update.field or "")
        if m is None:
            return f"{update.field} is not in the field map {fmap.path.name}"
        value = to_crm(update.value, m.type)
        body = {
            m.property: (
                float(value)
                if m.type == "number" and value is not None
                else value == "true"
                if m.type == "bool"
                else value
            )
        }
        if m.object == "deal":
            if deal is None:
                return "no Salesforce opportunity is linked to this lead"
            return {"method": "PATCH", "url": f"{base}/Opportunity/{deal}", "body": body}
        return {"method": "PATCH", "url": f"{base}/{sobject_of(rid)}/{rid}", "body": body}
    detail = update.detail
    if str(detail.get("source", "")).startswith(SYSTEM):
        return "it came from Salesforce"
    when = parse_time(detail.get("occurred_at")) or dt.datetime.now(dt.UTC)
    task: dict[str, Any] = {
        "WhoId": rid,
        "Status": "Completed",
        "ActivityDate": when.date().isoformat(),
    }
    if deal:
        task["WhatId"] = deal
    if update.kind == "call":
        task |= {
            "Subject": "Call (logged by Nudge)",
            "TaskSubtype": "Call",
            "CallDurationInSeconds": int(float(detail.get("duration_s") or 0)),
            "CallType": "Inbound" if detail.get("direction") == "inbound" else "Outbound",
            "Description": str(detail.get("outcome") or ""),
        }
    elif update.kind == "meeting":
        minutes = round(float(detail.get("duration_s") or 0) / 60)
        task |= {
            "Subject": f"{detail.get('title') or 'Meeting'} ({minutes} min)",
            "Description": "logged by Nudge",
        }
    elif update.kind == "note":
        task |= {"Subject": "Note from Nudge", "Description": str(detail.get("text", ""))[:32000]}
    else:
        return f"update kind {update.kind!r} is not written to Salesforce"
    return {
        "method": "PATCH",
        "url": f"{base}/Task/{MARKER}/{quote(update.update_id, safe='')}",
        "body": task,
    }


async def drain(
    state: ConnectorState, sf: Salesforce, fmap: FieldMap, now: Callable[[], dt.datetime]
) -> int:
    """Write up to 25 due rows in one composite request; the number written."""
    subs: list[dict[str, Any]] = []
    rows: dict[str, dict[str, Any]] = {}
    for row in await state.due_writes(SYSTEM, now(), limit=COMPOSITE_MAX):
        uid = row["update_id"]
        if not await state.claim_write(SYSTEM, uid, now(), LEASE):
            continue
        update = Update.stored(row)
        rid = record_id(row["lead_id"]) or await state.remote_id(SYSTEM, row["lead_id"], "contact")
        if rid is None:
            await state.finish_write(
                SYSTEM, uid, "ignored", now(), error="the lead has no Salesforce record"
            )
            continue
        sub = subrequest(update, fmap, rid, await state.remote_id(SYSTEM, row["lead_id"], "deal"))
        if isinstance(sub, str):
            await state.finish_write(SYSTEM, uid, "ignored", now(), error=sub)
            continue
        ref = f"w{len(subs)}"
        subs.append({**sub, "referenceId": ref})
        rows[ref] = row
    if not subs:
        return 0
    try:
        results = await asyncio.to_thread(sf.composite, subs)
    except (CrmTransient, CrmPermanent) as exc:
        for row in rows.values():
            wait = backoff(row["attempts"] + 1, None)
            await state.retry_write(
                SYSTEM, row["update_id"], now() + dt.timedelta(seconds=wait), str(exc), now()
            )
        log.warning("salesforce writes deferred", count=len(rows), error=str(exc))
        return 0
    written = 0
    for result in results:
        target = rows.get(str(result.get("referenceId")))
        if target is None:
            continue
        status = int(result.get("httpStatusCode") or 0)
        body = result.get("body")
        message = str(body)[:300]
        if 200 <= status < 300:
            remote = body.get("id") if isinstance(body, dict) else None
            await state.finish_write(SYSTEM, target["update_id"], "done", now(), remote_id=remote)
            written += 1
        elif status in (429, 503) or status >= 500 or "REQUEST_LIMIT_EXCEEDED" in message:
            wait = backoff(target["attempts"] + 1, None)
            await state.retry_write(
                SYSTEM, target["update_id"], now() + dt.timedelta(seconds=wait), message, now()
            )
        else:
            await state.finish_write(SYSTEM, target["update_id"], "failed", now(), error=message)
    return written


# -- check and backfill ------------------------------------------------------------------------
TYPES = {
    "string": "string",
    "textarea": "string",
    "email": "string",
    "phone": "string",
    "url": "string",
    "reference": "string",
    "id": "string",
    "picklist": "enumeration",
    "multipicklist": "enumeration",
    "double": "number",
    "int": "number",
    "currency": "number",
    "percent": "number",
    "date": "date",
    "datetime": "datetime",
    "boolean": "bool",
}
"""Salesforce field types → the field map's types."""


def field_types(sf: Salesforce, sobject: str) -> dict[str, str]:
    """A sobject's fields and their field-map types (``describe``); ``*external`` marks external ids."""
    answer = sf._call(getattr(sf.sf, sobject).describe)
    out = {}
    for f in answer.get("fields", []):
        out[f["name"]] = TYPES.get(f.get("type", ""), f.get("type", ""))
        if f.get("externalId"):
            out[f["name"] + "*external"] = "yes"
    return out


BACKFILL = {
    "Lead": "SELECT Id, Email, Phone, FirstName, LastName, OwnerId, CreatedDate, SystemModstamp{extra} "
    "FROM Lead WHERE CreatedDate >= {since} ORDER BY CreatedDate ASC",
    "Contact": "SELECT Id, Email, Phone, FirstName, LastName, OwnerId, CreatedDate, SystemModstamp{extra} "
    "FROM Contact WHERE CreatedDate >= {since} ORDER BY CreatedDate ASC",
    "OpportunityHistory": QUERIES["OpportunityHistory"].replace(
        "SystemModstamp >= {cursor}", "CreatedDate >= {since}"
    ),
    "Task": QUERIES["Task"].replace("SystemModstamp >= {cursor}", "CreatedDate >= {since}"),
}


def backfill(
    sf: Salesforce, fmap: FieldMap, since: dt.datetime, progress: Callable[[str, int], None]
) -> list[dict[str, Any]]:
    """The org's history since ``since`` as point-in-time events (people at their creation)."""
    mapped = {m.property for m in fmap.reading("contact")}
    extras = {
        "Lead": "".join(f", {p}" for p in sorted(mapped)),
        "Contact": "".join(f", {p}" for p in sorted(mapped - LEAD_ONLY)),
    }
    out: list[dict[str, Any]] = []
    for obj, template in BACKFILL.items():
        rows = sf.query(
            template.format(since=soql_time(since), extra=extras.get(obj, ""), cursor="")
        )
        for rec in rows:
            if obj in ("Lead", "Contact"):
                event = person_event(obj, {**rec, "SystemModstamp": rec.get("CreatedDate")}, fmap)
                event["type"] = "lead.created"
                out.append(event)
            elif obj == "OpportunityHistory":
                if (e := stage_event(rec)) is not None:
                    out.append(e)
            elif (e := call_event({**rec, MARKER: None})) is not None:
                out.append(e)
        progress(obj, len(rows))
    return out
