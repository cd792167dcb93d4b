"""The pure evaluator: triggers, conditions, recipients, guards and exploration."""

from __future__ import annotations

import datetime as dt

from nudge.signals import (
    AskQuestionnaire,
    NudgeCommand,
    NudgeTeam,
    ScheduleStep,
    UpdateCrmField,
    fan_out,
    parse_command,
    routing_key,
)
from playbooks import decide, evaluate
from playbooks.guards import GuardState

from .helpers import NOW, playbook, signal

NUDGE = "    actions: [{type: nudge, template: '{{ lead.company }} {{ score.value | pct }}'}]\n"


def rule(trigger: str, extra: str = "", actions: str = NUDGE) -> str:
    return f"  - id: r\n    trigger: {trigger}\n{extra}{actions}"


def test_event_trigger_with_field_filter() -> None:
    """`page.viewed` with path starting `/pricing` fires on pricing pages only."""
    pb = playbook(rule("{type: event, event: page.viewed, where: {path: {starts_with: /pricing}}}"))
    assert evaluate(signal(event={"type": "page.viewed", "path": "/pricing/pro"}), [pb], NOW)
    assert evaluate(signal(event={"type": "page.viewed", "path": "/blog"}), [pb], NOW) == []


def test_score_crossed_below() -> None:
    """Falling under the threshold fires; staying under does not."""
    pb = playbook(rule("{type: score.crossed_below, value: 0.3}"))
    assert evaluate(signal(0.2, 0.4), [pb], NOW)
    assert evaluate(signal(0.2, 0.25), [pb], NOW) == []


def test_score_jump_within_window() -> None:
    """30 % → 75 % within 24 h fires once; the same rise over three days does not."""
    pb = playbook(rule("{type: score.jumped, by: 0.4, within: 24h}"))
    recent = [(NOW - dt.timedelta(hours=20), 0.3), (NOW - dt.timedelta(hours=2), 0.5)]
    assert evaluate(signal(0.75, 0.5, history=recent), [pb], NOW)
    old = [(NOW - dt.timedelta(days=3), 0.3), (NOW - dt.timedelta(hours=2), 0.5)]
    assert evaluate(signal(0.75, 0.5, history=old), [pb], NOW) == []
    already = [(NOW - dt.timedelta(hours=20), 0.3), (NOW - dt.timedelta(hours=2), 0.72)]
    assert evaluate(signal(0.8, 0.72, history=already), [pb], NOW) == []


def test_deal_stage_trigger_filters_target_stage() -> None:
    """A stage trigger with `to: [proposal]` ignores other stage changes."""
    pb = playbook(rule("{type: deal.stage_changed, to: [proposal]}"))
    ev = {"type": "deal.stage_changed", "from_stage": "new", "to_stage": "proposal"}
    assert evaluate(signal(event=ev), [pb], NOW)
    assert evaluate(signal(event=ev | {"to_stage": "demo"}), [pb], NOW) == []


def test_conditions_all_any_not_and_expressions() -> None:
    """Structured and expression conditions combine; a failing one stops the rule."""
    extra = (
        "    conditions:\n"
        "      - any: [{field: lead.industry, eq: retail}, {field: lead.employees, gte: 100}]\n"
        "      - not: {field: lead.stage, eq: closed}\n"
        "      - expr: \"days_until(lead.custom.renewal_on) < 90 and 'acme' in lower(lead.company)\"\n"
    )
    pb = playbook(rule("{type: score.crossed_above, value: 0.5}", extra))
    good = {"employees": 150, "stage": "new", "custom": {"renewal_on": "2026-04-01"}}
    assert evaluate(signal(0.6, 0.4, **good), [pb], NOW)
    assert evaluate(signal(0.6, 0.4, **(good | {"stage": "closed"})), [pb], NOW) == []
    assert (
        evaluate(signal(0.6, 0.4, **(good | {"custom": {"renewal_on": "2027-01-01"}})), [pb], NOW)
        == []
    )


def test_expression_on_missing_value_skips_rule_without_raising() -> None:
    """`lead.employees > 3` with no employees known is skipped, not an exception."""
    pb = playbook(
        rule(
            "{type: score.crossed_above, value: 0.5}",
            "    conditions: [{expr: 'lead.employees > 3'}]\n",
        )
    )
    assert evaluate(signal(0.6, 0.4), [pb], NOW) == []


