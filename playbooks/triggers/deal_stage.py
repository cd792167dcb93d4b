"""``deal.stage_changed``: a deal moved between pipeline stages."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import Field

from nudge.signals import LeadSignal
from playbooks.kinds import register
from playbooks.triggers.base import Match, TriggerKind


@register(
    "trigger",
    "deal.stage_changed",
    """
    trigger: {type: deal.stage_changed, to: [proposal]}
    """,
)
class DealStageChanged(TriggerKind):
    """Fires on ``deal.stage_changed`` events, optionally only ``to`` / ``from`` given stages."""

    type: Literal["deal.stage_changed"]
    to: list[str] | None = None
    from_: list[str] | None = Field(default=None, alias="from")

    def fires(self, signal: LeadSignal, data: dict[str, Any], now: dt.datetime) -> Match | None:
        if signal.event_type != "deal.stage_changed":
            return None
        to, frm = signal.event.get("to_stage"), signal.event.get("from_stage")
        if (self.to and to not in self.to) or (self.from_ and frm not in self.from_):
            return None
        return {"event.from_stage": frm, "event.to_stage": to}

    def may_fire(self, signal: LeadSignal) -> bool:
        return signal.event_type == "deal.stage_changed"
