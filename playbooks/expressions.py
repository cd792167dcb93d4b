"""The safe expression language for conditions too rich for structured comparisons.

Expressions are evaluated by ``simpleeval`` (a small, maintained evaluator that
walks the AST itself: no ``eval``, no ``__dunder__`` attributes). On top of that,
every expression is checked at load time against a whitelist of syntax — names,
dotted fields, literals, comparisons, arithmetic, ``and``/``or``/``not``, a few
functions — so method calls (``lead.custom.get``), lambdas, comprehensions and
attribute access outside the known fields are rejected before a playbook runs.

Example: ``score.value - score.previous >= 0.3 and days_until(lead.custom.renewal_on) < 90``
"""

from __future__ import annotations

import ast
import datetime as dt
from collections.abc import Callable
from typing import Any

from simpleeval import EvalWithCompoundTypes, InvalidExpression

from playbooks import fields as f
from playbooks import messages as msg
from playbooks.schedule import parse_date

MAX_LENGTH = 500


def _functions(now: dt.datetime) -> dict[str, Callable[..., Any]]:
    today = now.date()

    def days_until(value: Any) -> int | None:
        day = parse_date(value)
        return None if day is None else (day - today).days

    def days_since(value: Any) -> int | None:
        day = parse_date(value)
        return None if day is None else (today - day).days

    def lower(value: Any) -> str:
        return str(value or "").lower()

    return {
        "len": lambda v: len(v) if isinstance(v, str | list | dict) else 0,
        "abs": abs,
        "min": min,
        "max": max,
        "round": round,
        "lower": lower,
        "upper": lambda v: str(v or "").upper(),
        "days_until": days_until,
        "days_since": days_since,
    }


FUNCTIONS = tuple(sorted(_functions(dt.datetime.now(dt.UTC))))

_ALLOWED = (
    ast.Expression,
    ast.BoolOp,
    ast.And,
    ast.Or,
    ast.UnaryOp,
    ast.Not,
    ast.USub,
    ast.BinOp,
    ast.Add,
    ast.Sub,
    ast.Mult,
    ast.Div,
    ast.Mod,
    ast.Compare,
    ast.Eq,
    ast.NotEq,
    ast.Lt,
    ast.LtE,
    ast.Gt,
    ast.GtE,
    ast.In,
    ast.NotIn,
    ast.Is,
    ast.IsNot,
    ast.IfExp,
    ast.Constant,
    ast.List,
    ast.Tuple,
    ast.Load,
    ast.Name,
    ast.Attribute,
    ast.Call,
)


def _dotted(node: ast.expr) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    return None


def check_expression(text: str, event_type: str | None = None) -> list[str]:
    """Every problem with ``text`` (empty list: it is safe and names only known fields)."""
    if len(text) > MAX_LENGTH:
        return [msg.EXPR_SYNTAX.format(problem=f"longer than {MAX_LENGTH} characters")]
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        return [msg.EXPR_SYNTAX.format(problem=exc.msg)]
    problems: list[str] = []
    functions = ", ".join(FUNCTIONS)
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED):
            what = type(node).__name__.lower()
            problems.append(msg.EXPR_FORBIDDEN.format(what=what, functions=functions))
        elif isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
                name = _dotted(node.func) or "?"
                problems.append(msg.EXPR_FUNCTION.format(name=name, functions=functions))
            if node.keywords:
                problems.append(
                    msg.EXPR_FORBIDDEN.format(what="keyword arguments", functions=functions)
                )
        elif isinstance(node, ast.Attribute):
            if node.attr.startswith("_"):
                problems.append(msg.EXPR_FORBIDDEN.format(what="`_` names", functions=functions))
        elif isinstance(node, ast.Name) and node.id not in (*f.ROOTS, *FUNCTIONS):
            problems.append(f.unknown_field_message(node.id))
    if problems:
        return problems
    # dotted names, outermost only (``lead.custom.x`` not also ``lead.custom``)
    inner: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            inner.add(id(node.value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and id(node) not in inner:
            dotted = _dotted(node)
            if dotted is None:
                problems.append(
                    msg.EXPR_FORBIDDEN.format(what="attributes of values", functions=functions)
                )
            elif not f.is_known(dotted, event_type):
                problems.append(f.unknown_field_message(dotted, event_type))
    return problems


def evaluate_expression(text: str, data: dict[str, Any], now: dt.datetime) -> bool:
    """Truth of a checked expression on :func:`playbooks.fields.views` data.

    Raises :class:`ExpressionFailed` when the values do not fit (``None > 3``).
    """
    evaluator = EvalWithCompoundTypes(names=dict(data), functions=_functions(now))
    try:
        return bool(evaluator.eval(text.strip()))
    except (InvalidExpression, TypeError, ValueError, ArithmeticError, KeyError) as exc:
        raise ExpressionFailed(f"{text!r}: {exc}") from exc


class ExpressionFailed(Exception):
    """An expression could not be evaluated on this signal (the rule is skipped)."""


def fields_read(text: str) -> list[str]:
    """The dotted field names a (checked) expression reads, in order (for the trace)."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError:
        return []
    inner = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    names = [
        _dotted(n) for n in ast.walk(tree) if isinstance(n, ast.Attribute) and id(n) not in inner
    ]
    return list(dict.fromkeys(n for n in names if n))
