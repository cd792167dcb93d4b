"""``event``: a lead event of one type, optionally filtered on its fields."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from nudge.signals import LeadSignal
from playbooks import fields as f
from playbooks import messages as msg
from playbooks.conditions import Compare, holds
from playbooks.kinds import register
from playbooks.triggers.base import Match, TriggerKind
from playbooks.types import Duration, Model, human_duration
from playbooks.windows import Window, count, window


class Threshold(Model):
    """``{at_least: 3, within: 1d}``."""

    at_least: int = Field(ge=1, le=1000)
    within: Duration


@register(
    "trigger",
    "event",
    """
    trigger:
      type: event
      event: page.viewed
      where: {path: {starts_with: /pricing}}
      count: {at_least: 3, within: 1d}
    """,
)
class EventTrigger(TriggerKind):
    """Fires on each event of type ``event`` whose fields pass every ``where`` filter.

    ``where`` maps an event field to one operator, as in conditions. With ``count:
    {at_least: N, within: D}`` it fires on the event that makes N such events within D
    (once, when the count reaches N; counting starts when the playbook is loaded).
    """

    type: Literal["event"]
    event: str
    where: dict[str, dict[str, Any]] = Field(default_factory=dict)
    count: Threshold | None = None

    @field_validator("event")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in f.EVENT_TYPES:
            hint = f.suggest(value, set(f.EVENT_TYPES))
            text = msg.BAD_EVENT_TYPE.format(value=value)
            raise ValueError(
                f"{text} — {msg.DID_YOU_MEAN.format(suggestion=hint)}" if hint else text
            )
        return value

    @model_validator(mode="after")
    def _known_fields(self) -> EventTrigger:
        for name, ops in self.where.items():
            field = "event." + name.removeprefix("event.")
            if not f.is_known(field, self.event):
                raise ValueError(f.unknown_field_message(field, self.event))
            Compare.model_validate({"field": field, **ops})
        return self

    def window(self) -> Window | None:
        if self.count is None:
            return None
        return window(self.event, self.where, self.count.within, self.count.at_least + 1)

    def windows(self) -> list[Window]:
        w = self.window()
        return [w] if w else []

    @property
    def event_type(self) -> str | None:
        return self.event

    def filters(self) -> list[Compare]:
        return [
            Compare.model_validate({"field": "event." + k.removeprefix("event."), **ops})
            for k, ops in self.where.items()
        ]

    def fires(self, signal: LeadSignal, data: dict[str, Any], now: dt.datetime) -> Match | None:
        if signal.event_type != self.event:
            return None
        filters = self.filters()
        if not all(holds(c, data, now) for c in filters):
            return None
        match = {"event.type": self.event} | {c.field: f.lookup(data, c.field) for c in filters}
        w = self.window()
        if w is not None and self.count is not None:
            n = count(data, w, signal.at)
            if n != self.count.at_least:
                return None
            match["count"] = f"{n} within {human_duration(self.count.within)}"
        return match

    def why_not(self, signal: LeadSignal, data: dict[str, Any], now: dt.datetime) -> str:
        failed = [c for c in self.filters() if not holds(c, data, now)]
        seen = ", ".join(f"{c.describe()} (was {f.lookup(data, c.field)!r})" for c in failed)
        if seen:
            return f"trigger filter failed: {seen}"
        w = self.window()
        if w is not None and self.count is not None:
            n = count(data, w, signal.at)
            within = human_duration(self.count.within)
            return f"count was {n} within {within}, fires when it reaches {self.count.at_least}"
        return super().why_not(signal, data, now)

    def may_fire(self, signal: LeadSignal) -> bool:
        return signal.event_type == self.event
