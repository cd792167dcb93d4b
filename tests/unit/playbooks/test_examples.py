"""Each shipped example playbook does what its comment promises."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from nudge.signals import AskQuestionnaire, Command, NudgeCommand, ScheduleStep, UpdateCrmField
from playbooks import decide, evaluate, load_playbooks, resume
from playbooks.loader import EXAMPLES
from playbooks.model import Playbook

from .helpers import NOW, signal, target_score


@pytest.fixture(scope="module")
def examples() -> dict[str, Playbook]:
    return {p.name: p for p in load_playbooks([EXAMPLES])}


def only(commands: list[Command], kind: type) -> list:  # type: ignore[type-arg]
    return [c for c in commands if isinstance(c, kind)]


def test_hot_lead_texts_owner_then_escalates_unless_acted(examples: dict[str, Playbook]) -> None:
    """Crossing 80 % texts the owner with reasons; 4 h later the manager hears, unless the rep acted."""
    pb = [examples["hot-lead-escalating"]]
    nudge, later = evaluate(signal(0.85, 0.6), pb, NOW)
    assert isinstance(nudge, NudgeCommand) and nudge.rep_id == "rep-1" and nudge.channel == "sms"
    assert "Acme is hot: 85% (was 60%)" in nudge.text and "2 pricing-page visits" in nudge.text
    assert isinstance(later, ScheduleStep) and later.due_at == NOW + dt.timedelta(hours=4)
    at = later.due_at
    escalated = resume(later, signal(0.85, 0.6, at=at), pb, at).commands
    assert [
        (c.rep_id, "No action yet on Acme" in c.text) for c in only(escalated, NudgeCommand)
    ] == [("mgr-1", True)]
    assert resume(later, signal(0.85, 0.6, at=at), pb, at, acted=True).commands == []


def test_hot_lead_jump_within_a_day(examples: dict[str, Playbook]) -> None:
    """31 % → 72 % within 24 h (below the 80 % line) fires the jump rule."""
    history = [(NOW - dt.timedelta(hours=12), 0.31)]
    [nudge, _] = evaluate(
        signal(0.72, 0.5, history=history), [examples["hot-lead-escalating"]], NOW
    )
    assert isinstance(nudge, NudgeCommand) and nudge.rule == "jumped-40"


def test_hot_lead_won_deal_cancels_the_escalation(examples: dict[str, Playbook]) -> None:
    """If the deal is won before the escalation is due, nothing is sent."""
    pb = [examples["hot-lead-escalating"]]
    [_, later] = evaluate(signal(0.85, 0.6), pb, NOW)
    assert isinstance(later, ScheduleStep)
    assert resume(later, signal(0.85, 0.6, status="won"), pb, later.due_at).commands == []


def test_post_meeting_debrief_asks_fifteen_minutes_later(examples: dict[str, Playbook]) -> None:
    """`meeting.ended` schedules the `post-meeting` questionnaire for 15 minutes later."""
    pb = [examples["post-meeting-debrief"]]
    ev = {"type": "meeting.ended", "duration_s": 1800}
    [wait] = evaluate(signal(event=ev), pb, NOW)
    assert isinstance(wait, ScheduleStep) and wait.due_at == NOW + dt.timedelta(minutes=15)
    [ask] = resume(wait, signal(at=wait.due_at), pb, wait.due_at).commands
    assert (
        isinstance(ask, AskQuestionnaire)
        and ask.questionnaire == "post-meeting"
        and ask.record_on == "deal"
    )
    assert evaluate(signal(event=ev | {"duration_s": 60}), pb, NOW) == []


def test_post_meeting_debrief_asks_the_rep_who_held_the_meeting(
    examples: dict[str, Playbook],
) -> None:
    """The meeting's rep (the Zoom host) gets the questionnaire after the wait, not the lead's
    owner; a meeting that names no rep falls back to the owner (rep-1)."""
    pb = [examples["post-meeting-debrief"]]
    ev = {"type": "meeting.ended", "duration_s": 1800, "rep_id": "rep-7"}
    [wait] = evaluate(signal(event=ev), pb, NOW)
    assert isinstance(wait, ScheduleStep)
    [ask] = resume(wait, signal(at=wait.due_at), pb, wait.due_at).commands
    assert isinstance(ask, AskQuestionnaire) and ask.rep_id == "rep-7"
    [wait] = evaluate(signal(event={"type": "meeting.ended", "duration_s": 1800}), pb, NOW)
    assert isinstance(wait, ScheduleStep)
    [ask] = resume(wait, signal(at=wait.due_at), pb, wait.due_at).commands
    assert isinstance(ask, AskQuestionnaire) and ask.rep_id == "rep-1"


def test_office_furniture_lease_chain(examples: dict[str, Playbook]) -> None:
    """120 days before the lease ends: text; +3 days ask depreciation; +7 days ask support, record on the deal."""
    pb = [examples["office-furniture-lease"]]
    lease = {"custom": {"lease_expires_on": "2026-09-01"}, "stage": "new"}
    d = decide(signal(**lease), pb, NOW)
    [planned] = d.commands
    assert isinstance(planned, ScheduleStep) and planned.purpose == "date"
    ny = ZoneInfo("America/New_York")
    assert planned.due_at.astimezone(ny) == dt.datetime(2026, 5, 4, 9, 0, tzinfo=ny)
    assert (
        decide(signal(event_id="e2", **lease), pb, NOW, state=d.state).commands == []
    )  # no re-plan

    at = planned.due_at
    text, wait3 = resume(planned, signal(at=at, **lease), pb, at).commands
    assert isinstance(text, NudgeCommand) and "lease ends in 120 days" in text.text
    assert isinstance(wait3, ScheduleStep) and wait3.due_at == at + dt.timedelta(days=3)
    ask1, wait7 = resume(wait3, signal(at=wait3.due_at, **lease), pb, wait3.due_at).commands
    assert isinstance(ask1, AskQuestionnaire) and ask1.questionnaire == "furniture-depreciated"
    assert isinstance(wait7, ScheduleStep) and wait7.due_at == wait3.due_at + dt.timedelta(days=7)
    ask2, update = resume(wait7, signal(at=wait7.due_at, **lease), pb, wait7.due_at).commands
    assert isinstance(ask2, AskQuestionnaire) and ask2.questionnaire == "influencer-support"
    assert ask2.record_on == "deal"
    assert isinstance(update, UpdateCrmField) and update.field == "stage"


def test_office_furniture_moved_date_makes_old_row_stale(examples: dict[str, Playbook]) -> None:
    """If the lease date changes, the row planned on the old date fires nothing."""
    pb = [examples["office-furniture-lease"]]
    [planned] = evaluate(signal(custom={"lease_expires_on": "2026-09-01"}), pb, NOW)
    assert isinstance(planned, ScheduleStep)
    moved = signal(at=planned.due_at, custom={"lease_expires_on": "2027-03-01"})
    assert resume(planned, moved, pb, planned.due_at).commands == []


def test_churn_watch_tells_the_owner_when_the_churn_model_crosses_40(
    examples: dict[str, Playbook],
) -> None:
    """The churn score crossing 40 % texts the owner with the model's reasons; a rise that
    stays below, a lead without a churn score, or a high conversion score do not."""
    pb = [examples["churn-watch"]]
    risky = target_score(0.46, 0.31, reasons=("usage down 30% this month",))
    [cmd] = evaluate(signal(targets={"churn": risky}), pb, NOW)
    assert isinstance(cmd, NudgeCommand) and cmd.rep_id == "rep-1" and cmd.rule == "churn-risk"
    assert "Acme is at 46% to leave within 30 days (was 31%)" in cmd.text
    assert "usage down 30% this month" in cmd.text
    assert cmd.reasons == ["usage down 30% this month"]  # the churn score's, not conversion's
    assert evaluate(signal(targets={"churn": target_score(0.38, 0.2)}), pb, NOW) == []
    assert evaluate(signal(0.95, 0.1), pb, NOW) == []


def test_churn_watch_complaint_from_a_customer_at_risk(examples: dict[str, Playbook]) -> None:
    ev = {"type": "form.submitted", "form": "support-complaint"}
    pb = [examples["churn-watch"]]
    at_risk = {"churn": target_score(0.3, 0.3)}
    [cmd] = evaluate(signal(event=ev, targets=at_risk), pb, NOW)
    assert isinstance(cmd, NudgeCommand) and '"support-complaint"' in cmd.text and "30%" in cmd.text
    assert evaluate(signal(event=ev, targets={"churn": target_score(0.1, 0.1)}), pb, NOW) == []
    assert evaluate(signal(event=ev), pb, NOW) == []


def test_cross_sell_nudges_when_the_product_model_crosses_30(
    examples: dict[str, Playbook],
) -> None:
    pb = [examples["cross-sell"]]
    likely = target_score(0.35, 0.2, reasons=("6 payroll trial users",), expected_value=4200.0)
    [cmd] = evaluate(signal(targets={"cross_sell:payroll": likely}), pb, NOW)
    assert isinstance(cmd, NudgeCommand)
    assert "Acme may buy Payroll: 35% within 30 days, worth $4,200 expected." in cmd.text
    assert "6 payroll trial users" in cmd.text
    other = {"cross_sell:insurance": target_score(0.9, 0.1)}
    assert evaluate(signal(targets=other), pb, NOW) == []


def test_call_started_texts_the_rep_on_the_call_the_top_two_opportunities(
    examples: dict[str, Playbook],
) -> None:
    """The seed's example: the customer calls, the rep on the line reads the two best
    cross-sell opportunities (probability x value) with their reasons."""
    pb = [examples["call-cross-sell"]]
    call = {"type": "call.started", "rep_id": "rep-2", "direction": "inbound"}
    targets = {
        "cross_sell:insurance": target_score(
            0.5, reasons=("asked about cover",), expected_value=2500.0
        ),
        "cross_sell:payroll": target_score(0.34, reasons=("5 trial users",), expected_value=4080.0),
        "cross_sell:expenses": target_score(0.6, expected_value=900.0),
        "churn": target_score(0.7),
    }
    [cmd] = evaluate(signal(event=call, targets=targets), pb, NOW)
    assert isinstance(cmd, NudgeCommand) and cmd.rep_id == "rep-2"
    assert cmd.text == (
        "On the line: Acme. payroll 34% ($4,080 expected): 5 trial users. "
        "insurance 50% ($2,500 expected): asked about cover."
    )
    assert evaluate(signal(event=call, targets={"churn": target_score(0.7)}), pb, NOW) == []
