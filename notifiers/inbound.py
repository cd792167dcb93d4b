"""What the providers send back: signature checks and parsing into :class:`Reply`. Pure.

Why pure: a webhook is where strangers reach the worker, so the rules — which
URL is signed, which words mean STOP, how old a Slack request may be — are
plain functions tested with fixed vectors; :mod:`streams.webhooks` only wires
them to HTTP.

Twilio signs ``HMAC-SHA1(auth token, full public URL + sorted POST params)``.
Behind a proxy the URL the worker sees is not the one Twilio called, so it is
rebuilt from ``NUDGE_PUBLIC_URL`` (or, without it, from ``X-Forwarded-Proto`` /
``X-Forwarded-Host``). Slack signs ``v0:{timestamp}:{body}`` with HMAC-SHA256;
requests more than five minutes from our clock are refused (replay).

Keywords follow Twilio's defaults, matched on the whole message (case, spaces
and trailing punctuation ignored): STOP STOPALL UNSUBSCRIBE CANCEL END QUIT opt
out; START UNSTOP YES opt in; HELP INFO ask for help.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any
from xml.sax.saxutils import escape

from slack_sdk.signature import Clock as SlackClock
from slack_sdk.signature import SignatureVerifier
from twilio.request_validator import RequestValidator

from notifiers.phones import to_e164
from nudge.keywords import HELP, OPT_IN, OPT_OUT
from nudge.signals import Reply, ReplyKind

SLACK_MAX_AGE = 5 * 60


def keyword(text: str) -> ReplyKind:
    """``"stop!"`` → opt_out; ``"start"`` → opt_in; ``"help"`` → help; else message."""
    word = text.strip().strip(".!?").strip().upper()
    if word in OPT_OUT:
        return "opt_out"
    if word in OPT_IN:
        return "opt_in"
    if word in HELP:
        return "help"
    return "message"


def public_url(
    path_qs: str,
    *,
    configured: str | None,
    scheme: str,
    host: str,
    headers: Mapping[str, str],
) -> str:
    """The URL the provider called: ``configured`` + path, else rebuilt from proxy headers."""
    if configured:
        return configured.rstrip("/") + path_qs
    proto = headers.get("X-Forwarded-Proto", scheme).split(",")[0].strip()
    fwd_host = headers.get("X-Forwarded-Host", host).split(",")[0].strip()
    return f"{proto}://{fwd_host}{path_qs}"


def twilio_signature_ok(
    auth_token: str, url: str, params: Mapping[str, str], signature: str | None
) -> bool:
    """Twilio's own validator (constant-time compare, port and no-port variants)."""
    if not signature or not auth_token:
        return False
    return bool(RequestValidator(auth_token).validate(url, dict(params), signature))


def twilio_sign(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """The ``X-Twilio-Signature`` Twilio would send (fakes and ``nudge phone`` use it)."""
    return str(RequestValidator(auth_token).compute_signature(url, dict(params)))


def sms_reply(
    params: Mapping[str, str], now: dt.datetime, rep_id: str | None, *, opted_out: bool = True
) -> Reply:
    """An inbound SMS webhook's form fields as a Reply.

    An opt-in word (``YES``, ``START``) from a number that is not opted out changes
    nothing, so it is a message: "yes" answers a yes/no question rather than vanish."""
    text = params.get("Body", "")
    kind = keyword(text)
    if kind == "opt_in" and not opted_out:
        kind = "message"
    return Reply(
        reply_id=params.get("MessageSid") or params.get("SmsSid") or "",
        rep_id=rep_id,
        sender=to_e164(params.get("From")) or params.get("From", ""),
        channel="sms",
        kind=kind,
        text=text,
        received_at=now,
    )


def twiml(text: str | None = None) -> str:
    """A TwiML answer: one message back to the sender, or nothing."""
    if not text:
        return '<?xml version="1.0" encoding="UTF-8"?><Response/>'
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<Response><Message>{escape(text)}</Message></Response>"
    )


class _FixedSlackClock(SlackClock):
    def __init__(self, now: dt.datetime) -> None:
        self._now = now

    def now(self) -> float:
        return self._now.timestamp()


def slack_signature_ok(
    signing_secret: str, body: bytes | str, headers: Mapping[str, str], now: dt.datetime
) -> bool:
    """slack_sdk's verifier, with our clock: bad, missing or >5 min old → False."""
    if not signing_secret:
        return False
    timestamp = headers.get("X-Slack-Request-Timestamp")
    signature = headers.get("X-Slack-Signature")
    if not timestamp or not signature:
        return False
    try:
        if abs(now.timestamp() - int(timestamp)) > SLACK_MAX_AGE:
            return False
    except ValueError:
        return False
    verifier = SignatureVerifier(signing_secret, clock=_FixedSlackClock(now))
    return bool(verifier.is_valid(body=body, timestamp=timestamp, signature=signature))


def slack_action_reply(
    body: Mapping[str, Any], action: Mapping[str, Any], now: dt.datetime, rep_id: str | None
) -> Reply:
    """One clicked button of a ``block_actions`` payload as a Reply.

    Action ids are ``nudge_<action>`` (``nudge_choice_<i>`` for questionnaire
    choices); the button value carries the nudge and lead ids.
    """
    action_id = str(action.get("action_id", ""))
    name = action_id.removeprefix("nudge_")
    try:
        value = json.loads(action.get("value") or "{}")
    except ValueError:
        value = {}
    if not isinstance(value, dict):
        value = {}
    user = str((body.get("user") or {}).get("id", ""))
    choice = value.get("c")
    kind = "choice" if name.startswith("choice_") else name
    container = body.get("container") or {}
    return Reply(
        reply_id=f"slack:{container.get('message_ts', '')}:{action_id}:{action.get('action_ts', '')}",
        rep_id=rep_id,
        sender=user,
        channel="slack",
        kind="action",
        text=str(choice if choice is not None else kind),
        received_at=now,
        action=kind,
        choice=choice,
        nudge_id=value.get("n"),
        lead_id=value.get("l"),
    )


def slack_message_reply(
    event: Mapping[str, Any], event_id: str, now: dt.datetime, rep_id: str | None
) -> Reply:
    """A DM a rep typed to the bot (``message`` event, ``channel_type: im``) as a Reply."""
    return Reply(
        reply_id=f"slack:{event_id}",
        rep_id=rep_id,
        sender=str(event.get("user", "")),
        channel="slack",
        kind="message",
        text=str(event.get("text", "")),
        received_at=now,
    )