def test_recipients_owner_manager_and_team() -> None:
    """`manager` resolves through the rep; `team:x` becomes one command the worker fans out."""
    actions = (
        "    actions:\n"
        "      - {type: nudge, to: manager, template: m}\n"
        "      - {type: nudge, to: 'team:east', channel: slack, template: t}\n"
    )
    pb = playbook(rule("{type: score.crossed_above, value: 0.5}", actions=actions))
    manager, team = evaluate(signal(0.6, 0.4), [pb], NOW)
    assert isinstance(manager, NudgeCommand) and manager.rep_id == "mgr-1"
    assert isinstance(team, NudgeTeam) and team.team == "east"
    fanned = fan_out(team, ["a", "b", "a"])
    assert [c.rep_id for c in fanned] == ["a", "b"] and len({c.nudge_id for c in fanned}) == 2


def test_ask_update_and_wait_make_a_workflow() -> None:
    """Steps before a wait run now; the wait becomes one ScheduleStep pointing at the next step."""
    actions = (
        "    actions:\n"
        "      - {type: update_crm, field: deal.stage, value: hot}\n"
        "      - {type: ask, questionnaire: post-meeting}\n"
        "      - {type: wait, for: 15m}\n"
        "      - {type: nudge, template: later}\n"
    )
    pb = playbook(rule("{type: score.crossed_above, value: 0.5}", actions=actions))
    update, ask, wait = evaluate(signal(0.6, 0.4), [pb], NOW)
    assert isinstance(update, UpdateCrmField) and (update.field, update.value) == ("stage", "hot")
    assert isinstance(ask, AskQuestionnaire) and ask.questionnaire == "post-meeting"
    assert isinstance(wait, ScheduleStep) and wait.step == 3
    assert wait.due_at == NOW + dt.timedelta(minutes=15) and wait.partition_key == "L1"


def test_cooldown_per_lead_per_rule() -> None:
    """Within the cooldown the same lead is not nudged again; another lead is."""
    pb = playbook(rule("{type: event, event: page.viewed}", "    cooldown: 1d\n"))
    first = decide(signal(event_id="e1"), [pb], NOW)
    assert first.commands
    again = decide(signal(event_id="e2"), [pb], NOW + dt.timedelta(hours=2), state=first.state)
    assert again.commands == []
    other = decide(signal(event_id="e3", lead_id="L2"), [pb], NOW, state=first.state)
    assert other.commands
    later = decide(signal(event_id="e4"), [pb], NOW + dt.timedelta(days=2), state=first.state)
    assert later.commands


def test_given_state_is_never_mutated() -> None:
    """The evaluator returns a new state; the caller's object stays as it was."""
    pb = playbook(rule("{type: event, event: page.viewed}", "    cooldown: 1d\n"))
    state = GuardState()
    decide(signal(), [pb], NOW, state=state)
    assert state == GuardState()


def test_daily_cap_folds_the_rest_into_one_digest() -> None:
    """Over `max_per_rep_per_day` nudges become digest items and one digest schedule."""
    pb = playbook(rule("{type: event, event: page.viewed}"), "guards: {max_per_rep_per_day: 2}\n")
    state, kinds = GuardState(), []
    for i in range(5):
        d = decide(signal(event_id=f"e{i}", lead_id=f"L{i}"), [pb], NOW, state=state)
        state = d.state
        kinds += [c.kind for c in d.commands]
    assert kinds == ["nudge", "nudge", "schedule"]
    [items] = state.digests.values()
    assert [i.lead_id for i in items] == ["L2", "L3", "L4"]


def test_priority_orders_rules_firing_together() -> None:
    """The higher-priority rule's command comes first (and wins the daily cap)."""
    rules = (
        "  - id: low\n    trigger: {type: event, event: page.viewed}\n    priority: 1\n"
        + NUDGE
        + "  - id: high\n    trigger: {type: event, event: page.viewed}\n    priority: 9\n"
        + NUDGE
    )
    pb = playbook(rules, "guards: {max_per_rep_per_day: 1}\n")
    commands = evaluate(signal(), [pb], NOW)
    assert [c.kind for c in commands] == ["nudge", "schedule"]
    assert isinstance(commands[0], NudgeCommand) and commands[0].rule == "high"


