"""Channels: one :class:`Notifier` interface; console, Twilio SMS and Slack.

``build_notifiers(settings)`` gives the worker every configured channel by name;
``notifiers.inbound`` checks and parses what the providers send back.
"""

from notifiers.base import Notifier, OutboundMessage, Recipient, SendResult
from notifiers.console import ConsoleNotifier
from notifiers.factory import build_notifiers

__all__ = [
    "ConsoleNotifier",
    "Notifier",
    "OutboundMessage",
    "Recipient",
    "SendResult",
    "build_notifiers",
]
