"""The slack-bolt ``AsyncApp`` that turns Slack clicks and DMs into :class:`Reply`s.

Why bolt: it implements Slack's request protocol (signature check, url
verification, ssl_check, retries) and acknowledges within Slack's 3-second
limit — every handler here calls ``ack()`` first and only then publishes the
reply; with ``process_before_response=False`` the HTTP answer goes back as soon
as ``ack()`` runs. Request verification stays on, even though
:mod:`streams.webhooks` checks the signature first (to answer 403): two locks,
same key.

What happens with a reply is not this module's business: it calls the
``publish_reply`` it was given (the worker produces to the ``replies`` topic).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from notifiers import texts
from notifiers.inbound import slack_action_reply, slack_message_reply
from notifiers.slack import ACTION_PREFIX, ANSWER_ACTION, ANSWER_VIEW
from nudge.clock import Clock, SystemClock
from nudge.logs import get_logger
from nudge.signals import Reply

log = get_logger(__name__)

PublishReply = Callable[[Reply], Awaitable[Any]]
RepForUser = Callable[[str], Awaitable[str | None]]
FirstSight = Callable[[str, dt.datetime], Awaitable[bool]]


async def _always_new(_reply_id: str, _now: dt.datetime) -> bool:
    return True


def build_slack_app(
    *,
    signing_secret: str,
    token: str,
    publish_reply: PublishReply,
    rep_for_user: RepForUser,
    base_url: str | None = None,
    first_sight: FirstSight = _always_new,
    clock: Clock | None = None,
) -> AsyncApp:
    """A bolt app whose listeners publish a Reply for every nudge button and DM."""
    clock = clock or SystemClock()
    client = AsyncWebClient(token=token, base_url=base_url or "https://slack.com/api/")
    app = AsyncApp(
        signing_secret=signing_secret,
        client=client,
        request_verification_enabled=True,
        process_before_response=False,
    )

    @app.action(re.compile(f"^{ACTION_PREFIX}"))
    async def on_click(
        ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Any
    ) -> None:
        await ack()
        user = str((body.get("user") or {}).get("id", ""))
        reply = slack_action_reply(body, action, clock.now(), await rep_for_user(user))
        if not await first_sight(reply.reply_id, reply.received_at):
            return
        log.info("slack click", rep_id=reply.rep_id, action=reply.action, nudge_id=reply.nudge_id)
        await publish_reply(reply)
        await _replace_buttons(body, action, respond)

    @app.action(ANSWER_ACTION)
    async def on_answer(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        """A typed answer on Slack: open a text box (a modal) within the 3-second window."""
        await ack()
        await client.views_open(trigger_id=body["trigger_id"], view=answer_view(action))

    @app.view(ANSWER_VIEW)
    async def on_answer_submitted(ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        await ack()
        user = str((body.get("user") or {}).get("id", ""))
        reply = answer_reply(view, user, clock.now(), await rep_for_user(user))
        if reply is None or not await first_sight(reply.reply_id, reply.received_at):
            return
        log.info("slack typed answer", rep_id=reply.rep_id, nudge_id=reply.nudge_id)
        await publish_reply(reply)

    @app.event("message")
    async def on_message(event: dict[str, Any], body: dict[str, Any]) -> None:
        if event.get("channel_type") != "im" or event.get("bot_id") or event.get("subtype"):
            return
        event_id = str(body.get("event_id", event.get("client_msg_id", event.get("ts", ""))))
        reply = slack_message_reply(
            event, event_id, clock.now(), await rep_for_user(str(event.get("user", "")))
        )
        if not await first_sight(reply.reply_id, reply.received_at):
            return
        log.info("slack dm", rep_id=reply.rep_id)
        await publish_reply(reply)

    return app


def answer_view(action: dict[str, Any]) -> dict[str, Any]:
    """The modal: one multi-line text box; the button's value rides in private_metadata."""
    return {
        "type": "modal",
        "callback_id": ANSWER_VIEW,
        "private_metadata": str(action.get("value") or "{}")[:3000],
        "title": {"type": "plain_text", "text": texts.ANSWER_TITLE},
        "submit": {"type": "plain_text", "text": texts.ANSWER_SUBMIT},
        "blocks": [
            {
                "type": "input",
                "block_id": "answer",
                "label": {"type": "plain_text", "text": texts.ANSWER_TITLE},
                "element": {
                    "type": "plain_text_input",
                    "action_id": "text",
                    "multiline": True,
                    "max_length": 1000,
                },
            }
        ],
    }


def answer_reply(
    view: dict[str, Any], user: str, now: dt.datetime, rep_id: str | None
) -> Reply | None:
    """The submitted modal as a Reply (the same path as a typed DM or SMS)."""
    text = (((view.get("state") or {}).get("values") or {}).get("answer") or {}).get("text") or {}
    value = str(text.get("value") or "").strip()
    if not value:
        return None
    try:
        meta = json.loads(view.get("private_metadata") or "{}")
    except ValueError:
        meta = {}
    meta = meta if isinstance(meta, dict) else {}
    return Reply(
        reply_id=f"slack:view:{view.get('id', '')}:{view.get('hash', '')}",
        rep_id=rep_id,
        sender=user,
        channel="slack",
        kind="message",
        text=value,
        received_at=now,
        nudge_id=meta.get("n"),
        lead_id=meta.get("l"),
    )


async def _replace_buttons(body: dict[str, Any], action: dict[str, Any], respond: Any) -> None:
    """Swap the buttons for "Got it: ..." so a second tap cannot answer twice.

    Best effort: the reply is already published, so a failure here is only logged.
    """
    if not body.get("response_url"):
        return
    label = str((action.get("text") or {}).get("text", ""))
    blocks = [
        b for b in (body.get("message") or {}).get("blocks", []) if b.get("type") != "actions"
    ]
    blocks.append(
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": texts.CLICK_ACK.format(label=label)}],
        }
    )
    try:
        await respond(
            replace_original=True, blocks=blocks, text=(body.get("message") or {}).get("text", "")
        )
    except Exception as exc:  # network trouble must not undo the click
        log.warning("could not update the Slack message", error=str(exc))
