"""Pipeline forecast by month: open deals' calibrated probability × value, by expected close
month, with an interval, per rep and team, and a month-start backtest beside it.

At a moment T every open deal (a lead created, not yet won or lost) has the conversion
model's calibrated probability ``p`` and a value (``deal_value``). Its expected revenue
``p × value`` is placed in the month of the deal's expected close date
(``deal.close_date``; a date already past counts for the current month — the deal
slipped; no date: the month the model's horizon ends). Month 0 is the month T is in.

The interval is the 10th-90th percentile of 2,000 draws of the deals as independent coin
flips: the luck in a month made of a few large deals.

Backtest: the same forecast made at each past month start, beside what the deals open
then actually brought in during each following month (their won ``amount``, else their
value), per months ahead. New deals created later are not in it: it forecasts the
pipeline that exists.

Bias: the model answers "won within the horizon" and reps' close dates are optimistic, so
the raw figure is wrong by a factor that depends on how far ahead the month is. The
backtest measures that factor for each month ahead — actual / forecast over the past
forecasts whose month was over *at the time* — and the corrected forecast multiplies by
it. The correction is rolled forward: a past forecast is corrected only with what was
known at its own month start, so the backtest of the corrected figure is out of sample.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nudge.events import DealWon, LeadEvent
from scoring.model_scorer import CompiledModel
from scoring.state import LeadState, apply_event
from scoring.train import outcome_time

DRAWS = 2000
MIN_POINTS = 2
"""Past forecasts needed for a months-ahead correction (fewer: the raw figure stands)."""


@dataclass(frozen=True)
class Deal:
    lead_id: str
    p: float
    value: float
    rep: str
    month: int
    """Months after the cut's month that the deal is expected to close in."""


@dataclass
class Month:
    """The forecast for one calendar month, made at ``made_at``."""

    start: dt.date
    ahead: int
    expected: float
    low: float
    high: float
    deals: int
    raw: float
    """Before the months-ahead correction."""
    correction: float
    by_rep: dict[str, float] = field(default_factory=dict)
    by_team: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "month": self.start.isoformat()[:7],
            "ahead": self.ahead,
            "expected": round(self.expected, 2),
            "interval_80": [round(self.low, 2), round(self.high, 2)],
            "raw": round(self.raw, 2),
            "correction": round(self.correction, 4),
            "deals": self.deals,
            "by_rep": {k: round(v, 2) for k, v in sorted(self.by_rep.items())},
            "by_team": {k: round(v, 2) for k, v in sorted(self.by_team.items())},
        }


@dataclass(frozen=True)
class Point:
    """One backtest point: at ``made_at``, for the month ``ahead`` months later."""

    made_at: dt.datetime
    ahead: int
    raw: float
    corrected: float
    actual: float


