"""``all`` / ``any`` / ``not``: conditions combined."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from playbooks.conditions.base import ConditionKind
from playbooks.kinds import register
from playbooks.windows import Window

if TYPE_CHECKING:
    from playbooks.conditions import Condition


@register(
    "condition",
    "all",
    """
    conditions:
      - all:
          - {field: lead.industry, eq: logistics}
          - {field: lead.employees, gte: 50}
    """,
)
class All(ConditionKind):
    """Holds when every condition in the list holds."""

    type: Literal["all"] = "all"
    all: list[Condition] = Field(min_length=1)

    def holds(self, data: dict[str, Any], now: dt.datetime) -> bool:
        return all(c.holds(data, now) for c in self.all)

    def reads(self, data: dict[str, Any]) -> dict[str, Any]:
        return {k: v for c in self.all for k, v in c.reads(data).items()}

    def event_field_problems(self, event_type: str) -> list[str]:
        return [p for c in self.all for p in c.event_field_problems(event_type)]

    def windows(self) -> list[Window]:
        return [w for c in self.all for w in c.windows()]

    def describe(self) -> str:
        return "all of: " + "; ".join(c.describe() for c in self.all)


@register(
    "condition",
    "any",
    """
    conditions:
      - any:
          - {field: lead.industry, in: [logistics, retail]}
          - {field: deal.value, gte: 20000}
    """,
)
class AnyOf(ConditionKind):
    """Holds when at least one condition in the list holds."""

    type: Literal["any"] = "any"
    any: list[Condition] = Field(min_length=1)

    def holds(self, data: dict[str, Any], now: dt.datetime) -> bool:
        return any(c.holds(data, now) for c in self.any)

    def reads(self, data: dict[str, Any]) -> dict[str, Any]:
        return {k: v for c in self.any for k, v in c.reads(data).items()}

    def event_field_problems(self, event_type: str) -> list[str]:
        return [p for c in self.any for p in c.event_field_problems(event_type)]

    def windows(self) -> list[Window]:
        return [w for c in self.any for w in c.windows()]

    def describe(self) -> str:
        return "any of: " + "; ".join(c.describe() for c in self.any)


@register(
    "condition",
    "not",
    """
    conditions:
      - not: {field: deal.stage, eq: closed}
    """,
)
class Not(ConditionKind):
    """Holds when the condition under it does not."""

    type: Literal["not"] = "not"
    not_: Condition = Field(alias="not")

    def holds(self, data: dict[str, Any], now: dt.datetime) -> bool:
        return not self.not_.holds(data, now)

    def reads(self, data: dict[str, Any]) -> dict[str, Any]:
        return self.not_.reads(data)

    def event_field_problems(self, event_type: str) -> list[str]:
        return self.not_.event_field_problems(event_type)

    def windows(self) -> list[Window]:
        return self.not_.windows()

    def describe(self) -> str:
        return f"not ({self.not_.describe()})"
