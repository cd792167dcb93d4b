"""``{field: lead.employees, gte: 50}``: one field, one operator, one value."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from playbooks import fields as f
from playbooks import messages as msg
from playbooks.conditions.base import ConditionKind
from playbooks.kinds import register
from playbooks.types import Duration, human_duration, parse_score

OPS = (
    "eq",
    "ne",
    "gt",
    "gte",
    "lt",
    "lte",
    "in",
    "not_in",
    "contains",
    "starts_with",
    "ends_with",
    "exists",
    "within",
)
Scalar = str | int | float | bool | None
SCORE_FIELDS = ("score.value", "score.previous", "score.change")
"""Fields holding scores (0–1): their operands may be written ``70%`` or ``0.7``."""
SYMBOLS = {"eq": "=", "ne": "≠", "gt": ">", "gte": "≥", "lt": "<", "lte": "≤"}
ORDERING = ("eq", "ne", "gt", "gte", "lt", "lte")


def _score_operand(value: Any) -> Any:
    if isinstance(value, str) and value.strip().startswith("-"):
        return -parse_score(value.strip()[1:])
    if isinstance(value, int | float | str) and not isinstance(value, bool) and value is not None:
        return (
            -parse_score(-value)
            if isinstance(value, int | float) and value < 0
            else parse_score(value)
        )
    return value


@register(
    "condition",
    "compare",
    """
    conditions:
      - {field: lead.employees, gte: 50}
    """,
)
class Compare(ConditionKind):
    """Compares one field with one operator: ``eq``, ``ne``, ``gt``, ``gte``, ``lt``,
    ``lte``, ``in``, ``not_in``, ``contains``, ``starts_with``, ``ends_with``, ``exists``.
    """

    type: Literal["compare"] = "compare"
    field: str
    eq: Scalar | list[Scalar] = None
    ne: Scalar = None
    gt: float | str | None = None
    gte: float | str | None = None
    lt: float | str | None = None
    lte: float | str | None = None
    in_: list[Scalar] | None = Field(default=None, alias="in")
    not_in: list[Scalar] | None = None
    contains: str | None = None
    starts_with: str | None = None
    ends_with: str | None = None
    exists: bool | None = None
    within: Duration | None = None
    """For a time field: it lies within this long before the signal."""

    @model_validator(mode="before")
    @classmethod
    def _score_units(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("field") in SCORE_FIELDS:
            return {k: _score_operand(v) if k in ORDERING else v for k, v in data.items()}
        return data

    @field_validator("field")
    @classmethod
    def _known(cls, value: str) -> str:
        if not f.is_known(value):
            raise ValueError(f.unknown_field_message(value))
        return value

    @model_validator(mode="after")
    def _one_operator(self) -> Compare:
        given = [
            op
            for op in OPS
            if op in self.model_fields_set or (op == "in" and "in_" in self.model_fields_set)
        ]
        if len(given) != 1:
            raise ValueError(
                msg.ONE_OPERATOR.format(field=self.field, ops=", ".join(OPS), count=len(given))
            )
        return self

    @property
    def op(self) -> str:
        return next(
            op
            for op in OPS
            if op in self.model_fields_set or (op == "in" and "in_" in self.model_fields_set)
        )

    def operand(self) -> Any:
        return self.in_ if self.op == "in" else getattr(self, self.op)

    def holds(self, data: dict[str, Any], now: dt.datetime) -> bool:
        if self.op == "within":
            return recent(f.lookup(data, self.field), self.within, now)
        return compare(self.op, f.lookup(data, self.field), self.operand())

    def reads(self, data: dict[str, Any]) -> dict[str, Any]:
        return {self.field: f.lookup(data, self.field)}

    def describe(self) -> str:
        operand = self.operand()
        if self.field in SCORE_FIELDS and isinstance(operand, float):
            shown = f"{operand * 100:g}%"
        elif isinstance(operand, dt.timedelta):
            shown = human_duration(operand)
        elif isinstance(operand, float) and operand.is_integer():
            shown = str(int(operand))
        else:
            shown = repr(operand)
        return f"`{self.field}` {SYMBOLS.get(self.op, self.op)} {shown}"

    def event_field_problems(self, event_type: str) -> list[str]:
        if self.field.startswith("event.") and not f.is_known(self.field, event_type):
            return [f.unknown_field_message(self.field, event_type)]
        return []


def recent(value: Any, within: dt.timedelta | None, now: dt.datetime) -> bool:
    """Is the time ``value`` no longer than ``within`` before ``now``? (Absent: no.)"""
    if value is None or within is None:
        return False
    try:
        when = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    except ValueError:
        return False
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return now - within <= when <= now + dt.timedelta(minutes=5)


def compare(op: str, actual: Any, expected: Any) -> bool:
    """``actual <op> expected``; ordering a missing or mismatched value is false."""
    if op == "exists":
        return (actual is not None) == bool(expected)
    if op == "eq":
        return bool(actual in expected if isinstance(expected, list) else actual == expected)
    if op == "ne":
        return bool(actual != expected)
    if op == "in":
        return actual in (expected or [])
    if op == "not_in":
        return actual not in (expected or [])
    if actual is None:
        return False
    if op == "contains":
        return (
            (str(expected).lower() in [str(a).lower() for a in actual])
            if isinstance(actual, list)
            else str(expected).lower() in str(actual).lower()
        )
    if op == "starts_with":
        return str(actual).startswith(str(expected))
    if op == "ends_with":
        return str(actual).endswith(str(expected))
    try:
        if op == "gt":
            return bool(actual > expected)
        if op == "gte":
            return bool(actual >= expected)
        if op == "lt":
            return bool(actual < expected)
        return bool(actual <= expected)
    except TypeError:
        return False
