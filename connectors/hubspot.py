"""HubSpot both ways, through ``hubspot-api-client``: webhooks in, properties and engagements out.

In: HubSpot POSTs batches of notifications (``contact.creation``,
``contact.propertyChange``, ``deal.propertyChange`` ...), each with a stable
``eventId`` it reuses on retries. The request is signed
(``X-HubSpot-Signature-v3`` = base64 HMAC-SHA256 of method + URI + body +
``X-HubSpot-Request-Timestamp`` with the app's client secret; older than five
minutes is refused). Notifications carry ids, not objects: the full objects are
read back in batches (``/crm/v3/objects/{type}/batch/read``, 100 ids a call) and
become ``lead.created`` / ``lead.updated`` / ``deal.*`` events with event id
``hubspot:<eventId>``, so a retried batch is de-duplicated by ingest.

Deletions, merges and association changes need no object read (:func:`lifecycle_events`):

- ``contact.deletion`` → ``lead.updated`` with stage ``deleted``; ``deal.deletion`` →
  ``deal.stage_changed`` to ``deleted`` for each lead the deal was linked to. Nudge's
  schema has no event that removes a lead, and a deletion is not a lost deal (deleting
  duplicates or test records is routine), so it is never counted as ``deal.lost``;
- ``contact.merge`` → each identity (email, phone, visitor id) of the merged contacts'
  leads on a ``lead.updated`` of the surviving lead (ingest then links it there, so later
  events land on it), and stage ``merged`` on each merged lead;
- ``*.associationChange`` between a contact and a deal → the deal's stage for the
  contact's lead when linked (as a stage change would), stage ``no deal`` when unlinked.
  HubSpot sends the change from both sides with different event ids, so these ids are
  built from the change itself (``hubspot:assoc:<deal>:<contact>:<linked|unlinked>:<ms>``).

Out: :class:`HubSpot` writes what :mod:`connectors.updates` read from
``crm.updates``: mapped fields as contact / deal properties (a PATCH sets a value,
so repeating it is harmless), calls and meetings as call engagements, notes as
note engagements, associated to the contact and its deal. Creating an
engagement is not idempotent at HubSpot, so each carries our update id in a
``nudge_update_id`` property and a retry first searches for it
(:meth:`HubSpot.find_engagement`). Errors become :class:`CrmTransient` (429 with
its ``Retry-After``, 5xx, the network) or :class:`CrmPermanent` (other 4xx).

A lead that came from HubSpot has the id ``hubspot-<contact id>``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from connectors.common import json_body
from connectors.fieldmap import FieldMap, Mapping, to_crm
from connectors.updates import Update
from nudge.errors import EventRejected, NudgeError

if TYPE_CHECKING:
    from hubspot import Client

SYSTEM = "hubspot"
MAX_AGE = dt.timedelta(minutes=5)
MAX_BODY_BYTES = 1024 * 1024
TIMEOUT = 10.0
"""Seconds a HubSpot call may take; then it is a transient failure."""
BATCH = 100
"""HubSpot's batch endpoints take at most 100 ids."""
CALL_CONTACT, CALL_DEAL, NOTE_CONTACT, NOTE_DEAL = 194, 206, 202, 214
WON, LOST = ("closedwon",), ("closedlost",)
MARKER = "nudge_update_id"


class CrmError(NudgeError):
    """A CRM call failed."""


class CrmTransient(CrmError):
    """Worth retrying later (429, 5xx, network); ``retry_after`` seconds when the CRM said."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class CrmPermanent(CrmError):
    """The CRM refused the request itself; retrying the same request cannot help."""


def load_sdk() -> None:
    """Import HubSpot's client now (~0.3 s of imports). It is otherwise imported at its first
    use, so a worker with no HubSpot configured never loads it."""
    import hubspot.utils.signature  # noqa: F401


# -- in -------------------------------------------------------------------------------------------
def signature_ok(
    secret: str,
    method: str,
    uri: str,
    body: str,
    timestamp: str | None,
    signature: str | None,
    now: dt.datetime,
) -> bool:
    """HubSpot's v3 signature (computed by the official client) over a recent timestamp."""
    if not secret or not timestamp or not signature:
        return False
    try:
        sent = dt.datetime.fromtimestamp(int(timestamp) / 1000, dt.UTC)
    except (ValueError, OverflowError, OSError):
        return False
    if abs(now - sent) > MAX_AGE:
        return False
    import hmac

    from hubspot.utils.signature import Signature

    expected = Signature.get_signature(secret, body, "v3", uri, method, timestamp)

    return hmac.compare_digest(expected.encode(), signature.encode())


