"""Guard state stays bounded however long a worker runs."""

from __future__ import annotations

import datetime as dt

from playbooks.guards import KEEP_PLANS, GuardState, Plan

T0 = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)


def test_plans_are_forgotten_a_day_after_they_came_due() -> None:
    state = GuardState()
    for day in range(90):
        now = T0 + dt.timedelta(days=day)
        for lead in range(50):
            key = f"pb|rule|L{day}-{lead}"
            state.planned[key] = Plan(schedule_id=f"s{day}-{lead}", due_at=now)
        state.prune(now)
    # only the plans due in the last day are left, not 90 days' worth
    assert len(state.planned) == 50
    assert all(T0 + dt.timedelta(days=89) - p.due_at < KEEP_PLANS for p in state.planned.values())


def test_a_plan_due_later_is_kept() -> None:
    state = GuardState(planned={"k": Plan(schedule_id="s", due_at=T0 + dt.timedelta(days=120))})
    state.prune(T0 + dt.timedelta(days=30))
    assert "k" in state.planned


def test_state_written_with_bare_schedule_ids_still_loads_and_prunes() -> None:
    state = GuardState.model_validate({"planned": {"pb|r|L1": "sched-1"}})
    assert state.planned["pb|r|L1"].schedule_id == "sched-1"
    state.prune(T0)
    assert state.planned == {}
