"""``date``: a day relative to a date field of the lead or deal."""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar, Literal

from pydantic import field_validator, model_validator

from nudge.signals import LeadSignal
from playbooks import fields as f
from playbooks import messages as msg
from playbooks.kinds import register
from playbooks.schedule import date_due
from playbooks.triggers.base import TriggerKind
from playbooks.types import Duration, TimeOfDay, Zone, zone_for


@register(
    "trigger",
    "date",
    """
    trigger: {type: date, field: lead.custom.lease_expires_on, before: 120d, at: "09:00"}
    """,
)
class DateTrigger(TriggerKind):
    """Fires ``before`` / ``after`` the date in ``field``, at ``at`` in zone ``tz`` (the rep's).

    If the date changes, the row planned on the old date fires nothing.
    """

    type: Literal["date"]
    field: str
    before: Duration | None = None
    after: Duration | None = None
    at: TimeOfDay = dt.time(9, 0)
    tz: Zone = "rep"
    timed: ClassVar[bool] = True

    @field_validator("field")
    @classmethod
    def _known(cls, value: str) -> str:
        if not value.startswith(("lead.", "deal.")) or not f.is_known(value):
            raise ValueError(f.unknown_field_message(value))
        return value

    @model_validator(mode="after")
    def _one_offset(self) -> DateTrigger:
        if self.before is not None and self.after is not None:
            raise ValueError(msg.BEFORE_OR_AFTER)
        return self

    @property
    def offset(self) -> dt.timedelta:
        if self.before is not None:
            return -self.before
        return self.after or dt.timedelta(0)

    def plan(
        self, signal: LeadSignal, data: dict[str, Any], now: dt.datetime
    ) -> tuple[dt.datetime, dict[str, Any]] | None:
        rep_zone = signal.rep.timezone if signal.rep else None
        value = f.lookup(data, self.field)
        due = date_due(value, self.offset, self.at, zone_for(self.tz, rep_zone), now)
        return None if due is None else (due, {self.field: str(value)})

    def still_valid(self, check: dict[str, Any], signal: LeadSignal, data: dict[str, Any]) -> bool:
        return str(f.lookup(data, self.field)) == check.get(self.field)
