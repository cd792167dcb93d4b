"""Typed answers on Slack: an Answer button opens a modal; its submission is the reply."""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from pathlib import Path

from crm.store import Store
from notifiers.base import OutboundMessage, Recipient
from notifiers.slack import ANSWER_ACTION, SlackNotifier
from nudge.settings import Settings
from tests.fakes.fixtures import add_rep
from tests.fakes.slack_server import FakeSlack
from tests.unit.notifiers.webhooks_server import serve_webhooks


async def test_answer_button_opens_a_modal_and_the_submission_is_a_reply(
    store: Store, slack_fake: FakeSlack, tmp_path: Path
) -> None:
    """A prompt expecting a typed answer gets an Answer button; clicking it opens a text box
    (views.open with the click's trigger id); submitting it publishes the text as a Reply."""
    await add_rep(store, slack_user_id="U0REP1")
    settings = Settings(
        data_dir=tmp_path,
        slack_bot_token=slack_fake.token,  # type: ignore[arg-type]
        slack_signing_secret=slack_fake.signing_secret,  # type: ignore[arg-type]
        slack_api_url=slack_fake.url,
    )
    async with serve_webhooks(store, settings) as (server, replies):
        notifier = SlackNotifier(slack_fake.token, base_url=slack_fake.url)
        await notifier.send(
            OutboundMessage(
                "q_1",
                Recipient("rep-1", "Ann", slack_user_id="U0REP1"),
                "Why no next step? (a few words)",
                lead_id="L1",
                answer_box=True,
            )
        )
        await notifier.close()
        url = str(server.make_url("/webhooks/slack/interactions"))
        status, _ = await slack_fake.click(url, slack_fake.posted[0], ANSWER_ACTION)
        assert status == 200
        for _ in range(100):
            if slack_fake.views:
                break
            await asyncio.sleep(0.02)
        [view] = slack_fake.views
        assert ("views.open", "1.2.3") in [(m, a.get("trigger_id")) for m, a in slack_fake.calls]
        assert view["callback_id"] == "nudge_answer" and not replies  # opening is not answering
        submission = {
            "type": "view_submission",
            "team": {"id": "T0FAKE"},
            "user": {"id": "U0REP1"},
            "api_app_id": "A0FAKE",
            "view": {
                **view,
                "id": "V1",
                "hash": "h1",
                "state": {
                    "values": {
                        "answer": {"text": {"type": "plain_text_input", "value": "budget freeze"}}
                    }
                },
            },
        }
        body = urllib.parse.urlencode({"payload": json.dumps(submission)})
        status, _ = await slack_fake.post_signed(url, body, "application/x-www-form-urlencoded")
        assert status == 200
        for _ in range(100):
            if replies:
                break
            await asyncio.sleep(0.02)
        [reply] = replies
        assert (reply.rep_id, reply.channel, reply.text) == ("rep-1", "slack", "budget freeze")
        assert (reply.nudge_id, reply.lead_id) == ("q_1", "L1")
