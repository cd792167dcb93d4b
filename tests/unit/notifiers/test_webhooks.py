"""The webhook routes, served by a real aiohttp server and called like the providers call them."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from crm.outbox import Outbox
from crm.store import Store
from delivery import deliver
from notifiers import OutboundMessage, Recipient, texts
from notifiers.slack import SlackNotifier
from nudge.settings import Settings
from nudge.signals import NudgeCommand, Reply
from streams.webhooks import routes
from tests.fakes.fixtures import add_rep
from tests.fakes.slack_server import FakeSlack
from tests.fakes.twilio_server import FakeTwilio
from tests.unit.notifiers.webhooks_server import serve_webhooks

NOON_NY = dt.datetime(2026, 3, 2, 17, 0, tzinfo=dt.UTC)
REP_PHONE = "+14155550101"


@dataclass
class Worker:
    """The webhook routes on a live server, and every Reply they published."""

    server: TestServer
    replies: list[Reply] = field(default_factory=list)

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))


@pytest.fixture
async def make_worker(
    store: Store, tmp_path: Path, twilio_fake: FakeTwilio, slack_fake: FakeSlack
) -> AsyncIterator[Callable[..., object]]:
    async with contextlib.AsyncExitStack() as servers:

        async def start(public_url: str | None = None) -> Worker:
            settings = Settings(
                data_dir=tmp_path,
                public_url=public_url,
                twilio_account_sid=twilio_fake.account_sid,
                twilio_auth_token=twilio_fake.auth_token,
                slack_bot_token=slack_fake.token,
                slack_signing_secret=slack_fake.signing_secret,
                slack_api_url=slack_fake.url,
            )
            return Worker(*await servers.enter_async_context(serve_webhooks(store, settings)))

        yield start


@pytest.fixture
async def worker(make_worker: Callable[..., object]) -> Worker:
    w: Worker = await make_worker()  # type: ignore[misc]
    return w


async def sms(twilio_fake: FakeTwilio, worker: Worker, body: str, **kw: object) -> tuple[int, str]:
    params = twilio_fake.inbound_params(REP_PHONE, body)
    return await twilio_fake.callback(worker.url("/webhooks/twilio/sms"), params, **kw)  # type: ignore[arg-type]


def command(n: int) -> NudgeCommand:
    return NudgeCommand(
        nudge_id=f"n_{n}",
        rep_id="rep-1",
        lead_id="L1",
        text=f"nudge {n}",
        playbook="p",
        rule="r",
        trigger_event_id=f"e{n}",
        created_at=NOON_NY,
    )


async def test_bad_signature_is_403_and_nothing_happens(
    store: Store, twilio_fake: FakeTwilio, worker: Worker
) -> None:
    """An SMS signed with the wrong token is refused: no reply published, no opt-out stored."""
    await add_rep(store)
    status, _ = await sms(twilio_fake, worker, "STOP", token="not-the-token")
    assert status == 403 and worker.replies == []
    assert not await Outbox(store).sms_opted_out(REP_PHONE, "rep-1")


async def test_missing_signature_is_403(twilio_fake: FakeTwilio, worker: Worker) -> None:
    """An SMS webhook without X-Twilio-Signature is refused."""
    status, _ = await sms(twilio_fake, worker, "hello", signature=None)
    assert status == 403 and worker.replies == []


async def test_signature_checked_against_public_url(
    twilio_fake: FakeTwilio, make_worker: Callable[..., object]
) -> None:
    """Behind a proxy, the signature over NUDGE_PUBLIC_URL is accepted and the local one is not."""
    w: Worker = await make_worker("https://nudge.example.com/")  # type: ignore[misc]
    params = twilio_fake.inbound_params(REP_PHONE, "hi")
    signed_public = twilio_fake.sign("https://nudge.example.com/webhooks/twilio/sms", params)
    status, _ = await twilio_fake.callback(
        w.url("/webhooks/twilio/sms"), params, signature=signed_public
    )
    assert status == 200
    status, _ = await twilio_fake.callback(
        w.url("/webhooks/twilio/sms"), twilio_fake.inbound_params(REP_PHONE, "hi")
    )
    assert status == 403


async def test_stop_then_start(store: Store, twilio_fake: FakeTwilio, worker: Worker) -> None:
    """STOP opts the rep out (confirmation, no more texts); START opts back in."""
    await add_rep(store)
    sms_notifiers = {"sms": twilio_fake.notifier()}
    status, body = await sms(twilio_fake, worker, " stop ")
    assert status == 200 and "no more texts" in body
    assert worker.replies[-1].kind == "opt_out" and worker.replies[-1].rep_id == "rep-1"
    assert await deliver(command(1), store, sms_notifiers, NOON_NY) == "suppressed"
    status, body = await sms(twilio_fake, worker, "START")
    assert status == 200 and "back on" in body and worker.replies[-1].kind == "opt_in"
    assert await deliver(command(2), store, sms_notifiers, NOON_NY) == "sent"
    await sms_notifiers["sms"].close()
    assert [m["Body"] for m in twilio_fake.messages] == ["nudge 2"]


async def test_help_answers_with_help_text(twilio_fake: FakeTwilio, worker: Worker) -> None:
    """HELP is answered with the help text in TwiML."""
    status, body = await sms(twilio_fake, worker, "Help")
    assert status == 200 and "<Message>" in body and "Reply STOP" in body
    assert texts.HELP.split(":")[0] in body and worker.replies[-1].kind == "help"


async def test_reply_published_once_per_message_sid(
    store: Store, twilio_fake: FakeTwilio, worker: Worker
) -> None:
    """A text becomes one Reply; Twilio retrying the same MessageSid does not publish it again."""
    await add_rep(store)
    params = twilio_fake.inbound_params(REP_PHONE, "1")
    for _ in range(2):
        status, body = await twilio_fake.callback(worker.url("/webhooks/twilio/sms"), params)
        assert status == 200 and "<Message>" not in body
    assert [(r.text, r.rep_id, r.reply_id) for r in worker.replies] == [
        ("1", "rep-1", params["MessageSid"])
    ]


async def test_status_callback_marks_delivered(
    store: Store, twilio_fake: FakeTwilio, worker: Worker
) -> None:
    """Twilio's signed 'delivered' receipt moves the outbox row to delivered; a forged one is refused."""
    await add_rep(store)
    n = twilio_fake.notifier(status_callback=worker.url("/webhooks/twilio/status"))
    await deliver(command(1), store, {"sms": n}, NOON_NY)
    await n.close()
    sid = twilio_fake.messages[0]["Sid"]
    forged = await twilio_fake.callback(
        worker.url("/webhooks/twilio/status"),
        {"MessageSid": sid, "MessageStatus": "failed"},
        token="wrong",
    )
    assert forged[0] == 403
    status, _ = await twilio_fake.status_callback(sid, "delivered")
    row = await Outbox(store).get("n_1")
    assert status == 200 and row is not None and row["state"] == "delivered"


