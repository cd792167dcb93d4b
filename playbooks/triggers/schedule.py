"""``schedule``: a fixed local time on given weekdays."""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar, Literal

from pydantic import Field

from nudge.signals import LeadSignal
from playbooks.kinds import register
from playbooks.schedule import next_run
from playbooks.triggers.base import TriggerKind
from playbooks.types import TimeOfDay, Zone, zone_for

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def _workdays() -> list[Weekday]:
    return ["mon", "tue", "wed", "thu", "fri"]


@register(
    "trigger",
    "schedule",
    """
    trigger: {type: schedule, at: "08:30", days: [mon, tue, wed, thu, fri], tz: rep}
    """,
)
class ScheduleTrigger(TriggerKind):
    """Fires at ``at`` on ``days`` (default weekdays) in zone ``tz`` (default the rep's)."""

    type: Literal["schedule"]
    at: TimeOfDay
    days: list[Weekday] = Field(default_factory=_workdays, min_length=1)
    tz: Zone = "rep"
    timed: ClassVar[bool] = True

    def plan(
        self, signal: LeadSignal, data: dict[str, Any], now: dt.datetime
    ) -> tuple[dt.datetime, dict[str, Any]] | None:
        rep_zone = signal.rep.timezone if signal.rep else None
        due = next_run(self.at, self.days, zone_for(self.tz, rep_zone), now)
        return due, {"occurrence": due.isoformat()}

    def still_valid(self, check: dict[str, Any], signal: LeadSignal, data: dict[str, Any]) -> bool:
        return True
