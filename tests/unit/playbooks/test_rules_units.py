"""The rules people write: units, first scores, chattering crossings, template checks.

Each test is a reproduction from the rules issue: what a manager wrote, what
Nudge did, and what it must do instead.
"""

from __future__ import annotations

import datetime as dt

import pytest

from nudge.events import parse_event
from playbooks import evaluate, load_playbooks
from playbooks.loader import check_text
from replay.simulate import simulate
from tests.unit.playbooks.helpers import NOW, playbook, signal

HEAD = "name: t\nowner: me\nversion: 1\n"


def problems(text: str) -> list[str]:
    return [str(p) for p in check_text(HEAD + text, "t.yaml").problems]


def rule(trigger: str, extra: str = "") -> str:
    return (
        f"rules:\n  - id: r\n    trigger: {trigger}\n{extra}"
        '    actions: [{type: nudge, template: "hi {{ score.value | pct }}"}]\n'
    )


# -- durations carry a unit -----------------------------------------------------------


def test_bare_number_duration_is_an_error_naming_the_field() -> None:
    """`digest_after: 3` used to mean 3 seconds; it is refused, naming the field and units."""
    out = problems("guards: {digest_after: 3}\n" + rule("{type: score.crossed_above, value: 0.7}"))
    assert len(out) == 1 and "guards.digest_after" in out[0]
    assert "no unit" in out[0] and "3d" in out[0]
    out = problems(rule("{type: inactivity, for: '14'}"))
    assert any("rules.0.trigger.for" in p and "no unit" in p for p in out)


def test_durations_with_units_pass() -> None:
    assert problems("guards: {digest_after: 15m}\n" + rule("{type: inactivity, for: 3d}")) == []


# -- scores as 70% or 0.7 ---------------------------------------------------------------


@pytest.mark.parametrize("written", ["70%", "0.7", "70 %"])
def test_score_threshold_in_percent_or_fraction(written: str) -> None:
    """`value: 70%` and `value: 0.7` are the same rule."""
    pb = playbook(rule(f"{{type: score.crossed_above, value: '{written}'}}").split("\n", 1)[1])
    assert pb.rules[0].trigger.value == pytest.approx(0.7)


def test_jump_of_20_is_explained_not_just_refused() -> None:
    """`by: 20` (meant as 20 points) says how to write it."""
    [out] = problems(rule("{type: score.jumped, by: 20}"))
    assert "rules.0.trigger.by" in out and "20%" in out and "0.2" in out


def test_score_condition_in_percent() -> None:
    """`{field: score.value, gte: 60%}` compares with 0.6; a bare 60 is refused."""
    pb = playbook(
        rule(
            "{type: event, event: page.viewed}",
            "    conditions: [{field: score.value, gte: 60%}]\n",
        ).split("\n", 1)[1]
    )
    assert evaluate(signal(0.65, 0.6), [pb], NOW)
    assert not evaluate(signal(0.55, 0.5), [pb], NOW)
    out = problems(
        rule(
            "{type: event, event: page.viewed}", "    conditions: [{field: score.value, gte: 60}]\n"
        )
    )
    assert any("60%" in p for p in out)


def test_check_shows_thresholds_as_percent() -> None:
    pb = playbook(rule("{type: score.crossed_above, value: 0.7}").split("\n", 1)[1])
    assert pb.rules[0].trigger.describe().startswith("score.crossed_above value=70%")


# -- score.jumped and a lead's first score ------------------------------------------


def _new_lead_events() -> list:
    t = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
    created = {
        "event_id": "e1",
        "type": "lead.created",
        "occurred_at": t.isoformat(),
        "source": "crm",
        "lead_id": "L1",
        "fields": {"company": "Acme", "owner_rep_id": "rep-1"},
    }
    form = {
        "event_id": "e2",
        "type": "form.submitted",
        "occurred_at": (t + dt.timedelta(minutes=5)).isoformat(),
        "source": "web",
        "lead_id": "L1",
        "form": "demo-request",
    }
    return [parse_event(created), parse_event(form)]


def test_jumped_ignores_a_new_leads_first_score() -> None:
    """A new lead goes 0 → 49 % on its first real event: not a jump unless `from_first`."""
    text = rule("{type: score.jumped, by: 0.2}").split("\n", 1)[1]
    assert simulate(_new_lead_events(), [playbook(text)]).outcomes == []
    text = rule("{type: score.jumped, by: 0.2, from_first: true}").split("\n", 1)[1]
    assert len(simulate(_new_lead_events(), [playbook(text)]).outcomes) == 1


# -- crossings re-arm only after moving back by a margin -------------------------------


def _hover(trigger: str) -> int:
    """How many times a rule fires on a score hovering around 70 %."""
    pb = playbook(rule(trigger).split("\n", 1)[1])
    values = [0.5, 0.71, 0.69, 0.72, 0.68, 0.71, 0.6, 0.73]
    history: list[tuple[dt.datetime, float]] = []
    fired = 0
    for i, value in enumerate(values):
        at = NOW + dt.timedelta(minutes=i)
        history.append((at, value))
        prev = values[i - 1] if i else None
        fired += len(
            evaluate(signal(value, prev, at=at, history=list(history), event_id=f"e{i}"), [pb], at)
        )
    return fired


