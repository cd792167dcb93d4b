"""Delivery end to end below Kafka: outbox, decisions, real SDKs, fake provider servers."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import pytest

from crm.outbox import Outbox
from crm.store import Store
from delivery import RetryPolicy, deliver, drain_due
from notifiers.base import Notifier
from notifiers.slack import SlackNotifier
from nudge.signals import NudgeCommand
from tests.conftest import STORES
from tests.fakes.fixtures import add_rep
from tests.fakes.slack_server import FakeSlack
from tests.fakes.twilio_server import FakeTwilio

pytestmark = STORES  # every test on SQLite and on PostgreSQL

NOON_NY = dt.datetime(2026, 3, 2, 17, 0, tzinfo=dt.UTC)
LATE_NY = dt.datetime(2026, 3, 3, 3, 30, tzinfo=dt.UTC)  # 22:30 in New York
EIGHT_NY = dt.datetime(2026, 3, 3, 13, 0, tzinfo=dt.UTC)


def command(n: int, rep_id: str = "rep-1", **update: object) -> NudgeCommand:
    """Nudge number ``n`` for ``rep_id`` at noon in New York; ``update``: fields to change."""
    return NudgeCommand(
        nudge_id=f"n_{n}",
        rep_id=rep_id,
        lead_id=f"L{n}",
        text=f"nudge number {n}",
        playbook="p",
        rule="r",
        trigger_event_id=f"e{n}",
        created_at=NOON_NY,
    ).model_copy(update=update)


class Sleeps(list[float]):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
async def sms(twilio_fake: FakeTwilio) -> AsyncIterator[dict[str, Notifier]]:
    n = twilio_fake.notifier(timeout=0.5)
    yield {"sms": n}
    await n.close()


async def test_retry_then_success(
    store: Store, twilio_fake: FakeTwilio, sms: dict[str, Notifier]
) -> None:
    """A 503 then a success: sent once, with both attempts logged and a backoff slept."""
    await add_rep(store)
    twilio_fake.fail_next(503)
    sleeps = Sleeps()
    state = await deliver(command(1), store, sms, NOON_NY, sleep=sleeps)
    assert state == "sent" and len(twilio_fake.messages) == 1 and len(sleeps) == 1
    outcomes = [a["outcome"] for a in await Outbox(store).attempts("n_1")]
    assert outcomes == ["transient", "sent"]


async def test_permanent_failure_is_recorded_not_retried(
    store: Store, twilio_fake: FakeTwilio, sms: dict[str, Notifier]
) -> None:
    """Error 21211 fails the nudge at once with the provider's code; Twilio is asked once."""
    await add_rep(store)
    twilio_fake.fail_next(400, 21211)
    assert await deliver(command(1), store, sms, NOON_NY, sleep=Sleeps()) == "failed"
    row = await Outbox(store).get("n_1")
    assert row is not None and row["error_code"] == "21211" and twilio_fake.requests == 1
    assert await drain_due(store, sms, NOON_NY + dt.timedelta(days=1)) == 0
    assert twilio_fake.requests == 1


async def test_carrier_opt_out_stops_further_texts(
    store: Store, twilio_fake: FakeTwilio, sms: dict[str, Notifier]
) -> None:
    """After a 21610 the number is on our own list: the next nudge is suppressed unsent."""
    await add_rep(store)
    twilio_fake.opted_out.add("+14155550101")
    assert await deliver(command(1), store, sms, NOON_NY) == "failed"
    assert await deliver(command(2), store, sms, NOON_NY) == "suppressed"
    assert twilio_fake.requests == 1
    row = await Outbox(store).get("n_2")
    assert row is not None and row["reason"] == "opted out"


async def test_nudge_waits_for_a_rep_record_still_in_flight(
    store: Store, twilio_fake: FakeTwilio, sms: dict[str, Notifier]
) -> None:
    """A nudge that beats its rep's record (another partition) waits for it, then goes.

    Found end to end (tests/integration/test_survive.py): with two workers a lead's
    nudge reached delivery before the worker owning the rep's partition had stored the
    rep, and was suppressed for good as "unknown rep".
    """
    assert await deliver(command(1), store, sms, NOON_NY) == "queued"
    assert await deliver(command(2), store, sms, NOON_NY) == "queued"
    assert twilio_fake.requests == 0
    await add_rep(store)
    later = NOON_NY + dt.timedelta(seconds=5)
    assert await drain_due(store, sms, later) == 2
    assert [m["Body"] for m in twilio_fake.messages] == ["nudge number 1", "nudge number 2"]


