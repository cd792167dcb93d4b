"""The Segment, Twilio Voice and Zoom routes, served over real HTTP and called as the providers call them.

The routes run on a real aiohttp server in a thread of their own (tests.fakes.threaded),
Twilio's callbacks are signed by twilio's own RequestValidator (through FakeTwilio),
Segment's and Zoom's by tests.fakes.senders, written from the providers' docs.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm.store import Store
from nudge.clock import SystemClock
from nudge.events import LeadEvent, RepUpserted
from nudge.settings import Settings
from streams import crm_connectors
from streams.sources import routes
from tests.fakes.hubspot_server import FakeHubSpot
from tests.fakes.senders import segment_headers, zoom_headers, zoom_meeting
from tests.fakes.threaded import served
from tests.fakes.twilio_server import FakeTwilio

SEGMENT_SECRET = "seg-shared-secret"
ZOOM_SECRET = "zoom-secret-token"
REP_PHONE = "+14155550101"
LEAD_PHONE = "+14155550177"


@dataclass
class Sources:
    """The three routes on a live server; ``events`` is what they published."""

    settings: Settings
    events: list[LeadEvent] = field(default_factory=list)
    server: Any = None
    _store: Store | None = None

    async def store(self) -> Store:
        if self._store is None:
            self._store = await Store.open(self.settings.database)
            await self._store.upsert_rep(
                RepUpserted(
                    type="rep.upserted",
                    event_id="ev-rep",
                    occurred_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
                    source="test",
                    rep_id="rep-1",
                    name="Rep One",
                    phone=REP_PHONE,
                    email="rep@nudge.example",
                )
            )
        return self._store

    async def publish(self, event: LeadEvent) -> None:
        self.events.append(event)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_routes(routes(self.publish, self.store, self.settings))
        app.router.add_routes(
            crm_connectors.routes(self.publish, self.store, self.settings, SystemClock())
        )
        app.on_cleanup.append(self._close)
        return app

    async def _close(self, _app: web.Application) -> None:
        if self._store is not None:
            await self._store.close()

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
        request = urllib.request.Request(self.url + path, data=body, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status, text = response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            status, text = exc.code, exc.read().decode()
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text


@pytest.fixture
def portal() -> Iterator[FakeHubSpot]:
    with served(FakeHubSpot()) as fake:
        yield fake


@pytest.fixture
def sources(tmp_path: Path, portal: FakeHubSpot) -> Iterator[Sources]:
    settings_ = Settings(
        data_dir=tmp_path,
        twilio_auth_token=FakeTwilio().auth_token,
        segment_shared_secret=SEGMENT_SECRET,
        zoom_webhook_secret_token=ZOOM_SECRET,
        hubspot_access_token=portal.access_token,
        hubspot_client_secret=portal.client_secret,
        hubspot_api_url=portal.url,
    )
    with served(Sources(settings_)) as s:
        yield s


def twilio_post(s: Sources, params: dict[str, str], token: str | None = None) -> tuple[int, Any]:
    url = s.url + "/webhooks/twilio/voice"
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": FakeTwilio().sign(url, params, token),
    }
    return s.post("/webhooks/twilio/voice", urllib.parse.urlencode(params).encode(), headers)


PAGE = {
    "type": "page",
    "messageId": "m-1",
    "anonymousId": "anon-1",
    "properties": {"path": "/pricing"},
}


# -- Segment --------------------------------------------------------------------------------
def test_segment_signed_batch_is_published_unsigned_refused(sources: Sources) -> None:
    """A signed batch becomes events (skips reported); unsigned or mis-signed ones get 401 and nothing."""
    body = json.dumps({"batch": [PAGE, {"type": "alias", "messageId": "a"}]}).encode()
    assert sources.post("/webhooks/segment", body, segment_headers(body, None))[0] == 401
    assert sources.post("/webhooks/segment", body, segment_headers(body, "wrong"))[0] == 401
    assert sources.events == []
    status, answer = sources.post("/webhooks/segment", body, segment_headers(body, SEGMENT_SECRET))
    assert status == 200 and answer["accepted"] == 1 and answer["skipped"] == 1
    assert [e.event_id for e in sources.events] == ["segment:m-1"]


def test_segment_unreadable_signed_body_is_400(sources: Sources) -> None:
    """A signed body that is not a message or batch is a 400 with the reason, not a 5xx."""
    body = b'{"batch": "nope"}'
    status, answer = sources.post("/webhooks/segment", body, segment_headers(body, SEGMENT_SECRET))
    assert status == 400 and "batch" in answer["error"]


# -- Twilio Voice ---------------------------------------------------------------------------
def call_params(status: str = "completed", **extra: str) -> dict[str, str]:
    return {
        "AccountSid": FakeTwilio().account_sid,
        "CallSid": "CA" + "1" * 32,
        "CallStatus": status,
        "Direction": "outbound-api",
        "From": REP_PHONE,
        "To": "(415) 555-0177",
        "CallDuration": "312",
        "Timestamp": "Mon, 02 Mar 2026 17:05:00 +0000",
        **extra,
    }


def test_twilio_completed_call_is_call_ended_matched_by_phone(sources: Sources) -> None:
    """A completed outbound call becomes call.ended for the To number, the rep found by From."""
    status, _ = twilio_post(sources, call_params())
    assert status == 200
    (event,) = sources.events
    assert event.type == "call.ended"
    assert event.phone == LEAD_PHONE and event.rep_id == "rep-1"  # type: ignore[union-attr]
    assert event.duration_s == 312 and event.direction == "outbound"  # type: ignore[union-attr]
    assert event.event_id == "twilio-call:CA" + "1" * 32
    assert event.occurred_at == dt.datetime(2026, 3, 2, 17, 5, tzinfo=dt.UTC)


def test_twilio_inbound_call_names_the_caller(sources: Sources) -> None:
    """An inbound call's lead is the From number."""
    params = call_params(Direction="inbound", From=LEAD_PHONE, To="+15005550006")
    assert twilio_post(sources, params)[0] == 200
    assert sources.events[0].phone == LEAD_PHONE
    assert sources.events[0].direction == "inbound"  # type: ignore[union-attr]


