"""Conditions: structured comparisons, ``all``/``any``/``not``, and expressions.

Written without a ``type`` key — the key that is present says which kind it is::

    conditions:
      - {field: score.value, gte: 0.6}
      - any:
          - {field: lead.industry, in: [logistics, retail]}
          - expr: "lead.employees >= 50 and days_since(lead.last_touch_at) > 3"
      - not: {field: deal.stage, eq: closed}

One module per kind; every field is checked against :mod:`playbooks.fields` at load time.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import Discriminator, Tag

from playbooks import kinds
from playbooks.conditions.base import ConditionKind
from playbooks.conditions.compare import OPS, Compare, compare
from playbooks.conditions.count import Count
from playbooks.conditions.expr import Expr
from playbooks.conditions.logic import All, AnyOf, Not

KEYS = ("all", "any", "not", "expr", "count")
"""The keys that name a kind; a mapping with none of them is a ``compare``."""


def _kind(value: Any) -> str | None:
    if isinstance(value, dict):
        if "type" in value:
            return str(value["type"])
        for key in KEYS:
            if key in value:
                return key
        return "compare"
    return getattr(value, "type", None)


kinds.arrange("condition", ("compare", "all", "any", "not", "count", "expr"))

if TYPE_CHECKING:
    Condition = ConditionKind
else:
    Condition = Annotated[
        Union[tuple(Annotated[k.model, Tag(k.name)] for k in kinds.kinds("condition"))],  # noqa: UP007
        Discriminator(_kind),
    ]
"""Any condition; the key present (``all``, ``any``, ``not``, ``expr``, ``field``) picks the kind."""

for _m in (All, AnyOf, Not):
    _m.model_rebuild(_types_namespace={"Condition": Condition})

__all__ = [
    "OPS",
    "All",
    "AnyOf",
    "Compare",
    "Condition",
    "ConditionKind",
    "Count",
    "Expr",
    "Not",
    "compare",
    "holds",
    "matched_values",
]


def holds(cond: ConditionKind, data: dict[str, Any], now: dt.datetime) -> bool:
    """Does ``cond`` hold on :func:`playbooks.fields.views` data?"""
    return cond.holds(data, now)


def matched_values(conds: list[ConditionKind], data: dict[str, Any]) -> dict[str, Any]:
    """The fields the conditions read and their values (for "why" in simulate)."""
    return {k: v for c in conds for k, v in c.reads(data).items()}
