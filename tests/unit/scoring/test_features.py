"""Feature state: decay, order independence, serialisation, catalogue wording."""

from __future__ import annotations

import json
import math

import pytest

from scoring.features import (
    BASE_NAMES,
    FEATURES,
    compile_extractors,
    describe,
    discover_names,
    family_of,
    feature_vector,
)
from scoring.state import LeadState, apply_event

from .helpers import at, created, demo, view, won


def vec(state: LeadState, names: list[str], hours: float) -> dict[str, float]:
    values = feature_vector(
        state.features, state.profile, compile_extractors(names), at(hours).timestamp()
    )
    return dict(zip(names, values, strict=True))


def test_counters_halve_after_their_half_life() -> None:
    """One pricing visit counts 1 at once, 0.5 a day later in the 1-day counter, ~0.9 in 7-day."""
    state = LeadState("L")
    apply_event(state, view("L", 0, "/pricing"))
    names = ["n1d:pricing_view", "n7d:pricing_view", "n1d:page.viewed", "n1d:silo:web"]
    assert vec(state, names, 0) == {n: 1.0 for n in names}
    later = vec(state, names, 24)
    assert later["n1d:pricing_view"] == pytest.approx(0.5)
    assert later["n7d:pricing_view"] == pytest.approx(2 ** (-1 / 7))


def test_late_event_gives_the_same_features_as_in_order() -> None:
    """An event delivered after a later one leaves the same decayed counts as in-order delivery."""
    events = [view("L", 0, "/pricing"), view("L", 30), demo("L", 50)]
    in_order, shuffled = LeadState("L"), LeadState("L")
    for e in events:
        apply_event(in_order, e)
    for e in (events[2], events[0], events[1]):
        apply_event(shuffled, e)
    names = list(BASE_NAMES)
    a, b = vec(in_order, names, 60), vec(shuffled, names, 60)
    for name in names:
        assert a[name] == pytest.approx(b[name], nan_ok=True), name


def test_outcomes_are_not_features() -> None:
    """A deal.won event changes no counter, so the label cannot leak into the features."""
    state = LeadState("L")
    apply_event(state, view("L", 0))
    before = json.dumps(state.features, sort_keys=True)
    apply_event(state, won("L", 1))
    assert json.dumps(state.features, sort_keys=True) == before


def test_state_survives_a_json_round_trip() -> None:
    """Features stored as JSON in the Faust table give the same vector after reloading."""
    state = LeadState("L")
    for e in [
        created("L", 0, industry="software", employees=40),
        view("L", 2, "/pricing"),
        demo("L", 3),
    ]:
        apply_event(state, e)
    names = discover_names([state.profile])
    again = LeadState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert vec(again, names, 5) == pytest.approx(vec(state, names, 5), nan_ok=True)


def test_recency_profile_and_questionnaire_answers() -> None:
    """Hours since last touch, CRM fields, categorical levels and yes/no answers reach the vector."""
    state = LeadState("L")
    apply_event(
        state,
        created(
            "L",
            0,
            industry="retail",
            employees=12,
            custom={"budget": "yes", "seats": 30, "note": "hi"},
        ),
    )
    apply_event(state, view("L", 4))
    names = discover_names([state.profile])
    assert "custom.budget" in names and "custom.seats" in names and "custom.note" not in names
    v = vec(state, names, 10)
    assert v["hours_since:web"] == pytest.approx(6)
    assert math.isnan(v["hours_since:call"])
    assert v["employees"] == 12 and v["industry=retail"] == 1.0
    assert v["custom.budget"] == 1.0 and v["custom.seats"] == 30.0


def test_reasons_are_worded_from_the_catalogue() -> None:
    """Counts, zeros, recency, categoricals and answers read as plain words."""
    assert describe("n1d:pricing_view", 2.6) == "3 pricing-page visits in the last day"
    assert describe("n7d:demo_request", 1.2) == "1 demo request in the last week"
    assert describe("n30d:email.clicked", 0.2) == "no email links clicked in the last month"
    assert describe("hours_since:web", 3.2) == "last website visit 3 h ago"
    assert describe("hours_since:call", math.nan) == "no call or meeting yet"
    assert describe("industry=software", 1.0) == "industry is software"
    assert describe("custom.budget", 1.0) == "answered budget: yes"
    assert describe("employees", 1200.0) == "company of 1,200 employees"


def test_every_base_feature_has_a_catalogue_family() -> None:
    """No feature can be produced that the catalogue cannot word."""
    for name in BASE_NAMES:
        assert family_of(name) in FEATURES
        assert describe(name, 1.0)
