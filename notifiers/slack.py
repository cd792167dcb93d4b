"""Slack DMs through slack_sdk's ``AsyncWebClient`` and ``chat.postMessage``, with Block Kit.

Why these blocks: a rep should answer in one tap. Every nudge shows its text, the
reasons behind the score (a context block), and buttons — log a call, snooze, not
relevant — plus one button per questionnaire choice. Each button carries the
nudge and lead ids in its ``value``, so a click can be turned into a
:class:`~nudge.signals.Reply` without any state (see :mod:`notifiers.inbound`).

Posting to a user id opens (or reuses) the bot's DM with that user.

Every message carries Slack message metadata ``nudge_sent`` with the nudge id:
:meth:`SlackNotifier.find_sent` finds it again in the DM's history
(``conversations.open`` + ``conversations.history`` with ``include_all_metadata``;
scopes ``im:write`` and ``im:history``) for a nudge a crash left in doubt.

Rate limits: Slack allows about one message per second per channel and answers
429 with ``Retry-After``. slack_sdk's rate-limit retry handler would sleep inside
the call, holding the rep's queue without a record of why; instead a 429 becomes
a :class:`~nudge.errors.TransientDeliveryError` carrying ``retry_after``, and
delivery decides (short waits inline, long ones back in the outbox).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from notifiers import texts
from notifiers.base import OutboundMessage, SendResult, provider_errors
from nudge.errors import PermanentDeliveryError, TransientDeliveryError

ACTION_PREFIX = "nudge_"
ANSWER_ACTION = "answer_open"
"""Not a reply itself: opens a modal whose submission is the typed answer."""
ANSWER_VIEW = "nudge_answer"
"""Every action id we create starts with this; the bolt app listens for it."""

LOOKUP_PAGES = 10
"""Most pages of 200 messages of a DM's history read when looking one nudge up."""

TRANSIENT_ERRORS = {
    "ratelimited",
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
    # auth problems are the operator's to fix; the queue should outlive them
    "invalid_auth",
    "not_authed",
    "token_expired",
}


def button_value(message: OutboundMessage, choice: str | None = None) -> str:
    """What a button carries back on a click (Slack allows 2,000 characters)."""
    data = {"n": message.nudge_id, "l": message.lead_id}
    if choice is not None:
        data["c"] = choice
    return json.dumps(data, separators=(",", ":"))


def blocks_for(message: OutboundMessage) -> list[dict[str, Any]]:
    """Block Kit for one nudge: text, reasons, then the reply buttons."""
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": message.text[:3000]}}
    ]
    if message.reasons:
        reasons = "\n".join(f"• {r}" for r in message.reasons)
        blocks.append(
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": f"*{texts.WHY}*\n{reasons}"[:3000]}],
            }
        )
    if message.choices:
        blocks.append(
            {
                "type": "actions",
                "block_id": "nudge_choices",
                "elements": [
                    {
                        "type": "button",
                        "action_id": f"{ACTION_PREFIX}choice_{i}",
                        "text": {"type": "plain_text", "text": choice[:75]},
                        "value": button_value(message, choice),
                    }
                    for i, choice in enumerate(message.choices[:25])
                ],
            }
        )
    if message.answer_box:
        blocks.append(
            {
                "type": "actions",
                "block_id": "nudge_answer",
                "elements": [
                    {
                        "type": "button",
                        "action_id": ANSWER_ACTION,
                        "text": {"type": "plain_text", "text": texts.ANSWER_BUTTON},
                        "style": "primary",
                        "value": button_value(message),
                    }
                ],
            }
        )
    blocks.append(
        {
            "type": "actions",
            "block_id": "nudge_actions",
            "elements": [
                {
                    "type": "button",
                    "action_id": f"{ACTION_PREFIX}{action}",
                    "text": {"type": "plain_text", "text": label},
                    "value": button_value(message),
                    **({"style": "primary"} if action == "log_call" else {}),
                }
                for action, label in texts.BUTTONS.items()
            ],
        }
    )
    return blocks


class SlackNotifier:
    """Sends a nudge as a DM from the bot to the rep's Slack user."""

    channel = "slack"

    def __init__(self, token: str, *, base_url: str | None = None, timeout: int = 10) -> None:
        self._token = token
        self._base_url = base_url or "https://slack.com/api/"
        self._timeout = timeout
        self._client: AsyncWebClient | None = None

    @classmethod
    def from_settings(cls, settings: Any) -> SlackNotifier:
        return cls(settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url)

    @property
    def client(self) -> AsyncWebClient:
        if self._client is None:
            self._client = AsyncWebClient(
                token=self._token, base_url=self._base_url, timeout=self._timeout
            )
        return self._client

    async def send(self, message: OutboundMessage) -> SendResult:
        user = message.recipient.slack_user_id
        if not user:
            raise PermanentDeliveryError(
                texts.NO_SLACK_ID.format(rep_id=message.recipient.rep_id), code="no_slack_id"
            )
        with provider_errors("Slack", SlackApiError, classify, (SlackClientError,)):
            response = await self.client.chat_postMessage(
                channel=user,
                text=message.text,
                blocks=blocks_for(message),
                unfurl_links=False,
                metadata={
                    "event_type": "nudge_sent",
                    "event_payload": {"nudge_id": message.nudge_id, "lead_id": message.lead_id},
                },
            )
        channel, ts = response.get("channel"), response.get("ts")
        return SendResult(channel=self.channel, provider_id=f"{channel}:{ts}")

    async def find_sent(
        self, message: OutboundMessage, since: dt.datetime, exclude: frozenset[str] = frozenset()
    ) -> SendResult | None:
        """The DM in the rep's conversation since ``since`` whose metadata names this nudge."""
        user = message.recipient.slack_user_id
        if not user:
            return None
        with provider_errors("Slack", SlackApiError, classify, (SlackClientError,)):
            opened = await self.client.conversations_open(users=user)
            channel = opened["channel"]["id"]
            cursor: str | None = None
            for _ in range(LOOKUP_PAGES):
                page = await self.client.conversations_history(
                    channel=channel,
                    oldest=f"{since.timestamp():.6f}",
                    include_all_metadata=True,
                    limit=200,
                    cursor=cursor,
                )
                for posted in page.get("messages") or []:
                    meta = posted.get("metadata") or {}
                    payload = meta.get("event_payload") or {}
                    provider_id = f"{channel}:{posted.get('ts')}"
                    if (
                        meta.get("event_type") == "nudge_sent"
                        and payload.get("nudge_id") == message.nudge_id
                        and provider_id not in exclude
                    ):
                        return SendResult(channel=self.channel, provider_id=provider_id)
                cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
                if not cursor:
                    break
        return None

    async def close(self) -> None:
        if self._client is not None and self._client.session is not None:
            await self._client.session.close()
        self._client = None


def classify(exc: SlackApiError) -> Exception:
    """A Slack API error as our transient / permanent delivery error."""
    response = exc.response
    status = int(getattr(response, "status_code", 0) or 0)
    data = getattr(response, "data", None)
    error = str(data.get("error", "")) if isinstance(data, dict) else ""
    headers = getattr(response, "headers", None) or {}
    raw_retry = headers.get("Retry-After") or headers.get("retry-after")
    try:
        retry_after = float(raw_retry) if raw_retry else None
    except ValueError:
        retry_after = None
    if status == 429 or status >= 500 or error in TRANSIENT_ERRORS:
        return TransientDeliveryError(
            f"Slack: {error or status}", code=error or str(status), retry_after=retry_after
        )
    return PermanentDeliveryError(f"Slack: {error or status}", code=error or str(status))