@pytest.mark.parametrize(
    "how",
    ["bad", "missing", "replayed"],
)
async def test_slack_signature_rejections(slack_fake: FakeSlack, worker: Worker, how: str) -> None:
    """Slack requests with a bad or missing signature, or a >5 min old timestamp, get 403."""
    n = SlackNotifier(slack_fake.token, base_url=slack_fake.url)
    await n.send(OutboundMessage("n_1", Recipient("rep-1", "Ann", slack_user_id="U0REP1"), "hi"))
    await n.close()
    kw: dict[str, object] = {
        "bad": {"secret": "wrong-secret"},
        "missing": {"signed": False},
        "replayed": {"timestamp": int(time.time()) - 6 * 60},
    }[how]  # type: ignore[assignment]
    status, _ = await slack_fake.click(
        worker.url("/webhooks/slack/interactions"),
        slack_fake.posted[0],
        "nudge_snooze",
        **kw,  # type: ignore[arg-type]
    )
    await asyncio.sleep(0.05)
    assert status == 403 and worker.replies == []


async def test_slack_click_reaches_publish_reply(
    store: Store, slack_fake: FakeSlack, worker: Worker
) -> None:
    """Clicking 'Log a call' is acked at once, published as a Reply, and its buttons removed."""
    await add_rep(store, slack_user_id="U0REP1")
    n = SlackNotifier(slack_fake.token, base_url=slack_fake.url)
    await deliver(command(1), store, {"slack": n}, NOON_NY)
    await n.close()
    started = time.monotonic()
    status, _ = await slack_fake.click(
        worker.url("/webhooks/slack/interactions"), slack_fake.posted[0], "nudge_log_call"
    )
    assert status == 200 and time.monotonic() - started < 3
    for _ in range(100):
        if worker.replies:
            break
        await asyncio.sleep(0.02)
    [reply] = worker.replies
    assert (reply.channel, reply.kind, reply.action) == ("slack", "action", "log_call")
    assert (reply.rep_id, reply.nudge_id, reply.lead_id) == ("rep-1", "n_1", "L1")
    for _ in range(100):
        if slack_fake.responses:
            break
        await asyncio.sleep(0.02)
    [update] = slack_fake.responses
    assert update["replace_original"] is True
    assert all(b["type"] != "actions" for b in update["blocks"])
    assert "Got it: Log a call" in json.dumps(update["blocks"])