def month_ends(start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    """The first instants of each month after ``start`` up to ``end`` (a month's end)."""
    out: list[dt.datetime] = []
    y, m = start.year, start.month
    while True:
        m += 1
        if m == 13:
            y, m = y + 1, 1
        t = dt.datetime(y, m, 1, tzinfo=dt.UTC)
        if t > end:
            return out
        out.append(t)


def month_start(t: dt.datetime, ahead: int = 0) -> dt.datetime:
    y, m = divmod(t.year * 12 + t.month - 1 + ahead, 12)
    return dt.datetime(y, m + 1, 1, tzinfo=dt.UTC)


def months_between(a: dt.datetime, b: dt.datetime) -> int:
    return (b.year - a.year) * 12 + b.month - a.month


class Book:
    """The history replayed once: the open deals at any cut, and when each deal was won."""

    def __init__(self, events: Iterable[LeadEvent], model: CompiledModel, horizon_days: float):
        self.ordered = sorted(
            (e for e in events if e.lead_id), key=lambda e: (e.occurred_at, e.event_id)
        )
        self.model = model
        self.horizon_days = horizon_days
        self.end = self.ordered[-1].occurred_at if self.ordered else dt.datetime.now(dt.UTC)
        self.start = self.ordered[0].occurred_at if self.ordered else self.end
        self.closed: dict[str, float] = {}
        self.won: dict[str, tuple[dt.datetime, float | None]] = {}
        for e in self.ordered:
            outcome = outcome_time(e)
            lead = str(e.lead_id)
            if outcome and lead not in self.closed:
                self.closed[lead] = outcome[1]
                if outcome[0] == "won":
                    amount = float(e.amount) if isinstance(e, DealWon) and e.amount else None
                    self.won[lead] = (e.occurred_at, amount)
        self._states: dict[str, LeadState] = {}
        self._i = 0
        self._at = -math.inf

    def deals_at(self, cut: dt.datetime) -> list[Deal]:
        """The open deals at ``cut`` (cuts must come in ascending order)."""
        t = cut.timestamp()
        if t < self._at:
            raise ValueError("cuts must be ascending")
        self._at = t
        while self._i < len(self.ordered) and self.ordered[self._i].occurred_at.timestamp() <= t:
            e = self.ordered[self._i]
            apply_event(self._states.setdefault(str(e.lead_id), LeadState(str(e.lead_id))), e)
            self._i += 1
        ids = [k for k in self._states if self.closed.get(k, math.inf) > t]
        if not ids:
            return []
        rows = np.stack([self.model.vector(self._states[k], t) for k in ids])
        p = self.model.calibrate.many(self.model.trees.margins(rows))
        default = cut + dt.timedelta(days=self.horizon_days)
        out = []
        for k, pk in zip(ids, p, strict=True):
            profile = self._states[k].profile
            close = _close(profile, default)
            out.append(
                Deal(
                    lead_id=k,
                    p=float(pk),
                    value=_value(profile),
                    rep=str(profile.get("owner_rep_id") or "(unassigned)"),
                    month=max(0, months_between(cut, close)),
                )
            )
        return out

    def actual(self, deals: list[Deal], cut: dt.datetime, ahead: int) -> float | None:
        """Won value of ``deals`` during the month ``ahead`` months after the cut's month;
        None while that month is not over in the history."""
        start, end = month_start(cut, ahead), month_start(cut, ahead + 1)
        if end > self.end:
            return None
        total = 0.0
        for d in deals:
            won = self.won.get(d.lead_id)
            if won and max(start, cut) < won[0] <= end:
                total += won[1] if won[1] is not None else d.value
        return total


def _close(profile: dict[str, Any], default: dt.datetime) -> dt.datetime:
    raw = (profile.get("deal") or {}).get("close_date")
    try:
        day = dt.date.fromisoformat(str(raw)[:10]) if raw else None
    except ValueError:
        day = None
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC) if day else default


def _value(profile: dict[str, Any]) -> float:
    try:
        return float(profile.get("deal_value") or 0.0)
    except (TypeError, ValueError):
        return 0.0


def by_month(
    deals: list[Deal],
    cut: dt.datetime,
    months: int,
    *,
    corrections: dict[int, float] | None = None,
    teams: dict[str, str] | None = None,
    seed: int = 0,
) -> list[Month]:
    """The forecast for the cut's month and the ``months - 1`` after it."""
    corrections, teams = corrections or {}, teams or {}
    rng = np.random.default_rng(seed)
    out = []
    for k in range(months):
        mine = [d for d in deals if d.month == k]
        r = corrections.get(k, 1.0)
        p = np.asarray([min(1.0, d.p * r) for d in mine])
        v = np.asarray([d.value for d in mine])
        draws = (rng.random((DRAWS, len(p))) < p) @ v if len(p) else np.zeros(DRAWS)
        by_rep: dict[str, float] = {}
        by_team: dict[str, float] = {}
        for d, pk in zip(mine, p, strict=True):
            by_rep[d.rep] = by_rep.get(d.rep, 0.0) + float(pk * d.value)
            team = teams.get(d.rep, "(no team)")
            by_team[team] = by_team.get(team, 0.0) + float(pk * d.value)
        out.append(
            Month(
                start=month_start(cut, k).date(),
                ahead=k,
                expected=float(p @ v) if len(p) else 0.0,
                low=float(np.percentile(draws, 10)),
                high=float(np.percentile(draws, 90)),
                deals=len(mine),
                raw=float(sum(d.p * d.value for d in mine)),
                correction=r,
                by_rep=by_rep,
                by_team=by_team,
            )
        )
    return out


