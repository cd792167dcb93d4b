"""Nudges a crash left in ``sending`` are settled from the provider's own log: real twilio
and slack_sdk clients against the fakes, a real SQLite outbox."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import pytest

from crm.outbox import Outbox
from crm.store import Store
from delivery import drain_due
from delivery.policy import Rep
from delivery.reconcile import reconcile_stale
from delivery.sender import outbound_message
from notifiers.base import Notifier
from notifiers.console import ConsoleNotifier
from notifiers.phones import to_e164
from notifiers.slack import SlackNotifier
from nudge.signals import NudgeCommand
from tests.conftest import STORES
from tests.fakes.fixtures import add_rep
from tests.fakes.slack_server import FakeSlack
from tests.fakes.twilio_server import FakeTwilio
from tests.unit.notifiers.test_delivery import NOON_NY, command

pytestmark = STORES  # every test on SQLite and on PostgreSQL

STALE = dt.timedelta(seconds=60)
LATER = NOON_NY + dt.timedelta(seconds=61)


@pytest.fixture
async def sms(twilio_fake: FakeTwilio) -> AsyncIterator[dict[str, Notifier]]:
    n = twilio_fake.notifier(timeout=2)
    yield {"sms": n}
    await n.close()


@pytest.fixture
async def slack(slack_fake: FakeSlack) -> AsyncIterator[dict[str, Notifier]]:
    n = SlackNotifier(slack_fake.token, base_url=slack_fake.url)
    yield {"slack": n}
    await n.close()


async def crash_mid_send(
    store: Store, notifiers: dict[str, Notifier], cmd: NudgeCommand, channel: str, *, reached: bool
) -> None:
    """What a worker killed inside a send leaves: the row claimed and stamped, and the
    provider holding the message (``reached``) or not, with no answer recorded."""
    outbox = Outbox(store)
    assert await outbox.enqueue(cmd, NOON_NY)
    assert await outbox.claim(cmd.nudge_id, NOON_NY)
    await outbox.sending(cmd.nudge_id, NOON_NY, channel)
    if reached:
        rep_row = await store.get_rep(cmd.rep_id)
        assert rep_row is not None
        await notifiers[channel].send(
            outbound_message(cmd, Rep.from_row(rep_row, normalise_phone=to_e164))
        )


async def test_text_the_provider_got_is_marked_sent_not_resent(
    store: Store, twilio_fake: FakeTwilio, sms: dict[str, Notifier]
) -> None:
    """Twilio listed the text (same number, same body, after the nudge was queued): the
    row becomes sent with Twilio's sid, and nothing more is sent."""
    await add_rep(store)
    await crash_mid_send(store, sms, command(1), "sms", reached=True)
    done = await reconcile_stale(store, sms, LATER, stale_after=STALE)
    assert (done.found, done.requeued) == (1, 0)
    row = await Outbox(store).get("n_1")
    assert row is not None and row["state"] == "sent"
    assert row["provider_id"] == twilio_fake.messages[0]["Sid"]
    assert twilio_fake.list_requests == 1
    assert await drain_due(store, sms, LATER) == 0
    assert len(twilio_fake.messages) == 1


async def test_text_the_provider_never_got_is_sent_once(
    store: Store, twilio_fake: FakeTwilio, sms: dict[str, Notifier]
) -> None:
    """No such text at Twilio: the nudge is queued again and the drain sends it, once."""
    await add_rep(store)
    await crash_mid_send(store, sms, command(1), "sms", reached=False)
    done = await reconcile_stale(store, sms, LATER, stale_after=STALE)
    assert (done.found, done.requeued) == (0, 1)
    assert await drain_due(store, sms, LATER) == 1
    assert [m["Body"] for m in twilio_fake.messages] == ["nudge number 1"]
    row = await Outbox(store).get("n_1")
    assert row is not None and row["state"] == "sent"
    outcomes = [(a["outcome"], a["error_code"]) for a in await Outbox(store).attempts("n_1")]
    assert outcomes == [("transient", "lost_in_crash"), ("sent", None)]
    assert await reconcile_stale(store, sms, LATER + STALE * 2, stale_after=STALE) == type(done)()


async def test_a_live_send_is_left_alone(
    store: Store, twilio_fake: FakeTwilio, sms: dict[str, Notifier]
) -> None:
    """A row stamped less than ``stale_after`` ago may still be in its sender's hands: the
    provider is not even asked."""
    await add_rep(store)
    await crash_mid_send(store, sms, command(1), "sms", reached=False)
    done = await reconcile_stale(store, sms, NOON_NY + STALE / 2, stale_after=STALE)
    assert not done and twilio_fake.list_requests == 0
    row = await Outbox(store).get("n_1")
    assert row is not None and row["state"] == "sending"