@dataclass(frozen=True)
class Notification:
    event_id: str
    object_type: str
    """contact | deal | company | ..."""
    action: str
    """creation | propertyChange | deletion | merge | associationChange | restore ..."""
    object_id: str
    occurred_at: dt.datetime
    property_name: str | None = None
    property_value: str | None = None
    merged_ids: tuple[str, ...] = ()
    """contact.merge: the contacts merged into ``object_id`` (the surviving one)."""
    to_object_id: str | None = None
    """associationChange: the other end (``object_id`` is the ``fromObjectId``)."""
    association_type: str | None = None
    """associationChange: e.g. CONTACT_TO_DEAL, DEAL_TO_CONTACT."""
    association_removed: bool = False


def notifications(body: bytes) -> list[Notification]:
    """The notifications of a webhook body; EventRejected if it is not HubSpot's shape."""
    data = json_body(body, MAX_BODY_BYTES)
    if not isinstance(data, list):
        raise EventRejected("body must be a JSON array of notifications")
    out = []
    for index, item in enumerate(data):
        if not isinstance(item, dict):
            raise EventRejected(f"[{index}]: a notification must be an object")
        sub = item.get("subscriptionType")
        association = isinstance(sub, str) and sub.endswith(".associationChange")
        event_id, object_id, occurred = (
            item.get("eventId"),
            item.get(
                "fromObjectId"
                if association
                else "newObjectId"
                if sub == "contact.merge" and _id(item.get("newObjectId"))
                else "objectId"
            ),
            item.get("occurredAt"),
        )
        if not isinstance(sub, str) or "." not in sub:
            raise EventRejected(f"[{index}].subscriptionType: required, e.g. contact.creation")
        if association and not _id(item.get("toObjectId")):
            raise EventRejected(
                f"[{index}]: an associationChange needs fromObjectId and toObjectId"
            )
        merged = item.get("mergedObjectIds") if sub.endswith(".merge") else None
        if merged is not None and (
            not isinstance(merged, list) or len(merged) > 100 or not all(_id(m) for m in merged)
        ):
            raise EventRejected(f"[{index}].mergedObjectIds: a list of object ids required")
        if not _id(event_id) or not _id(object_id):
            raise EventRejected(f"[{index}]: eventId and objectId are required")
        try:
            when = dt.datetime.fromtimestamp(int(occurred) / 1000, dt.UTC)  # type: ignore[arg-type]
        except (TypeError, ValueError, OverflowError, OSError):
            raise EventRejected(f"[{index}].occurredAt: epoch milliseconds required") from None
        obj, action = sub.split(".", 1)
        name, value = item.get("propertyName"), item.get("propertyValue")
        out.append(
            Notification(
                str(event_id),
                obj,
                action,
                str(object_id),
                when,
                name[:256] if isinstance(name, str) else None,
                value[:4096] if isinstance(value, str) else None,
                tuple(str(m) for m in merged or ()),
                str(item["toObjectId"]) if association else None,
                str(item.get("associationType"))[:64] if association else None,
                association and item.get("associationRemoved") is True,
            )
        )
    return out


def lead_id(contact_id: str) -> str:
    return f"hubspot-{contact_id}"


def contact_id(lead: str) -> str | None:
    return lead.removeprefix("hubspot-") if lead.startswith("hubspot-") else None


def contact_properties(fmap: FieldMap) -> list[str]:
    """The contact properties a lead event is built from."""
    return sorted(
        {"email", "phone", "firstname", "lastname", "hubspot_owner_id"}
        | {m.property for m in fmap.reading("contact")}
    )


def contact_event(n: Notification, props: dict[str, Any], fmap: FieldMap) -> dict[str, Any]:
    """A contact notification and the contact's properties → a lead event (as a dict for parse_event)."""
    fields = fmap.profile(props, ("firstname", "lastname"), "hubspot_owner_id", _typed)
    event: dict[str, Any] = {
        "type": "lead.created" if n.action == "creation" else "lead.updated",
        "event_id": f"hubspot:{n.event_id}",
        "occurred_at": n.occurred_at.isoformat(),
        "source": SYSTEM,
        "lead_id": lead_id(n.object_id),
        "fields": fields,
    }
    if props.get("email"):
        event["email"] = props["email"]
    if props.get("phone"):
        event["phone"] = props["phone"]
    return event


