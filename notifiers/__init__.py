"""Channels: one :class:`Notifier` interface; console now, Twilio SMS and Slack next."""

from notifiers.base import Notifier, OutboundMessage, Recipient, SendResult
from notifiers.console import ConsoleNotifier

__all__ = ["ConsoleNotifier", "Notifier", "OutboundMessage", "Recipient", "SendResult"]
