"""Message templates: sandboxed Jinja2 with strict undefined variables.

The sandbox refuses attribute access to Python internals (``__class__``,
``__globals__`` ...), and ``StrictUndefined`` turns a typo into an error instead
of an empty string in a rep's text message. Field names inside templates are also
checked against :mod:`playbooks.fields` at load time, and every template is
rendered once against a sample lead so a message that would cost more than two
SMS segments is flagged before anyone receives it.
"""

from __future__ import annotations

import datetime as dt
import difflib
import functools
from types import CodeType
from typing import Any

from jinja2 import StrictUndefined, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from playbooks import fields as f
from playbooks import messages as msg

GSM7 = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXT = frozenset("^{}\\[~]|€")
"""Characters that take two GSM-7 septets (escape + char)."""
TEMPLATE_GLOBALS = ("match", "playbook", "rule")


def pct(value: float | None) -> str:
    """0.863 → '86%'; None → '—'."""
    return "—" if value is None else f"{round(value * 100)}%"


def money(value: float | None) -> str:
    """12500 → '$12,500'."""
    return "—" if value is None else f"${value:,.0f}"


def _to_datetime(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time(), tzinfo=dt.UTC)
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    return None


def _days(value: Any, now: dt.datetime) -> int | None:
    when = _to_datetime(value)
    return None if when is None else (when.date() - now.date()).days


def make_filters(now: dt.datetime) -> dict[str, Any]:
    """``ago`` and ``in_days`` read relative to ``now`` (the evaluator's injected time)."""

    def ago(value: Any) -> str:
        days = _days(value, now)
        if days is None:
            return "—"
        days = -days
        return "today" if days == 0 else "yesterday" if days == 1 else f"{days} days ago"

    def in_days(value: Any) -> str:
        days = _days(value, now)
        if days is None:
            return "—"
        return "today" if days == 0 else "tomorrow" if days == 1 else f"in {days} days"

    return {"pct": pct, "money": money, "ago": ago, "in_days": in_days}


FILTERS: dict[str, str] = {
    "pct": "a score as percent: `{{ score.value | pct }}` → 86%",
    "money": "an amount in dollars: `{{ deal.value | money }}` → $48,500",
    "ago": "a past date in days: `{{ lead.last_touch_at | ago }}` → 3 days ago",
    "in_days": "a coming date in days: `{{ lead.custom.renewal_on | in_days }}` → in 12 days",
}
"""Nudge's own template filters (Jinja's built-ins such as `join` and `default` also work)."""


def _finalize(value: Any) -> Any:
    """An absent optional value prints as a dash, never as ``None``, in a rep's message."""
    return "—" if value is None else value


MAX_REPEAT = 2000
"""The longest string or list ``*`` may build in a template (a message is ≤ 1,600 chars)."""


class _Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, plus limits on ``*`` and ``**`` (Jinja leaves both unbounded)."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            raise SecurityError("`**` is not allowed in templates")
        seq, count = (left, right) if isinstance(left, str | list) else (right, left)
        if isinstance(seq, str | list) and isinstance(count, int) and len(seq) * count > MAX_REPEAT:
            raise SecurityError(f"`*` would build more than {MAX_REPEAT} characters")
        return super().call_binop(context, operator, left, right)


_ENV = _Sandbox(undefined=StrictUndefined, autoescape=False, finalize=_finalize)
_ENV.filters.update(make_filters(dt.datetime.now(dt.UTC)))


@functools.lru_cache(maxsize=1024)
def _compiled(template: str) -> CodeType:
    """A template's compiled code: parsing and compiling cost milliseconds, so a rule's
    template is compiled once, not on every nudge (its filters are bound per render)."""
    code: CodeType = _ENV.compile(template)
    return code


def render(template: str, context: dict[str, Any], now: dt.datetime | None = None) -> str:
    """Render a template; whitespace runs collapse to single spaces (it is a text message)."""
    env = _ENV
    if now is not None:
        env = _ENV.overlay()
        env.filters.update(make_filters(now))
    compiled = env.template_class.from_code(env, _compiled(template), env.make_globals(None))
    return " ".join(compiled.render(**context).split())


def compile_template(template: str) -> None:
    """Raise ``jinja2.TemplateSyntaxError`` if the template cannot be parsed."""
    _ENV.parse(template)


