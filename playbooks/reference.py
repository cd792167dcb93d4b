"""The playbook language reference, generated from the catalogue the loader checks with.

Triggers, conditions and actions come from :mod:`playbooks.kinds` (each kind's
docstring, keys and example), fields from :mod:`playbooks.fields`, filters from
:mod:`playbooks.templates` and expression functions from :mod:`playbooks.expressions`.
``docs/playbook-reference.md`` is this module's output; a test keeps them equal, and
every example in it is checked by the real loader. Regenerate with
``nudge playbooks reference > docs/playbook-reference.md``.
"""

from __future__ import annotations

import datetime as dt
import textwrap
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from playbooks import fields as f
from playbooks.conditions import OPS
from playbooks.expressions import FUNCTIONS
from playbooks.kinds import Kind, kinds
from playbooks.model import Playbook
from playbooks.templates import FILTERS
from playbooks.triggers.score_crossed import DEFAULT_MARGIN
from playbooks.types import human_duration, pct

_DEFAULTS = {
    "trigger": "trigger: {type: event, event: page.viewed}",
    "actions": 'actions: [{type: nudge, template: "{{ lead.company }}"}]',
}


def example_playbook(kind: Kind) -> str:
    """A whole playbook around ``kind``'s example, as the loader must accept it."""
    body = kind.example
    parts = [body] + [d for key, d in _DEFAULTS.items() if not body.startswith(key + ":")]
    rule = "\n".join(parts)
    return "name: example\nowner: ops\nversion: 1\nrules:\n  - id: r\n" + textwrap.indent(
        rule, "    "
    )


def _default(info: Any, name: str, score_fields: tuple[str, ...]) -> str:
    if info.is_required():
        return "required"
    value = info.default
    if value is PydanticUndefined and info.default_factory is not None:
        value = info.default_factory()
    if value is None or value in ([], {}):
        return "—"
    if isinstance(value, dt.timedelta):
        return human_duration(value)
    if isinstance(value, dt.time):
        return value.strftime("%H:%M")
    if name in score_fields:
        return pct(value)
    return f"`{value}`" if not isinstance(value, list) else ", ".join(map(str, value))


def _keys(model: type[BaseModel]) -> list[str]:
    rows = []
    scores: tuple[str, ...] = getattr(model, "score_fields", ())
    for name, info in model.model_fields.items():
        if name in ("type", "when"):
            continue
        rows.append(f"| `{info.alias or name}` | {_default(info, name, scores)} |")
    return ["| key | default |", "| --- | --- |", *rows] if rows else []


def _section(role: str, title: str) -> list[str]:
    out = [f"## {title}", ""]
    for kind in kinds(role):  # type: ignore[arg-type]
        out += [f"### `{kind.name}`", "", kind.summary, ""]
        keys = _keys(kind.model)
        out += [*keys, ""] if keys else []
        out += ["```yaml", kind.example, "```", ""]
    return out


def _fields() -> list[str]:
    out = ["## Fields", "", "Conditions, expressions and templates read these names."]
    out += [
        "Below `lead.custom.`, `event.fields.custom.` and `event.answers.` any name is accepted.",
        "",
    ]
    for root in ("lead", "deal", "rep", "score"):
        names = sorted(n for n in f.KNOWN if n.startswith(root + ".") and n.count(".") == 1)
        out += [f"- `{root}`: " + ", ".join(f"`{n}`" for n in names)]
    out += ["", "`event.*`, by the rule's event type:", ""]
    for event_type in f.EVENT_TYPES:
        names = sorted(n for n in f.EVENT_FIELDS[event_type] if "." not in n)
        out += [f"- `{event_type}`: " + ", ".join(f"`{n}`" for n in names)]
    return [*out, ""]


def render_reference() -> str:
    """The whole reference page, as Markdown."""
    out = [
        "# Playbook language reference",
        "",
        "Generated from the code's own catalogue by `nudge playbooks reference`; do not edit.",
        "",
        "A playbook has " + ", ".join(f"`{k}`" for k in _top_keys()) + "; each rule an `id`,",
        "one trigger, optional conditions and a chain of actions.",
        "",
        "## Units",
        "",
        "- Durations carry a unit: `15m`, `4h`, `3d`, `2w` (`s` for seconds). A bare number",
        "  such as `3` is an error.",
        "- Scores are probabilities shown as percent: write `70%` or `0.7` (both mean the same);",
        "  `70` is an error.",
        f"- Score crossings re-arm after the score moved back past the line by `margin`"
        f" (default {pct(DEFAULT_MARGIN)}).",
        "",
    ]
    out += _section("trigger", "Triggers")
    out += _section("condition", "Conditions")
    out += ["Operators of a comparison: " + ", ".join(f"`{op}`" for op in OPS) + ".", ""]
    out += ["Functions in `expr`: " + ", ".join(f"`{n}`" for n in FUNCTIONS) + ".", ""]
    out += _section("action", "Actions")
    out += _fields()
    out += ["## Template filters", "", "Besides Jinja's built-ins (`join`, `default`, ...):", ""]
    out += [f"- `{name}`: {text}" for name, text in FILTERS.items()]
    return "\n".join([*out, ""])


def _top_keys() -> list[str]:
    return [info.alias or name for name, info in Playbook.model_fields.items()]


if __name__ == "__main__":
    print(render_reference(), end="")