async def test_an_identical_text_of_another_nudge_is_not_taken_for_it(
    store: Store, twilio_fake: FakeTwilio, sms: dict[str, Notifier]
) -> None:
    """Two nudges with the same words: the first went out normally (its sid is recorded);
    the second never reached Twilio and must be sent, not matched to the first's text."""
    from delivery import deliver

    await add_rep(store)
    first = command(1)
    second = command(2).model_copy(update={"text": first.text})
    assert await deliver(first, store, sms, NOON_NY) == "sent"
    await crash_mid_send(store, sms, second, "sms", reached=False)
    done = await reconcile_stale(store, sms, LATER, stale_after=STALE)
    assert (done.found, done.requeued) == (0, 1)
    await drain_due(store, sms, LATER)
    assert [m["Body"] for m in twilio_fake.messages] == [first.text, first.text]


async def test_provider_down_during_the_look_up_decides_nothing(
    store: Store, twilio_fake: FakeTwilio, sms: dict[str, Notifier]
) -> None:
    """While Twilio answers 503 the row stays in sending (nothing sent, nothing guessed);
    a pass after the outage settles it."""
    await add_rep(store)
    await crash_mid_send(store, sms, command(1), "sms", reached=True)
    twilio_fake.outage = 503
    assert not (await reconcile_stale(store, sms, LATER, stale_after=STALE)).found
    row = await Outbox(store).get("n_1")
    assert row is not None and row["state"] == "sending"
    twilio_fake.outage = None
    # retaken at LATER: stale again one stale_after after that
    assert not await reconcile_stale(store, sms, LATER + STALE / 2, stale_after=STALE)
    done = await reconcile_stale(store, sms, LATER + STALE * 2, stale_after=STALE)
    assert done.found == 1 and len(twilio_fake.messages) == 1


async def test_slack_dm_found_by_its_metadata(
    store: Store, slack_fake: FakeSlack, slack: dict[str, Notifier]
) -> None:
    """A DM posted before the crash is found in the conversation's history by the nudge id
    in its message metadata: marked sent with its channel:ts, not posted again."""
    await add_rep(store, phone=None, slack_user_id="U0REP1")
    await crash_mid_send(store, slack, command(1), "slack", reached=True)
    done = await reconcile_stale(store, slack, LATER, stale_after=STALE)
    assert done.found == 1
    row = await Outbox(store).get("n_1")
    posted = slack_fake.posted[0]
    assert row is not None and row["state"] == "sent"
    assert row["provider_id"] == f"D{posted['channel'][1:]}:{posted['ts']}"
    methods = [m for m, _ in slack_fake.calls]
    assert methods.count("chat.postMessage") == 1
    assert "conversations.history" in methods
    history = [a for m, a in slack_fake.calls if m == "conversations.history"]
    assert all(str(a.get("include_all_metadata")).lower() in ("true", "1") for a in history)


async def test_slack_dm_never_posted_is_posted_once(
    store: Store, slack_fake: FakeSlack, slack: dict[str, Notifier]
) -> None:
    """Another nudge's DM in the same conversation does not count: this one was never
    posted, so it is queued again and posted once."""
    await add_rep(store, phone=None, slack_user_id="U0REP1")
    await crash_mid_send(store, slack, command(1), "slack", reached=True)
    await Outbox(store).mark_sent("n_1", NOON_NY, channel="slack", provider_id="x")
    await crash_mid_send(store, slack, command(2), "slack", reached=False)
    done = await reconcile_stale(store, slack, LATER, stale_after=STALE)
    assert (done.found, done.requeued) == (0, 1)
    await drain_due(store, slack, LATER)
    assert [m["text"] for m in slack_fake.posted] == ["nudge number 1", "nudge number 2"]


async def test_console_cannot_be_checked_and_stays_reported(store: Store) -> None:
    """The console keeps no log: its row stays in sending (reported by the store)."""
    await add_rep(store)
    console: dict[str, Notifier] = {"console": ConsoleNotifier()}
    await crash_mid_send(store, console, command(1), "console", reached=False)
    done = await reconcile_stale(store, console, LATER, stale_after=STALE)
    assert done.unchecked == 1
    assert [r["nudge_id"] for r in await store.in_flight()] == ["n_1"]


async def test_claimed_but_never_sent_is_queued_again_without_asking(
    store: Store, twilio_fake: FakeTwilio, sms: dict[str, Notifier]
) -> None:
    """A worker that died between the claim and its first provider call left no channel on
    the row: it never reached a provider, so it is queued again without a look-up."""
    await add_rep(store)
    outbox = Outbox(store)
    assert await outbox.enqueue(command(1), NOON_NY)
    assert await outbox.claim("n_1", NOON_NY)
    done = await reconcile_stale(store, sms, LATER, stale_after=STALE)
    assert (done.found, done.requeued) == (0, 1) and twilio_fake.list_requests == 0
    assert await drain_due(store, sms, LATER) == 1
    assert len(twilio_fake.messages) == 1