def deal_events(
    n: Notification, props: dict[str, Any], contacts: list[str]
) -> list[dict[str, Any]]:
    """A deal's stage change → deal.stage_changed / won / lost for each associated contact's lead."""
    if n.action == "propertyChange" and n.property_name != "dealstage":
        return []
    stage = props.get("dealstage") or n.property_value
    if not stage:
        return []
    out = []
    for cid in contacts:
        base = {
            "event_id": f"hubspot:{n.event_id}:{cid}",
            "occurred_at": n.occurred_at.isoformat(),
            "source": SYSTEM,
            "lead_id": lead_id(cid),
        }
        if stage in WON:
            amount = props.get("amount")
            out.append({**base, "type": "deal.won", **({"amount": amount} if amount else {})})
        elif stage in LOST:
            out.append({**base, "type": "deal.lost"})
        else:
            out.append({**base, "type": "deal.stage_changed", "to_stage": stage})
    return out


DELETED, MERGED, NO_DEAL = "deleted", "merged", "no deal"
"""The stages a deletion, a merge and an unlinked deal leave on a lead."""


def deal_contact(n: Notification) -> tuple[str, str] | None:
    """(deal id, contact id) of an associationChange between a contact and a deal."""
    if n.action != "associationChange" or n.to_object_id is None:
        return None
    if n.association_type == "CONTACT_TO_DEAL":
        return n.to_object_id, n.object_id
    if n.association_type == "DEAL_TO_CONTACT":
        return n.object_id, n.to_object_id
    return None


def lifecycle_events(
    n: Notification,
    *,
    deal_leads: Sequence[str] = (),
    merged_identities: dict[str, list[tuple[str, str]]] | None = None,
    deal_props: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """A deletion, merge or association change → events (dicts for parse_event).

    ``deal_leads``: the leads a deleted deal was linked to; ``merged_identities``: merged
    contact id → its lead's ``(kind, value)`` identities (kind email | phone | visitor);
    ``deal_props``: the deal of a linked association (``dealstage``, ``amount``).
    """
    when = n.occurred_at.isoformat()
    base = {"occurred_at": when, "source": SYSTEM}

    def updated(event_id: str, lead: str, **extra: Any) -> dict[str, Any]:
        return {"type": "lead.updated", "event_id": event_id, "lead_id": lead, **base, **extra}

    if n.action == "deletion" and n.object_type == "contact":
        return [updated(f"hubspot:{n.event_id}", lead_id(n.object_id), fields={"stage": DELETED})]
    if n.action == "deletion" and n.object_type == "deal":
        return [
            {
                "type": "deal.stage_changed",
                "event_id": f"hubspot:{n.event_id}:{lead}",
                "lead_id": lead,
                "to_stage": DELETED,
                **base,
            }
            for lead in sorted(deal_leads)
        ]
    if n.action == "merge" and n.object_type == "contact":
        survivor = lead_id(n.object_id)
        out = []
        for merged in n.merged_ids:
            if merged == n.object_id:
                continue
            for kind, value in sorted((merged_identities or {}).get(merged, [])):
                attr = {"email": "email", "phone": "phone", "visitor": "visitor_id"}.get(kind)
                if attr is None:
                    continue
                key = f"{merged}:{kind}:{value}"
                out.append(
                    updated(
                        f"hubspot:{n.event_id}:{key}"[:256], survivor, fields={}, **{attr: value}
                    )
                )
            out.append(
                updated(f"hubspot:{n.event_id}:{merged}", lead_id(merged), fields={"stage": MERGED})
            )
        return out
    pair = deal_contact(n)
    if pair is None:
        return []
    deal, contact = pair
    state = "unlinked" if n.association_removed else "linked"
    ms = int(n.occurred_at.timestamp() * 1000)
    event_id = f"hubspot:assoc:{deal}:{contact}:{state}:{ms}"
    if n.association_removed:
        return [updated(event_id, lead_id(contact), fields={"stage": NO_DEAL})]
    stage_note = Notification(
        event_id.removeprefix("hubspot:"), "deal", "creation", deal, n.occurred_at
    )
    return [
        {**e, "event_id": event_id} for e in deal_events(stage_note, deal_props or {}, [contact])
    ]


def _typed(value: Any, m: Mapping) -> Any:
    if m.type == "number":
        try:
            number = float(value)
        except ValueError:
            return value
        return int(number) if number.is_integer() else number
    if m.type == "bool":
        return str(value).lower() == "true"
    return value


def _id(value: Any) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool) and value >= 0) or (
        isinstance(value, str) and value.isdigit() and len(value) < 30
    )


