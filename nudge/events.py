"""The schemas of every inbound event: CRM, call and web/intent.

Every event is one pydantic model with ``type: Literal[...]``, joined into the
discriminated union :data:`Event`. They are strict on purpose: an unknown field,
a naive timestamp, a negative duration, an empty or absurdly long id is an error
naming the field — never silently accepted, coerced or truncated — because a
CRM connector that sends garbage should learn it on the first message, not after
a week of wrong scores.

Every event names its lead directly (``lead_id``) or indirectly (``email``,
``phone``, ``visitor_id``); identity resolution (``streams``) maps the indirect
ones to a lead. ``rep.upserted`` is the one event about a rep, not a lead.

Use :func:`parse_event` for bytes/str/dict input: it also enforces the payload
size limit and turns every failure into :class:`nudge.errors.EventRejected`.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
    validate_email,
)

from nudge import strict_json
from nudge.errors import EventRejected
from nudge.strict_json import StrictJSONError

MAX_PAYLOAD_BYTES = 64 * 1024
"""An event larger than this is refused whole: no CRM event is legitimately 64 KB."""

Id = Annotated[str, StringConstraints(min_length=1, max_length=256, strip_whitespace=False)]
Text = Annotated[str, StringConstraints(max_length=4096)]
Short = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Phone = Annotated[str, StringConstraints(min_length=3, max_length=32, pattern=r"^\+?[0-9 ().-]+$")]
NonNeg = Annotated[int, Field(ge=0, le=10**9)]
Seconds = Annotated[float, Field(ge=0, le=7 * 24 * 3600)]


@lru_cache(maxsize=65536)
def _email(value: str) -> str:
    """pydantic's ``EmailStr`` check (and normal form), remembered: a lead's address comes
    back with every event, and the check is the costliest part of parsing one (~20 µs)."""
    return validate_email(value)[1]


EmailStr = Annotated[str, AfterValidator(_email)]
Money = Annotated[Decimal, Field(ge=0, le=Decimal(10**12), max_digits=18, decimal_places=2)]
CustomValue = str | int | float | bool | dt.date | None
Custom = Annotated[dict[Short, CustomValue], Field(max_length=64)]


class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


class EventBase(_Base):
    """Fields every event carries."""

    event_id: Id
    occurred_at: AwareDatetime
    source: Short = Field(description="the system that produced it, e.g. 'salesforce', 'web-tag'")
    lead_id: Id | None = None
    email: EmailStr | None = None
    phone: Phone | None = None
    visitor_id: Id | None = None

    @model_validator(mode="after")
    def _identifies_a_lead(self) -> EventBase:
        if not (self.lead_id or self.email or self.phone or self.visitor_id):
            raise ValueError(
                "an event must identify its lead: set lead_id, email, phone or visitor_id"
            )
        return self

    @property
    def silo(self) -> str:
        """The intent silo the event feeds: transaction, call, web, email, search, social."""
        return SILO[self.type]  # type: ignore[attr-defined]


# --- CRM -------------------------------------------------------------------------


class DealFields(_Base):
    """The lead's current deal, beyond ``stage`` and ``deal_value``. Omitted: unchanged."""

    deal_id: Id | None = None
    name: Short | None = None
    close_date: dt.date | None = None
    next_step: Short | None = None
    custom: Custom | None = Field(default=None, description="other deal fields")


class LeadFields(_Base):
    """CRM profile fields a lead event may set. Omitted means 'unchanged'."""

    company: Short | None = None
    contact_name: Short | None = None
    title: Short | None = None
    industry: Short | None = None
    employees: NonNeg | None = None
    deal_value: Money | None = None
    stage: Short | None = None
    owner_rep_id: Id | None = None
    custom: Custom | None = Field(default=None, description="customer-specific CRM fields")
    deal: DealFields | None = Field(default=None, description="the lead's current deal")


class LeadCreated(EventBase):
    type: Literal["lead.created"]
    fields: LeadFields = LeadFields()


class LeadUpdated(EventBase):
    type: Literal["lead.updated"]
    fields: LeadFields


DealRef = Annotated[
    Id | None,
    Field(
        description="the deal it is about; omitted: the lead's current open deal. Another "
        "deal while the current one is open is changed on its own; once the current one is "
        "won or lost, the deal named next becomes the lead's current deal"
    ),
]


class DealStageChanged(EventBase):
    type: Literal["deal.stage_changed"]
    from_stage: Short | None = None
    to_stage: Short
    deal_id: DealRef = None


class DealWon(EventBase):
    type: Literal["deal.won"]
    amount: Money | None = None
    deal_id: DealRef = None


class DealLost(EventBase):
    type: Literal["deal.lost"]
    reason: Text | None = None
    deal_id: DealRef = None


class RepUpserted(_Base):
    """A sales rep's contact details and preferences; not about a lead."""

    type: Literal["rep.upserted"]
    event_id: Id
    occurred_at: AwareDatetime
    source: Short
    rep_id: Id
    name: Short
    phone: Phone | None = None
    email: EmailStr | None = None
    slack_user_id: Id | None = None
    timezone: Short = "UTC"
    manager_rep_id: Id | None = None
    team: Short | None = None

    @property
    def silo(self) -> str:
        return "transaction"

    @model_validator(mode="after")
    def _known_timezone(self) -> RepUpserted:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"timezone: unknown time zone {self.timezone!r}") from exc
        return self


# --- calls and meetings ----------------------------------------------------------


class CallStarted(EventBase):
    type: Literal["call.started"]
    rep_id: Id | None = None
    direction: Literal["inbound", "outbound"] = "outbound"