def test_crossing_does_not_chatter_around_the_line() -> None:
    """50 → 71 → 69 → 72 → 68 → 71 fires once; after falling to 60 (below 70 − 5) it
    re-arms and 73 fires again."""
    assert _hover("{type: score.crossed_above, value: 0.7}") == 2


def test_crossing_margin_is_a_setting() -> None:
    # 69 % is not below 70 − 1: only the dips to 68 % and 60 % re-arm
    assert _hover("{type: score.crossed_above, value: 0.7, margin: 1%}") == 3


def test_default_playbook_has_a_cooldown() -> None:
    [pb] = load_playbooks()
    assert all(r.cooldown is not None for r in pb.rules)


# -- template errors in the same pass, with suggestions from the catalogue ------------


def test_template_errors_reported_with_structural_errors() -> None:
    """A structural error no longer hides the template's own errors."""
    out = problems(
        "rules:\n  - id: r\n    trigger: {type: score.crossed_above, value: 0.7}\n"
        "    priority: lots\n"
        '    actions: [{type: nudge, template: "{{ lead.compnay }} at {{ score.value | percent }}"}]\n'
    )
    assert any("rules.0.priority" in p for p in out)
    assert any("did you mean `lead.company`" in p for p in out)
    assert any("unknown filter `percent`" in p and "did you mean `pct`" in p for p in out)


def test_event_url_suggests_path() -> None:
    """On `page.viewed` the page is `event.path`; `event.url` says so."""
    out = problems(
        "rules:\n  - id: r\n    trigger: {type: event, event: page.viewed}\n"
        '    actions: [{type: nudge, template: "saw {{ event.url }}"}]\n'
    )
    assert len(out) == 1 and "did you mean `event.path`" in out[0]


def test_unknown_operator_suggests_the_nearest() -> None:
    out = problems(
        rule(
            "{type: event, event: page.viewed}",
            "    conditions: [{field: lead.employees, gte_: 5}]\n",
        )
    )
    assert any("did you mean `gte`" in p for p in out)


# -- fresh scores for timer-triggered rules ---------------------------------------------


def test_timer_rule_texts_the_score_as_of_now() -> None:
    """A lead goes quiet after scoring high; 14 days later the text gives today's (decayed)
    score, not the one from its last event."""
    t = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
    base = {"source": "web", "lead_id": "L1"}
    events = [
        parse_event(
            {
                "event_id": "c",
                "type": "lead.created",
                "occurred_at": t.isoformat(),
                "source": "crm",
                "lead_id": "L1",
                "fields": {"company": "Acme", "owner_rep_id": "rep-1"},
            }
        ),
        *[
            parse_event(
                base
                | {
                    "event_id": f"v{i}",
                    "type": "form.submitted" if i == 0 else "page.viewed",
                    "occurred_at": (t + dt.timedelta(minutes=i)).isoformat(),
                    **({"form": "demo-request"} if i == 0 else {"path": "/pricing"}),
                }
            )
            for i in range(4)
        ],
    ]
    pb = playbook(
        "  - id: quiet\n    trigger: {type: inactivity, for: 14d}\n"
        '    actions: [{type: nudge, template: "quiet; score {{ score.value | pct }}"}]\n'
    )
    report = simulate(events, [pb], horizon=dt.timedelta(days=15))
    [outcome] = report.outcomes
    shown = int(outcome.command.text.rsplit(" ", 1)[1].rstrip("%"))
    jump = playbook(
        "  - id: hot\n    trigger: {type: score.crossed_above, value: 30%}\n"
        '    actions: [{type: nudge, template: "hot {{ score.value | pct }}"}]\n'
    )
    [hot] = simulate(events, [jump]).outcomes
    assert int(hot.command.text.split()[1].rstrip("%")) >= 40  # it was hot when last seen
    assert 0 < shown <= 10, outcome.command.text  # points halve every 72 h: ~1/25 left after 14 d


def test_a_crossing_that_is_not_re_armed_is_explained() -> None:
    """The second 70 % crossing after a dip to 68 % (not below 65 %) says why it was quiet."""
    from playbooks import decide

    pb = playbook(rule("{type: score.crossed_above, value: 0.7}").split("\n", 1)[1])
    points = [
        (NOW, 0.5),
        (NOW + dt.timedelta(minutes=1), 0.72),
        (NOW + dt.timedelta(minutes=2), 0.68),
    ]
    at = NOW + dt.timedelta(minutes=3)
    sig = signal(0.71, 0.68, at=at, history=[*points, (at, 0.71)], event_id="e4")
    [ev] = decide(sig, [pb], at).trace
    assert ev.outcome == "trigger"
    assert "has not been below 65% since the last crossing (margin 5%)" in ev.reason


def test_falling_crossing_does_not_chatter_either() -> None:
    """Hovering around 40 % on the way down: 50 → 39 fires, 41 → 38 does not, 46 → 35 does."""
    pb = playbook(rule("{type: score.crossed_below, value: 40%}").split("\n", 1)[1])
    values = [0.5, 0.39, 0.41, 0.38, 0.46, 0.35]
    history: list[tuple[dt.datetime, float]] = []
    fired = []
    for i, value in enumerate(values):
        at = NOW + dt.timedelta(minutes=i)
        history.append((at, value))
        prev = values[i - 1] if i else None
        sig = signal(value, prev, at=at, history=list(history), event_id=f"e{i}")
        fired += [value] if evaluate(sig, [pb], at) else []
    assert fired == [0.39, 0.35]