async def test_nudge_for_a_rep_that_never_appears_is_suppressed_after_the_grace(
    store: Store, twilio_fake: FakeTwilio, sms: dict[str, Notifier]
) -> None:
    """Still no rep record after the grace period: suppressed with 'unknown rep', not sent."""
    assert await deliver(command(1), store, sms, NOON_NY) == "queued"
    assert await drain_due(store, sms, NOON_NY + dt.timedelta(minutes=11)) == 1
    row = await Outbox(store).get("n_1")
    assert row is not None and (row["state"], row["reason"]) == ("suppressed", "unknown rep")
    assert twilio_fake.requests == 0


async def test_quiet_hours_hold_and_release(
    store: Store, twilio_fake: FakeTwilio, sms: dict[str, Notifier]
) -> None:
    """At 22:30 local a nudge is held; a drain before 08:00 keeps it, the 08:00 drain sends it."""
    await add_rep(store)
    assert await deliver(command(1), store, sms, LATE_NY) == "held"
    row = await Outbox(store).get("n_1")
    assert row is not None and row["not_before"] == EIGHT_NY.isoformat()
    assert await drain_due(store, sms, EIGHT_NY - dt.timedelta(minutes=1)) == 0
    assert twilio_fake.messages == []
    assert await drain_due(store, sms, EIGHT_NY) == 1
    assert [m["Body"] for m in twilio_fake.messages] == ["nudge number 1"]


async def test_outage_then_drain_in_order_nothing_lost_nothing_twice(
    store: Store, twilio_fake: FakeTwilio, sms: dict[str, Notifier], tmp_path: object
) -> None:
    """During an outage nudges queue durably; after it (and a restart) they go once, in order."""
    await add_rep(store)
    twilio_fake.outage = 503
    retry = RetryPolicy(in_call_retries=1)
    for n in (1, 2, 3):
        assert await deliver(command(n), store, sms, NOON_NY, retry=retry, sleep=Sleeps()) == (
            "queued"
        )
    assert twilio_fake.messages == []
    # the worker restarts; the provider comes back; Kafka redelivers the last command
    path = store.path
    await store.close()
    reopened = await Store.open(path)
    try:
        twilio_fake.outage = None
        later = NOON_NY + dt.timedelta(hours=1)
        assert await deliver(command(3), reopened, sms, later, retry=retry) in ("sent", "queued")
        await drain_due(reopened, sms, later)
        await drain_due(reopened, sms, later + dt.timedelta(minutes=5))
        assert [m["Body"] for m in twilio_fake.messages] == [
            "nudge number 1",
            "nudge number 2",
            "nudge number 3",
        ]
        states = {r["nudge_id"]: r["state"] for r in await reopened.outbox()}
        assert states == {"n_1": "sent", "n_2": "sent", "n_3": "sent"}
    finally:
        await reopened.close()


async def test_redelivered_command_is_sent_once(
    store: Store, twilio_fake: FakeTwilio, sms: dict[str, Notifier]
) -> None:
    """The same nudge id delivered twice (Kafka redelivery) is texted once."""
    await add_rep(store)
    await deliver(command(1), store, sms, NOON_NY)
    await deliver(command(1), store, sms, NOON_NY)
    assert len(twilio_fake.messages) == 1


async def test_long_retry_after_goes_back_to_the_outbox(
    store: Store, twilio_fake: FakeTwilio, sms: dict[str, Notifier]
) -> None:
    """A 429 asking for 120 s is not slept through: the nudge waits in the outbox that long."""
    await add_rep(store)
    twilio_fake.fail_next(429, 20429, retry_after=120)
    sleeps = Sleeps()
    assert await deliver(command(1), store, sms, NOON_NY, sleep=sleeps) == "queued"
    row = await Outbox(store).get("n_1")
    assert sleeps == [] and row is not None
    assert dt.datetime.fromisoformat(row["not_before"]) >= NOON_NY + dt.timedelta(seconds=120)
    assert await drain_due(store, sms, NOON_NY + dt.timedelta(seconds=60)) == 0
    assert await drain_due(store, sms, NOON_NY + dt.timedelta(seconds=121)) == 1


async def test_slack_first_sms_fallback(
    store: Store, twilio_fake: FakeTwilio, slack_fake: FakeSlack, sms: dict[str, Notifier]
) -> None:
    """A rep with a Slack id gets a DM; a rep without one gets a text."""
    await add_rep(store, "rep-1", slack_user_id="U0REP1")
    await add_rep(store, "rep-2", phone="+14155550102")
    slack = SlackNotifier(slack_fake.token, base_url=slack_fake.url)
    notifiers = {**sms, "slack": slack}
    await deliver(command(1, "rep-1"), store, notifiers, NOON_NY)
    await deliver(command(2, "rep-2"), store, notifiers, NOON_NY)
    await slack.close()
    assert [p["channel"] for p in slack_fake.posted] == ["U0REP1"]
    assert [m["To"] for m in twilio_fake.messages] == ["+14155550102"]


