"""``inactivity``: a lead has gone quiet."""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar, Literal

from pydantic import Field

from nudge.signals import LeadSignal
from playbooks.kinds import register
from playbooks.triggers.base import TriggerKind
from playbooks.types import Duration


@register(
    "trigger",
    "inactivity",
    """
    trigger: {type: inactivity, for: 14d}
    """,
)
class Inactivity(TriggerKind):
    """Fires when a lead has had no touch (CRM, call, web, email) for ``for``."""

    type: Literal["inactivity"]
    for_: Duration = Field(alias="for")
    timed: ClassVar[bool] = True

    def plan(
        self, signal: LeadSignal, data: dict[str, Any], now: dt.datetime
    ) -> tuple[dt.datetime, dict[str, Any]] | None:
        last = signal.lead.last_touch_at or signal.at
        return last + self.for_, {"lead.last_touch_at": last.isoformat()}

    def still_valid(self, check: dict[str, Any], signal: LeadSignal, data: dict[str, Any]) -> bool:
        last = signal.lead.last_touch_at
        return last is None or last.isoformat() <= str(check.get("lead.last_touch_at"))
