"""The Slack notifier, through the real slack_sdk client, against the local fake Web API."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from notifiers import OutboundMessage, Recipient
from notifiers.slack import SlackNotifier
from nudge.errors import PermanentDeliveryError, TransientDeliveryError
from tests.fakes.slack_server import FakeSlack


def message(user: str | None = "U0REP1", choices: tuple[str, ...] = ()) -> OutboundMessage:
    return OutboundMessage(
        nudge_id="n_abc",
        recipient=Recipient("rep-1", "Ann", slack_user_id=user),
        text="Acme jumped to 86% (was 31%)",
        reasons=("3 pricing-page visits today", "proposal opened twice"),
        choices=choices,
        lead_id="L1",
    )


async def test_dm_has_text_reasons_and_buttons(slack_fake: FakeSlack) -> None:
    """A nudge is posted to the rep's user id with the text, the reasons and three buttons."""
    n = SlackNotifier(slack_fake.token, base_url=slack_fake.url)
    result = await n.send(message())
    await n.close()
    posted = slack_fake.posted[0]
    assert posted["channel"] == "U0REP1" and posted["text"].startswith("Acme jumped")
    assert result.provider_id == f"D0REP1:{posted['ts']}"
    flat = json.dumps(posted["blocks"])
    assert "3 pricing-page visits today" in flat
    ids = [
        e["action_id"] for b in posted["blocks"] for e in b.get("elements", []) if "action_id" in e
    ]
    assert ids == ["nudge_log_call", "nudge_snooze", "nudge_not_relevant"]
    assert json.loads(posted["blocks"][-1]["elements"][0]["value"]) == {"n": "n_abc", "l": "L1"}


async def test_questionnaire_choices_become_buttons(slack_fake: FakeSlack) -> None:
    """Each questionnaire choice gets its own button carrying the choice."""
    n = SlackNotifier(slack_fake.token, base_url=slack_fake.url)
    await n.send(message(choices=("Yes", "No", "Later")))
    await n.close()
    block = next(b for b in slack_fake.posted[0]["blocks"] if b.get("block_id") == "nudge_choices")
    assert [json.loads(e["value"])["c"] for e in block["elements"]] == ["Yes", "No", "Later"]


async def test_429_carries_retry_after(slack_fake: FakeSlack) -> None:
    """Slack's 429 becomes a transient error with the Retry-After seconds."""
    slack_fake.fail_next(429, "ratelimited", retry_after=30)
    n = SlackNotifier(slack_fake.token, base_url=slack_fake.url)
    with pytest.raises(TransientDeliveryError) as err:
        await n.send(message())
    await n.close()
    assert err.value.retry_after == 30.0 and err.value.code == "ratelimited"


async def test_unreachable_slack_is_transient() -> None:
    """Nothing listening at Slack's address: a transient network error, for send and lookup."""
    n = SlackNotifier("xoxb-test", base_url="http://127.0.0.1:9/api/")
    with pytest.raises(TransientDeliveryError) as sent:
        await n.send(message())
    with pytest.raises(TransientDeliveryError) as looked_up:
        await n.find_sent(message(), dt.datetime(2026, 3, 2, tzinfo=dt.UTC))
    await n.close()
    assert sent.value.code == looked_up.value.code == "network"
    assert "Slack unreachable" in str(sent.value)


async def test_unknown_user_is_permanent(slack_fake: FakeSlack) -> None:
    """A user Slack does not know (channel_not_found) is never retried."""
    n = SlackNotifier(slack_fake.token, base_url=slack_fake.url)
    with pytest.raises(PermanentDeliveryError) as err:
        await n.send(message(user="U0NOBODY"))
    await n.close()
    assert err.value.code == "channel_not_found"


async def test_bad_token_is_refused_by_the_fake(slack_fake: FakeSlack) -> None:
    """The fake checks the Bearer token like Slack (invalid_auth); nothing is posted."""
    n = SlackNotifier("xoxb-wrong", base_url=slack_fake.url)
    with pytest.raises(TransientDeliveryError) as err:
        await n.send(message())
    await n.close()
    assert err.value.code == "invalid_auth" and slack_fake.posted == []
