"""The one interface every channel implements.

A :class:`Notifier` delivers one :class:`OutboundMessage` and returns a
:class:`SendResult`, or raises :class:`~nudge.errors.TransientDeliveryError`
(retry later) or :class:`~nudge.errors.PermanentDeliveryError` (never retry).
Whether and when to send is not its business: that is delivery's.

A channel whose provider keeps a log of what it was sent also implements
:class:`SentLookup`, so a nudge a crash left in doubt can be looked up there instead
of guessed (see :mod:`delivery.reconcile`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import aiohttp

from nudge.errors import TransientDeliveryError
from nudge.reps import RepContact

Recipient = RepContact
"""A message's recipient is a rep's contact (defined once, in :mod:`nudge.reps`)."""


@dataclass(frozen=True)
class OutboundMessage:
    nudge_id: str
    recipient: Recipient
    text: str
    reasons: tuple[str, ...] = ()
    choices: tuple[str, ...] = field(default=())
    answer_box: bool = False
    """A typed answer is expected (Slack: an Answer button that opens a text box)."""
    lead_id: str | None = None


@dataclass(frozen=True)
class SendResult:
    channel: str
    provider_id: str | None = None


class Notifier(Protocol):
    """Delivers messages over one channel."""

    channel: str

    async def send(self, message: OutboundMessage) -> SendResult:
        """Deliver ``message`` or raise a DeliveryError subclass."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


@runtime_checkable
class SentLookup(Protocol):
    """Finds a message in the provider's own log of what it was sent."""

    async def find_sent(
        self, message: OutboundMessage, since: dt.datetime, exclude: frozenset[str] = frozenset()
    ) -> SendResult | None:
        """The provider's record of ``message`` sent at or after ``since`` (ignoring the
        provider ids in ``exclude``, already matched to other nudges), or None if it never
        got it. Raises a DeliveryError subclass when the log cannot be read now."""
        ...


@contextlib.contextmanager
def provider_errors(
    provider: str,
    refused: type[Exception],
    classify: Callable[[Any], Exception],
    unreachable: tuple[type[Exception], ...] = (),
) -> Iterator[None]:
    """A provider call's failures as delivery errors: its API's refusals (``refused``) as
    ``classify`` says; a timeout, or the network (aiohttp's or ``unreachable``), transient."""
    network: tuple[type[Exception], ...] = (aiohttp.ClientError, *unreachable)
    try:
        yield
    except refused as exc:
        raise classify(exc) from exc
    except TimeoutError as exc:
        raise TransientDeliveryError(f"{provider} did not answer in time", code="timeout") from exc
    except network as exc:
        raise TransientDeliveryError(f"{provider} unreachable: {exc}", code="network") from exc