async def test_slack_url_verification(slack_fake: FakeSlack, worker: Worker) -> None:
    """Slack's url_verification handshake on the events URL is answered with the challenge."""
    body = json.dumps({"type": "url_verification", "challenge": "abc123", "token": "t"})
    status, text = await slack_fake.post_signed(worker.url("/webhooks/slack/events"), body)
    assert status == 200 and "abc123" in text


async def test_slack_dm_becomes_a_reply(
    store: Store, slack_fake: FakeSlack, worker: Worker
) -> None:
    """A message a rep types in the bot's DM is published as a Reply; a duplicate event is not."""
    await add_rep(store, slack_user_id="U0REP1")
    event = {
        "type": "event_callback",
        "team_id": "T0FAKE",
        "api_app_id": "A0FAKE",
        "event_id": "Ev001",
        "event_time": int(time.time()),
        "event": {
            "type": "message",
            "channel_type": "im",
            "channel": "D0REP1",
            "user": "U0REP1",
            "text": "snooze 2 days",
            "ts": "1.000100",
        },
    }
    for _ in range(2):
        status, _ = await slack_fake.post_signed(
            worker.url("/webhooks/slack/events"), json.dumps(event)
        )
        assert status == 200
    for _ in range(100):
        if worker.replies:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.1)
    assert [(r.text, r.rep_id, r.kind) for r in worker.replies] == [
        ("snooze 2 days", "rep-1", "message")
    ]


async def test_status_callback_21610_opts_the_number_out(
    store: Store, twilio_fake: FakeTwilio, worker: Worker
) -> None:
    """An 'undelivered' receipt with 21610 fails the nudge and puts the number on our list."""
    await add_rep(store)
    n = twilio_fake.notifier(status_callback=worker.url("/webhooks/twilio/status"))
    await deliver(command(1), store, {"sms": n}, NOON_NY)
    await n.close()
    status, _ = await twilio_fake.status_callback(
        twilio_fake.messages[0]["Sid"], "undelivered", "21610"
    )
    row = await Outbox(store).get("n_1")
    assert status == 200 and row is not None
    assert (row["state"], row["error_code"]) == ("failed", "21610")
    assert await Outbox(store).sms_opted_out(REP_PHONE, "rep-1")


async def test_slack_click_is_acked_before_the_reply_is_published(
    store: Store, slack_fake: FakeSlack, tmp_path: Path
) -> None:
    """Slack gets its 200 while publishing is still blocked: the 3-second rule never depends on Kafka."""
    await add_rep(store, slack_user_id="U0REP1")
    settings = Settings(
        data_dir=tmp_path,
        slack_bot_token=slack_fake.token,  # type: ignore[arg-type]
        slack_signing_secret=slack_fake.signing_secret,  # type: ignore[arg-type]
        slack_api_url=slack_fake.url,
    )
    gate, published = asyncio.Event(), asyncio.Event()

    async def slow_publish(reply: Reply) -> None:
        await gate.wait()
        published.set()

    app = web.Application()
    app.router.add_routes(routes(slow_publish, store, settings))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        n = SlackNotifier(slack_fake.token, base_url=slack_fake.url)
        await n.send(
            OutboundMessage("n_1", Recipient("rep-1", "Ann", slack_user_id="U0REP1"), "hi")
        )
        await n.close()
        status, _ = await asyncio.wait_for(
            slack_fake.click(
                str(server.make_url("/webhooks/slack/interactions")),
                slack_fake.posted[0],
                "nudge_snooze",
            ),
            timeout=2.0,
        )
        assert status == 200 and not published.is_set()
        gate.set()
        await asyncio.wait_for(published.wait(), timeout=2.0)
    finally:
        await server.close()
