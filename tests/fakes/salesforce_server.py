"""A local stand-in for Salesforce's REST API (v59.0), spoken to by the real ``simple-salesforce``.

It serves HTTPS (simple-salesforce only builds ``https://`` URLs; the certificate comes from
:mod:`tests.fakes.tls` and is trusted through ``REQUESTS_CA_BUNDLE``) and behaves like
Salesforce where Nudge depends on it
(https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/):

- Bearer session auth (401 ``INVALID_SESSION_ID``);
- ``GET /services/data/v59.0/query?q=`` — the SOQL Nudge sends (``SELECT`` fields, including
  one parent relationship field such as ``Opportunity.ContactId``, ``FROM`` one object,
  ``WHERE`` clauses joined by ``AND`` with ``=``, ``>=``, ``>`` on strings and datetimes,
  ``ORDER BY`` one field); results in pages of :attr:`FakeSalesforce.page_size` with
  ``nextRecordsUrl`` (``GET /services/data/v59.0/query/<locator>``);
- ``PATCH /sobjects/{type}/{id}`` (204), upsert ``PATCH /sobjects/{type}/{extIdField}/{value}``
  (201 created / 200 updated), ``POST /composite`` with per-subrequest results;
- errors as ``[{"message", "errorCode"}]``: 400 ``INVALID_FIELD``, 404 ``NOT_FOUND``,
  403 ``REQUEST_LIMIT_EXCEEDED`` and 503 on command (:meth:`FakeSalesforce.fail_next`,
  :attr:`FakeSalesforce.outage`).

Every write stamps ``SystemModstamp``, as Salesforce does.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.fakes.tls import self_signed

VERSION = "v59.0"
TOKEN = "00Dfake!session-token"
FIELDS = {
    "Lead": {
        "Id",
        "Email",
        "Phone",
        "FirstName",
        "LastName",
        "Company",
        "Title",
        "Industry",
        "NumberOfEmployees",
        "OwnerId",
        "Status",
        "IsConverted",
        "CreatedDate",
        "SystemModstamp",
        "Nudge_Next_Step__c",
    },
    "Contact": {
        "Id",
        "Email",
        "Phone",
        "FirstName",
        "LastName",
        "Title",
        "OwnerId",
        "CreatedDate",
        "SystemModstamp",
        "Nudge_Next_Step__c",
    },
    "Opportunity": {
        "Id",
        "Name",
        "StageName",
        "Amount",
        "ContactId",
        "NextStep",
        "CloseDate",
        "CreatedDate",
        "SystemModstamp",
        "Nudge_Meeting_Rating__c",
    },
    "OpportunityHistory": {
        "Id",
        "OpportunityId",
        "StageName",
        "Amount",
        "CreatedDate",
        "SystemModstamp",
    },
    "Task": {
        "Id",
        "Subject",
        "WhoId",
        "WhatId",
        "TaskSubtype",
        "Status",
        "CallDurationInSeconds",
        "CallType",
        "ActivityDate",
        "Description",
        "CreatedDate",
        "SystemModstamp",
        "Nudge_Update_Id__c",
    },
}
PREFIX = {
    "Lead": "00Q",
    "Contact": "003",
    "Opportunity": "006",
    "OpportunityHistory": "008",
    "Task": "00T",
}


def sf_time(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


@dataclass
class FakeSalesforce:
    folder: Path
    token: str = TOKEN
    objects: dict[str, dict[str, dict[str, Any]]] = field(
        default_factory=lambda: {t: {} for t in FIELDS}
    )
    page_size: int = 2000
    outage: int | None = None
    requests: list[tuple[str, str]] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)
    _failures: list[tuple[int, str]] = field(default_factory=list)
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    _cursors: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    server: TestServer | None = None

    def __post_init__(self) -> None:
        self.ca_file, self.ssl_context = self_signed(self.folder)

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")

    def fail_next(self, status: int, code: str = "SERVER_UNAVAILABLE", times: int = 1) -> None:
        self._failures += [(status, code)] * times

    # -- the org, seen from the test -------------------------------------------------------------
    def add(self, sobject: str, values: dict[str, Any], *, at: dt.datetime | None = None) -> str:
        oid = f"{PREFIX[sobject]}{next(self._ids):015d}"[:18]
        stamp = sf_time(at or dt.datetime.now(dt.UTC))
        self.objects[sobject][oid] = {
            "Id": oid,
            "CreatedDate": stamp,
            "SystemModstamp": stamp,
            **values,
        }
        return oid

    def touch(
        self, sobject: str, oid: str, values: dict[str, Any], *, at: dt.datetime | None = None
    ) -> None:
        self.objects[sobject][oid].update(
            values, SystemModstamp=sf_time(at or dt.datetime.now(dt.UTC))
        )

    # -- the API ---------------------------------------------------------------------------------
    def _error(self, status: int, code: str, message: str) -> web.Response:
        return web.json_response([{"message": message, "errorCode": code}], status=status)

    @web.middleware
    async def _gate(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append((request.method, request.path))
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return self._error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        if self.outage:
            return self._error(self.outage, "SERVER_UNAVAILABLE", "Service unavailable")
        if self._failures:
            status, code = self._failures.pop(0)
            return self._error(
                status,
                code,
                "TotalRequests Limit exceeded." if code == "REQUEST_LIMIT_EXCEEDED" else "failure",
            )
        return await handler(request)

    async def query(self, request: web.Request) -> web.Response:
        soql = request.query.get("q", "")
        self.queries.append(soql)
        m = re.fullmatch(
            r"SELECT (.+?) FROM (\w+)(?: WHERE (.+?))?(?: ORDER BY (\w+)(?: ASC)?)?(?: LIMIT (\d+))?",
            soql.strip(),
            re.S,
        )
        if not m or m[2] not in FIELDS:
            return self._error(400, "MALFORMED_QUERY", f"cannot parse: {soql[:80]}")
        fields = [f.strip() for f in m[1].split(",")]
        sobject = m[2]
        for f in fields:
            base = f.split(".")[0]
            if ("." not in f and f not in FIELDS[sobject]) or (
                "." in f and f"{base}Id" not in FIELDS[sobject]
            ):
                return self._error(
                    400, "INVALID_FIELD", f"No such column '{f}' on entity '{sobject}'."
                )
        rows = list(self.objects[sobject].values())
        for clause in m[3].split(" AND ") if m[3] else []:
            c = re.fullmatch(r"(\w+) (>=|>|=) (.+)", clause.strip())
            if not c:
                return self._error(400, "MALFORMED_QUERY", f"cannot parse clause {clause}")
            name, op, raw = c[1], c[2], c[3].strip()
            value = raw[1:-1] if raw.startswith("'") else raw
            key = _when_key if name.endswith(("Date", "Modstamp")) else str

            def test(
                row: dict[str, Any],
                name: str = name,
                op: str = op,
                value: str = value,
                key: Any = key,
            ) -> bool:
                have = row.get(name)
                if have is None:
                    return value == "null" and op == "="
                a, b = key(str(have)), key(value)
                return a >= b if op == ">=" else a > b if op == ">" else a == b

            rows = [r for r in rows if test(r)]
        if m[4]:
            rows.sort(
                key=lambda r: (
                    _when_key(str(r.get(m[4], "")))
                    if m[4].endswith(("Date", "Modstamp"))
                    else str(r.get(m[4], "")),
                    r["Id"],
                )
            )
        if m[5]:
            rows = rows[: int(m[5])]
        records = [self._record(sobject, r, fields) for r in rows]
        return web.json_response(self._page(records, 0))

    def _record(self, sobject: str, row: dict[str, Any], fields: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "attributes": {
                "type": sobject,
                "url": f"/services/data/{VERSION}/sobjects/{sobject}/{row['Id']}",
            }
        }
        for f in fields:
            if "." in f:
                parent, child = f.split(".", 1)
                parent_row = (
                    next(
                        (
                            o.get(parent + "Id")
                            and self.objects[parent].get(row.get(parent + "Id", ""))
                            for o in [row]
                        ),
                        None,
                    )
                    if parent in self.objects
                    else None
                )
                out[parent] = (
                    None
                    if not parent_row
                    else {"attributes": {"type": parent}, child: parent_row.get(child)}
                )
            else:
                out[f] = row.get(f)
        return out

    def _page(self, records: list[dict[str, Any]], start: int) -> dict[str, Any]:
        page = records[start : start + self.page_size]
        answer: dict[str, Any] = {
            "totalSize": len(records),
            "done": start + self.page_size >= len(records),
            "records": page,
        }
        if not answer["done"]:
            locator = f"01g{next(self._ids):015d}-{start + self.page_size}"
            self._cursors[locator] = records
            answer["nextRecordsUrl"] = f"/services/data/{VERSION}/query/{locator}"
        return answer

    async def query_more(self, request: web.Request) -> web.Response:
        locator = request.match_info["locator"]
        records = self._cursors.get(locator)
        if records is None:
            return self._error(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return web.json_response(self._page(records, int(locator.rsplit("-", 1)[1])))

    def _write(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        parts = [unquote(p) for p in path.split("/sobjects/", 1)[1].split("/")]
        sobject = parts[0]
        if sobject not in FIELDS:
            return 404, [
                {"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}
            ]
        bad = [k for k in body if k not in FIELDS[sobject]]
        if bad:
            return 400, [
                {
                    "message": f"No such column '{bad[0]}' on sobject of type {sobject}",
                    "errorCode": "INVALID_FIELD",
                }
            ]
        now = sf_time(dt.datetime.now(dt.UTC))
        if method == "PATCH" and len(parts) == 2:
            if parts[1] not in self.objects[sobject]:
                return 404, [
                    {
                        "message": "Provided external ID field does not exist or is not accessible",
                        "errorCode": "NOT_FOUND",
                    }
                ]
            self.objects[sobject][parts[1]].update(body, SystemModstamp=now)
            return 204, None
        if method == "PATCH" and len(parts) == 3:
            ext_field, value = parts[1], parts[2]
            if ext_field not in FIELDS[sobject]:
                return 404, [
                    {
                        "message": "Provided external ID field does not exist",
                        "errorCode": "NOT_FOUND",
                    }
                ]
            found = next(
                (r for r in self.objects[sobject].values() if r.get(ext_field) == value), None
            )
            if found:
                found.update(body, SystemModstamp=now)
                return 200, {"id": found["Id"], "success": True, "errors": [], "created": False}
            oid = self.add(sobject, {**body, ext_field: value})
            return 201, {"id": oid, "success": True, "errors": [], "created": True}
        if method == "POST" and len(parts) == 1:
            oid = self.add(sobject, body)
            return 201, {"id": oid, "success": True, "errors": []}
        return 405, [{"message": "method not allowed", "errorCode": "METHOD_NOT_ALLOWED"}]

    async def sobject(self, request: web.Request) -> web.Response:
        if request.method == "GET" and request.path.rstrip("/").endswith("/describe"):
            return self.describe(request.path.split("/sobjects/", 1)[1].split("/")[0])
        body = await request.json() if request.can_read_body else {}
        status, answer = self._write(request.method, request.path, body)
        if answer is None:
            return web.Response(status=status)
        return web.json_response(answer, status=status)

    async def composite(self, request: web.Request) -> web.Response:
        body = await request.json()
        subs = body.get("compositeRequest", [])
        if len(subs) > 25:
            return self._error(400, "INVALID_BATCH_SIZE", "at most 25 subrequests")
        out = []
        for sub in subs:
            status, answer = self._write(sub["method"], sub["url"], sub.get("body") or {})
            out.append(
                {
                    "body": answer,
                    "httpHeaders": {},
                    "httpStatusCode": status,
                    "referenceId": sub["referenceId"],
                }
            )
        return web.json_response({"compositeResponse": out})

    def describe(self, sobject: str) -> web.Response:
        if sobject not in FIELDS:
            return self._error(404, "NOT_FOUND", "The requested resource does not exist")
        return web.json_response(
            {
                "name": sobject,
                "fields": [
                    {
                        "name": name,
                        "type": sf_type(name),
                        "externalId": name == "Nudge_Update_Id__c",
                        "unique": name == "Nudge_Update_Id__c",
                        "updateable": name != "Id",
                    }
                    for name in sorted(FIELDS[sobject])
                ],
            }
        )

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._gate])
        base = f"/services/data/{VERSION}"
        app.router.add_get(f"{base}/query/", self.query)
        app.router.add_get(f"{base}/query", self.query)
        app.router.add_get(base + "/query/{locator}", self.query_more)
        app.router.add_post(f"{base}/composite", self.composite)
        app.router.add_route("*", base + "/sobjects/{tail:.+}", self.sobject)
        return app


def sf_type(name: str) -> str:
    """The Salesforce field type of a fake field, as ``describe`` reports it."""
    if name in ("NumberOfEmployees", "CallDurationInSeconds"):
        return "int"
    if name == "Amount":
        return "currency"
    if name in ("CloseDate", "ActivityDate"):
        return "date"
    if name.endswith("Date") or name == "SystemModstamp":
        return "datetime"
    if name == "IsConverted":
        return "boolean"
    if name in ("StageName", "Status", "Industry", "TaskSubtype", "CallType"):
        return "picklist"
    if name == "Id":
        return "id"
    if name.endswith("Id"):
        return "reference"
    return {"Email": "email", "Phone": "phone", "Description": "textarea"}.get(name, "string")


def generate_org(
    fake: FakeSalesforce, leads: int, *, now: dt.datetime, seed: int = 11
) -> dict[str, int]:
    """Two years of an org: leads, and for some a contact with calls and an opportunity whose
    stage history ends won more often for the more-called (a model has something to learn)."""
    import random

    rng = random.Random(seed)
    made = {"people": 0, "calls": 0, "won": 0}
    for i in range(leads):
        created = now - dt.timedelta(days=rng.uniform(5, 700))
        intent = rng.random()
        as_contact = rng.random() < 0.4
        person = fake.add(
            "Contact" if as_contact else "Lead",
            {
                "Email": f"p{i}@org{i % 500}.example",
                "LastName": f"P{i}",
                "Title": rng.choice(["CFO", "CTO", "VP Ops"]),
                **(
                    {}
                    if as_contact
                    else {"Company": f"Org {i % 500}", "Industry": rng.choice(["Retail", "Energy"])}
                ),
            },
            at=created,
        )
        made["people"] += 1
        calls = int(intent * 5 * rng.random() + (2 if intent > 0.7 else 0))
        for c in range(calls):
            when = created + dt.timedelta(days=rng.uniform(0, 30) + c)
            if when < now:
                fake.add(
                    "Task",
                    {
                        "WhoId": person,
                        "TaskSubtype": "Call",
                        "CallDurationInSeconds": rng.randint(60, 1800),
                    },
                    at=when,
                )
                made["calls"] += 1
        if as_contact and rng.random() < 0.8:
            opp = fake.add("Opportunity", {"Name": f"Opp {i}", "ContactId": person}, at=created)
            when = created + dt.timedelta(days=rng.uniform(1, 10))
            for stage in ["Prospecting", "Qualification", "Proposal/Price Quote"][
                : rng.randint(1, 3)
            ]:
                fake.add("OpportunityHistory", {"OpportunityId": opp, "StageName": stage}, at=when)
                when += dt.timedelta(days=rng.uniform(3, 20))
            if when < now:
                won = rng.random() < 0.15 + 0.7 * intent
                fake.add(
                    "OpportunityHistory",
                    {
                        "OpportunityId": opp,
                        "StageName": "Closed Won" if won else "Closed Lost",
                        "Amount": rng.randint(5, 80) * 1000,
                    },
                    at=when,
                )
                made["won"] += int(won)
    return made


def _when_key(text: str) -> str:
    """Salesforce datetimes (``...000+0000``) and SOQL literals (``...Z``) compared as UTC."""
    text = text.strip()
    try:
        when = dt.datetime.fromisoformat(
            re.sub(r"([+-]\d\d)(\d\d)$", r"\1:\2", text.replace("Z", "+00:00"))
        )
    except ValueError:
        return text
    return when.astimezone(dt.UTC).isoformat()
