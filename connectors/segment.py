"""Segment Spec web events → Nudge events (Segment, RudderStack and Jitsu send this format).

One POST carries one message or a batch (``{"batch": [...]}``, as the HTTP
Tracking API's ``/v1/batch``); each message is one of the Spec's calls:

    page      → page.viewed      (properties.path, or the path of properties.url)
    track     → the event type the track map names for ``event``; unmapped tracks skipped
    identify  → lead.updated     (traits: company, name, title, industry, employees)
    group     → lead.updated     (the group's traits: name → company, industry, employees)
    alias     → skipped          (Nudge links identities when a message carries several)

``messageId`` is the event id (``segment:<messageId>``), so a message Segment retries
is dropped by ingest's de-duplication. The lead is named by ``traits.email`` /
``context.traits.email`` and ``traits.phone`` when present, and always by the visitor:
``anonymousId``, or ``user:<userId>`` without one.

The signature (``X-Signature``) is the hex HMAC-SHA1 of the raw body with the shared
secret set in Segment's webhook destination (``SEGMENT_SHARED_SECRET``); when that is
set, an unsigned or mis-signed body is refused whole.

The track map is YAML, ``tracks: {<track name>: <nudge event type>}``; the bundled
:data:`DEFAULT_MAP` maps the Spec's own B2B and email event names.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from connectors.common import Outcome, hmac_hex, json_body, same, yaml_mapping
from nudge.errors import ConfigError, EventRejected
from nudge.events import RepUpserted, parse_event

MAX_BODY_BYTES = 512 * 1024
"""Segment's own batch limit is 500 KB; a larger body is refused whole."""
MAX_MESSAGES = 2_000

TRACK_TYPES = ("form.submitted", "page.viewed", "email.opened", "email.clicked", "search.keyword")
"""Nudge event types a named track may become."""

DEFAULT_MAP = Path(__file__).with_name("segment_tracks.yaml")


def signature_ok(secret: str, body: bytes, signature: str | None) -> bool:
    """Segment's ``X-Signature``: hex HMAC-SHA1 of the body."""
    return same(signature, hmac_hex(secret, body, "sha1"))


@dataclass(frozen=True)
class TrackMap:
    """Track name → Nudge event type, loaded from YAML."""

    tracks: dict[str, str]

    @classmethod
    def load(cls, path: Path | None = None) -> TrackMap:
        path = path or DEFAULT_MAP
        root = yaml_mapping(path, "the Segment track map", "tracks")
        tracks: dict[str, str] = {}
        for key, value in root.value:
            line = key.start_mark.line + 1
            if key.value != "tracks":
                raise ConfigError(f"{path}:{line}: unknown key {key.value!r} (expected `tracks`)")
            if not isinstance(value, yaml.MappingNode):
                raise ConfigError(f"{path}:{line}: `tracks` must map track names to event types")
            for name, kind in value.value:
                at = f"{path}:{kind.start_mark.line + 1}"
                if not isinstance(kind, yaml.ScalarNode) or kind.value not in TRACK_TYPES:
                    got = kind.value if isinstance(kind, yaml.ScalarNode) else "a non-string"
                    raise ConfigError(
                        f"{at}: track {name.value!r} maps to {got!r}; "
                        f"use one of {', '.join(TRACK_TYPES)}"
                    )
                tracks[str(name.value)] = str(kind.value)
        return cls(tracks)


def messages(body: bytes) -> list[Any]:
    """The Spec messages of a body (one message or a batch); raise EventRejected otherwise."""
    data = json_body(body, MAX_BODY_BYTES)
    if not isinstance(data, dict):
        raise EventRejected("body must be a JSON object (one message, or {'batch': [...]})")
    if "batch" not in data:
        return [data]
    batch = data["batch"]
    if not isinstance(batch, list):
        raise EventRejected("batch: must be a list of messages")
    if len(batch) > MAX_MESSAGES:
        raise EventRejected(f"batch: at most {MAX_MESSAGES} messages")
    shared = _obj(data.get("context"))
    return [
        {**m, "context": {**shared, **_obj(m.get("context"))}} if isinstance(m, dict) else m
        for m in batch
    ]


def parse(body: bytes, tracks: TrackMap, now: dt.datetime) -> Outcome:
    """Every message of ``body`` as a Nudge event, or skipped with the reason."""
    out = Outcome()
    for index, message in enumerate(messages(body)):
        message_id = _str(message.get("messageId")) if isinstance(message, dict) else None
        try:
            event = to_event(message, tracks, now)
        except EventRejected as exc:
            out.skip(index, exc.reason, message_id)
            continue
        if event is None:
            out.skip(index, _why_none(message, tracks), message_id)
        else:
            out.events.append(event)
    return out


