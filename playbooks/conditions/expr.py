"""``expr: "..."``: a safe expression (see :mod:`playbooks.expressions`)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import Field, field_validator

from playbooks import fields as f
from playbooks.conditions.base import ConditionKind
from playbooks.expressions import check_expression, evaluate_expression, fields_read
from playbooks.kinds import register


@register(
    "condition",
    "expr",
    """
    conditions:
      - expr: "lead.employees >= 50 and days_since(lead.last_touch_at) > 3"
    """,
)
class Expr(ConditionKind):
    """Holds when the expression is true: fields, comparisons, arithmetic, ``and`` /
    ``or`` / ``not`` and a few functions (``days_since``, ``days_until``, ``len`` ...).
    """

    type: Literal["expr"] = "expr"
    expr: str = Field(min_length=1)

    @field_validator("expr")
    @classmethod
    def _safe(cls, value: str) -> str:
        problems = check_expression(value)
        if problems:
            raise ValueError("; ".join(problems))
        return value

    def holds(self, data: dict[str, Any], now: dt.datetime) -> bool:
        return evaluate_expression(self.expr, data, now)

    def describe(self) -> str:
        return f"`{self.expr}`"

    def reads(self, data: dict[str, Any]) -> dict[str, Any]:
        return {name: f.lookup(data, name) for name in fields_read(self.expr)}

    def event_field_problems(self, event_type: str) -> list[str]:
        return check_expression(self.expr, event_type)
