"""Which notifiers a worker runs, from :class:`~nudge.settings.Settings`.

Why a mapping, not one notifier: delivery picks a channel per rep (Slack for one,
SMS for another, SMS as Slack's fallback), so it needs every configured channel
by name. With no credentials at all the console is the only channel, so a fresh
checkout runs end to end with nothing to set up.
"""

from __future__ import annotations

from typing import Any

from notifiers import texts
from notifiers.base import Notifier
from notifiers.console import ConsoleNotifier
from nudge.errors import ConfigError


def twilio_configured(settings: Any) -> bool:
    return bool(
        settings.twilio_account_sid
        and settings.twilio_auth_token
        and (settings.twilio_from_number or settings.twilio_messaging_service_sid)
    )


def slack_configured(settings: Any) -> bool:
    return bool(settings.slack_bot_token)


def build_notifiers(settings: Any) -> dict[str, Notifier]:
    """Channel name → notifier, per ``NUDGE_NOTIFIER`` (auto, console, twilio, slack).
    A provider's client library is imported only when its channel is configured."""
    choice = settings.notifier
    if choice == "console":
        return {"console": ConsoleNotifier()}
    out: dict[str, Notifier] = {}
    want_twilio = choice in ("auto", "twilio")
    want_slack = choice in ("auto", "slack")
    if choice == "twilio" and not twilio_configured(settings):
        raise ConfigError(
            texts.MISSING.format(
                notifier=choice,
                names="TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM_NUMBER "
                "(or TWILIO_MESSAGING_SERVICE_SID)",
            )
        )
    if choice == "slack" and not slack_configured(settings):
        raise ConfigError(texts.MISSING.format(notifier=choice, names="SLACK_BOT_TOKEN"))
    if want_twilio and twilio_configured(settings):
        from notifiers.twilio_sms import TwilioSmsNotifier

        out["sms"] = TwilioSmsNotifier.from_settings(settings)
    if want_slack and slack_configured(settings):
        from notifiers.slack import SlackNotifier

        out["slack"] = SlackNotifier.from_settings(settings)
    return out or {"console": ConsoleNotifier()}
