"""Builders for signals and playbooks used across the playbook tests."""

from __future__ import annotations

import datetime as dt
from typing import Any

from nudge.signals import LeadSignal, LeadView, RepView, Score, ScorePoint, TargetScore
from playbooks import parse_playbook

NOW = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)
REP = RepView(
    rep_id="rep-1", name="Ana", timezone="America/New_York", manager_rep_id="mgr-1", team="east"
)


def signal(
    value: float = 0.5,
    previous: float | None = 0.4,
    *,
    event: dict[str, Any] | None = None,
    event_id: str = "e1",
    at: dt.datetime = NOW,
    history: list[tuple[dt.datetime, float]] | None = None,
    rep: RepView | None = REP,
    targets: dict[str, TargetScore] | None = None,
    **lead: Any,
) -> LeadSignal:
    ev = event or {"type": "page.viewed", "path": "/blog"}
    fields = {"lead_id": "L1", "company": "Acme", "owner_rep_id": "rep-1"} | lead
    return LeadSignal(
        lead=LeadView(**fields),
        event=ev,
        event_id=event_id,
        event_type=ev["type"],
        at=at,
        score=Score(
            value=value,
            previous=previous,
            reasons=["2 pricing-page visits"],
            model_version="t",
            rule_based=True,
            scored_at=at,
        ),
        history=[ScorePoint(at=a, value=v) for a, v in history or []],
        rep=rep,
        targets=targets or {},
    )


def target_score(
    value: float,
    previous: float | None = None,
    *,
    reasons: tuple[str, ...] = (),
    expected_value: float | None = None,
    at: dt.datetime = NOW,
    history: list[tuple[dt.datetime, float]] | None = None,
    first: dt.datetime | None = None,
) -> TargetScore:
    """A lead's score for a target beyond conversion (churn, cross-sell), as a signal has it."""
    return TargetScore(
        score=Score(
            value=value,
            previous=previous,
            reasons=list(reasons),
            model_version="m-t",
            rule_based=False,
            expected_value=expected_value,
            scored_at=at,
        ),
        history=[ScorePoint(at=a, value=v) for a, v in history or []]
        + [ScorePoint(at=at, value=value)],
        first_scored_at=first or at - dt.timedelta(days=30),
    )


def playbook(rules: str, head: str = "") -> Any:
    """A playbook from the YAML of its rules (indented two spaces)."""
    return parse_playbook(f"name: t\nowner: me\nversion: 1\n{head}rules:\n{rules}", "t.yaml")
