"""One contract, every channel: the same checks run on the console, Twilio and Slack notifiers."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import pytest

from notifiers import ConsoleNotifier, Notifier, OutboundMessage, Recipient
from notifiers.slack import SlackNotifier
from tests.fakes.slack_server import FakeSlack
from tests.fakes.twilio_server import FakeTwilio

MESSAGE = OutboundMessage(
    nudge_id="n_1",
    recipient=Recipient("rep-1", "Ann", phone="+14155550101", slack_user_id="U0REP1"),
    text="Acme jumped to 86% 🚀",
    reasons=("3 pricing-page visits",),
    choices=("Yes", "No"),
    lead_id="L1",
)


@pytest.fixture(params=["console", "twilio", "slack"])
async def notifier(
    request: pytest.FixtureRequest, twilio_fake: FakeTwilio, slack_fake: FakeSlack
) -> AsyncIterator[Notifier]:
    n: Notifier
    if request.param == "console":
        n = ConsoleNotifier(io.StringIO())
    elif request.param == "twilio":
        n = twilio_fake.notifier()
    else:
        n = SlackNotifier(slack_fake.token, base_url=slack_fake.url)
    yield n
    await n.close()


async def test_send_returns_its_channel_and_an_id(notifier: Notifier) -> None:
    """Every notifier answers a send with its own channel name and a provider id."""
    result = await notifier.send(MESSAGE)
    assert result.channel == notifier.channel and result.provider_id


async def test_close_is_idempotent(notifier: Notifier) -> None:
    """Closing twice (shutdown paths overlap) is harmless."""
    await notifier.send(MESSAGE)
    await notifier.close()
    await notifier.close()
