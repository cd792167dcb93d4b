"""What a model predicts: the targets, and the product catalogue that defines cross-sell.

One machinery, several questions. Every model is trained the same way (replay, snapshots,
censoring-aware labels, calibration, IPS weights, registry); only the *outcome* differs:

* ``conversion`` — the lead is won (``deal.won`` or a won stage) within the horizon; lost
  closes it. The points scorer is its fallback, and only its.
* ``churn`` — an existing customer leaves or downgrades within the horizon: an event the
  catalogue's ``churn`` rule matches (by default ``lead.updated`` setting
  ``custom.status`` to ``churned`` or ``downgraded``).
* ``cross_sell:<product>`` — the customer buys that product within the horizon: an
  event the product's ``purchase`` rule matches.

The catalogue is the team's YAML (``NUDGE_PRODUCTS`` or ``--products``)::

    products:
      - id: payroll
        name: Payroll
        value: 12000                 # what a sale is worth (probability x value ranks)
        purchase:                    # how a purchase shows in the events
          event: lead.updated
          field: custom.products     # a field of the event's CRM fields
          contains: payroll          # or equals: / in: [..]
    churn:
      event: lead.updated
      field: custom.status
      in: [churned, downgraded]
    customer_stages: [customer]     # churn and cross-sell apply to these (and won leads)

Why rules over events rather than new event types: every CRM already says these things
through its fields; the catalogue names which field, so no connector changes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from nudge.errors import ConfigError
from nudge.events import DealLost, DealStageChanged, DealWon, LeadCreated, LeadEvent, LeadUpdated

WON_STAGES = frozenset({"won", "closed won", "closed-won", "closed_won", "converted"})
CONVERSION = "conversion"
CHURN = "churn"
CROSS_SELL = "cross_sell:"


class Match(BaseModel):
    """One rule over events: the type (or types), and optionally one CRM field's value."""

    model_config = ConfigDict(extra="forbid")
    event: str | list[str]
    field: str | None = None
    equals: str | None = None
    contains: str | None = None
    in_: list[str] | None = Field(default=None, alias="in")

    def matches(self, event: LeadEvent) -> bool:
        if event.type not in ([self.event] if isinstance(self.event, str) else self.event):
            return False
        if self.field is None:
            return True
        value = _field_value(event, self.field)
        if value is None:
            return False
        text = [str(v).strip().lower() for v in value] if isinstance(value, list) else None
        one = str(value).strip().lower()
        if self.equals is not None and one != self.equals.lower():
            return False
        if self.contains is not None:
            want = self.contains.lower()
            items = text if text is not None else [p.strip() for p in re.split(r"[,;]", one)]
            if want not in items:
                return False
        return not (self.in_ is not None and one not in {v.lower() for v in self.in_})


class Product(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    name: str | None = None
    value: float = Field(default=0.0, ge=0)
    purchase: Match


class Catalogue(BaseModel):
    model_config = ConfigDict(extra="forbid")
    products: list[Product] = []
    churn: Match = Match.model_validate(
        {"event": "lead.updated", "field": "custom.status", "in": ["churned", "downgraded"]}
    )
    customer_stages: list[str] = ["customer"]
    """A lead is a customer (churn and cross-sell apply to it) when its status is ``won``
    or its stage is one of these."""

    def is_customer(self, profile: dict[str, Any]) -> bool:
        """Does churn and cross-sell apply to a lead with this profile?"""
        if profile.get("status") == "won":
            return True
        stage = str(profile.get("stage") or "").strip().lower()
        return stage in {s.lower() for s in self.customer_stages}

    def product(self, product_id: str) -> Product:
        for p in self.products:
            if p.id == product_id:
                return p
        known = ", ".join(p.id for p in self.products) or "none"
        raise ConfigError(f"no product {product_id!r} in the catalogue (products: {known})")


def load_catalogue(path: Path | None) -> Catalogue:
    """The catalogue from YAML; an empty one (default churn rule, no products) if None."""
    if path is None:
        return Catalogue()
    if not path.is_file():
        raise ConfigError(f"{path}: no such product catalogue")
    try:
        return Catalogue.model_validate(yaml.safe_load(path.read_text()) or {})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{path}: {where}: {first['msg']}") from None


def _field_value(event: LeadEvent, name: str) -> Any:
    if not isinstance(event, LeadCreated | LeadUpdated):
        return None
    fields = event.fields
    if name.startswith("custom."):
        return (fields.custom or {}).get(name[7:])
    return getattr(fields, name, None)


@dataclass(frozen=True)
class Target:
    """One prediction target: its name, and which events end a lead's question."""

    name: str
    positive: list[Match] = field(default_factory=list)
    negative: list[Match] = field(default_factory=list)
    value: float = 0.0

    @property
    def slug(self) -> str:
        """The registry folder name (``cross_sell:payroll`` → ``cross_sell-payroll``)."""
        return self.name.replace(":", "-")

    def outcome(self, event: LeadEvent) -> str | None:
        """``"won"`` (positive), ``"lost"`` (closed negative) or None for any other event."""
        if self.name == CONVERSION:
            if isinstance(event, DealWon):
                return "won"
            if isinstance(event, DealLost):
                return "lost"
            if isinstance(event, DealStageChanged) and event.to_stage.strip().lower() in WON_STAGES:
                return "won"
            return None
        if any(m.matches(event) for m in self.positive):
            return "won"
        if any(m.matches(event) for m in self.negative):
            return "lost"
        return None


def target(name: str, catalogue: Catalogue | None = None) -> Target:
    """The :class:`Target` called ``name``; errors list what exists."""
    catalogue = catalogue or Catalogue()
    if name == CONVERSION:
        return Target(CONVERSION)
    if name == CHURN:
        return Target(CHURN, positive=[catalogue.churn])
    if name.startswith(CROSS_SELL):
        product = catalogue.product(name[len(CROSS_SELL) :])
        return Target(name, positive=[product.purchase], value=product.value)
    names = [CONVERSION, CHURN] + [CROSS_SELL + p.id for p in catalogue.products]
    raise ConfigError(f"unknown target {name!r}; known: {', '.join(names)}")


def all_targets(catalogue: Catalogue) -> list[Target]:
    """Every target the catalogue defines, conversion first."""
    return [target(CONVERSION), target(CHURN, catalogue)] + [
        target(CROSS_SELL + p.id, catalogue) for p in catalogue.products
    ]