# -- out ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Write:
    """What one update becomes at HubSpot (pure: :func:`plan`)."""

    contact: dict[str, str | None]
    deal: dict[str, str | None]
    engagement: str | None = None
    """calls | notes"""
    engagement_props: dict[str, str] | None = None
    skipped: str | None = None


def plan(update: Update, fmap: FieldMap) -> Write:
    """The properties and engagement one update writes, or why it writes nothing."""
    if update.kind == "ignored":
        return Write({}, {}, skipped=update.reason)
    if update.kind == "field":
        m = fmap.for_field(update.field or "")
        if m is None:
            return Write({}, {}, skipped=f"{update.field} is not in the field map {fmap.path.name}")
        props = {m.property: to_crm(update.value, m.type)}
        return Write(props if m.object == "contact" else {}, props if m.object == "deal" else {})
    detail = update.detail
    if str(detail.get("source", "")).startswith(SYSTEM):
        return Write({}, {}, skipped="it came from HubSpot")
    stamp = str(_epoch_ms(detail.get("occurred_at")))
    marker = {MARKER: update.update_id}
    if update.kind == "call":
        return Write(
            {},
            {},
            "calls",
            {
                "hs_timestamp": stamp,
                "hs_call_duration": str(int(float(detail.get("duration_s") or 0) * 1000)),
                "hs_call_direction": "INBOUND"
                if detail.get("direction") == "inbound"
                else "OUTBOUND",
                "hs_call_status": "COMPLETED",
                "hs_call_title": "Call (logged by Nudge)",
                "hs_call_body": str(detail.get("outcome") or ""),
                **marker,
            },
        )
    if update.kind == "meeting":
        minutes = round(float(detail.get("duration_s") or 0) / 60)
        title = detail.get("title") or "Meeting"
        return Write(
            {},
            {},
            "notes",
            {
                "hs_timestamp": stamp,
                "hs_note_body": f"{title} ({minutes} min), logged by Nudge",
                **marker,
            },
        )
    if update.kind == "note":
        return Write(
            {},
            {},
            "notes",
            {"hs_timestamp": stamp, "hs_note_body": str(detail.get("text", ""))[:65536], **marker},
        )
    return Write({}, {}, skipped=f"update kind {update.kind!r} is not written to HubSpot")


def _epoch_ms(value: Any) -> int:
    if isinstance(value, str):
        try:
            return int(dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)
        except ValueError:
            pass
    return int(dt.datetime.now(dt.UTC).timestamp() * 1000)