class CallEnded(EventBase):
    type: Literal["call.ended"]
    rep_id: Id | None = None
    direction: Literal["inbound", "outbound"] = "outbound"
    duration_s: Seconds
    outcome: Short | None = None


class MeetingEnded(EventBase):
    type: Literal["meeting.ended"]
    rep_id: Id | None = None
    duration_s: Seconds
    title: Short | None = None
    attendees: Annotated[list[EmailStr], Field(max_length=100)] = []


# --- web and intent --------------------------------------------------------------


class PageViewed(EventBase):
    type: Literal["page.viewed"]
    path: Annotated[str, StringConstraints(min_length=1, max_length=2048)]
    title: Short | None = None
    seconds_on_page: Seconds | None = None


class FormSubmitted(EventBase):
    type: Literal["form.submitted"]
    form: Short
    path: Annotated[str, StringConstraints(max_length=2048)] | None = None


class EmailOpened(EventBase):
    type: Literal["email.opened"]
    campaign: Short | None = None


class EmailClicked(EventBase):
    type: Literal["email.clicked"]
    campaign: Short | None = None
    url: Annotated[str, StringConstraints(max_length=2048)] | None = None


class SearchKeyword(EventBase):
    type: Literal["search.keyword"]
    keyword: Short
    count: NonNeg = 1


class SocialMention(EventBase):
    type: Literal["social.mention"]
    network: Short
    text: Text | None = None
    sentiment: Annotated[float, Field(ge=-1, le=1)] | None = None


LeadEvent = Annotated[
    LeadCreated
    | LeadUpdated
    | DealStageChanged
    | DealWon
    | DealLost
    | CallStarted
    | CallEnded
    | MeetingEnded
    | PageViewed
    | FormSubmitted
    | EmailOpened
    | EmailClicked
    | SearchKeyword
    | SocialMention,
    Field(discriminator="type"),
]
"""Any event about a lead."""

Event = Annotated[LeadEvent | RepUpserted, Field(discriminator="type")]
"""Any inbound event."""

SILO: dict[str, str] = {
    "lead.created": "transaction",
    "lead.updated": "transaction",
    "deal.stage_changed": "transaction",
    "deal.won": "transaction",
    "deal.lost": "transaction",
    "rep.upserted": "transaction",
    "call.started": "call",
    "call.ended": "call",
    "meeting.ended": "call",
    "page.viewed": "web",
    "form.submitted": "web",
    "email.opened": "email",
    "email.clicked": "email",
    "search.keyword": "search",
    "social.mention": "social",
}
"""Event type → intent silo (used by features and by topic routing)."""

EVENT_TYPES: tuple[str, ...] = tuple(SILO)

STREAM_OF: dict[str, str] = {
    t: ("crm" if t.split(".")[0] in {"lead", "deal", "rep"} else "call" if s == "call" else "web")
    for t, s in SILO.items()
}
"""Event type → the stream it belongs on: ``crm``, ``call`` or ``web``."""

_EVENT_ADAPTER: TypeAdapter[Any] = TypeAdapter(Event)


def parse_event(raw: bytes | str | dict[str, Any]) -> LeadEvent | RepUpserted:
    """Validate one event; raise :class:`EventRejected` naming the field on any problem."""
    if isinstance(raw, bytes | str):
        size = len(raw.encode() if isinstance(raw, str) else raw)
        if size > MAX_PAYLOAD_BYTES:
            raise EventRejected(
                f"payload is {size} bytes; the limit is {MAX_PAYLOAD_BYTES}", kind="size"
            )
        try:
            data = strict_json.loads(raw)
        except StrictJSONError as exc:
            raise EventRejected(f"not valid JSON: {exc}", kind="json") from None
    else:
        data = raw
        size = len(json.dumps(data, default=str))
        if size > MAX_PAYLOAD_BYTES:
            raise EventRejected(
                f"payload is {size} bytes; the limit is {MAX_PAYLOAD_BYTES}", kind="size"
            )
    if not isinstance(data, dict):
        raise EventRejected(f"an event must be a JSON object, not {type(data).__name__}")
    if "type" not in data:
        raise EventRejected("type: field required (one of " + ", ".join(EVENT_TYPES) + ")")
    if not isinstance(data["type"], str) or data["type"] not in SILO:
        raise EventRejected(
            f"type: unknown event type {data['type']!r} (one of " + ", ".join(EVENT_TYPES) + ")",
            event_id=_str_or_none(data.get("event_id")),
        )
    try:
        event: LeadEvent | RepUpserted = _EVENT_ADAPTER.validate_python(data)
    except ValidationError as exc:
        raise EventRejected(
            describe_validation_error(exc), event_id=_str_or_none(data.get("event_id"))
        ) from None
    return event


def describe_validation_error(exc: ValidationError) -> str:
    """One line per problem, each starting with the dotted field path."""
    parts = []
    for err in exc.errors(include_url=False):
        loc = [str(p) for p in err["loc"]]
        # drop the discriminator tag pydantic puts first ("page.viewed")
        if loc and loc[0] in SILO:
            loc = loc[1:]
        where = ".".join(loc) or "event"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        parts.append(f"{where}: {msg}")
    return "; ".join(parts)


def _str_or_none(value: object) -> str | None:
    return value[:256] if isinstance(value, str) and value else None


def event_to_json(event: BaseModel) -> bytes:
    """Serialise an event exactly as :func:`parse_event` reads it back."""
    return event.model_dump_json(exclude_none=True).encode()
