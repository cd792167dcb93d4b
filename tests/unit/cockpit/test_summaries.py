"""Per-rule and per-rep figures from hand-made record rows, and the rule lift end to end
from generated exploration decisions with a known effect."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from cockpit.summaries import control_units, rep_rows, rule_rows

T0 = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)
H30 = dt.timedelta(days=30)


def iso(hours: float) -> str:
    return (T0 + dt.timedelta(hours=hours)).isoformat()


def nudge(
    nid: str, lead: str, rep: str = "rep-1", state: str = "sent", **kw: Any
) -> dict[str, Any]:
    return {
        "nudge_id": nid,
        "lead_id": lead,
        "rep_id": rep,
        "state": state,
        "playbook": "hot-lead",
        "rule": "crossed",
        "created_at": iso(0),
        "sent_at": iso(0),
        "reason": None,
        "exploration": False,
        "propensity": 1.0,
        "text": f"{lead} is hot",
    } | kw


def test_rule_rows_count_states_replies_and_conversions() -> None:
    """Two sent (one answered within 24 h, one answered too late), one suppressed with
    its reason; one of three leads won within the horizon, one won after it."""
    nudges = [
        nudge("n1", "A"),
        nudge("n2", "B"),
        nudge("n3", "C", state="suppressed", reason="opted out", sent_at=None),
    ]
    replies = [
        {"rep_id": "rep-1", "lead_id": "A", "at": iso(2)},
        {"rep_id": "rep-1", "lead_id": "B", "at": iso(30)},  # after the 24 h window
        {"rep_id": "rep-2", "lead_id": "A", "at": iso(1)},  # another rep
    ]
    outcomes = {
        "A": {"status": "won", "won_at": (T0 + dt.timedelta(days=3)).timestamp()},
        "B": {"status": "won", "won_at": (T0 + dt.timedelta(days=45)).timestamp()},
        "C": {"status": "open", "won_at": None},
    }
    (row,) = rule_rows(nudges, replies, outcomes, H30)
    assert row["states"] == {"sent": 2, "suppressed": 1}
    assert row["why"] == [("suppressed: opted out", 1)]
    assert (row["went_out"], row["answered"], row["reply_rate"]) == (2, 1, 0.5)
    assert (row["leads"], row["converted"]) == (3, 1)
    assert row["lift"] is None
    reps = rep_rows(
        [
            {"rep_id": "rep-1", "name": "R1", "phone": "+1555", "sms_opted_out": 0},
            {"rep_id": "rep-2", "name": "R2", "phone": "+1666", "sms_opted_out": 0},
        ],
        nudges,
        replies,
        [
            {"session_id": "s1", "rep_id": "rep-1", "status": "completed", "requested_at": iso(0)},
            {"session_id": "s2", "rep_id": "rep-1", "status": "expired", "requested_at": iso(1)},
        ],
        {"s1": iso(0.5)},
        {"+1666"},
        outcomes,
        H30,
    )
    r1, r2 = reps
    assert (r1["went_out"], r1["answered"], r1["median_response_min"]) == (2, 1, 120.0)
    assert (r1["questionnaires"], r1["completed"], r1["median_answer_min"]) == (2, 1, 30.0)
    assert r1["suppressed"] == 1 and not r1["opted_out"]
    assert r2["opted_out"] and r2["nudges"] == 0 and r2["response_rate"] is None


def test_rule_lift_from_generated_exploration_decisions_with_a_known_effect() -> None:
    """A rule whose exploration nudges raise 30-day conversion by 10 points: the page's
    lift interval holds 0.10 and excludes 0."""
    rng = random.Random(17)
    decisions, outcomes = [], {}
    for i in range(30_000):
        lead = f"L{i}"
        treated = rng.random() < 0.2
        converts = rng.random() < 0.15 + (0.10 if treated else 0.0)
        decisions.append(
            {
                "playbook": "hot-lead",
                "rule": "crossed",
                "lead_id": lead,
                "at": iso(0),
                "treated": treated,
                "propensity": 0.2,
            }
        )
        delay = dt.timedelta(days=rng.uniform(1, 29) if converts else 400)
        outcomes[lead] = {"status": "won", "won_at": (T0 + delay).timestamp()}
    control = control_units(decisions, outcomes, H30)
    (row,) = rule_rows([nudge("n1", "L0")], [], outcomes, H30, control)
    lift = row["lift"]
    assert lift is not None
    assert lift.low < 0.10 < lift.high and lift.low > 0
    assert lift.n_treated + lift.n_control == 30_000
