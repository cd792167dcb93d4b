"""Synthetic customers with products, usage, churn and purchases, whose truth is known.

Why: churn and cross-sell have no public event data, so the models for them are checked
on a world with a known process. Each customer has a hidden health ``h`` and, per product
it does not own yet, a hidden interest ``u_k``. What the CRM sees:

* usage: app page views at a rate growing with ``h``, and a monthly ``lead.updated``
  with ``custom.usage_change_pct`` (noisy, lower for unhealthy customers);
* interest: a monthly ``custom.<product>_trial_users`` count growing with ``u_k``, and
  pricing-page visits growing with the largest interest;
* churn: a ``lead.updated`` setting ``custom.status: churned`` at a constant hazard
  ``CHURN_BASE · e^(−1.2 h)`` per day;
* purchase of product k: a ``lead.updated`` with ``custom.purchased: k`` at hazard
  ``BUY_BASE · e^(1.3 u_k)``, until the customer churns.

Constant hazards make the truth exact: P(churn within H) = 1 − e^(−λH), and
P(buy k within H) = μ/(μ+λ) · (1 − e^(−(μ+λ)H)) for a customer still active.
:data:`CATALOGUE` is the matching product catalogue (``products.yaml`` shape).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np

from nudge.events import LeadCreated, LeadEvent, LeadFields, LeadUpdated, PageViewed

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
PRODUCTS = {"payroll": 12000.0, "insurance": 5000.0}
CHURN_BASE = 0.004
BUY_BASE = 0.003
CATALOGUE: dict[str, Any] = {
    "products": [
        {
            "id": k,
            "value": v,
            # owning k shows in custom.products (from the customer's first record on):
            # an owner's question is answered from the start, a buyer's when it buys
            "purchase": {
                "event": ["lead.created", "lead.updated"],
                "field": "custom.products",
                "contains": k,
            },
        }
        for k, v in PRODUCTS.items()
    ],
    "churn": {"event": "lead.updated", "field": "custom.status", "in": ["churned"]},
}


@dataclass
class Customers:
    events: list[LeadEvent]
    churn_rate: dict[str, float] = field(default_factory=dict)
    """customer → churn hazard per day."""
    buy_rate: dict[str, dict[str, float]] = field(default_factory=dict)
    """customer → product → purchase hazard per day (products it did not own)."""

    def truth(self, target: str, horizon_days: float = 30.0) -> Any:
        """``(lead_id, epoch) → true probability`` of ``target`` within the horizon."""

        def churn(lead: str, _at: float) -> float:
            return 1.0 - math.exp(-self.churn_rate[lead] * horizon_days)

        def buy(product: str) -> Any:
            def fn(lead: str, _at: float) -> float:
                mu = self.buy_rate[lead].get(product, 0.0)
                lam = self.churn_rate[lead]
                if mu == 0.0:
                    return 0.0
                return mu / (mu + lam) * (1.0 - math.exp(-(mu + lam) * horizon_days))

            return fn

        if target == "churn":
            return churn
        return buy(target.split(":", 1)[1])


def _at(day: float) -> dt.datetime:
    return START + dt.timedelta(days=day)


def generate_customers(n: int = 800, days: int = 180, seed: int = 5) -> Customers:
    """``n`` customers active from day 0 (or later), with their usage, churn and purchases."""
    rng = np.random.default_rng(seed)
    out = Customers(events=[])
    for i in range(n):
        lead = f"C{i:05d}"
        ids = (f"{lead}-{k}" for k in range(1, 10**9))
        common: dict[str, Any] = {"source": "synthetic", "lead_id": lead}
        h = float(rng.normal())
        owned = {k for k in PRODUCTS if rng.random() < 0.2}
        interest = {k: float(rng.normal()) for k in PRODUCTS if k not in owned}
        lam = CHURN_BASE * math.exp(-1.2 * h)
        mu = {k: BUY_BASE * math.exp(1.3 * u) for k, u in interest.items()}
        out.churn_rate[lead], out.buy_rate[lead] = lam, mu
        start = float(rng.uniform(0, days * 0.3))
        out.events.append(
            LeadCreated(
                type="lead.created",
                event_id=next(ids),
                occurred_at=_at(start),
                fields=LeadFields(
                    company=f"Customer {i}",
                    stage="customer",
                    deal_value=Decimal(str(round(float(rng.lognormal(9, 0.8)), 2))),
                    custom={"products": ",".join(sorted(owned)), "status": "active"},
                ),
                **common,
            )
        )
        churn_at = start + float(rng.exponential(1 / lam))
        end = min(churn_at, days)
        buys = {k: start + float(rng.exponential(1 / m)) for k, m in mu.items()}
        # usage: app views (more the healthier), pricing views (more the keener on a product),
        # and a monthly usage report
        top = max(interest.values(), default=-3.0)
        for path, rate in (
            ("/app", 0.5 * math.exp(0.7 * h)),
            ("/pricing", 0.05 * math.exp(1.0 * top)),
        ):
            n_views = int(rng.poisson(rate * (end - start)))
            for day in np.sort(rng.uniform(start, end, n_views)):
                out.events.append(
                    PageViewed(
                        type="page.viewed",
                        event_id=next(ids),
                        occurred_at=_at(float(day)),
                        path=path,
                        **common,
                    )
                )
        day = start + float(rng.uniform(1, 30))
        while day < end:
            custom: dict[str, Any] = {
                "usage_change_pct": round(float(10 * h + rng.normal(0, 12)), 1)
            }
            for k, u in interest.items():
                custom[f"{k}_trial_users"] = int(rng.poisson(2 * math.exp(0.8 * u)))
            out.events.append(
                LeadUpdated(
                    type="lead.updated",
                    event_id=next(ids),
                    occurred_at=_at(day),
                    fields=LeadFields(custom=custom),
                    **common,
                )
            )
            day += 30
        for k, t in sorted(buys.items(), key=lambda kv: kv[1]):
            if t < end:
                owned.add(k)
                out.events.append(
                    LeadUpdated(
                        type="lead.updated",
                        event_id=next(ids),
                        occurred_at=_at(t),
                        fields=LeadFields(
                            custom={"purchased": k, "products": ",".join(sorted(owned))}
                        ),
                        **common,
                    )
                )
        if churn_at < days:
            out.events.append(
                LeadUpdated(
                    type="lead.updated",
                    event_id=next(ids),
                    occurred_at=_at(churn_at),
                    fields=LeadFields(custom={"status": "churned"}),
                    **common,
                )
            )
    out.events.sort(key=lambda e: (e.occurred_at, e.event_id))
    return out
