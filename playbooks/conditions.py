"""Conditions: structured comparisons, ``all``/``any``/``not``, and expressions.

Written without a ``type`` key — the key that is present says which kind it is::

    conditions:
      - {field: score.value, gte: 0.6}
      - any:
          - {field: lead.industry, in: [logistics, retail]}
          - expr: "lead.employees >= 50 and days_since(lead.last_touch_at) > 3"
      - not: {field: deal.stage, eq: closed}

Every field is checked against :mod:`playbooks.fields` at load time.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from playbooks import fields as f
from playbooks import messages as msg
from playbooks.expressions import check_expression, evaluate_expression
from playbooks.types import Model

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
)
Scalar = str | int | float | bool | None


class Compare(Model):
    """``{field: lead.employees, gte: 50}``: one field, one operator, one value."""

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


class All(Model):
    type: Literal["all"] = "all"
    all: list[Condition] = Field(min_length=1)


class AnyOf(Model):
    type: Literal["any"] = "any"
    any: list[Condition] = Field(min_length=1)


class Not(Model):
    type: Literal["not"] = "not"
    not_: Condition = Field(alias="not")


class Expr(Model):
    """``expr: "..."`` — a safe expression (see :mod:`playbooks.expressions`)."""

    type: Literal["expr"] = "expr"
    expr: str = Field(min_length=1)

    @field_validator("expr")
    @classmethod
    def _safe(cls, value: str) -> str:
        problems = check_expression(value)
        if problems:
            raise ValueError("; ".join(problems))
        return value


def _kind(value: Any) -> str | None:
    if isinstance(value, dict):
        if "type" in value:
            return str(value["type"])
        for key in ("all", "any", "not", "expr"):
            if key in value:
                return key
        return "compare"
    return getattr(value, "type", None)


Condition = Annotated[
    Annotated[Compare, Tag("compare")]
    | Annotated[All, Tag("all")]
    | Annotated[AnyOf, Tag("any")]
    | Annotated[Not, Tag("not")]
    | Annotated[Expr, Tag("expr")],
    Discriminator(_kind),
]
"""Any condition; the key present (``all``, ``any``, ``not``, ``expr``, ``field``) picks the kind."""

for _m in (All, AnyOf, Not):
    _m.model_rebuild()


def _compare(op: str, actual: Any, expected: Any) -> bool:
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


def holds(cond: Condition, data: dict[str, Any], now: dt.datetime) -> bool:
    """Does ``cond`` hold on :func:`playbooks.fields.views` data?"""
    if isinstance(cond, Compare):
        return _compare(cond.op, f.lookup(data, cond.field), cond.operand())
    if isinstance(cond, All):
        return all(holds(c, data, now) for c in cond.all)
    if isinstance(cond, AnyOf):
        return any(holds(c, data, now) for c in cond.any)
    if isinstance(cond, Not):
        return not holds(cond.not_, data, now)
    return evaluate_expression(cond.expr, data, now)


def matched_values(conds: list[Condition], data: dict[str, Any]) -> dict[str, Any]:
    """The fields the conditions read and their values (for "why" in simulate)."""
    out: dict[str, Any] = {}
    for cond in conds:
        if isinstance(cond, Compare):
            out[cond.field] = f.lookup(data, cond.field)
        elif isinstance(cond, All | AnyOf):
            out |= matched_values(list(cond.all if isinstance(cond, All) else cond.any), data)
        elif isinstance(cond, Not):
            out |= matched_values([cond.not_], data)
    return out
