"""Pipeline forecast: expected revenue from open leads, interval, per rep, backtest."""

from __future__ import annotations

import datetime as dt

from nudge.events import LeadCreated
from scoring.forecast import backtest_summary, forecasts, format_forecast, month_ends
from scoring.model_scorer import CompiledModel


def test_forecast_and_backtest_on_generated_history(small_world) -> None:  # type: ignore[no-untyped-def]
    """Month-end forecasts over the generated history land near what closed: the mean
    absolute error is under 35 %, every forecast sits inside its interval's bounds, the
    per-rep figures add up to the total, and the last month (horizon not over) has no
    actual yet."""
    data, _snaps, result = small_world
    events = [
        e.model_copy(
            update={
                "fields": e.fields.model_copy(
                    update={"owner_rep_id": f"rep{int(str(e.lead_id)[1:]) % 3}"}
                )
            }
        )
        if isinstance(e, LeadCreated)
        else e
        for e in data.events
    ]
    model = CompiledModel(result.booster_json, result.meta)
    first, last = events[0].occurred_at, events[-1].occurred_at
    cuts = [*month_ends(first, last)[1:], last]
    points = forecasts(events, model, cuts, horizon_days=30, teams={"rep0": "east", "rep1": "east"})
    assert len(points) == len(cuts) and points[-1].actual is None
    for f in points:
        assert f.low <= f.expected <= f.high
        assert abs(sum(f.by_rep.values()) - f.expected) < 1e-6 * max(1.0, f.expected)
        assert set(f.by_team) <= {"east", "(no team)"}
    summary = backtest_summary(points)
    assert summary["points"] >= 3
    assert summary["mape"] < 0.35, (summary, [p.as_dict() for p in points])
    text = format_forecast(points, summary)
    assert "backtest over" in text and "interval" in text


def test_month_ends() -> None:
    """Month starts strictly after the start, up to the end."""
    a = dt.datetime(2026, 1, 15, tzinfo=dt.UTC)
    b = dt.datetime(2026, 4, 1, tzinfo=dt.UTC)
    assert [m.month for m in month_ends(a, b)] == [2, 3, 4]
