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


@register(
    "trigger",
    "event",
    """
    trigger:
      type: event
      event: page.viewed
      where: {path: {starts_with: /pricing}}
    """,
)
class EventTrigger(TriggerKind):
    """Fires on each event of type ``event`` whose fields pass every ``where`` filter.

    ``where`` maps an event field to one operator, as in conditions.
    """

    type: Literal["event"]
    event: str
    where: dict[str, dict[str, Any]] = Field(default_factory=dict)

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
        if all(holds(c, data, now) for c in filters):
            return {"event.type": self.event} | {c.field: f.lookup(data, c.field) for c in filters}
        return None

    def may_fire(self, signal: LeadSignal) -> bool:
        return signal.event_type == self.event
