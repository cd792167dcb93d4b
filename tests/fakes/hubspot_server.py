"""A local stand-in for HubSpot's CRM v3 API, spoken to by the real ``hubspot-api-client``.

It behaves like HubSpot where Nudge depends on it
(https://developers.hubspot.com/docs/api/crm/understanding-the-crm):

- Bearer auth with a private app token (401 ``INVALID_AUTHENTICATION`` otherwise);
- ``POST /crm/v3/objects/{type}/batch/read`` (contacts, deals): ``{"inputs": [{"id"}],
  "properties": [...]}`` → ``{"status": "COMPLETE", "results": [...]}``, unknown ids left
  out (HubSpot answers 207 with errors; the results are what matters);
- ``PATCH /crm/v3/objects/{type}/{id}`` sets properties; an unknown property is 400
  ``PROPERTY_DOESNT_EXIST`` (``VALIDATION_ERROR``), an unknown id 404;
- ``POST /crm/v3/objects/{calls,notes}`` creates an engagement with ``associations``
  (``associationTypeId`` 194 call→contact, 206 call→deal, 202 note→contact, 214 note→deal);
- ``POST /crm/v3/objects/{type}/search`` with ``filterGroups`` of ``EQ`` filters;
- ``POST /crm/v4/associations/{from}/{to}/batch/read``;
- ``GET /crm/v3/properties/{type}``: the portal's property definitions;
- errors in HubSpot's JSON shape ``{"status": "error", "message", "correlationId", "category"}``;
  429 ``RATE_LIMITS`` with ``Retry-After`` on command (:meth:`FakeHubSpot.fail_next`),
  a whole outage (:attr:`FakeHubSpot.outage`).

:meth:`FakeHubSpot.webhook` sends signed webhook batches the way HubSpot does
(``X-HubSpot-Signature-v3``: base64 HMAC-SHA256 of method + URI + body + timestamp,
``X-HubSpot-Request-Timestamp`` in milliseconds), written from HubSpot's docs.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import hmac
import itertools
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

ACCESS_TOKEN = "pat-na1-fake-hubspot-token"
CLIENT_SECRET = "fake-hubspot-client-secret"
PORTAL_ID = 62515

ASSOCIATION_TYPES = {
    ("calls", "contacts"): 194,
    ("calls", "deals"): 206,
    ("notes", "contacts"): 202,
    ("notes", "deals"): 214,
    ("deals", "contacts"): 3,
    ("contacts", "deals"): 4,
}

DEFAULT_PROPERTIES: dict[str, dict[str, str]] = {
    "contacts": {
        "email": "string",
        "firstname": "string",
        "lastname": "string",
        "company": "string",
        "jobtitle": "string",
        "industry": "string",
        "phone": "string",
        "hubspot_owner_id": "enumeration",
        "lifecyclestage": "enumeration",
        "hs_lead_status": "enumeration",
        "lastmodifieddate": "datetime",
        "createdate": "datetime",
        "nudge_budget": "string",
        "nudge_timeline": "string",
        "nudge_no_next_step_reason": "string",
        "nudge_score": "number",
    },
    "deals": {
        "dealname": "string",
        "dealstage": "enumeration",
        "amount": "number",
        "pipeline": "enumeration",
        "closedate": "datetime",
        "hubspot_owner_id": "enumeration",
        "hs_next_step": "string",
        "nudge_meeting_rating": "string",
    },
    "calls": {
        "hs_timestamp": "datetime",
        "hs_call_body": "string",
        "hs_call_duration": "number",
        "hs_call_direction": "enumeration",
        "hs_call_status": "enumeration",
        "hs_call_title": "string",
        "nudge_update_id": "string",
    },
    "notes": {"hs_timestamp": "datetime", "hs_note_body": "string", "nudge_update_id": "string"},
}


@dataclass
class Failure:
    status: int
    retry_after: float | None = None


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


@dataclass
class FakeHubSpot:
    """A portal: objects by type and id, associations, and what it was asked."""

    access_token: str = ACCESS_TOKEN
    client_secret: str = CLIENT_SECRET
    objects: dict[str, dict[str, dict[str, Any]]] = field(
        default_factory=lambda: {t: {} for t in DEFAULT_PROPERTIES}
    )
    properties: dict[str, dict[str, str]] = field(
        default_factory=lambda: {t: dict(p) for t, p in DEFAULT_PROPERTIES.items()}
    )
    associations: set[tuple[str, str, str, str]] = field(default_factory=set)
    """(from type, from id, to type, to id), stored both ways."""
    requests: list[tuple[str, str]] = field(default_factory=list)
    outage: int | None = None
    create_latency: float = 0.0
    read_latency: float = 0.0
    """Seconds a batch read waits before answering (a slow HubSpot)."""
    """Seconds a create waits before answering, after it is stored (as at HubSpot: a client
    that dies meanwhile has created an object it never heard about)."""
    _failures: list[Failure] = field(default_factory=list)
    _linked: dict[tuple[str, str, str], list[str]] = field(default_factory=dict)
    _ids: Any = field(default_factory=lambda: itertools.count(1001))
    server: TestServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")

    def fail_next(self, status: int, *, retry_after: float | None = None, times: int = 1) -> None:
        self._failures += [Failure(status, retry_after) for _ in range(times)]

    # -- the portal, seen from the test -----------------------------------------------------------
    def add(
        self,
        object_type: str,
        properties: dict[str, Any],
        object_id: str | None = None,
        *,
        created: dt.datetime | None = None,
        history: dict[str, list[tuple[str, dt.datetime]]] | None = None,
    ) -> str:
        """Store an object; ``history`` is each property's past values, oldest first."""
        object_id = object_id or str(next(self._ids))
        now = _iso(created or dt.datetime.now(dt.UTC))
        props = {k: None if v is None else str(v) for k, v in properties.items()}
        self.objects[object_type][object_id] = {
            "id": object_id,
            "properties": {"createdate": now, "lastmodifieddate": now, **props},
            "createdAt": now,
            "updatedAt": now,
            "archived": False,
            "_history": {k: [(v, _iso(t)) for v, t in vs] for k, vs in (history or {}).items()},
        }
        return object_id

    def associate(self, from_type: str, from_id: str, to_type: str, to_id: str) -> None:
        self.associations.add((from_type, from_id, to_type, to_id))
        self.associations.add((to_type, to_id, from_type, from_id))
        self._linked.setdefault((from_type, from_id, to_type), []).append(to_id)
        self._linked.setdefault((to_type, to_id, from_type), []).append(from_id)

    def linked(self, from_type: str, from_id: str, to_type: str) -> list[str]:
        return sorted(set(self._linked.get((from_type, from_id, to_type), [])), key=int)

    def engagements(self, object_type: str, contact_id: str) -> list[dict[str, Any]]:
        """The calls or notes associated to a contact."""
        return [
            obj
            for oid, obj in self.objects[object_type].items()
            if (object_type, oid, "contacts", contact_id) in self.associations
        ]

    # -- the API -----------------------------------------------------------------------------------
    def _error(self, status: int, category: str, message: str, headers: Any = None) -> web.Response:
        return web.json_response(
            {
                "status": "error",
                "message": message,
                "correlationId": str(uuid.uuid4()),
                "category": category,
            },
            status=status,
            headers=headers,
        )

    @web.middleware
    async def _gate(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append((request.method, request.path))
        if request.headers.get("Authorization") != f"Bearer {self.access_token}":
            return self._error(
                401, "INVALID_AUTHENTICATION", "Authentication credentials not found."
            )
        if self.outage:
            return self._error(self.outage, "INTERNAL_ERROR", "Service unavailable")
        if self._failures:
            failure = self._failures.pop(0)
            if failure.status == 429:
                headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after else {}
                return self._error(
                    429,
                    "RATE_LIMITS",
                    "You have reached your secondly limit.",
                    {**headers, "X-HubSpot-RateLimit-Secondly-Remaining": "0"},
                )
            return self._error(failure.status, "INTERNAL_ERROR", "Failure on request")
        return await handler(request)

    def _known(self, object_type: str) -> bool:
        return object_type in self.objects

    def _check_properties(self, object_type: str, props: dict[str, Any]) -> web.Response | None:
        unknown = [p for p in props if p not in self.properties[object_type]]
        if unknown:
            return self._error(
                400,
                "VALIDATION_ERROR",
                f'Property values were not valid: [{{"isValid":false,"message":"Property \\"{unknown[0]}\\" does not exist","error":"PROPERTY_DOESNT_EXIST","name":"{unknown[0]}"}}]',
            )
        return None

    def _view(self, obj: dict[str, Any], props: list[str] | None) -> dict[str, Any]:
        wanted = props or ["createdate", "lastmodifieddate", "email", "firstname", "lastname"]
        return {
            **{k: v for k, v in obj.items() if not k.startswith("_")},
            "properties": {k: obj["properties"].get(k) for k in wanted}
            | {"hs_object_id": obj["id"]},
        }

    async def list_page(self, request: web.Request) -> web.Response:
        """``GET /crm/v3/objects/{type}``: a page, with history and association ids on request."""
        object_type = request.match_info["type"]
        if not self._known(object_type):
            return self._error(404, "OBJECT_NOT_FOUND", f"Unknown object type {object_type}")
        q = request.query

        def split(name: str) -> list[str]:
            return [p for v in q.getall(name, []) for p in v.split(",") if p]

        with_history, assoc = split("propertiesWithHistory"), split("associations")
        limit = min(int(q.get("limit", "10")), 50 if with_history else 100)
        after = int(q.get("after", "0") or 0)
        ids = sorted(self.objects[object_type], key=int)
        results = []
        for oid in ids[after : after + limit]:
            obj = self.objects[object_type][oid]
            view = self._view(obj, split("properties"))
            if with_history:
                view["propertiesWithHistory"] = {
                    name: [
                        {"value": v, "timestamp": t, "sourceType": "CRM_UI"}
                        for v, t in reversed(obj["_history"].get(name, []))
                    ]
                    for name in with_history
                }
            if assoc:
                view["associations"] = {
                    to: {
                        "results": [
                            {"id": t, "type": f"{object_type[:-1]}_to_{to[:-1]}"}
                            for t in self.linked(object_type, oid, to)
                        ]
                    }
                    for to in assoc
                }
            results.append(view)
        answer: dict[str, Any] = {"results": results}
        if after + limit < len(ids):
            answer["paging"] = {"next": {"after": str(after + limit)}}
        return web.json_response(answer)

    async def batch_read(self, request: web.Request) -> web.Response:
        object_type = request.match_info["type"]
        if not self._known(object_type):
            return self._error(404, "OBJECT_NOT_FOUND", f"Unknown object type {object_type}")
        if self.read_latency:
            await asyncio.sleep(self.read_latency)
        body = await request.json()
        ids = [str(i["id"]) for i in body.get("inputs", [])]
        if len(ids) > 100:
            return self._error(400, "VALIDATION_ERROR", "Batch size must be at most 100")
        found = [
            self._view(self.objects[object_type][i], body.get("properties"))
            for i in ids
            if i in self.objects[object_type]
        ]
        now = _iso(dt.datetime.now(dt.UTC))
        return web.json_response(
            {"status": "COMPLETE", "results": found, "startedAt": now, "completedAt": now},
            status=200 if len(found) == len(ids) else 207,
        )

    async def update(self, request: web.Request) -> web.Response:
        object_type, object_id = request.match_info["type"], request.match_info["id"]
        if object_id not in self.objects.get(object_type, {}):
            return self._error(404, "OBJECT_NOT_FOUND", "resource not found")
        props = (await request.json()).get("properties", {})
        if (bad := self._check_properties(object_type, props)) is not None:
            return bad
        obj = self.objects[object_type][object_id]
        obj["properties"].update({k: None if v is None else str(v) for k, v in props.items()})
        obj["updatedAt"] = obj["properties"]["lastmodifieddate"] = _iso(dt.datetime.now(dt.UTC))
        return web.json_response(self._view(obj, list(props)))

    async def create(self, request: web.Request) -> web.Response:
        object_type = request.match_info["type"]
        if not self._known(object_type):
            return self._error(404, "OBJECT_NOT_FOUND", f"Unknown object type {object_type}")
        body = await request.json()
        props = body.get("properties", {})
        if (bad := self._check_properties(object_type, props)) is not None:
            return bad
        links = []
        for assoc in body.get("associations", []):
            to_id = str(assoc["to"]["id"])
            type_id = assoc["types"][0]["associationTypeId"]
            to_type = next(
                (t for (f, t), n in ASSOCIATION_TYPES.items() if f == object_type and n == type_id),
                None,
            )
            if to_type is None or to_id not in self.objects[to_type]:
                return self._error(400, "VALIDATION_ERROR", f"invalid association to {to_id}")
            links.append((to_type, to_id))
        object_id = self.add(object_type, props)
        for to_type, to_id in links:
            self.associate(object_type, object_id, to_type, to_id)
        if self.create_latency:
            await asyncio.sleep(self.create_latency)
        return web.json_response(
            self._view(self.objects[object_type][object_id], list(props)), status=201
        )

    async def search(self, request: web.Request) -> web.Response:
        object_type = request.match_info["type"]
        if not self._known(object_type):
            return self._error(404, "OBJECT_NOT_FOUND", f"Unknown object type {object_type}")
        body = await request.json()
        groups = body.get("filterGroups") or [{"filters": []}]

        def matches(obj: dict[str, Any], flt: dict[str, Any]) -> bool:
            value = obj["properties"].get(flt["propertyName"])
            if flt["operator"] == "EQ":
                return value == str(flt["value"])
            if flt["operator"] == "GTE":
                return value is not None and value >= str(flt["value"])
            return False

        found = [
            o
            for o in self.objects[object_type].values()
            if any(all(matches(o, f) for f in g.get("filters", [])) for g in groups)
        ]
        limit = int(body.get("limit") or 10)
        after = int(body.get("after") or 0)
        page = found[after : after + limit]
        answer: dict[str, Any] = {
            "total": len(found),
            "results": [self._view(o, body.get("properties")) for o in page],
        }
        if after + limit < len(found):
            answer["paging"] = {"next": {"after": str(after + limit)}}
        return web.json_response(answer)

    async def associations_read(self, request: web.Request) -> web.Response:
        from_type, to_type = request.match_info["from"], request.match_info["to"]
        body = await request.json()
        results = []
        for item in body.get("inputs", []):
            from_id = str(item["id"])
            to = [
                {
                    "toObjectId": int(t),
                    "associationTypes": [
                        {
                            "category": "HUBSPOT_DEFINED",
                            "typeId": ASSOCIATION_TYPES.get((from_type, to_type), 1),
                            "label": None,
                        }
                    ],
                }
                for t in self.linked(from_type, from_id, to_type)
            ]
            if to:
                results.append({"from": {"id": from_id}, "to": to})
        return web.json_response({"status": "COMPLETE", "results": results})

    async def property_definitions(self, request: web.Request) -> web.Response:
        object_type = request.match_info["type"]
        if object_type not in self.properties:
            return self._error(404, "OBJECT_NOT_FOUND", f"Unknown object type {object_type}")
        field_types = {
            "string": "text",
            "number": "number",
            "enumeration": "select",
            "datetime": "date",
            "date": "date",
            "bool": "booleancheckbox",
        }
        return web.json_response(
            {
                "results": [
                    {
                        "name": name,
                        "label": name.replace("_", " ").title(),
                        "type": kind,
                        "fieldType": field_types[kind],
                        "groupName": "contactinformation",
                        "description": "",
                        "options": [],
                        "displayOrder": -1,
                        "hidden": False,
                        "formField": True,
                        "hubspotDefined": not name.startswith("nudge_"),
                    }
                    for name, kind in self.properties[object_type].items()
                ]
            }
        )

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._gate])
        app.router.add_post("/crm/v3/objects/{type}/batch/read", self.batch_read)
        app.router.add_post("/crm/v3/objects/{type}/search", self.search)
        app.router.add_patch("/crm/v3/objects/{type}/{id}", self.update)
        app.router.add_post("/crm/v3/objects/{type}", self.create)
        app.router.add_get("/crm/v3/objects/{type}", self.list_page)
        app.router.add_post("/crm/v4/associations/{from}/{to}/batch/read", self.associations_read)
        app.router.add_get("/crm/v3/properties/{type}", self.property_definitions)
        return app

    # -- webhooks, signed as HubSpot signs them ---------------------------------------------------
    def notification(self, subscription: str, object_id: str, **extra: Any) -> dict[str, Any]:
        return {
            "eventId": next(self._ids),
            "subscriptionId": 4242,
            "portalId": PORTAL_ID,
            "appId": 1160452,
            "occurredAt": int(time.time() * 1000),
            "subscriptionType": subscription,
            "attemptNumber": 0,
            "objectId": int(object_id),
            "changeSource": "CRM_UI",
            **extra,
        }

    def association_change(
        self, subscription: str, from_id: str, to_id: str, association_type: str, *, removed: bool
    ) -> dict[str, Any]:
        """An associationChange as HubSpot sends it: no objectId, from/to ids instead. HubSpot
        sends one from each side (``contact.`` and ``deal.``) with one ``occurredAt``."""
        note = self.notification(subscription, from_id)
        del note["objectId"]
        return {
            **note,
            "associationType": association_type,
            "fromObjectId": int(from_id),
            "toObjectId": int(to_id),
            "associationRemoved": removed,
            "isPrimaryAssociation": False,
        }

    def merge(self, primary: str, merged: list[str]) -> dict[str, Any]:
        """Merge contacts into ``primary`` (as the CRM does: the merged ones are gone) and
        return the ``contact.merge`` notification."""
        for other in merged:
            self.objects["contacts"].pop(other, None)
        return self.notification(
            "contact.merge",
            primary,
            primaryObjectId=int(primary),
            newObjectId=int(primary),
            mergedObjectIds=[int(m) for m in merged],
            numberOfPropertiesMoved=1,
        )

    def sign(
        self, method: str, uri: str, body: str, timestamp: str, secret: str | None = None
    ) -> str:
        source = f"{method}{uri}{body}{timestamp}".encode()
        digest = hmac.new((secret or self.client_secret).encode(), source, hashlib.sha256).digest()
        return base64.b64encode(digest).decode()

    async def webhook(
        self,
        url: str,
        notifications: list[dict[str, Any]],
        *,
        secret: str | None = None,
        age_s: float = 0.0,
    ) -> tuple[int, str]:
        body = json.dumps(notifications)
        timestamp = str(int((time.time() - age_s) * 1000))
        headers = {
            "Content-Type": "application/json",
            "X-HubSpot-Request-Timestamp": timestamp,
            "X-HubSpot-Signature-v3": self.sign("POST", url, body, timestamp, secret),
        }
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, data=body, headers=headers) as response,
        ):
            return response.status, await response.text()


