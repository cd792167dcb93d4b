"""Score triggers, conditions and templates on the scores beyond conversion."""

from __future__ import annotations

import datetime as dt

import pytest

from nudge.errors import PlaybookError
from nudge.signals import NudgeCommand, ScheduleStep
from playbooks import evaluate, resume, worth_evaluating
from playbooks.fields import views
from playbooks.resume import timer_signal

from .helpers import NOW, playbook, signal, target_score

H = dt.timedelta(hours=1)


def test_crossed_above_on_a_cross_sell_score_rearms_from_its_own_history() -> None:
    pb = [
        playbook(
            "  - id: r\n"
            "    trigger: {type: score.crossed_above, score: cross_sell.payroll, value: 50%}\n"
            "    actions: [{type: nudge, to: owner, template: '{{ match }}'}]\n"
        )
    ]
    fresh = target_score(0.55, 0.4, history=[(NOW - 5 * H, 0.4)])
    [cmd] = evaluate(signal(targets={"cross_sell:payroll": fresh}), pb, NOW)
    assert isinstance(cmd, NudgeCommand) and "score.cross_sell.payroll.value" in cmd.text
    # it was above the line 3 h ago and never went back below 45 %: not a new crossing
    wobble = target_score(0.55, 0.48, history=[(NOW - 3 * H, 0.6), (NOW - 2 * H, 0.48)])
    assert evaluate(signal(targets={"cross_sell:payroll": wobble}), pb, NOW) == []
    # the conversion score crossing the same line is not this rule's business
    assert evaluate(signal(0.9, 0.1), pb, NOW) == []


def test_jumped_on_churn_reads_the_churn_history_not_conversion() -> None:
    pb = [
        playbook(
            "  - id: r\n"
            "    trigger: {type: score.jumped, score: churn, by: 20%, within: 1d}\n"
            "    actions: [{type: nudge, to: owner, template: 'churn {{ score.churn.value | pct }}'}]\n"
        )
    ]
    jumped = target_score(0.5, 0.4, history=[(NOW - 6 * H, 0.25), (NOW - 2 * H, 0.4)])
    [cmd] = evaluate(signal(0.1, 0.1, targets={"churn": jumped}), pb, NOW)
    assert isinstance(cmd, NudgeCommand) and cmd.text == "churn 50%"
    flat = target_score(0.5, 0.45, history=[(NOW - 6 * H, 0.45)])
    history = [(NOW - 6 * H, 0.05)]  # the conversion score did jump: irrelevant
    assert evaluate(signal(0.9, 0.5, history=history, targets={"churn": flat}), pb, NOW) == []


def test_unknown_score_name_is_refused_at_load() -> None:
    with pytest.raises(PlaybookError, match=r"trigger\.score: unknown score 'upsell'"):
        playbook(
            "  - id: r\n"
            "    trigger: {type: score.crossed_above, score: upsell, value: 50%}\n"
            "    actions: [{type: nudge, to: owner, template: x}]\n"
        )


def test_best_cross_sell_ranks_by_probability_times_value() -> None:
    targets = {
        "cross_sell:a": target_score(0.9, expected_value=900.0),
        "cross_sell:b": target_score(0.2, expected_value=2400.0),
        "cross_sell:c": target_score(0.3),  # no value: ranked last
        "churn": target_score(0.8),
    }
    data = views(signal(targets=targets))
    assert [o["product"] for o in data["score"]["best_cross_sell"]] == ["b", "a", "c"]
    assert data["score"]["cross_sell"]["a"]["value"] == 0.9
    assert data["score"]["churn"]["value"] == 0.8
    assert views(signal())["score"]["churn"] is None


def test_a_later_step_still_reads_the_churn_score() -> None:
    """A due step is resumed with the lead's other scores, so a churn rule's second text
    (after a wait) can name the churn score."""
    pb = [
        playbook(
            "  - id: r\n"
            "    trigger: {type: score.crossed_above, score: churn, value: 40%}\n"
            "    actions:\n"
            "      - {type: nudge, to: owner, template: 'churn {{ score.churn.value | pct }}'}\n"
            "      - {type: wait, for: 1d}\n"
            "      - {type: nudge, to: owner, template: 'still {{ score.churn.value | pct }}'}\n"
        )
    ]
    targets = {"churn": target_score(0.45, 0.2)}
    first, step = evaluate(signal(targets=targets), pb, NOW)
    assert isinstance(first, NudgeCommand) and first.text == "churn 45%"
    assert isinstance(step, ScheduleStep)
    later = timer_signal(signal().lead, None, step, step.due_at, None, targets)
    [second] = resume(step, later, pb, step.due_at).commands
    assert isinstance(second, NudgeCommand) and second.text == "still 45%"


def test_a_rule_exploring_its_trigger_sees_every_signal() -> None:
    """The worker skips signals no trigger could match; a rule that explores its trigger
    must still see them, or it would explore in simulate and never live."""

    def rules(share: float) -> str:
        return (
            "  - id: r\n"
            "    trigger: {type: event, event: call.started}\n"
            f"    explore_trigger: {share}\n"
            "    actions: [{type: nudge, to: owner, template: x}]\n"
        )

    page = signal()  # a page view: the call trigger ignores it
    assert not worth_evaluating(page, [playbook(rules(0.0))])
    assert worth_evaluating(page, [playbook(rules(0.1))])
