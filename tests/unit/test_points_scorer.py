"""The points scorer and the lead state it updates."""

from __future__ import annotations

import datetime as dt

from nudge.events import FormSubmitted, LeadCreated, PageViewed
from scoring.points import PointsScorer
from scoring.state import LeadState, apply_event

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def view(n: int, path: str, hours: float = 0) -> PageViewed:
    return PageViewed(
        type="page.viewed",
        event_id=f"p{n}",
        source="web",
        lead_id="L",
        occurred_at=T0 + dt.timedelta(hours=hours),
        path=path,
    )


def run(state: LeadState, scorer: PointsScorer, *events: object) -> float:
    value = 0.0
    for event in events:
        assert apply_event(state, event)  # type: ignore[arg-type]
        score = scorer.rescore(state, event, T0)  # type: ignore[arg-type]
        state.record_score(score)
        value = score.value
    return value


def test_pricing_and_demo_make_a_lead_hot_with_reasons() -> None:
    """Two pricing visits and a demo request score above 70 %, with those reasons."""
    state, scorer = LeadState("L"), PointsScorer()
    demo = FormSubmitted(
        type="form.submitted",
        event_id="f1",
        source="web",
        lead_id="L",
        occurred_at=T0,
        form="demo-request",
    )
    value = run(state, scorer, view(1, "/pricing"), view(2, "/pricing"), demo)
    assert value > 0.7
    score = state.current_score()
    assert score is not None and score.rule_based
    assert "requested a demo" in score.reasons
    assert "2 pricing-page visits" in score.reasons


def test_points_decay_with_half_life() -> None:
    """Three days later (one half-life) the same lead scores lower."""
    scorer = PointsScorer()
    fresh = run(LeadState("L"), scorer, view(1, "/pricing"), view(2, "/pricing", 0.1))
    stale = run(LeadState("L"), scorer, view(1, "/pricing"), view(2, "/blog", 72))
    assert stale < fresh


def test_duplicate_event_is_not_applied_twice() -> None:
    """apply_event refuses an event id it has seen."""
    state = LeadState("L")
    assert apply_event(state, view(1, "/pricing"))
    assert not apply_event(state, view(1, "/pricing"))


def test_profile_from_crm_events_and_round_trip() -> None:
    """CRM fields land in the profile and survive the table's JSON round trip."""
    state = LeadState("L")
    apply_event(
        state,
        LeadCreated(
            type="lead.created",
            event_id="c",
            source="crm",
            lead_id="L",
            occurred_at=T0,
            fields={
                "company": "Acme",  # type: ignore[arg-type]
                "owner_rep_id": "r1",
            },
        ),
    )
    run(state, PointsScorer(), view(1, "/pricing"))
    again = LeadState.from_dict(state.to_dict())
    assert again.view().company == "Acme" and again.view().owner_rep_id == "r1"
    assert again.current_score() == state.current_score()