def test_twilio_other_statuses_publish_nothing_forged_refused(sources: Sources) -> None:
    """ringing / no-answer are acknowledged and dropped; a wrong token is 401 with nothing published."""
    assert twilio_post(sources, call_params("ringing"))[0] == 200
    assert twilio_post(sources, call_params("no-answer"))[0] == 200
    assert twilio_post(sources, call_params(), token="forged")[0] == 401
    assert sources.events == []


# -- Zoom -----------------------------------------------------------------------------------
def zoom_post(s: Sources, payload: dict[str, Any], **kw: Any) -> tuple[int, Any]:
    body = json.dumps(payload).encode()
    return s.post("/webhooks/zoom", body, zoom_headers(body, kw.pop("secret", ZOOM_SECRET), **kw))


def test_zoom_url_validation_is_answered_with_the_hmac(sources: Sources) -> None:
    """endpoint.url_validation gets the plainToken back with its HMAC-SHA256 (Zoom's documented check)."""
    import hashlib
    import hmac

    status, answer = zoom_post(
        sources, {"event": "endpoint.url_validation", "payload": {"plainToken": "qgg8vlvZ"}}
    )
    expected = hmac.new(ZOOM_SECRET.encode(), b"qgg8vlvZ", hashlib.sha256).hexdigest()
    assert status == 200 and answer == {"plainToken": "qgg8vlvZ", "encryptedToken": expected}