def generate_portal(
    fake: FakeHubSpot, contacts: int, *, now: dt.datetime, seed: int = 7
) -> dict[str, int]:
    """A portal with two years of history: contacts, calls, and deals whose stage history ends
    won more often for contacts that were called more (so a model has something to learn).
    Returns counts of what was made."""
    import random

    rng = random.Random(seed)
    made = {"contacts": 0, "calls": 0, "deals": 0, "won": 0}
    stages = ["appointmentscheduled", "qualifiedtobuy", "presentationscheduled"]
    industries = ["Software", "Retail", "Energy", "Health", "Finance"]
    for i in range(contacts):
        created = now - dt.timedelta(days=rng.uniform(5, 700))
        intent = rng.random()
        cid = fake.add(
            "contacts",
            {
                "email": f"buyer{i}@company{i % 997}.example",
                "firstname": f"Buyer{i}",
                "company": f"Company {i % 997}",
                "jobtitle": rng.choice(["CFO", "CTO", "Head of Ops", "Analyst"]),
                "industry": rng.choice(industries),
            },
            created=created,
        )
        made["contacts"] += 1
        calls = int(intent * 6 * rng.random() + (2 if intent > 0.7 else 0))
        for c in range(calls):
            when = created + dt.timedelta(days=rng.uniform(0, 30) + c)
            if when >= now:
                continue
            call = fake.add(
                "calls",
                {
                    "hs_timestamp": _iso(when),
                    "hs_call_duration": str(int(rng.uniform(60, 1800) * 1000)),
                    "hs_call_direction": "OUTBOUND",
                },
                created=when,
            )
            fake.associate("calls", call, "contacts", cid)
            made["calls"] += 1
        if rng.random() < 0.45:
            when = created + dt.timedelta(days=rng.uniform(1, 10))
            history = []
            for stage in stages[: rng.randint(1, 3)]:
                history.append((stage, when))
                when += dt.timedelta(days=rng.uniform(3, 20))
            won = rng.random() < 0.15 + 0.7 * intent
            if when < now:
                history.append(("closedwon" if won else "closedlost", when))
                made["won"] += int(won)
            deal = fake.add(
                "deals",
                {
                    "dealname": f"Deal {i}",
                    "dealstage": history[-1][0],
                    "amount": str(rng.randint(5, 80) * 1000),
                },
                created=history[0][1],
                history={"dealstage": history},
            )
            fake.associate("deals", deal, "contacts", cid)
            made["deals"] += 1
    return made
