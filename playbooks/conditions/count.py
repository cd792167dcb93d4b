"""``count``: how many events of a kind the lead had in a window."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import Field, model_validator

from playbooks import fields as f
from playbooks import messages as msg
from playbooks.conditions.base import ConditionKind
from playbooks.kinds import register
from playbooks.types import Duration, Model
from playbooks.windows import Window, count, window


class CountSpec(Model):
    """``{event: page.viewed, where: {...}, within: 1d, at_least: 3}``."""

    event: str
    where: dict[str, dict[str, Any]] = Field(default_factory=dict)
    within: Duration
    at_least: int | None = Field(default=None, ge=0, le=1000)
    at_most: int | None = Field(default=None, ge=0, le=1000)

    @model_validator(mode="after")
    def _valid(self) -> CountSpec:
        from playbooks.conditions.compare import Compare

        if self.event not in f.EVENT_TYPES:
            hint = f.suggest(self.event, set(f.EVENT_TYPES))
            text = msg.BAD_EVENT_TYPE.format(value=self.event)
            raise ValueError(
                f"{text} — {msg.DID_YOU_MEAN.format(suggestion=hint)}" if hint else text
            )
        for name, ops in self.where.items():
            field = "event." + name.removeprefix("event.")
            if not f.is_known(field, self.event):
                raise ValueError(f.unknown_field_message(field, self.event))
            Compare.model_validate({"field": field, **ops})
        if self.at_least is None and self.at_most is None:
            raise ValueError(msg.COUNT_BOUND)
        return self

    def window(self) -> Window:
        keep = max(self.at_least or 0, (self.at_most or 0) + 1)
        return window(self.event, self.where, self.within, keep)


@register(
    "condition",
    "count",
    """
    conditions:
      - count: {event: page.viewed, where: {path: {starts_with: /pricing}}, within: 1d, at_least: 3}
    """,
)
class Count(ConditionKind):
    """Holds when the lead had ``at_least`` (and/or ``at_most``) events of type ``event``
    passing ``where`` in the ``within`` before the signal. Counting starts when the
    playbook is loaded.
    """

    type: Literal["count"] = "count"
    count: CountSpec

    def holds(self, data: dict[str, Any], now: dt.datetime) -> bool:
        n = count(data, self.count.window(), _at(data, now))
        low, high = self.count.at_least, self.count.at_most
        return (low is None or n >= low) and (high is None or n <= high)

    def reads(self, data: dict[str, Any]) -> dict[str, Any]:
        at = _at(data, dt.datetime.now(dt.UTC))
        return {f"count of {self.count.event}": count(data, self.count.window(), at)}

    def windows(self) -> list[Window]:
        return [self.count.window()]

    def describe(self) -> str:
        bounds = [
            f"≥ {self.count.at_least}" if self.count.at_least is not None else "",
            f"≤ {self.count.at_most}" if self.count.at_most is not None else "",
        ]
        where = f" where {self.count.where}" if self.count.where else ""
        return f"count of {self.count.event}{where} in {human(self.count.within)} {' and '.join(b for b in bounds if b)}"


def _at(data: dict[str, Any], now: dt.datetime) -> dt.datetime:
    """Counts look back from the signal's own time (the event's, or the timer's)."""
    at = f.lookup(data, "event.occurred_at")
    if isinstance(at, str):
        try:
            return dt.datetime.fromisoformat(at)
        except ValueError:
            return now
    return now


def human(value: dt.timedelta) -> str:
    from playbooks.types import human_duration

    return human_duration(value)
