"""The error tree. Every class has one purpose; user-facing errors name the culprit.

NudgeError                 base of everything Nudge raises on purpose
├── ConfigError            a setting or file the operator supplied is wrong (exit 2)
├── EventRejected          one inbound event is invalid; carries the reason and event_id.
│                          The event goes to ``events.dead``; the worker carries on.
├── PlaybookError          a playbook file does not validate; carries file/line problems.
│                          A running worker keeps the last good version.
├── DeliveryError          a provider refused or failed a send
│   ├── TransientDeliveryError   worth retrying (429, 5xx, timeouts)
│   └── PermanentDeliveryError   never retried (invalid number, opted out), with the code
├── BrokerError            the Kafka broker could not be started or reached
└── StoreUnavailable       the record (PostgreSQL) cannot be reached or the transaction was
                           lost: the same work is retried once it answers, never dead-lettered
"""

from __future__ import annotations


class NudgeError(Exception):
    """Base class of every error Nudge raises deliberately."""


class ConfigError(NudgeError):
    """A setting, file or path supplied by the operator is wrong."""


class EventRejected(NudgeError):
    """An inbound event failed validation; ``reason`` names the field."""

    KINDS = ("json", "size", "schema", "body")
    """Reason classes, the ``reason`` label of the rejection counter: not strict JSON,
    over the size limit, not a valid event, or a request body that is unusable whole."""

    def __init__(self, reason: str, *, event_id: str | None = None, kind: str = "schema") -> None:
        super().__init__(reason)
        self.reason = reason
        self.event_id = event_id
        self.kind = kind


class PlaybookError(NudgeError):
    """A playbook does not validate. ``problems`` are ready-to-print lines."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class DeliveryError(NudgeError):
    """A notifier could not deliver a message."""

    def __init__(self, reason: str, *, code: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class TransientDeliveryError(DeliveryError):
    """The provider may accept the same message later: retry with backoff."""

    def __init__(
        self, reason: str, *, code: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(reason, code=code)
        self.retry_after = retry_after


class PermanentDeliveryError(DeliveryError):
    """The provider will never accept this message: record and do not retry."""


class BrokerError(NudgeError):
    """The Kafka broker could not be started or reached."""


class StoreUnavailable(NudgeError):
    """The database could not be reached, or dropped the transaction (a restart, a failover,
    a serialization conflict). Nothing of the failed transaction was kept: redo the work."""
