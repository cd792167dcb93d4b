"""Synthetic leads with a known conversion process, to check the model end to end.

Why: the real data we have (bank marketing) is tabular, not an event stream, so it
cannot test the replay → features → snapshots → labels path. Here each lead has a hidden
intent ``z``; the rate of every kind of activity grows with ``z`` (more pricing visits,
more clicked emails, more demo requests), and the lead eventually converts with the
*known* probability ``truth[lead_id] = sigmoid(b + 1.4 z + industry + size)``. The
outcome arrives after an exponential delay (memoryless), so the best possible score for
"converts within the horizon" ranks leads exactly by that probability: the AUC of
``truth`` on the snapshots is the ceiling a model trained on events can approach.

Each deal carries the rep's expected close date (``deal.close_date``), as CRMs do: the
real outcome date pulled earlier by 0-50 % (reps are optimistic) with ± 5 days of noise,
for the pipeline forecast by month.

Deterministic: the same seed gives the same events.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np

from nudge.events import (
    CallEnded,
    DealFields,
    DealLost,
    DealWon,
    EmailClicked,
    EmailOpened,
    FormSubmitted,
    LeadCreated,
    LeadEvent,
    LeadFields,
    LeadUpdated,
    MeetingEnded,
    PageViewed,
    RepUpserted,
    SearchKeyword,
    SocialMention,
)

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
INDUSTRIES = {"software": 0.5, "finance": 0.2, "health": 0.0, "retail": -0.4}
# kind → (base events per day, sensitivity to intent z)
RATES = {
    "page": (0.6, 0.6),
    "pricing": (0.12, 1.1),
    "open": (0.4, 0.3),
    "click": (0.08, 0.9),
    "demo": (0.015, 1.3),
    "search": (0.1, 0.6),
    "call": (0.06, 0.6),
    "meeting": (0.02, 0.9),
    "social": (0.04, 0.0),
}
MEAN_DAYS_TO_OUTCOME = 25.0
REPS = (("rep-1", "east"), ("rep-2", "east"), ("rep-3", "west"), ("rep-4", "west"))
"""The owners the leads are dealt to in turn, and their teams (``reps()``)."""


@dataclass
class Synthetic:
    events: list[LeadEvent]
    truth: dict[str, float]
    """lead_id → the true probability that the lead converts."""
    created: dict[str, float] = field(default_factory=dict)
    """lead_id → the epoch the lead was created."""

    def within(self, lead_id: str, at: float, horizon_days: float = 30.0) -> float:
        """The true probability that an open lead converts within the horizon after ``at``.

        The outcome comes ``1 + Exp(MEAN_DAYS_TO_OUTCOME)`` days after creation, whatever
        it is, so for a lead still open at ``at`` the chance its outcome falls inside the
        horizon is known exactly (memoryless after the first day), and the outcome is a
        win with probability ``truth``.
        """
        return within(self.truth[lead_id], self.created[lead_id], at, horizon_days)

    def truth_json(self) -> dict[str, Any]:
        """What ``nudge model synth --truth`` writes and ``train --truth`` reads."""
        return {
            "process": "conversion",
            "mean_days_to_outcome": MEAN_DAYS_TO_OUTCOME,
            "leads": {k: [self.truth[k], self.created[k]] for k in self.truth},
        }


def reps() -> list[RepUpserted]:
    """The owners of the generated leads, with their teams (before any lead event)."""
    return [
        RepUpserted(
            type="rep.upserted",
            event_id=f"synthetic-{rep}",
            occurred_at=START - dt.timedelta(days=1),
            source="synthetic",
            rep_id=rep,
            name=f"Rep {rep[4:]}",
            team=team,
        )
        for rep, team in REPS
    ]


def within(p: float, created: float, at: float, horizon_days: float) -> float:
    """P(converts within ``horizon_days`` after epoch ``at``) for a lead open at ``at``."""
    first = created + 86400.0  # no outcome in the first day
    start = max(at, first)
    span = (at + horizon_days * 86400.0 - start) / 86400.0
    if span <= 0:
        return 0.0
    return p * (1.0 - math.exp(-span / MEAN_DAYS_TO_OUTCOME))


def truth_from_json(doc: dict[str, Any], horizon_days: float) -> Callable[[str, float], float]:
    """The ``(lead_id, epoch) → probability`` function for ``train`` from ``truth_json``."""
    leads = doc["leads"]

    def fn(lead_id: str, at: float) -> float:
        p, created = leads[lead_id]
        return within(float(p), float(created), at, horizon_days)

    return fn


def _at(day: float) -> dt.datetime:
    return START + dt.timedelta(days=day)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def generate(n_leads: int = 1500, days: int = 180, seed: int = 7) -> Synthetic:
    """``n_leads`` leads created over ``days`` days, with their activity and outcomes."""
    rng = np.random.default_rng(seed)
    # the reps' expected close dates: a stream of their own, so adding them changed no
    # other draw (and no earlier generated world)
    guess = np.random.default_rng(seed + 10_000)
    events: list[LeadEvent] = []
    truth: dict[str, float] = {}
    born: dict[str, float] = {}
    industries = list(INDUSTRIES)
    for i in range(n_leads):
        lead = f"L{i:05d}"
        z = float(rng.normal())
        industry = industries[int(rng.integers(len(industries)))]
        employees = int(math.exp(rng.normal(4.5, 1.5))) + 1
        p = _sigmoid(-1.3 + 1.4 * z + INDUSTRIES[industry] + 0.15 * (math.log10(employees) - 2))
        truth[lead] = p
        created = float(rng.uniform(0, days - 5))
        born[lead] = _at(created).timestamp()
        outcome_at = created + 1 + float(rng.exponential(MEAN_DAYS_TO_OUTCOME))
        won = bool(rng.random() < p)
        ids = (f"{lead}-{k}" for k in range(1, 10**9))

        common: dict[str, Any] = {"source": "synthetic", "lead_id": lead}
        value = round(float(rng.lognormal(9, 1)), 2)
        expected_close = created + max(
            1.0, (outcome_at - created) * float(guess.uniform(0.5, 1.1)) + float(guess.normal(0, 5))
        )
        events.append(
            LeadCreated(
                type="lead.created",
                event_id=next(ids),
                occurred_at=_at(created),
                fields=LeadFields(
                    company=f"Company {i}",
                    industry=industry,
                    employees=employees,
                    deal_value=Decimal(str(value)),
                    stage="new",
                    owner_rep_id=REPS[i % len(REPS)][0],
                    deal=DealFields(close_date=_at(expected_close).date()),
                ),
                **common,
            )
        )
        end = min(outcome_at, days)
        for kind, (base, sens) in RATES.items():
            rate = base * math.exp(sens * z)
            n = int(rng.poisson(rate * (end - created)))
            for day in np.sort(rng.uniform(created, end, n)):
                events.append(_activity(kind, next(ids), _at(float(day)), rng, common))
        if rng.random() < 0.5:  # a questionnaire answer, informative about z
            day = float(rng.uniform(created, end))
            events.append(
                LeadUpdated(
                    type="lead.updated",
                    event_id=next(ids),
                    occurred_at=_at(day),
                    fields=LeadFields(
                        custom={"budget_confirmed": bool(rng.random() < _sigmoid(z))}
                    ),
                    **common,
                )
            )
        if outcome_at <= days:
            if won:
                events.append(
                    DealWon(
                        type="deal.won", event_id=next(ids), occurred_at=_at(outcome_at), **common
                    )
                )
            else:
                events.append(
                    DealLost(
                        type="deal.lost", event_id=next(ids), occurred_at=_at(outcome_at), **common
                    )
                )
    events.sort(key=lambda e: (e.occurred_at, e.event_id))
    return Synthetic(events, truth, born)


def _activity(
    kind: str, event_id: str, when: dt.datetime, rng: np.random.Generator, common: dict[str, Any]
) -> LeadEvent:
    k = {"event_id": event_id, "occurred_at": when, **common}
    if kind == "page":
        path = ["/", "/blog/post", "/product", "/docs"][int(rng.integers(4))]
        return PageViewed(type="page.viewed", path=path, **k)
    if kind == "pricing":
        return PageViewed(type="page.viewed", path="/pricing", **k)
    if kind == "open":
        return EmailOpened(type="email.opened", campaign="nurture", **k)
    if kind == "click":
        return EmailClicked(type="email.clicked", campaign="nurture", **k)
    if kind == "demo":
        return FormSubmitted(type="form.submitted", form="demo-request", **k)
    if kind == "search":
        return SearchKeyword(type="search.keyword", keyword="crm software", **k)
    if kind == "call":
        secs = float(rng.uniform(60, 1800))
        return CallEnded(type="call.ended", duration_s=secs, **k)
    if kind == "meeting":
        return MeetingEnded(type="meeting.ended", duration_s=1800.0, **k)
    return SocialMention(type="social.mention", network="linkedin", **k)
