"""Which channels a worker runs, from settings alone."""

from __future__ import annotations

import datetime as dt

import pytest

from delivery.policy import Policy
from notifiers import ConsoleNotifier, build_notifiers
from notifiers.slack import SlackNotifier
from notifiers.twilio_sms import TwilioSmsNotifier
from nudge.errors import ConfigError
from nudge.settings import Settings

TWILIO = {
    "twilio_account_sid": "AC1",
    "twilio_auth_token": "tok",
    "twilio_from_number": "+15005550006",
}
NONE = {
    "twilio_account_sid": None,
    "twilio_auth_token": None,
    "twilio_from_number": None,
    "twilio_messaging_service_sid": None,
    "slack_bot_token": None,
}


def test_console_without_credentials() -> None:
    """A fresh checkout with no credentials prints nudges to the console."""
    notifiers = build_notifiers(Settings(**NONE))
    assert list(notifiers) == ["console"] and isinstance(notifiers["console"], ConsoleNotifier)


def test_auto_uses_every_configured_provider() -> None:
    """With Twilio and Slack credentials, `auto` runs both channels and no console."""
    notifiers = build_notifiers(Settings(**{**NONE, **TWILIO, "slack_bot_token": "xoxb-1"}))
    assert isinstance(notifiers["sms"], TwilioSmsNotifier)
    assert isinstance(notifiers["slack"], SlackNotifier) and "console" not in notifiers


def test_status_callback_built_from_public_url() -> None:
    """The status callback is NUDGE_PUBLIC_URL + /webhooks/twilio/status."""
    sms = build_notifiers(Settings(**{**NONE, **TWILIO, "public_url": "https://n.example.com/"}))
    assert isinstance(sms["sms"], TwilioSmsNotifier)
    assert sms["sms"].status_callback == "https://n.example.com/webhooks/twilio/status"


def test_explicit_provider_without_credentials_names_the_settings() -> None:
    """NUDGE_NOTIFIER=twilio with no credentials fails with the variables to set."""
    with pytest.raises(ConfigError, match="TWILIO_ACCOUNT_SID"):
        build_notifiers(Settings(**{**NONE, "notifier": "twilio"}))


def test_policy_from_settings() -> None:
    """Quiet hours and the daily limit come from settings."""
    p = Policy.from_settings(
        Settings(quiet_hours_start="09:30", quiet_hours_end="18:00", daily_limit=5)
    )
    assert (p.quiet_start, p.quiet_end, p.daily_limit) == (dt.time(9, 30), dt.time(18), 5)
