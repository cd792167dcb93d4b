"""Small builders shared by the scoring tests."""

from __future__ import annotations

import datetime as dt
from typing import Any

from nudge.events import (
    DealLost,
    DealWon,
    FormSubmitted,
    LeadCreated,
    LeadEvent,
    LeadFields,
    PageViewed,
)

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
_n = iter(range(10**9))


def at(hours: float) -> dt.datetime:
    return T0 + dt.timedelta(hours=hours)


def view(lead: str, hours: float, path: str = "/") -> PageViewed:
    return PageViewed(
        type="page.viewed",
        event_id=f"e{next(_n)}",
        source="t",
        lead_id=lead,
        occurred_at=at(hours),
        path=path,
    )


def created(lead: str, hours: float, **fields: Any) -> LeadCreated:
    return LeadCreated(
        type="lead.created",
        event_id=f"e{next(_n)}",
        source="t",
        lead_id=lead,
        occurred_at=at(hours),
        fields=LeadFields(**fields),
    )


def demo(lead: str, hours: float) -> FormSubmitted:
    return FormSubmitted(
        type="form.submitted",
        event_id=f"e{next(_n)}",
        source="t",
        lead_id=lead,
        occurred_at=at(hours),
        form="demo-request",
    )


def won(lead: str, hours: float) -> LeadEvent:
    return DealWon(
        type="deal.won", event_id=f"e{next(_n)}", source="t", lead_id=lead, occurred_at=at(hours)
    )


def lost(lead: str, hours: float) -> LeadEvent:
    return DealLost(
        type="deal.lost", event_id=f"e{next(_n)}", source="t", lead_id=lead, occurred_at=at(hours)
    )