def to_event(message: Any, tracks: TrackMap, now: dt.datetime) -> Any:
    """One Spec message → a Nudge event, or ``None`` for a call Nudge does not use."""
    if not isinstance(message, dict):
        raise EventRejected("a message must be a JSON object")
    kind = message.get("type")
    message_id = _str(message.get("messageId"))
    if not message_id:
        raise EventRejected("messageId: required (it is the event id)")
    context = _obj(message.get("context"))
    traits = {**_obj(context.get("traits")), **_obj(message.get("traits"))}
    props = _obj(message.get("properties"))
    base: dict[str, Any] = {
        "event_id": f"segment:{message_id}",
        "occurred_at": _when(message, now),
        "source": "segment",
    }
    visitor = _str(message.get("anonymousId")) or (
        f"user:{uid}" if (uid := _str(message.get("userId"))) else None
    )
    for key, value in (
        ("visitor_id", visitor),
        ("email", _str(traits.get("email"))),
        ("phone", _str(traits.get("phone"))),
    ):
        if value:
            base[key] = value
    data: dict[str, Any] | None
    if kind == "page":
        page = _obj(context.get("page"))
        url = _str(props.get("url")) or _str(page.get("url"))
        path = _str(props.get("path")) or _str(page.get("path")) or (_path(url) if url else None)
        data = {"type": "page.viewed", "path": path or "/"}
        if title := _str(props.get("title")) or _str(message.get("name")):
            data["title"] = title
    elif kind == "track":
        name = _str(message.get("event"))
        mapped = tracks.tracks.get(name or "")
        data = _track(mapped, name or "", props) if mapped else None
    elif kind == "identify":
        data = {"type": "lead.updated", "fields": _lead_fields(traits, company_key="company")}
    elif kind == "group":
        group_traits = _obj(message.get("traits"))
        base.pop("email", None)
        base.pop("phone", None)
        data = {"type": "lead.updated", "fields": _lead_fields(group_traits, company_key="name")}
    elif kind == "alias":
        data = None
    else:
        raise EventRejected(f"type: {kind!r} is not a Segment Spec call")
    if data is None:
        return None
    event = parse_event({**base, **data})
    if isinstance(event, RepUpserted):  # cannot happen: the types above are lead events
        raise EventRejected("type: not a lead event")
    return event


def _track(mapped: str, name: str, props: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = {"type": mapped}
    if mapped == "form.submitted":
        data["form"] = _str(props.get("form")) or _str(props.get("form_name")) or name
        if path := _str(props.get("path")):
            data["path"] = path
    elif mapped == "page.viewed":
        url = _str(props.get("url"))
        data["path"] = _str(props.get("path")) or (_path(url) if url else None) or "/"
    elif mapped in ("email.opened", "email.clicked"):
        if campaign := _str(props.get("campaign")) or _str(props.get("campaign_name")):
            data["campaign"] = campaign
        if mapped == "email.clicked" and (url := _str(props.get("url"))):
            data["url"] = url
    elif mapped == "search.keyword":
        data["keyword"] = _str(props.get("query")) or _str(props.get("keyword")) or name
    return data


def _lead_fields(traits: dict[str, Any], *, company_key: str) -> dict[str, Any]:
    company = traits.get(company_key)
    if isinstance(company, dict):  # identify's traits.company is an object in the Spec
        company = company.get("name")
    name = _str(traits.get("name")) or " ".join(
        p for p in (_str(traits.get("firstName")), _str(traits.get("lastName"))) if p
    )
    fields = {
        "company": _str(company),
        "contact_name": name or None,
        "title": _str(traits.get("title")),
        "industry": _str(traits.get("industry")),
        "employees": traits.get("employees") if isinstance(traits.get("employees"), int) else None,
    }
    return {k: v for k, v in fields.items() if v is not None}


def _why_none(message: Any, tracks: TrackMap) -> str:
    if isinstance(message, dict) and message.get("type") == "alias":
        return "alias: Nudge links identities from messages that carry several"
    name = message.get("event") if isinstance(message, dict) else None
    return f"track {str(name)[:100]!r} is not in the track map"


def _when(message: dict[str, Any], now: dt.datetime) -> str:
    for key in ("timestamp", "originalTimestamp", "sentAt", "receivedAt"):
        value = _str(message.get(key))
        if not value:
            continue
        try:
            when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise EventRejected(f"{key}: not an ISO 8601 time: {value[:64]!r}") from None
        if when.tzinfo is None:
            raise EventRejected(f"{key}: has no time zone: {value[:64]!r}")
        return when.isoformat()
    return now.isoformat()


def _path(url: str) -> str | None:
    try:
        return urlsplit(url).path or "/"
    except ValueError:
        return None


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    return value.strip() or None if isinstance(value, str) else None