async def test_daily_limit_counts_local_day(
    store: Store, twilio_fake: FakeTwilio, sms: dict[str, Notifier]
) -> None:
    """Once the rep's limit is reached the rest of the day's nudges are suppressed."""
    await add_rep(store)
    await store.db.execute("UPDATE reps SET daily_limit = 2 WHERE rep_id = 'rep-1'")
    await store.db.commit()
    states = [await deliver(command(n), store, sms, NOON_NY) for n in (1, 2, 3)]
    assert states == ["sent", "sent", "suppressed"]


async def test_nudge_interrupted_mid_send_is_never_resent(
    store: Store, twilio_fake: FakeTwilio, sms: dict[str, Notifier]
) -> None:
    """A nudge a crashed worker left in 'sending' is not sent again by a delivery or a drain
    after a restart: only the reconciliation, which asks the provider, may release it
    (tests/unit/notifiers/test_reconcile.py)."""
    await add_rep(store)
    outbox = Outbox(store)
    await outbox.enqueue(command(1), NOON_NY)
    assert await outbox.claim("n_1", NOON_NY)  # the worker dies right after claiming
    path = store.path
    await store.close()
    reopened = await Store.open(path)
    try:
        assert await deliver(command(1), reopened, sms, NOON_NY) == "sending"
        assert await drain_due(reopened, sms, NOON_NY + dt.timedelta(days=1)) == 0
        assert twilio_fake.requests == 0
        assert [r["nudge_id"] for r in await reopened.in_flight()] == ["n_1"]
    finally:
        await reopened.close()


async def test_suppression_list_outlives_the_rep_record(
    store: Store, twilio_fake: FakeTwilio, sms: dict[str, Notifier]
) -> None:
    """A number that texted STOP before it belonged to any rep is still not texted later."""
    await Outbox(store).set_sms_opt_out(
        "+14155550101", True, NOON_NY, rep_id=None, reason="texted STOP"
    )
    await add_rep(store, phone="(415) 555-0101")
    assert await deliver(command(1), store, sms, NOON_NY) == "suppressed"
    assert twilio_fake.requests == 0


async def test_a_newer_nudge_waits_behind_one_awaiting_retry(
    store: Store, twilio_fake: FakeTwilio, sms: dict[str, Notifier]
) -> None:
    """A rep's new nudge never overtakes an older one waiting for its retry."""
    await add_rep(store)
    twilio_fake.outage = 503
    retry = RetryPolicy(in_call_retries=0)
    assert await deliver(command(1), store, sms, NOON_NY, retry=retry) == "queued"
    twilio_fake.outage = None
    soon = NOON_NY + dt.timedelta(seconds=1)
    assert await deliver(command(2), store, sms, soon, retry=retry) == "queued"
    assert twilio_fake.messages == []
    assert await drain_due(store, sms, NOON_NY + dt.timedelta(minutes=20)) == 2
    assert [m["Body"] for m in twilio_fake.messages] == ["nudge number 1", "nudge number 2"]


async def test_a_nudge_offering_codes_gets_the_reps_next_letter(
    store: Store, twilio_fake: FakeTwilio, sms: dict[str, Notifier]
) -> None:
    """Nudges offering "Reply 1 to ..." go out as "Reply 1A", then "Reply 1B"; a question
    and a nudge offering no code get no letter; a redelivery keeps its first letter."""
    await add_rep(store)
    offer = ". Reply 1 to log a call, 2 to snooze."
    for n in (1, 2):
        cmd = command(n).model_copy(update={"text": f"L{n} is hot{offer}"})
        assert await deliver(cmd, store, sms, NOON_NY, sleep=Sleeps()) == "sent"
    question = command(3).model_copy(
        update={"text": f"Rate it{offer}", "playbook": "questionnaire"}
    )
    await deliver(question, store, sms, NOON_NY, sleep=Sleeps())
    await deliver(command(4), store, sms, NOON_NY, sleep=Sleeps())
    again = command(1).model_copy(update={"text": f"L1 is hot{offer}"})
    await deliver(again, store, sms, NOON_NY, sleep=Sleeps())
    assert [m["Body"] for m in twilio_fake.messages] == [
        "L1 is hot. Reply 1A to log a call, 2A to snooze.",
        "L2 is hot. Reply 1B to log a call, 2B to snooze.",
        "Rate it. Reply 1 to log a call, 2 to snooze.",
        "nudge number 4",
    ]
    assert await Outbox(store).recent_codes("rep-1") == ["B", "A"]