def field_problems(template: str, event_type: str | None = None) -> list[str]:
    """Unknown roots or fields a template names (``{{ lead.compnay }}``)."""
    tree = _ENV.parse(template)
    problems: list[str] = []
    assigned = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    inner = {id(n.node) for n in tree.find_all(nodes.Getattr)}
    for node in tree.find_all(nodes.Getattr):
        if id(node) in inner:
            continue
        parts = [node.attr]
        base: nodes.Node = node.node
        while isinstance(base, nodes.Getattr):
            parts.append(base.attr)
            base = base.node
        if isinstance(base, nodes.Name) and base.name in f.ROOTS:
            name = ".".join([base.name, *reversed(parts)])
            if not f.is_known(name, event_type):
                problems.append(f.unknown_field_message(name, event_type))
    for filt in tree.find_all(nodes.Filter):
        if filt.name not in _ENV.filters:
            text = msg.UNKNOWN_FILTER.format(name=filt.name)
            close = difflib.get_close_matches(filt.name, sorted(FILTERS), n=1, cutoff=0.5)
            close = close or difflib.get_close_matches(filt.name, sorted(_ENV.filters), n=1)
            problems.append(
                f"{text} — {msg.DID_YOU_MEAN.format(suggestion=close[0])}" if close else text
            )
    for name_node in tree.find_all(nodes.Name):
        if name_node.ctx == "load" and name_node.name not in (
            *f.ROOTS,
            *TEMPLATE_GLOBALS,
            *assigned,
        ):
            problems.append(f.unknown_field_message(name_node.name))
    return problems


def sms_segments(text: str) -> tuple[int, str, list[str]]:
    """(segments, 'GSM-7' or 'UCS-2', the non-GSM characters that forced UCS-2)."""
    odd = sorted({c for c in text if c not in GSM7 and c not in GSM7_EXT})
    if odd:
        units = sum(2 if ord(c) > 0xFFFF else 1 for c in text)
        return (1 if units <= 70 else -(-units // 67)), "UCS-2", odd
    septets = sum(2 if c in GSM7_EXT else 1 for c in text)
    return (1 if septets <= 160 else -(-septets // 153)), "GSM-7", []


class _SampleCustom(f.Fields):
    """Sample ``lead.custom``: any name reads as a plausible date string."""

    def __missing__(self, key: str) -> Any:
        return "2026-09-30"


class _SampleProducts(f.Fields):
    """Sample ``score.cross_sell``: any product reads as a plausible score."""

    def __init__(self, score: f.Fields) -> None:
        super().__init__()
        self.score = score

    def __missing__(self, key: str) -> Any:
        return self.score


def sample_context(now: dt.datetime) -> dict[str, Any]:
    """A realistic, fully populated context to render templates against at load time."""
    lead = f.Fields(
        lead_id="lead-sample",
        company="Northwind Office Interiors",
        contact_name="Alexandra Johnson",
        title="Head of Facilities",
        industry="commercial real estate",
        employees=240,
        deal_value=48500.0,
        stage="proposal",
        owner_rep_id="rep-sample",
        email="alexandra.johnson@example.com",
        phone="+14155550100",
        custom=_SampleCustom(),
        status="open",
        last_touch_at=(now - dt.timedelta(days=3)).isoformat(),
    )
    score = f.Fields(
        value=0.86,
        previous=0.31,
        change=0.55,
        reasons=["3 pricing-page visits today", "proposal opened twice", "asked for a demo"],
        model_version="sample",
        rule_based=False,
        expected_value=41710.0,
        scored_at=now.isoformat(),
    )
    other = f.Fields(
        value=0.42,
        previous=0.18,
        change=0.24,
        reasons=["usage down 35% this month", "2 support complaints this week"],
        model_version="sample",
        rule_based=False,
        expected_value=20370.0,
        scored_at=now.isoformat(),
    )
    score["churn"] = other
    score["cross_sell"] = _SampleProducts(other)
    score["best_cross_sell"] = [
        f.Fields(
            product=product,
            probability=p,
            expected_value=p * value,
            reasons=["5 trial users of it last month", "read its pricing page twice"],
            model_version="sample",
        )
        for product, p, value in (("payroll", 0.34, 12000.0), ("insurance", 0.21, 5000.0))
    ]
    event = f.Fields(type="page.viewed", path="/pricing/enterprise", keyword="standing desks")
    rep = f.Fields(
        rep_id="rep-sample", name="Ana Ruiz", timezone="America/Los_Angeles", team="west"
    )
    deal = f.Fields(stage="proposal", value=48500.0, status="open")
    return {
        "lead": lead,
        "score": score,
        "event": event,
        "rep": rep,
        "deal": deal,
        "match": f.Fields({"score.value": 0.86}),
        "playbook": "sample",
        "rule": "sample",
    }