class HubSpot:
    """HubSpot's CRM API through the official client. Calls block: run them in a thread."""

    def __init__(self, access_token: str, base_url: str | None = None) -> None:
        config: dict[str, Any] = {"access_token": access_token}
        if base_url:
            config["host"] = base_url.rstrip("/")
        from hubspot import Client  # the SDK loads only when HubSpot is configured (~0.3 s)

        self.client: Client = Client.create(**config)

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, _request_timeout=TIMEOUT, **kwargs)
        except Exception as exc:
            status = getattr(exc, "status", None)
            if not isinstance(status, int) or status == 0:
                raise CrmTransient(f"HubSpot unreachable: {type(exc).__name__}") from exc
            message = _message(getattr(exc, "body", None)) or str(getattr(exc, "reason", ""))
            if status == 429 or status >= 500:
                headers = getattr(exc, "headers", None) or {}
                raise CrmTransient(
                    f"HubSpot {status}: {message}", _retry_after(headers.get("Retry-After"))
                ) from exc
            raise CrmPermanent(f"HubSpot {status}: {message}") from exc

    # reads
    def read(
        self, object_type: str, ids: list[str], properties: list[str]
    ) -> dict[str, dict[str, Any]]:
        from hubspot.crm.contacts import BatchReadInputSimplePublicObjectId, SimplePublicObjectId

        api = self.client.crm.contacts if object_type == "contacts" else self.client.crm.deals
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), BATCH):
            body = BatchReadInputSimplePublicObjectId(
                inputs=[SimplePublicObjectId(id=i) for i in ids[start : start + BATCH]],
                properties=properties,
                properties_with_history=[],
            )
            answer = self._call(api.batch_api.read, batch_read_input_simple_public_object_id=body)
            for obj in answer.results or []:
                found[str(obj.id)] = dict(obj.properties or {})
        return found

    def associated(self, from_type: str, to_type: str, ids: list[str]) -> dict[str, list[str]]:
        from hubspot.crm.associations.v4 import (
            BatchInputPublicFetchAssociationsBatchRequest,
            PublicFetchAssociationsBatchRequest,
        )

        out: dict[str, list[str]] = {}
        for start in range(0, len(ids), BATCH):
            body = BatchInputPublicFetchAssociationsBatchRequest(
                inputs=[
                    PublicFetchAssociationsBatchRequest(id=i) for i in ids[start : start + BATCH]
                ]
            )
            answer = self._call(
                self.client.crm.associations.v4.batch_api.get_page,
                from_type,
                to_type,
                batch_input_public_fetch_associations_batch_request=body,
            )
            for row in answer.results or []:
                out[str(row._from.id)] = [str(t.to_object_id) for t in row.to or []]
        return out

    def property_types(self, object_type: str) -> dict[str, str]:
        answer = self._call(self.client.crm.properties.core_api.get_all, object_type)
        return {p.name: p.type for p in answer.results or []}

    # writes
    def update(self, object_type: str, object_id: str, properties: dict[str, str | None]) -> None:
        from hubspot.crm.contacts import SimplePublicObjectInput

        api = self.client.crm.contacts if object_type == "contacts" else self.client.crm.deals
        method = api.basic_api.update
        arg = "contact_id" if object_type == "contacts" else "deal_id"
        self._call(
            method,
            **{
                arg: object_id,
                "simple_public_object_input": SimplePublicObjectInput(properties=properties),
            },
        )

    def find_engagement(self, object_type: str, update_id: str) -> str | None:
        from hubspot.crm.objects import Filter, FilterGroup, PublicObjectSearchRequest

        request = PublicObjectSearchRequest(
            filter_groups=[
                FilterGroup(filters=[Filter(property_name=MARKER, operator="EQ", value=update_id)])
            ],
            properties=[MARKER],
            limit=1,
        )
        answer = self._call(
            self.client.crm.objects.search_api.do_search,
            object_type,
            public_object_search_request=request,
        )
        return str(answer.results[0].id) if answer.results else None

    def create_engagement(
        self, object_type: str, properties: dict[str, str], contact: str, deal: str | None
    ) -> str:
        to_contact, to_deal = (
            (CALL_CONTACT, CALL_DEAL) if object_type == "calls" else (NOTE_CONTACT, NOTE_DEAL)
        )
        from hubspot.crm.objects import (
            AssociationSpec,
            PublicAssociationsForObject,
            PublicObjectId,
            SimplePublicObjectInputForCreate,
        )

        links = [(contact, to_contact)] + ([(deal, to_deal)] if deal else [])
        body = SimplePublicObjectInputForCreate(
            properties=properties,
            associations=[
                PublicAssociationsForObject(
                    to=PublicObjectId(id=target),
                    types=[
                        AssociationSpec(
                            association_category="HUBSPOT_DEFINED", association_type_id=type_id
                        )
                    ],
                )
                for target, type_id in links
            ],
        )
        answer = self._call(
            self.client.crm.objects.basic_api.create,
            object_type,
            simple_public_object_input_for_create=body,
        )
        return str(answer.id)


def _message(body: Any) -> str | None:
    try:
        data = json.loads(body) if body else None
    except (TypeError, ValueError):
        return str(body)[:200]
    return str(data.get("message"))[:300] if isinstance(data, dict) else None


def _retry_after(value: Any) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def execute(
    hs: HubSpot, write: Write, contact: str, deal: str | None, update_id: str, retried: bool
) -> str | None:
    """Carry out one planned write (blocking); the engagement id it created or found.

    Properties are set with PATCH, which is safe to repeat. An engagement is looked
    for first when an earlier attempt may have created it (``retried``).
    """
    if write.contact:
        hs.update("contacts", contact, write.contact)
    if write.deal:
        if deal is None:
            raise CrmPermanent("no HubSpot deal is linked to this lead")
        hs.update("deals", deal, write.deal)
    if write.engagement and write.engagement_props is not None:
        found = hs.find_engagement(write.engagement, update_id) if retried else None
        return found or hs.create_engagement(
            write.engagement, write.engagement_props, contact, deal
        )
    return None
