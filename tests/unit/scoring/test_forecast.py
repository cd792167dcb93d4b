"""Pipeline forecast by month: open deals by expected close month, interval, per rep and
team, and a month-start backtest whose months-ahead correction is learned out of sample."""

from __future__ import annotations

import datetime as dt

import pytest

from scoring.forecast import (
    Deal,
    Point,
    by_month,
    corrections_known_at,
    forecast,
    format_result,
    month_ends,
)
from scoring.model_scorer import CompiledModel

CUT = dt.datetime(2026, 3, 10, tzinfo=dt.UTC)


def test_forecast_and_backtest_on_generated_history(small_world) -> None:  # type: ignore[no-untyped-def]
    """On the generated history: a figure per month, per rep and team adding up to it,
    and the current month's forecast within 35 % of what closed at past month starts."""
    data, _snaps, result = small_world
    model = CompiledModel(result.booster_json, result.meta)
    teams = {"rep-1": "east", "rep-2": "east", "rep-3": "west", "rep-4": "west"}
    r = forecast(data.events, model, horizon_days=30, months=4, teams=teams)
    assert [m.ahead for m in r.months] == [0, 1, 2, 3]
    assert r.months[0].start == r.made_at.date().replace(day=1)
    for m in r.months:
        assert m.low <= m.high
        assert sum(m.by_rep.values()) == pytest.approx(m.expected)
        assert sum(m.by_team.values()) == pytest.approx(m.expected)
    assert set(r.months[0].by_team) == {"east", "west"}
    summary = r.summary()
    assert summary[0]["points"] >= 3
    assert summary[0]["error"] < 0.35, (summary, r.as_dict()["backtest"])
    # nothing from after a forecast's own month start corrected it
    for q in r.points:
        known = corrections_known_at(r.points, q.made_at, 4)
        assert q.corrected == pytest.approx(q.raw * known.get(q.ahead, 1.0), rel=0.02)
    text = format_result(r)
    assert "past" in text and f"{r.months[1].start:%Y-%m}" in text


def test_deals_fall_in_their_close_month_and_the_correction_scales_them() -> None:
    deals = [
        Deal("a", 0.5, 1000.0, "rep-1", 0),
        Deal("b", 0.2, 5000.0, "rep-2", 1),
        Deal("c", 0.9, 7000.0, "rep-1", 1),
        Deal("d", 0.9, 9000.0, "rep-1", 6),  # beyond the months asked for
    ]
    months = by_month(deals, CUT, 3, corrections={1: 1.5}, teams={"rep-1": "east"})
    assert [m.start.isoformat() for m in months] == ["2026-03-01", "2026-04-01", "2026-05-01"]
    assert [m.deals for m in months] == [1, 2, 0]
    assert months[0].expected == pytest.approx(500.0) and months[0].correction == 1.0
    # c's probability is capped at 1 by the correction: 0.2*1.5*5000 + 1*7000
    assert months[1].raw == pytest.approx(0.2 * 5000 + 0.9 * 7000)
    assert months[1].expected == pytest.approx(1500.0 + 7000.0)
    assert months[1].by_team == pytest.approx({"(no team)": 1500.0, "east": 7000.0})
    assert months[2].expected == 0.0 and months[2].low == months[2].high == 0.0


def test_corrections_use_only_months_over_at_the_time() -> None:
    jan, feb, mar = (dt.datetime(2026, m, 1, tzinfo=dt.UTC) for m in (1, 2, 3))
    points = [Point(jan, 1, 100.0, 100.0, 200.0), Point(feb, 1, 100.0, 100.0, 300.0)]
    assert corrections_known_at(points, mar, 3) == {}  # feb's month +1 (march) is not over
    assert corrections_known_at(points, dt.datetime(2026, 4, 1, tzinfo=dt.UTC), 3) == {1: 2.5}


def test_month_ends() -> None:
    """Month starts strictly after the start, up to the end."""
    a = dt.datetime(2026, 1, 15, tzinfo=dt.UTC)
    b = dt.datetime(2026, 4, 1, tzinfo=dt.UTC)
    assert [m.month for m in month_ends(a, b)] == [2, 3, 4]