def test_zoom_meeting_ended_names_each_attendee_but_not_the_rep(sources: Sources) -> None:
    """Attendees seen joining become one meeting.ended each when the meeting ends; reps are left out."""
    for email in ("buyer@acme.example", "rep@nudge.example"):
        joined = zoom_meeting(
            "meeting.participant_joined", "uuid-1==", participant={"email": email, "user_name": "x"}
        )
        assert zoom_post(sources, joined)[0] == 200
    status, answer = zoom_post(sources, zoom_meeting("meeting.ended", "uuid-1=="))
    assert status == 200 and answer == {"accepted": 1}
    (event,) = sources.events
    assert event.type == "meeting.ended" and event.email == "buyer@acme.example"
    assert event.duration_s == 42 * 60  # type: ignore[union-attr]
    assert event.event_id == "zoom:uuid-1==:buyer@acme.example"
    status, answer = zoom_post(sources, zoom_meeting("meeting.ended", "uuid-unknown"))
    assert status == 200 and answer["accepted"] == 0 and "no attendee" in answer["skipped"]


def test_zoom_meeting_ended_names_the_host_as_the_meeting_rep(
    sources: Sources, tmp_path: Path
) -> None:
    """The host's email is a rep's (rep-1): the meeting.ended names rep-1, and the host is not
    an attendee even before Nudge knows them as a rep. A host id mapped in NUDGE_ZOOM_HOSTS
    names that rep when the email does not match; an unknown host names none."""
    for uuid, email in (("u-host", "buyer@acme.example"), ("u-host", "rep@nudge.example")):
        joined = zoom_meeting("meeting.participant_joined", uuid, participant={"email": email})
        assert zoom_post(sources, joined)[0] == 200
    ended = zoom_meeting("meeting.ended", "u-host", host_email="Rep@Nudge.example")
    assert zoom_post(sources, ended)[1] == {"accepted": 1}
    (event,) = sources.events
    assert event.email == "buyer@acme.example" and event.rep_id == "rep-1"  # type: ignore[union-attr]

    mapped = Settings(
        data_dir=tmp_path,
        zoom_webhook_secret_token=ZOOM_SECRET,
        zoom_hosts={"z8yBXksmRlSUm2pVwXvMkQ": "rep-9"},
    )
    with served(Sources(mapped)) as other:
        for uuid in ("u-mapped", "u-unknown"):
            joined = zoom_meeting(
                "meeting.participant_joined", uuid, participant={"email": "buyer@acme.example"}
            )
            assert zoom_post(other, joined)[0] == 200
        ended = zoom_meeting("meeting.ended", "u-mapped", host_email="someone@zoom.example")
        assert zoom_post(other, ended)[1] == {"accepted": 1}
        unknown = zoom_meeting("meeting.ended", "u-unknown", host_id="not-mapped")
        assert zoom_post(other, unknown)[1] == {"accepted": 1}
        assert [e.rep_id for e in other.events] == ["rep-9", None]  # type: ignore[union-attr]


def test_zoom_forged_and_stale_signatures_are_401(sources: Sources) -> None:
    """A wrong secret, or a right one six minutes old, is refused; nothing remembered or published."""
    joined = zoom_meeting("meeting.participant_joined", "u2", participant={"email": "b@x.example"})
    assert zoom_post(sources, joined, secret="forged")[0] == 401
    assert zoom_post(sources, joined, timestamp=int(time.time()) - 360)[0] == 401
    assert zoom_post(sources, zoom_meeting("meeting.ended", "u2"))[1]["accepted"] == 0
    assert sources.events == []


