"""Message templates: sandboxed Jinja2 with strict undefined variables.

The sandbox refuses attribute access to Python internals (``__class__``,
``__globals__`` ...), and ``StrictUndefined`` turns a typo into an error instead
of an empty string in a rep's text message.
"""

from __future__ import annotations

from typing import Any

from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment


def pct(value: float | None) -> str:
    """0.863 → '86%'; None → '—'."""
    return "—" if value is None else f"{round(value * 100)}%"


def money(value: float | None) -> str:
    """12500 → '$12,500'."""
    return "—" if value is None else f"${value:,.0f}"


_ENV = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
_ENV.filters.update(pct=pct, money=money)


def render(template: str, context: dict[str, Any]) -> str:
    """Render a template; whitespace runs collapse to single spaces (it is a text message)."""
    return " ".join(_ENV.from_string(template).render(**context).split())


def compile_template(template: str) -> None:
    """Raise ``jinja2.TemplateSyntaxError`` if the template cannot be parsed."""
    _ENV.parse(template)