def test_exploration_marks_nudges_and_logs_propensity() -> None:
    """With `explore: 0.3`, about 30 % of leads failing the conditions are nudged, marked."""
    pb = playbook(
        rule(
            "{type: event, event: page.viewed}",
            "    explore: 0.3\n    conditions: [{field: score.value, gte: 0.9}]\n",
        )
    )
    fired = [c for i in range(400) for c in evaluate(signal(0.2, 0.1, lead_id=f"L{i}"), [pb], NOW)]
    assert 80 <= len(fired) <= 160
    assert all(isinstance(c, NudgeCommand) and c.exploration and c.propensity == 0.3 for c in fired)
    hot = evaluate(signal(0.95, 0.1), [pb], NOW)
    assert isinstance(hot[0], NudgeCommand) and not hot[0].exploration and hot[0].propensity == 1.0


def test_audience_by_team_and_lead_condition() -> None:
    """A playbook for team `west` and open leads ignores an `east` rep's leads."""
    head = "audience: {teams: [west], leads: [{field: lead.status, eq: open}]}\n"
    pb = playbook(rule("{type: event, event: page.viewed}"), head)
    assert evaluate(signal(), [pb], NOW) == []
    east = playbook(rule("{type: event, event: page.viewed}"), head.replace("west", "east"))
    assert evaluate(signal(), [east], NOW)


def test_quiet_hours_override_is_carried_to_the_command() -> None:
    """A rule's quiet-hours override travels on the command for delivery to enforce."""
    pb = playbook(
        rule(
            "{type: event, event: page.viewed}", "    quiet_hours: {start: '07:00', end: '22:00'}\n"
        )
    )
    [cmd] = evaluate(signal(), [pb], NOW)
    assert isinstance(cmd, NudgeCommand) and cmd.quiet_hours is not None
    assert (cmd.quiet_hours.start, cmd.quiet_hours.end) == (dt.time(7), dt.time(22))


def test_template_failure_skips_the_rule_only() -> None:
    """A template that fails at runtime (None + 1) skips its rule; others still fire."""
    bad = "  - id: bad\n    trigger: {type: event, event: page.viewed}\n    actions: [{type: nudge, template: '{{ lead.employees + 1 }}'}]\n"
    good = "  - id: good\n    trigger: {type: event, event: page.viewed}\n" + NUDGE
    pb = playbook(bad + good)
    commands = evaluate(signal(), [pb], NOW)
    assert [c.rule for c in commands if isinstance(c, NudgeCommand)] == ["good"]


def test_every_command_round_trips_through_json() -> None:
    """Whatever kind the evaluator issues, `parse_command` reads its JSON back identically."""
    actions = (
        "    actions:\n"
        "      - {type: nudge, template: hi}\n"
        "      - {type: nudge, to: 'team:east', template: hi}\n"
        "      - {type: ask, questionnaire: q}\n"
        "      - {type: update_crm, field: lead.custom.tier, value: 2}\n"
        "      - {type: wait, for: 1h}\n"
        "      - {type: stop}\n"
    )
    commands = evaluate(
        signal(0.6, 0.4),
        [playbook(rule("{type: score.crossed_above, value: 0.5}", actions=actions))],
        NOW,
    )
    assert [c.kind for c in commands] == ["nudge", "nudge_team", "ask", "update_crm", "schedule"]
    assert [parse_command(c.model_dump_json()) for c in commands] == commands
    assert [routing_key(c) for c in commands] == ["rep-1", "L1", "rep-1", "L1", "L1"]


def test_questionnaire_answered_matches_the_conversation_agents_event() -> None:
    """Answers arrive as `lead.updated` from `nudge.questionnaire.<id>`; only that id fires."""
    pb = playbook(rule("{type: questionnaire.answered, questionnaire: post-meeting}"))
    answered = {"type": "lead.updated", "source": "nudge.questionnaire.post-meeting", "fields": {}}
    assert evaluate(signal(event=answered), [pb], NOW)
    other = answered | {"source": "nudge.questionnaire.other"}
    assert evaluate(signal(event=other), [pb], NOW) == []
    assert evaluate(signal(event=answered | {"source": "salesforce"}), [pb], NOW) == []