# -- hostile input ----------------------------------------------------------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=25,
)
spec_keys = st.sampled_from(
    [
        "type",
        "messageId",
        "anonymousId",
        "userId",
        "traits",
        "properties",
        "context",
        "event",
        "timestamp",
        "batch",
        "name",
        "payload",
        "plainToken",
        "object",
        "uuid",
        "participant",
    ]
)
hostile_json = st.one_of(
    st.binary(max_size=800),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(spec_keys, json_values, max_size=6).map(lambda d: json.dumps(d).encode()),
    st.tuples(
        st.sampled_from(["page", "track", "identify", "group", "alias"]),
        st.dictionaries(spec_keys, json_values, max_size=5),
    ).map(lambda t: json.dumps({"batch": [{**t[1], "type": t[0], "messageId": "m"}]}).encode()),
    st.tuples(
        st.sampled_from(["meeting.ended", "meeting.participant_joined", "endpoint.url_validation"]),
        json_values,
    ).map(
        lambda t: json.dumps(
            {"event": t[0], "payload": {"object": t[1], "plainToken": t[1]}}
        ).encode()
    ),
)
fuzz = settings(
    max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)


def test_hostile_signed_bodies_never_get_a_5xx(sources: Sources) -> None:
    """Random bytes and Spec-shaped junk, correctly signed, get 2xx or 4xx at Segment and Zoom."""

    @fuzz
    @given(body=hostile_json, where=st.sampled_from(["segment", "zoom"]))
    def run(body: bytes, where: str) -> None:
        headers = (
            segment_headers(body, SEGMENT_SECRET)
            if where == "segment"
            else zoom_headers(body, ZOOM_SECRET)
        )
        status, answer = sources.post(f"/webhooks/{where}", body, headers)
        assert status < 500, (where, body[:200], answer)

    run()


def test_hostile_signed_twilio_params_never_get_a_5xx(sources: Sources) -> None:
    """Random form fields, correctly signed, get 2xx or 4xx at the voice callback."""
    text = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
    keys = (
        st.sampled_from(
            ["CallSid", "CallStatus", "CallDuration", "From", "To", "Direction", "Timestamp"]
        )
        | text
    )

    @fuzz
    @given(
        params=st.dictionaries(
            keys, st.sampled_from(["completed", "inbound", "-1", "99999999999"]) | text, max_size=8
        )
    )
    def run(params: dict[str, str]) -> None:
        status, answer = twilio_post(sources, params)
        assert status < 500, (params, answer)

    run()


def test_hostile_signed_hubspot_batches_never_get_a_5xx(
    sources: Sources, portal: FakeHubSpot
) -> None:
    """Junk and notification-shaped junk, correctly signed by HubSpot's scheme, gets 2xx or 4xx."""
    cid = portal.add("contacts", {"email": "ann@acme.example", "company": "Acme"})
    note_keys = st.sampled_from(
        ["eventId", "objectId", "occurredAt", "subscriptionType", "propertyName", "propertyValue"]
    )
    subscription = st.sampled_from(
        [
            "contact.creation",
            "contact.propertyChange",
            "deal.propertyChange",
            "contact.deletion",
            "x",
        ]
    )
    notification = st.fixed_dictionaries(
        {
            "eventId": st.integers(-5, 10**6),
            "objectId": st.sampled_from([int(cid), 0, -1, 10**20]),
            "occurredAt": st.integers(-(10**15), 10**15) | st.just(int(time.time() * 1000)),
            "subscriptionType": subscription,
        },
        optional={"propertyName": json_values, "propertyValue": json_values},
    ) | st.dictionaries(note_keys, json_values, max_size=6)
    bodies = st.one_of(
        st.binary(max_size=500).map(lambda b: b.decode("latin-1")),
        json_values.map(json.dumps),
        st.lists(notification, max_size=4).map(json.dumps),
    )

    @fuzz
    @given(body=bodies)
    def run(body: str) -> None:
        url = sources.url + "/webhooks/hubspot"
        ts = str(int(time.time() * 1000))
        headers = {
            "Content-Type": "application/json",
            "X-HubSpot-Request-Timestamp": ts,
            "X-HubSpot-Signature-v3": portal.sign("POST", url, body, ts),
        }
        status, answer = sources.post("/webhooks/hubspot", body.encode(), headers)
        assert status < 500, (body[:200], answer)

    run()
