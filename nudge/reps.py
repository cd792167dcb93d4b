"""A rep's contact: the one definition of how Nudge reaches a rep.

The store's ``reps`` row (written from ``rep.upserted``) is the source; delivery reads it
into :class:`delivery.policy.Rep` (this contact plus the rep's sending preferences) and
hands each channel this contact as the message's recipient
(``notifiers.base.Recipient`` is this class).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class RepContact:
    """A rep as a channel needs to know them: who, where, and in which time zone."""

    rep_id: str
    name: str
    phone: str | None = None
    """E.164."""
    email: str | None = None
    slack_user_id: str | None = None
    timezone: str = "UTC"
    """An IANA zone name."""

    @property
    def contact(self) -> RepContact:
        """Just the contact (of a subclass that adds preferences)."""
        names = (f.name for f in dataclasses.fields(RepContact))
        return RepContact(**{n: getattr(self, n) for n in names})