def corrections_known_at(points: list[Point], at: dt.datetime, months: int) -> dict[int, float]:
    """Per months ahead: Σ actual / Σ raw forecast over the points whose month was over at
    ``at`` (at least :data:`MIN_POINTS` of them)."""
    out: dict[int, float] = {}
    for k in range(months):
        known = [q for q in points if q.ahead == k and month_start(q.made_at, k + 1) <= at]
        raw = sum(q.raw for q in known)
        if len(known) >= MIN_POINTS and raw > 0:
            out[k] = sum(q.actual for q in known) / raw
    return out


@dataclass
class Result:
    made_at: dt.datetime
    months: list[Month]
    points: list[Point]

    def summary(self) -> dict[int, dict[str, Any]]:
        """Per months ahead: points, and the error as a share of what closed — weighted
        absolute error ``Σ|forecast − actual| / Σ actual`` and bias ``Σ(forecast − actual)
        / Σ actual`` — corrected and raw. Weighted, so a month where little closed does
        not swamp the figure (a mean of per-month percentages would)."""
        out: dict[int, dict[str, Any]] = {}
        for k in sorted({q.ahead for q in self.points}):
            known = [q for q in self.points if q.ahead == k]
            total = sum(q.actual for q in known)
            if total <= 0:
                continue
            out[k] = {
                "points": len(known),
                "raw_error": round(sum(abs(q.raw - q.actual) for q in known) / total, 4),
                "raw_bias": round(sum(q.raw - q.actual for q in known) / total, 4),
                "error": round(sum(abs(q.corrected - q.actual) for q in known) / total, 4),
                "bias": round(sum(q.corrected - q.actual for q in known) / total, 4),
            }
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "made_at": self.made_at.isoformat(),
            "months": [m.as_dict() for m in self.months],
            "backtest": [
                {
                    "made_at": q.made_at.isoformat(),
                    "ahead": q.ahead,
                    "raw": round(q.raw, 2),
                    "forecast": round(q.corrected, 2),
                    "actual": round(q.actual, 2),
                }
                for q in self.points
            ],
            "backtest_by_months_ahead": self.summary(),
        }


def forecast(
    events: Iterable[LeadEvent],
    model: CompiledModel,
    *,
    horizon_days: float,
    months: int = 6,
    teams: dict[str, str] | None = None,
) -> Result:
    """Today's (the history's end) forecast by month, and the month-start backtest."""
    book = Book(events, model, horizon_days)
    points: list[Point] = []
    for cut in month_ends(book.start, book.end):
        deals = book.deals_at(cut)
        corrections = corrections_known_at(points, cut, months)
        for m in by_month(deals, cut, months, corrections=corrections):
            actual = book.actual(deals, cut, m.ahead)
            if actual is not None:
                points.append(Point(cut, m.ahead, m.raw, m.expected, actual))
    now = book.end
    today = by_month(
        book.deals_at(now),
        now,
        months,
        corrections=corrections_known_at(points, now, months),
        teams=teams,
    )
    return Result(now, today, points)


def format_result(result: Result) -> str:
    """The forecast by month with its backtest error per months ahead, for a terminal."""
    summary = result.summary()
    lines = [
        f"forecast made {result.made_at:%Y-%m-%d} from the open deals",
        "month     deals   forecast   80% interval            raw   x corr  "
        "| backtest: months  error  bias (raw error, bias)",
    ]
    for m in result.months:
        s = summary.get(m.ahead)
        back = (
            f"| {s['points']:>2} past  {s['error']:>5.0%} {s['bias']:>+5.0%} "
            f"({s['raw_error']:.0%}, {s['raw_bias']:+.0%})"
            if s
            else "| no past month to check against yet"
        )
        lines.append(
            f"{m.start:%Y-%m}  {m.deals:>6,}  {m.expected:>9,.0f}  "
            f"{m.low:>9,.0f}-{m.high:<9,.0f}  {m.raw:>9,.0f}  {m.correction:>5.2f}  {back}"
        )
    return "\n".join(lines)
