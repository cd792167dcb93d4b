"""Batched delivery (``delivery.deliver_batch``): a micro-batch of nudge commands queued in
one commit, each rep touched drained once, reps drained side by side — and every rule of
one-at-a-time delivery kept: order per rep, daily limit, opt-out, snoozes, reply codes."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator

import pytest

from crm.outbox import Outbox
from crm.store import Store
from delivery import SNOOZED, deliver_batch
from delivery.policy import Policy
from notifiers.base import Notifier, OutboundMessage, SendResult
from notifiers.twilio_sms import TwilioSmsNotifier
from tests.conftest import STORES
from tests.fakes.fixtures import add_rep
from tests.fakes.twilio_server import FakeTwilio
from tests.unit.notifiers.test_delivery import NOON_NY, command

OFFER = ". Reply 1 to log a call, 2 to snooze."


@pytest.fixture
async def sms(twilio_fake: FakeTwilio) -> AsyncIterator[dict[str, Notifier]]:
    n = TwilioSmsNotifier(
        twilio_fake.account_sid,
        twilio_fake.auth_token,
        from_number="+15005550006",
        base_url=twilio_fake.url,
        timeout=0.5,
    )
    yield {"sms": n}
    await n.close()


async def add_reps(store: Store, count: int) -> None:
    for r in range(count):
        await add_rep(store, f"rep-{r}", phone=f"+1415555{r:04d}")


@STORES
async def test_a_batch_goes_out_once_each_reps_nudges_in_order(
    store: Store, twilio_fake: FakeTwilio, sms: dict[str, Notifier]
) -> None:
    await add_reps(store, 3)
    batch = [command(10 * n + r, f"rep-{r}") for n in range(4) for r in range(3)]
    outcomes = await deliver_batch(batch, store, sms, NOON_NY)
    assert [o.command.nudge_id for o in outcomes] == [c.nudge_id for c in batch]
    assert {o.state for o in outcomes} == {"sent"}
    for r in range(3):
        got = [m["Body"] for m in twilio_fake.messages if m["To"] == f"+1415555{r:04d}"]
        assert got == [f"nudge number {10 * n + r}" for n in range(4)]
    again = await deliver_batch(batch, store, sms, NOON_NY)  # Kafka redelivers the batch
    assert {o.state for o in again} == {"sent"} and len(twilio_fake.messages) == 12


@STORES
async def test_a_repeated_id_in_one_batch_is_sent_once(
    store: Store, twilio_fake: FakeTwilio, sms: dict[str, Notifier]
) -> None:
    await add_rep(store)
    outcomes = await deliver_batch([command(1), command(2), command(1)], store, sms, NOON_NY)
    assert [o.state for o in outcomes] == ["sent", "sent", "sent"]
    assert [m["Body"] for m in twilio_fake.messages] == ["nudge number 1", "nudge number 2"]


@STORES
async def test_the_daily_limit_counts_the_nudges_sent_earlier_in_the_same_drain(
    store: Store, twilio_fake: FakeTwilio, sms: dict[str, Notifier]
) -> None:
    await add_rep(store)
    outcomes = await deliver_batch(
        [command(n) for n in range(4)], store, sms, NOON_NY, policy=Policy(daily_limit=2)
    )
    assert [o.state for o in outcomes] == ["sent", "sent", "suppressed", "suppressed"]
    assert len(twilio_fake.messages) == 2


@STORES
async def test_a_carrier_opt_out_stops_the_rest_of_the_same_drain(
    store: Store, twilio_fake: FakeTwilio, sms: dict[str, Notifier]
) -> None:
    await add_rep(store)
    twilio_fake.opted_out.add("+14155550101")
    outcomes = await deliver_batch([command(1), command(2)], store, sms, NOON_NY)
    assert [o.state for o in outcomes] == ["failed", "suppressed"]
    assert twilio_fake.requests == 1
    assert outcomes[1].row is not None and outcomes[1].row["reason"] == "opted out"


@STORES
async def test_reply_codes_follow_each_other_in_a_batch_and_a_redelivery_takes_none(
    store: Store, twilio_fake: FakeTwilio, sms: dict[str, Notifier]
) -> None:
    await add_rep(store)
    hot = [command(n, text=f"L{n} is hot{OFFER}") for n in (1, 2, 3)]
    await deliver_batch(hot[:2], store, sms, NOON_NY)
    await deliver_batch([hot[0], hot[2]], store, sms, NOON_NY)  # n_1 redelivered
    assert [m["Body"] for m in twilio_fake.messages] == [
        "L1 is hot. Reply 1A to log a call, 2A to snooze.",
        "L2 is hot. Reply 1B to log a call, 2B to snooze.",
        "L3 is hot. Reply 1C to log a call, 2C to snooze.",
    ]


@STORES
async def test_a_snoozed_lead_is_suppressed_in_the_batch_and_the_others_go(
    store: Store, twilio_fake: FakeTwilio, sms: dict[str, Notifier]
) -> None:
    await add_rep(store)
    await store.snooze("rep-1", "L2", NOON_NY + dt.timedelta(hours=1))
    question = command(4, lead_id="L2", playbook="questionnaire")  # a conversation goes on
    outcomes = await deliver_batch([command(1), command(2), question], store, sms, NOON_NY)
    assert [o.state for o in outcomes] == ["sent", SNOOZED, "sent"]
    row = await Outbox(store).get("n_2")
    assert row is not None and (row["state"], row["reason"]) == ("suppressed", "snoozed by the rep")
    assert [m["Body"] for m in twilio_fake.messages] == ["nudge number 1", "nudge number 4"]


class SlowPhone:
    """A console channel whose every send takes a while, noting how many overlap."""

    channel = "console"

    def __init__(self) -> None:
        self.in_flight = self.most = 0
        self.sent: list[tuple[str, str]] = []

    async def send(self, message: OutboundMessage) -> SendResult:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        await asyncio.sleep(0.01)
        self.in_flight -= 1
        self.sent.append((message.recipient.rep_id, message.nudge_id))
        return SendResult(channel=self.channel, provider_id=message.nudge_id)

    async def close(self) -> None:
        return None


@STORES
async def test_reps_are_drained_side_by_side_up_to_the_bound(store: Store) -> None:
    for r in range(12):
        await add_rep(store, f"rep-{r}", phone=None)
    phone = SlowPhone()
    batch = [command(100 * n + r, f"rep-{r}") for n in range(3) for r in range(12)]
    outcomes = await deliver_batch(batch, store, {"console": phone}, NOON_NY, concurrency=4)
    assert {o.state for o in outcomes} == {"sent"}
    assert phone.most == 4
    for r in range(12):
        assert [n for rep, n in phone.sent if rep == f"rep-{r}"] == [
            f"n_{100 * k + r}" for k in range(3)
        ]


async def test_a_drain_reads_its_reps_record_opt_out_and_count_once(
    store: Store, twilio_fake: FakeTwilio, sms: dict[str, Notifier]
) -> None:
    """SQLite's statement trace: per rep drained, not per nudge."""
    await add_reps(store, 2)
    statements: list[str] = []
    await store.db.set_trace_callback(statements.append)
    await deliver_batch([command(n, f"rep-{n % 2}") for n in range(10)], store, sms, NOON_NY)
    await store.db.set_trace_callback(None)
    assert len(twilio_fake.messages) == 10
    assert sum("FROM reps WHERE rep_id" in s for s in statements) == 2 * 2  # record, opt-out
    assert sum("COUNT(*)" in s for s in statements) == 2  # sent today
    assert (
        sum(
            s.lstrip().startswith("SELECT rowid AS seq, * FROM outbox WHERE rep_id")
            for s in statements
        )
        == 2
    )


class WatchingPhone(SlowPhone):
    """Reads the nudge's outbox row at the moment of the provider call."""

    def __init__(self, store: Store) -> None:
        super().__init__()
        self.store = store
        self.rows: list[tuple[str, str | None]] = []

    async def send(self, message: OutboundMessage) -> SendResult:
        row = await Outbox(self.store).get(message.nudge_id)
        assert row is not None
        self.rows.append((row["state"], row["channel"]))
        return await super().send(message)


@STORES
async def test_at_the_provider_call_the_row_is_claimed_and_names_its_channel(store: Store) -> None:
    """What reconciliation needs after a crash mid-call: the row is in ``sending`` and says
    which provider's log to look in (a claimed row with no channel is never looked up)."""
    await add_rep(store, phone=None)
    phone = WatchingPhone(store)
    await deliver_batch([command(1), command(2)], store, {"console": phone}, NOON_NY)
    assert phone.rows == [("sending", "console"), ("sending", "console")]
