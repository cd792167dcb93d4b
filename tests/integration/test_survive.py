"""Issue 7, "Survive": real workers on the real embedded broker, texts counted at a fake Twilio.

Every test here runs ``nudge worker`` subprocesses (this checkout's code) against the
Tansu broker, with the real twilio client pointed at :class:`tests.fakes.twilio_server.FakeTwilio`
served from a thread of the test process. What reached a rep is what the fake received,
not what our outbox says we sent.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import datetime as dt
import json
import os
import signal
import sqlite3
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ENGINES, wait_for
from tests.fakes.threaded import served
from tests.fakes.twilio_server import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio
from tests.integration.test_pipeline import hot_lead_events, outbox

pytestmark = [pytest.mark.slow, ENGINES]  # each test on Tansu and on the Kafka cluster

FROM_NUMBER = "+14155550199"
REP_PHONES = {
    "rep-a": "+14155550111",
    "rep-b": "+14155550122",
    "rep-c": "+12025550133",
    "rep-d": "+12025550144",
}


KILL_AFTER = float(os.environ.get("SURVIVE_KILL_AFTER", "0.6"))
"""Seconds into the second half of the stream at which worker A is SIGKILLed."""
TWILIO_LATENCY = float(os.environ.get("SURVIVE_TWILIO_LATENCY", "0"))
"""Fake Twilio's answer delay. Raise it (e.g. 0.3) to make the kill land inside a send
more often, to exercise the reconciliation of nudges left in ``sending``."""
RECONCILE_AFTER = "10"
"""``NUDGE_RECONCILE_AFTER`` here: a nudge a kill left in ``sending`` is looked up at the
fake after 10 s (60 s by default). Longer than any send to the fake takes."""


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    with served(FakeTwilio(latency=TWILIO_LATENCY)) as fake:
        yield fake


def twilio_env(fake: FakeTwilio, **extra: str) -> dict[str, str]:
    """Worker settings that send every nudge as SMS through the fake, at any hour."""
    return {
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_FROM_NUMBER": FROM_NUMBER,
        "NUDGE_TWILIO_API_URL": fake.url,
        "NUDGE_NOTIFIER": "auto",
        "NUDGE_QUIET_HOURS_START": "00:00",
        "NUDGE_QUIET_HOURS_END": "00:00",
        "NUDGE_DAILY_LIMIT": "1000",
        "NUDGE_RECONCILE_AFTER": RECONCILE_AFTER,
        **extra,
    }


def company(n: int) -> str:
    """Unique, and never a prefix of another (so counting bodies is exact)."""
    return f"Firm{n:03d} Holdings"


def lead_events(n: int, rep: str) -> list[dict[str, Any]]:
    events = hot_lead_events(n, company(n), rep=rep)
    events[0] = {**events[0], "phone": REP_PHONES[rep], "name": f"Rep {rep}"}
    return events


def texts_about(fake: FakeTwilio) -> collections.Counter[str]:
    """How many texts the fake accepted per company named in the body."""
    counts: collections.Counter[str] = collections.Counter()
    for message in list(fake.messages):
        body = message.get("Body", "")
        for word in body.split():
            if word.startswith("Firm"):
                counts[word + " Holdings"] += 1
                break
    return counts


def rows(db: Path) -> list[sqlite3.Row]:
    return list(outbox(db))


def group_lag(bootstrap: str, group: str, engine: str = "tansu") -> dict[str, int]:
    """Per topic-partition, end offset minus the group's committed offset (nonzero only):
    where a stalled worker stopped, for failure messages."""

    async def lag() -> dict[str, int]:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        from broker import correct_batch_end_offsets

        if engine == "tansu":
            correct_batch_end_offsets()  # Tansu under-reports ends: the lag would hide

        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
        )
        await consumer.start()
        try:
            topics = ["crm.events", "call.events", "web.events", "lead.activity"]
            topics += ["lead.signals", "nudges", f"{group}-leads-changelog"]
            tps = [
                TopicPartition(t, p)
                for t in topics
                for p in sorted(consumer.partitions_for_topic(t) or ())
            ]
            ends = await consumer.end_offsets(tps)
            out = {}
            for tp in tps:
                done = await consumer.committed(tp) or 0
                if ends[tp] - done:
                    out[f"{tp.topic}/{tp.partition}"] = ends[tp] - done
            return out
        finally:
            await consumer.stop()

    try:
        return asyncio.run(lag())
    except Exception as exc:  # diagnostics only: never hide the real failure
        return {"error": repr(exc)}  # type: ignore[dict-item]


# -- 1. two workers, one SIGKILLed mid-stream --------------------------------------------------


def test_two_workers_one_killed_every_nudge_once_at_the_provider(
    start_worker: Any, broker: Any, twilio: FakeTwilio, record_property: Any
) -> None:
    """Two workers (one group, one SQLite file, separate web ports) share the partitions.

    20 leads turn hot, spread over 4 reps and every partition. Worker A is SIGKILLed while
    events are still flowing; B takes over its partitions once A's 6 s session expires and
    the leads table is restored from its changelog. Every lead's nudge must reach the fake
    Twilio exactly once and be recorded ``sent`` — also one the kill caught between claiming
    it and recording the provider's answer: B looks it up in the fake's message list and
    marks it sent, or sends it (none may stay in ``sending``). The whole stream is then
    posted again (a producer's retry): nothing more may be sent.

    What this test found in the takeover (Faust 0.15.3, aiokafka 0.14, Tansu 0.6.0), all
    fixed in ``streams/faust_fixes.py`` and ``broker/offsets.py``: Faust sought the stream
    partitions to their committed offsets after resuming them and cleared the stream queues
    after that, dropping what the fetcher delivered in between (1 run in 12: a lead without
    its text); while it waited, aiokafka took Faust's emptied set of active partitions for
    "all of them" and handed over records Faust then discarded (the survivor never read the
    taken-over partitions); aiokafka skips that seek for a partition with no committed
    offset; and Tansu under-reports partition ends, so a table recovery could stop short.
    An ingest race between the two workers (a lead hot before its owner was known) is fixed
    in ``streams/ingest.py``.
    """
    env = twilio_env(twilio)
    a = start_worker(**env)
    b = start_worker(**env)
    assert a.db == b.db  # one data dir, as docker-compose shares one volume
    reps = list(REP_PHONES)
    leads = {n: reps[n % len(reps)] for n in range(1, 21)}

    # first half: both workers must be consuming (a rebalance happens as B joins)
    for n in range(1, 11):
        status, body = b.post_events(lead_events(n, leads[n]))
        assert status == 200, body
    wait_for(
        lambda: a.stats().get("events.in", 0) > 0 and b.stats().get("events.in", 0) > 0,
        timeout=60,
        message=lambda: (a.stats(), b.stats()),
    )
    wait_for(lambda: len(twilio.messages) >= 3, timeout=60, message=lambda: rows(a.db))
    a_stats = a.stats()

    # second half: A dies while these are in flight
    killer = threading.Timer(KILL_AFTER, a.kill, args=(signal.SIGKILL,))
    killer.start()
    for n in range(11, 21):
        status, body = b.post_events(lead_events(n, leads[n]))
        assert status == 200, body
        time.sleep(0.15)
    killer.join()
    assert a.process is not None and a.process.returncode == -signal.SIGKILL
    killed_at = time.monotonic()
    killed_wall = dt.datetime.now(dt.UTC)

    def settled() -> bool:
        r = rows(b.db)
        return len(r) == 20 and all(x["state"] == "sent" for x in r)

    def summary() -> Any:
        return (
            [(x["lead_id"], x["rep_id"], x["state"], x["reason"]) for x in rows(b.db)],
            b.stats(),
            texts_about(twilio),
            "lag (end - committed):",
            group_lag(broker.bootstrap, b.env["NUDGE_APP_ID"], broker.engine),
        )

    wait_for(settled, timeout=TAKEOVER_TIMEOUT, message=summary)
    took_over_in = time.monotonic() - killed_at

    # a retrying producer sends the whole stream again: processed once, sent never again
    settled_stats = b.stats()
    before = settled_stats.get("events.duplicate", 0)
    for n in range(1, 21):
        b.post_events(lead_events(n, leads[n]))
    wait_for(
        lambda: b.stats().get("events.duplicate", 0) >= before + 20 * 5,
        timeout=30,
        message=lambda: (settled_stats, b.stats()),  # leads.rescored up: B's table lost state
    )
    time.sleep(OUTBOX_SETTLE)

    final = {r["lead_id"]: r for r in rows(b.db)}
    counts = texts_about(twilio)
    assert sorted(final) == sorted(f"lead-{n}" for n in leads)
    assert all(c <= 1 for c in counts.values()), f"a text went twice: {counts}"
    for n, rep in leads.items():
        row = final[f"lead-{n}"]
        assert row["rep_id"] == rep
        assert row["state"] == "sent", f"lead-{n} is {row['state']}"
        assert counts[company(n)] == 1, f"lead-{n} recorded sent but fake got {counts}"
    assert sum(counts.values()) == len(twilio.messages) == 20
    for message in twilio.messages:
        assert message["From"] == FROM_NUMBER
        assert message["To"] in REP_PHONES.values()
    assert b.process is not None and b.process.poll() is None
    after_kill = [
        r["lead_id"]
        for r in final.values()
        if r["sent_at"] and dt.datetime.fromisoformat(r["sent_at"]) > killed_wall
    ]
    record_property("sent_after_kill", len(after_kill))
    final_stats = b.stats()
    reconciled = final_stats.get("nudges.reconciled.found", 0) + final_stats.get(
        "nudges.reconciled.requeued", 0
    )
    record_property("reconciled", reconciled)
    record_property("takeover_seconds", round(took_over_in, 1))
    record_property("a_stats_before_kill", json.dumps(a_stats))
    print(
        f"\nsurvive: A before kill {a_stats}; sent after the kill: {len(after_kill)}; "
        f"settled from the provider's log: {reconciled}; all settled {took_over_in:.1f} s after kill"
    )


TAKEOVER_TIMEOUT = 60.0
"""Seconds for B to finish the stream after the kill; it takes 8-11 s when it works, and up
to ~25 s when a nudge the kill caught mid-send waits ``RECONCILE_AFTER`` to be looked up."""


OUTBOX_SETTLE = 6.0
"""Longer than one outbox drain interval (5 s): any late duplicate send would show up."""


# -- 2. provider outage ------------------------------------------------------------------------


def test_provider_outage_queues_durably_and_delivers_in_order_once(
    start_worker: Any, twilio: FakeTwilio
) -> None:
    """Fake Twilio answers 503 to everything for ~20 s (the issue says a minute; shortened
    so the file stays under 3 min), while 8 leads of 2 reps turn hot one after another.

    Their nudges wait in the outbox (SQLite, state ``queued``); each rep's oldest one is
    tried (3 calls in one go, then requeued with backoff) and the others wait behind it.
    Then the worker is SIGKILLed (the queue lives in SQLite, not in the process), the fake
    recovers, and a restarted worker sends all 8 exactly once, each rep's in the order they
    were triggered.

    Timing, from :mod:`delivery.sender`'s defaults: after its first 3 failed calls a nudge
    waits 10–20 s, after the next 3 it waits 80–160 s. The outage is ended 8.5 s after the
    first 503, before any first retry can be due, so recovery is seen by the first retry
    and the test stays short; the nudges still sit through ~20 s of outage.
    """
    worker = start_worker(**twilio_env(twilio))
    twilio.outage = 503
    outage_started = time.monotonic()
    time.sleep(10)  # the provider is down; nothing to send yet
    order = [(n, "rep-a" if n % 2 else "rep-b") for n in range(31, 39)]
    for i, (n, rep) in enumerate(order, 1):
        status, body = worker.post_events(lead_events(n, rep))
        assert status == 200, body

        def enough(k: int = i) -> bool:
            return len(rows(worker.db)) >= k

        wait_for(enough, timeout=30, message=lambda: rows(worker.db))
    first_503 = wait_for(lambda: twilio.requests > 0 and time.monotonic(), timeout=30)
    assert twilio.messages == []
    queued = rows(worker.db)
    assert len(queued) == 8 and all(r["state"] == "queued" for r in queued), [
        dict(r) for r in queued
    ]
    heads = wait_for(
        lambda: [r for r in rows(worker.db) if r["not_before"]],
        timeout=10,
        message=lambda: [dict(r) for r in rows(worker.db)],
    )
    assert {r["rep_id"] for r in heads} == {"rep-a", "rep-b"}  # each rep's oldest, requeued
    # the queue is durable: the worker dies (no row is in 'sending' now) and comes back
    worker.kill(signal.SIGKILL)
    time.sleep(max(0.0, first_503 + 8.5 - time.monotonic()))
    twilio.outage = None
    outage = time.monotonic() - outage_started
    failed_calls = twilio.requests
    assert failed_calls >= 6  # each rep's head: 3 calls, all 503
    worker.start()

    wait_for(
        lambda: len(twilio.messages) >= 8,
        timeout=60,
        message=lambda: [dict(r) for r in rows(worker.db)],
    )
    time.sleep(OUTBOX_SETTLE)
    counts = texts_about(twilio)
    assert counts == {company(n): 1 for n, _ in order}
    for rep in ("rep-a", "rep-b"):
        got = [m["Body"].split()[0] for m in twilio.messages if m["To"] == REP_PHONES[rep]]
        want = [company(n).split()[0] for n, r in order if r == rep]
        assert got == want, f"{rep} received out of order"
    final = rows(worker.db)
    assert all(r["state"] == "sent" for r in final)
    con = sqlite3.connect(worker.db)
    try:
        transient = con.execute(
            "SELECT COUNT(*) FROM delivery_attempts WHERE outcome='transient'"
        ).fetchone()[0]
    finally:
        con.close()
    assert transient == failed_calls  # every 503 the fake gave was recorded, none hidden
    assert 18 <= outage <= 30, outage


# -- 3. bad input never takes a worker down ----------------------------------------------------

VALID_EVENT = {
    "event_id": "fuzz-base",
    "type": "page.viewed",
    "occurred_at": "2026-03-02T10:00:00Z",
    "source": "web",
    "email": "fuzz@example.com",
    "path": "/pricing",
}
HOSTILE_BODIES = [
    b"",
    b"   \n\n  ",
    b"[" * 50_000,
    b'{"a":' * 50_000,
    b"[" + b"{}," * 10_001 + b"{}]",
    b"[1e999999, NaN, -Infinity]",
    b'{"type": ["page.viewed"], "event_id": "x"}',
    b'{"type": {"a": 1}, "event_id": {"b": 2}}',
    b'{"type": null}',
    b'"just a string"',
    b"\xff\xfe\x00garbage",
    b'{"event_id": "\\ud800", "type": "page.viewed"}',
    b"\x00" * 1000,
    json.dumps({**VALID_EVENT, "occurred_at": "2026-03-02T10:00:00"}).encode(),
    json.dumps({**VALID_EVENT, "event_id": "x" * 300}).encode(),
    json.dumps({**VALID_EVENT, "path": "p" * 70_000}).encode(),
    b"\n".join([json.dumps(VALID_EVENT).encode(), b"{broken", b"[]", b"17"]),
]
SIGNED_TWILIO_HOSTILE = [
    {},
    {"MessageSid": "SMx"},
    {"MessageSid": "SMy", "From": "not a phone", "Body": "STOP"},
    {"MessageSid": "SMz", "From": "+1", "Body": "\x00" * 50},
    {"MessageSid": "SMw", "From": "+14155550111", "Body": "1" * 100_000},
]
SLACK_KEYS = (
    *("event", "team", "user", "actions", "challenge", "container", "channel"),
    *("message", "enterprise", "authorizations", "view", "api_app_id"),
)
SIGNED_SLACK_HOSTILE = [
    ("application/json", ""),
    ("application/json", "{"),
    ("application/json", "[]"),
    ("application/json", '{"type": "url_verification"}'),
    ("application/json", '{"type": "event_callback", "event": "x"}'),
    ("application/json", '{"type": "event_callback", "event": {"type": "message"}}'),
    ("application/x-www-form-urlencoded", "payload="),
    ("application/x-www-form-urlencoded", "payload=%7B"),
    ("application/x-www-form-urlencoded", "payload=%5B%5D"),
    ("application/x-www-form-urlencoded", 'payload={"type":"block_actions","actions":7}'),
]


def post(
    url: str, body: bytes, headers: dict[str, str] | None = None, timeout: float = 20
) -> tuple[int, str, str]:
    """POST raw bytes; (status, content type, text) whatever the status."""
    req = urllib.request.Request(url, data=body, method="POST", headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), exc.read().decode(errors="replace")


NDJSON = {"Content-Type": "application/x-ndjson"}


def clear_rejection_or_ok(status: int, ctype: str, text: str, what: str) -> None:
    """Never a 5xx; every answer is JSON, text or TwiML a client can read."""
    assert status < 500, f"{what}: HTTP {status}: {text[:500]}"
    assert any(t in ctype for t in ("json", "text/", "xml")), f"{what}: {status} {ctype!r}"
    if "json" in ctype and text:
        json.loads(text)


def slack_headers(body: str, ctype: str, *, secret: str, ts: int | None = None) -> dict[str, str]:
    from tests.fakes.slack_server import sign

    stamp = int(time.time()) if ts is None else ts
    return {
        "Content-Type": ctype,
        "X-Slack-Request-Timestamp": str(stamp),
        "X-Slack-Signature": sign(secret, body, stamp),
    }


def test_bad_input_never_takes_a_worker_down(
    start_worker: Any, broker: Any, twilio: FakeTwilio
) -> None:
    """Hypothesis-driven hostile payloads at a running worker's /events and its four
    webhook endpoints (Twilio SMS signed, unsigned and wrongly signed; Slack events and
    interactions signed, unsigned and stale), plus a fixed list of known-nasty bodies
    (deep nesting, unhashable types, huge numbers, invalid UTF-8, oversize). Each gets a
    2xx or 4xx JSON / text answer, never a 5xx. Random bytes produced straight to the
    three inbound topics all land in events.dead with a reason. Afterwards the same
    worker answers /health and turns a valid hot lead into exactly one text.
    """
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from tests.fakes.slack_server import SIGNING_SECRET, FakeSlack
    from tests.integration.test_pipeline import read_topic

    with served(FakeSlack()) as slack:
        worker = start_worker(
            **twilio_env(twilio),
            SLACK_BOT_TOKEN=slack.token,
            SLACK_SIGNING_SECRET=slack.signing_secret,
            NUDGE_SLACK_API_URL=slack.url,
        )
        fuzz = settings(
            max_examples=40,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        json_values = st.recursive(
            st.none()
            | st.booleans()
            | st.integers()
            | st.floats(allow_nan=False)
            | st.text(max_size=30),
            lambda inner: (
                st.lists(inner, max_size=4)
                | st.dictionaries(st.text(max_size=10), inner, max_size=4)
            ),
            max_leaves=20,
        )
        text = st.text(st.characters(exclude_categories=["Cs"]), max_size=200)
        ran: collections.Counter[str] = collections.Counter()

        # /events: random bytes, random JSON, and valid events with one field made hostile
        for body in HOSTILE_BODIES:
            clear_rejection_or_ok(
                *post(worker.url + "/events", body, NDJSON), f"/events {body[:60]!r}"
            )

        @fuzz
        @given(
            st.one_of(
                st.binary(max_size=2000),
                json_values.map(lambda v: json.dumps(v).encode()),
                st.tuples(st.sampled_from(sorted(VALID_EVENT)), json_values).map(
                    lambda kv: json.dumps({**VALID_EVENT, kv[0]: kv[1]}).encode()
                ),
                st.lists(json_values, max_size=5).map(
                    lambda vs: b"\n".join(json.dumps(v).encode() for v in vs)
                ),
            )
        )
        def events(body: bytes) -> None:
            ran["events"] += 1
            status, ctype, answer = post(worker.url + "/events", body, NDJSON)
            clear_rejection_or_ok(status, ctype, answer, f"/events {body[:80]!r}")
            assert "json" in ctype and status in (200, 207, 400, 413), (status, answer[:300])

        events()

        # Twilio inbound SMS and status callbacks
        for path in ("/webhooks/twilio/sms", "/webhooks/twilio/status"):
            url = worker.url + path
            for params in SIGNED_TWILIO_HOSTILE:
                encoded = urllib.parse.urlencode(params).encode()
                headers = {
                    "Content-Type": "application/x-www-form-urlencoded",
                    "X-Twilio-Signature": twilio.sign(url, params),
                }
                clear_rejection_or_ok(*post(url, encoded, headers), f"{path} signed {params}")

        twilio_params = st.dictionaries(
            st.sampled_from(["MessageSid", "From", "To", "Body", "AccountSid", "MessageStatus"])
            | text,
            text,
            max_size=8,
        )

        @fuzz
        @given(
            params=twilio_params,
            path=st.sampled_from(["/webhooks/twilio/sms", "/webhooks/twilio/status"]),
            mode=st.sampled_from(["signed", "unsigned", "bad"]),
        )
        def twilio_hooks(params: dict[str, str], path: str, mode: str) -> None:
            ran["twilio"] += 1
            url = worker.url + path
            headers = {"Content-Type": "application/x-www-form-urlencoded"}
            if mode == "signed":
                headers["X-Twilio-Signature"] = twilio.sign(url, params)
            elif mode == "bad":
                headers["X-Twilio-Signature"] = twilio.sign(url, params, token="wrong-token")
            status, ctype, answer = post(url, urllib.parse.urlencode(params).encode(), headers)
            clear_rejection_or_ok(status, ctype, answer, f"{path} {mode} {params}")
            if mode != "signed":
                assert status == 403, (status, answer)

        twilio_hooks()

        # Slack events and interactions
        for path in ("/webhooks/slack/events", "/webhooks/slack/interactions"):
            url = worker.url + path
            for ctype, sbody in SIGNED_SLACK_HOSTILE:
                headers = slack_headers(sbody, ctype, secret=SIGNING_SECRET)
                clear_rejection_or_ok(*post(url, sbody.encode(), headers), f"{path} {sbody!r}")

        # Slack-shaped envelopes with hostile values where bolt expects objects
        slack_shaped = st.fixed_dictionaries(
            {
                "type": st.sampled_from(
                    ["event_callback", "url_verification", "block_actions", "view_submission"]
                )
                | text
            },
            optional={k: json_values for k in SLACK_KEYS},
        )

        @fuzz
        @given(
            body=st.one_of(
                text,
                json_values.map(json.dumps),
                json_values.map(lambda v: "payload=" + urllib.parse.quote(json.dumps(v))),
                slack_shaped.map(json.dumps),
                slack_shaped.map(lambda v: "payload=" + urllib.parse.quote(json.dumps(v))),
            ),
            path=st.sampled_from(["/webhooks/slack/events", "/webhooks/slack/interactions"]),
            mode=st.sampled_from(["signed", "unsigned", "bad", "stale"]),
        )
        def slack_hooks(body: str, path: str, mode: str) -> None:
            ran["slack"] += 1
            ctype = (
                "application/x-www-form-urlencoded"
                if body.startswith("payload=")
                else "application/json"
            )
            if mode == "unsigned":
                headers = {"Content-Type": ctype}
            elif mode == "bad":
                headers = slack_headers(body, ctype, secret="wrong-secret")
            elif mode == "stale":
                headers = slack_headers(
                    body, ctype, secret=SIGNING_SECRET, ts=int(time.time()) - 600
                )
            else:
                headers = slack_headers(body, ctype, secret=SIGNING_SECRET)
            status, rtype, answer = post(worker.url + path, body.encode(), headers)
            clear_rejection_or_ok(status, rtype, answer, f"{path} {mode} {body[:200]!r}")
            if mode != "signed":
                assert status == 403, (status, answer)

        slack_hooks()

        # random junk straight onto the inbound topics
        junk: list[tuple[str, bytes]] = []

        @fuzz
        @given(
            topic=st.sampled_from(["crm.events", "call.events", "web.events"]),
            value=st.binary(max_size=500) | json_values.map(lambda v: json.dumps(v).encode()),
        )
        def collect(topic: str, value: bytes) -> None:
            junk.append((topic, b"junk:" + value))  # never a valid event

        collect()
        junk += [("web.events", body) for body in HOSTILE_BODIES]

        async def produce_junk() -> None:
            from aiokafka import AIOKafkaProducer

            producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
            await producer.start()
            try:
                for topic, value in junk:
                    await producer.send_and_wait(topic, value, key=b"junk")
            finally:
                await producer.stop()

        asyncio.run(produce_junk())
        # events rejected over HTTP above are dead-lettered too (source "http")
        http_dead = worker.stats().get("events.rejected.http", 0)
        dead = asyncio.run(
            read_topic(broker.bootstrap, "events.dead", at_least=len(junk) + http_dead)
        )
        landed = collections.Counter(
            (d.get("topic"), d["raw"].encode() if "raw" in d else base64.b64decode(d["raw_base64"]))
            for d in dead
            if d.get("source") != "http"
        )
        assert all(d.get("reason") for d in dead)
        missing = collections.Counter(junk) - landed
        assert not missing, f"junk that did not reach events.dead: {list(missing)[:5]}"

        assert min(ran["events"], ran["twilio"], ran["slack"]) >= 40, ran
        assert len(junk) >= 40 + len(HOSTILE_BODIES)

        # still alive, still serving, still working
        assert worker.process is not None and worker.process.poll() is None, worker.output()
        with urllib.request.urlopen(worker.url + "/health", timeout=5) as r:
            assert r.status == 200 and json.load(r) == {"status": "ok"}
        before = len(twilio.messages)
        status, body = worker.post_events(lead_events(99, "rep-a"))
        assert status == 200, body
        wait_for(lambda: len(twilio.messages) > before, timeout=30, message=worker.output)
        time.sleep(1)
        assert texts_about(twilio)[company(99)] == 1
        stats = worker.stats()
        assert stats.get("ingest.errors", 0) == 0, stats


# -- 4. a worker killed inside a send ------------------------------------------------------


def test_a_send_cut_by_a_crash_is_settled_from_the_providers_log(
    start_worker: Any, twilio: FakeTwilio
) -> None:
    """A worker is SIGKILLed twice inside a send: once after Twilio recorded the text but
    before it answered, once while Twilio had not taken the request in. Each nudge is left
    in ``sending``. The restarted worker looks both up in Twilio's message list once their
    stamp is ``NUDGE_RECONCILE_AFTER`` old: the first is found and marked sent with
    Twilio's sid, the second is not found and is sent. Each text reaches Twilio once."""
    env = twilio_env(twilio)
    worker = start_worker(**env)

    # 1. Twilio records the text, then takes 30 s to answer: the worker dies waiting
    twilio.latency = 30.0
    status, body = worker.post_events(lead_events(41, "rep-a"))
    assert status == 200, body
    wait_for(lambda: texts_about(twilio)[company(41)] == 1, timeout=60, message=worker.output)
    worker.kill(signal.SIGKILL)
    twilio.latency = 0.0
    first = next(m for m in twilio.messages if company(41) in m["Body"])
    assert [r["state"] for r in rows(worker.db)] == ["sending"]

    # 2. the next send hangs before Twilio takes it in: the worker dies again
    twilio.hang_next(60.0)
    worker.start()
    sends_before = twilio.requests
    status, body = worker.post_events(lead_events(42, "rep-b"))
    assert status == 200, body
    wait_for(lambda: twilio.requests > sends_before, timeout=60, message=worker.output)
    worker.kill(signal.SIGKILL)
    assert texts_about(twilio)[company(42)] == 0
    assert {r["lead_id"]: r["state"] for r in rows(worker.db)}["lead-42"] == "sending"

    # 3. a worker (the same, restarted) settles both from Twilio's log
    worker.start()

    def settled() -> bool:
        return len(rows(worker.db)) == 2 and all(r["state"] == "sent" for r in rows(worker.db))

    wait_for(
        settled, timeout=90, message=lambda: ([dict(r) for r in rows(worker.db)], worker.stats())
    )
    time.sleep(OUTBOX_SETTLE)
    assert texts_about(twilio) == {company(41): 1, company(42): 1}
    by_lead = {r["lead_id"]: r for r in rows(worker.db)}
    assert by_lead["lead-41"]["provider_id"] == first["Sid"]  # found, not sent again
    assert twilio.list_requests >= 2
    con = sqlite3.connect(worker.db)
    try:
        lost = con.execute(
            "SELECT nudge_id FROM delivery_attempts WHERE error_code='lost_in_crash'"
        ).fetchall()
        found = con.execute(
            "SELECT nudge_id FROM delivery_attempts WHERE detail LIKE 'found in the provider%'"
        ).fetchall()
    finally:
        con.close()
    assert [n for (n,) in lost] == [by_lead["lead-42"]["nudge_id"]]
    assert [n for (n,) in found] == [by_lead["lead-41"]["nudge_id"]]
