"""The manager's rules from the rules issue, written as the README shows, replayed:

1. "3 pricing-page views within a day" (a windowed count);
2. "... unless a rep contacted the lead in the last 2 days" (`lead.last_contacted_at`,
   which calls and meetings set and web visits do not);
3. escalation to the manager when the owner does not act.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from nudge.events import parse_event
from playbooks import parse_playbook
from replay.simulate import simulate

T0 = dt.datetime(2026, 3, 2, 14, 0, tzinfo=dt.UTC)

MANAGER = """
name: pricing-interest
owner: sales-manager@example.com
version: 1
rules:
  - id: three-pricing-views
    trigger:
      type: event
      event: page.viewed
      where: {path: {starts_with: /pricing}}
      count: {at_least: 3, within: 1d}
    conditions:
      - not: {field: lead.last_contacted_at, within: 2d}
    cooldown: 3d
    actions:
      - type: nudge
        to: owner
        template: "{{ lead.company }} looked at pricing {{ match.count }}. Call them?"
      - type: escalate
        after: 4h
        to: manager
        template: "{{ lead.company }}: pricing interest, no call in 4 h"
"""

REP = {
    "event_id": "rep",
    "type": "rep.upserted",
    "occurred_at": "2026-03-01T00:00:00+00:00",
    "source": "crm",
    "rep_id": "rep-a",
    "name": "Ana",
    "phone": "+14155550101",
    "timezone": "UTC",
    "manager_rep_id": "rep-m",
}
MGR = REP | {"event_id": "mgr", "rep_id": "rep-m", "name": "Max", "phone": "+14155550109"}


def ev(n: int, minutes: float, kind: str = "page.viewed", **extra: Any) -> Any:
    base = {
        "event_id": f"e{n}",
        "type": kind,
        "occurred_at": (T0 + dt.timedelta(minutes=minutes)).isoformat(),
        "source": "web",
        "lead_id": "L1",
    }
    if kind == "page.viewed":
        base["path"] = extra.pop("path", "/pricing")
    return parse_event(base | extra)


def created() -> Any:
    return parse_event(
        {
            "event_id": "c",
            "type": "lead.created",
            "occurred_at": (T0 - dt.timedelta(hours=1)).isoformat(),
            "source": "crm",
            "lead_id": "L1",
            "fields": {"company": "Acme", "owner_rep_id": "rep-a"},
        }
    )


def run(events: list[Any]) -> list[Any]:
    report = simulate(
        [parse_event(REP), parse_event(MGR), created(), *events],
        [parse_playbook(MANAGER, "pricing.yaml")],
        horizon=dt.timedelta(hours=6),
    )
    return [o.command for o in report.outcomes]


def test_three_pricing_views_within_a_day_fire_once_and_escalate() -> None:
    sent = run([ev(1, 0), ev(2, 30, path="/blog"), ev(3, 60), ev(4, 90), ev(5, 120)])
    [nudge, escalation] = sent
    assert nudge.rep_id == "rep-a" and "looked at pricing 3 within 1d" in nudge.text
    assert nudge.created_at == T0 + dt.timedelta(minutes=90)
    assert escalation.rep_id == "rep-m" and "no call in 4 h" in escalation.text


def test_views_spread_over_more_than_a_day_do_not_count() -> None:
    assert run([ev(1, 0), ev(2, 60 * 13), ev(3, 60 * 26)]) == []


def test_a_recent_call_holds_the_nudge_but_a_web_visit_does_not() -> None:
    call = ev(9, -60 * 24, kind="call.ended", source="voip", duration_s=300, rep_id="rep-a")
    assert run([call, ev(1, 0), ev(2, 10), ev(3, 20)]) == []
    visit = ev(9, -60 * 24, path="/about")
    assert len(run([visit, ev(1, 0), ev(2, 10), ev(3, 20)])) == 2


def test_a_call_after_the_nudge_stops_the_escalation() -> None:
    call = ev(9, 120, kind="call.ended", source="voip", duration_s=300, rep_id="rep-a")
    [nudge] = run([ev(1, 0), ev(2, 10), ev(3, 20), call])
    assert nudge.rep_id == "rep-a"
