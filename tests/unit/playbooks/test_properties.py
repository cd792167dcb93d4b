"""Property tests: the evaluator never raises, the loader never crashes, the sandbox holds."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jinja2.exceptions import SecurityError, UndefinedError

from nudge.errors import PlaybookError
from nudge.signals import LeadSignal, LeadView, RepView, ScheduleStep, Score, ScorePoint
from playbooks import decide, parse_playbook, resume, worth_evaluating
from playbooks.loader import EXAMPLES, check_text
from playbooks.model import Playbook
from playbooks.templates import render

from .helpers import NOW, signal

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

FIELDS = [
    "lead.company",
    "lead.employees",
    "lead.deal_value",
    "lead.stage",
    "lead.status",
    "lead.custom.x",
    "score.value",
    "score.previous",
    "score.change",
    "event.path",
    "event.keyword",
    "rep.team",
    "deal.value",
    "lead.last_touch_at",
]
values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 500),
    st.floats(-1, 2, allow_nan=False),
    st.sampled_from(["", "a", "/pricing", "2026-05-01", "won"]),
)
ops = st.sampled_from(
    ["eq", "ne", "gt", "gte", "lt", "lte", "contains", "starts_with", "exists", "in"]
)


@st.composite
def compare(draw: Any) -> dict[str, Any]:
    op = draw(ops)
    value: Any = draw(values)
    if op == "in":
        value = draw(st.lists(values, max_size=3))
    elif op in ("contains", "starts_with"):
        value = draw(st.sampled_from(["a", "/p", "won"]))
    elif op == "exists":
        value = draw(st.booleans())
    field = draw(st.sampled_from(FIELDS))
    if field.startswith("score.") and op in ("eq", "ne", "gt", "gte", "lt", "lte"):
        # scores are 0–1 (or written as percent); 2.0 is refused at load time
        value = draw(st.one_of(st.floats(-1, 1, allow_nan=False), st.sampled_from(["70%", None])))
    return {"field": field, op: value}


EXPRS = [
    "score.value > 0.5",
    "lead.employees >= 10 and lead.company != None",
    "days_until(lead.custom.x) < 30",
    "len(lead.company) > 3 or not lead.status == 'won'",
    "score.value - score.previous >= 0.2",
    "lower(event.path) == '/pricing'",
    "max(1, lead.employees) > 2",
]
conditions = st.recursive(
    st.one_of(compare(), st.builds(lambda e: {"expr": e}, st.sampled_from(EXPRS))),
    lambda inner: st.one_of(
        st.builds(lambda c: {"all": c}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda c: {"any": c}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda c: {"not": c}, inner),
    ),
    max_leaves=5,
)
TRIGGERS = [
    {"type": "score.crossed_above", "value": 0.5},
    {"type": "score.crossed_below", "value": 0.4},
    {"type": "score.jumped", "by": 0.2, "within": "1d"},
    {"type": "deal.stage_changed"},
    {"type": "event", "event": "page.viewed", "where": {"path": {"starts_with": "/p"}}},
    {"type": "inactivity", "for": "3d"},
    {"type": "schedule", "at": "08:30"},
    {"type": "date", "field": "lead.custom.x", "before": "10d"},
    {"type": "questionnaire.answered", "questionnaire": "q"},
]
TEMPLATES = [
    "{{ lead.company }} {{ score.value | pct }}",
    "{{ lead.deal_value | money }} {{ lead.custom.x | in_days }}",
    "{{ score.reasons | join(', ') }} {{ lead.last_touch_at | ago }}",
    "{{ lead.employees + 1 }}",
]
ACTIONS = st.one_of(
    st.builds(
        lambda t, to, w: {"type": "nudge", "template": t, "to": to} | ({"when": w} if w else {}),
        st.sampled_from(TEMPLATES),
        st.sampled_from(["owner", "manager", "team:x"]),
        st.none() | conditions,
    ),
    st.just({"type": "ask", "questionnaire": "q"}),
    st.just({"type": "wait", "for": "1h"}),
    st.just({"type": "update_crm", "field": "lead.custom.y", "value": 1}),
    st.just({"type": "stop"}),
)


@st.composite
def playbooks(draw: Any) -> Playbook:
    rules = []
    for i in range(draw(st.integers(1, 3))):
        actions = draw(st.lists(ACTIONS, min_size=1, max_size=4))
        if actions[-1]["type"] == "wait":
            actions.append({"type": "stop"})
        if draw(st.booleans()) and actions[0]["type"] == "nudge":
            actions.append({"type": "escalate", "after": "2h", "template": "{{ lead.company }}"})
        rules.append(
            {
                "id": f"r{i}",
                "trigger": draw(st.sampled_from(TRIGGERS)),
                "conditions": draw(st.lists(conditions, max_size=2)),
                "actions": actions,
                "cooldown": draw(st.sampled_from([None, "1h"])),
                "explore": draw(st.sampled_from([0, 0.5])),
                "priority": draw(st.integers(-3, 3)),
            }
        )
    guards = {"max_per_rep_per_day": draw(st.sampled_from([None, 1, 3]))}
    return Playbook.model_validate(
        {"name": "p", "owner": "o", "version": 1, "rules": rules, "guards": guards}
    )


@st.composite
def signals(draw: Any) -> LeadSignal:
    event = draw(
        st.sampled_from(
            [
                {"type": "page.viewed", "path": "/pricing"},
                {"type": "search.keyword", "keyword": "x"},
                {"type": "deal.stage_changed", "to_stage": "won"},
                {"type": "questionnaire.answered", "questionnaire": "q"},
                {"type": "timer"},
                {"type": "page.viewed"},
            ]
        )
    )
    value = draw(st.floats(0, 1))
    custom = draw(st.dictionaries(st.sampled_from(["x", "y"]), values, max_size=2))
    return LeadSignal(
        lead=LeadView(
            lead_id="L",
            company=draw(st.none() | st.text(max_size=5)),
            employees=draw(st.none() | st.integers(0, 900)),
            owner_rep_id=draw(st.none() | st.just("r")),
            custom=custom,
            status=draw(st.sampled_from(["open", "won", "lost"])),
            last_touch_at=draw(st.none() | st.just(NOW - dt.timedelta(days=5))),
        ),
        event=event,
        event_id="e",
        event_type=event["type"],
        at=NOW,
        score=Score(
            value=value,
            previous=draw(st.none() | st.floats(0, 1)),
            reasons=["a"],
            model_version="t",
            rule_based=True,
            scored_at=NOW,
        ),
        history=[
            ScorePoint(at=NOW - dt.timedelta(hours=h), value=v)
            for h, v in draw(st.lists(st.tuples(st.integers(1, 40), st.floats(0, 1)), max_size=4))
        ],
        rep=draw(
            st.none()
            | st.just(RepView(rep_id="r", timezone="Europe/Paris", manager_rep_id="m", team="x"))
        ),
    )


@FAST
@given(pb=playbooks(), sig=signals(), later=signals())
def test_evaluator_never_raises_on_valid_input(
    pb: Playbook, sig: LeadSignal, later: LeadSignal
) -> None:
    """Any valid playbook on any valid signal yields commands; resuming every row does too."""
    decision = decide(sig, [pb], NOW)
    for cmd in decision.commands:
        if isinstance(cmd, ScheduleStep):
            resume(cmd, later, [pb], cmd.due_at, state=decision.state, acted=False)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pb=playbooks(), sig=signals())
def test_a_signal_not_worth_evaluating_would_issue_nothing(pb: Playbook, sig: LeadSignal) -> None:
    """The lead agent drops signals ``worth_evaluating`` turns down; decide agrees they are idle."""
    if not worth_evaluating(sig, [pb]):
        decision = decide(sig, [pb], NOW)
        assert decision.commands == [] and decision.fired == []


def test_most_signals_of_a_plain_visit_are_not_worth_evaluating() -> None:
    """The filter does filter: a score that moves a little, on the bundled playbooks."""
    from playbooks.loader import DEFAULT_PLAYBOOKS, load_playbooks

    quiet = signal(value=0.3, previous=0.28)
    crossing = signal(value=0.75, previous=0.65)
    bundled = load_playbooks([DEFAULT_PLAYBOOKS])
    assert not worth_evaluating(quiet, bundled)
    assert worth_evaluating(crossing, bundled)


VALID = (EXAMPLES / "hot-lead.yaml").read_text()


@FAST
@given(st.text(max_size=400))
def test_random_text_never_crashes_the_loader(text: str) -> None:
    """Whatever the bytes, the loader answers with a playbook or a PlaybookError."""
    try:
        parse_playbook(text, "x.yaml")
    except PlaybookError as exc:
        assert exc.problems and all(p.startswith("x.yaml:") for p in exc.problems)


@FAST
@given(st.integers(0, len(VALID) - 1), st.integers(0, 20), st.text(max_size=3))
def test_mangled_playbook_never_crashes_the_loader(at: int, cut: int, insert: str) -> None:
    """Cutting and splicing a real playbook gives located problems, never an exception."""
    checked = check_text(VALID[:at] + insert + VALID[at + cut :], "x.yaml")
    assert checked.playbook is not None or checked.errors


ESCAPES = [
    "{{ ''.__class__.__mro__ }}",
    "{{ lead.__class__.__init__.__globals__ }}",
    "{{ lead.items.__self__ }}",
    "{{ score.reasons.pop() }}",
    "{% set x = lead.__dict__ %}{{ x }}",
    "{{ cycler.__init__.__globals__.os }}",
    "{{ 'a' * 1000000000 }}",
    "{{ 9 ** 9 ** 9 }}",
    "{{ lead|attr('__class__') }}",
]


@pytest.mark.parametrize("template", ESCAPES)
def test_template_escapes_are_refused(template: str) -> None:
    """Templates reaching for Python internals or unbounded work never load, and never render."""
    text = f'name: t\nowner: o\nversion: 1\nrules:\n  - id: r\n    trigger: {{type: score.crossed_above, value: 0.5}}\n    actions: [{{type: nudge, template: "{template}"}}]\n'
    assert check_text(text, "t.yaml").playbook is None
    with pytest.raises((SecurityError, UndefinedError)):
        render(template, {"lead": {"company": "a"}, "score": {"reasons": ["x"]}})


@FAST
@given(
    st.sampled_from(["lead", "score", "event", "''", "()", "len"]),
    st.from_regex(r"_[A-Za-z_]{1,12}", fullmatch=True),
)
def test_expression_internals_are_refused(base: str, attr: str) -> None:
    """Any `_name` attribute or call in an expression is refused at load time."""
    for expr in (f"{base}.{attr}", f"{base}.{attr}()", f"getattr({base}, '{attr}')"):
        text = f'name: t\nowner: o\nversion: 1\nrules:\n  - id: r\n    trigger: {{type: score.crossed_above, value: 0.5}}\n    conditions: [{{expr: "{expr}"}}]\n    actions: [{{type: stop}}]\n'
        assert check_text(text, "t.yaml").playbook is None


def test_alias_bomb_is_refused_quickly() -> None:
    """Nested YAML aliases (a "billion laughs") are refused at once, not expanded."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    checked = check_text("\n".join(lines) + "\nname: t\n", "bomb.yaml")
    assert checked.playbook is None and "aliases" in checked.errors[0].message
