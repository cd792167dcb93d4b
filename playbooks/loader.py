"""Load playbook YAML files; every problem names the file, line, column and field.

YAML is parsed with marks kept, so a pydantic error at ``rules.0.trigger.value``
is reported where that value is written, and an unknown key where the key is.
Validation runs in stages, like Home Assistant's automations: YAML → shape
(pydantic, which also checks every field name and expression) → templates (field
names, a sample render, SMS length). Errors refuse the file; warnings do not.
"""

from __future__ import annotations

import datetime as dt
import difflib
import typing
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml
from jinja2 import TemplateError
from pydantic import BaseModel, ValidationError

from nudge.errors import PlaybookError
from playbooks import messages as msg
from playbooks.conditions import KEYS, Condition
from playbooks.fields import EVENT_TYPES
from playbooks.kinds import kinds
from playbooks.model import Playbook
from playbooks.templates import field_problems, render, sample_context, sms_segments

DEFAULT_PLAYBOOKS = Path(__file__).with_name("default")
EXAMPLES = Path(__file__).with_name("examples")
Mark = tuple[int, int]
_TAGS = {"compare", *KEYS} | {k.name for role in ("trigger", "action") for k in kinds(role)}
"""pydantic's union tags, which a located path leaves out."""
MAX_BYTES = 256 * 1024
"""A playbook is a page or two of YAML; anything this large is a mistake."""


@dataclass(frozen=True)
class Problem:
    """One located problem, ready to print or to serialise for an editor."""

    file: str
    line: int
    column: int
    path: str
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        sev = "" if self.severity == "error" else f"{self.severity}: "
        return f"{self.file}:{self.line}:{self.column}: {sev}{self.path}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Checked:
    """The result of checking one file: the playbook (``None`` if refused) and its problems."""

    file: str
    playbook: Playbook | None
    problems: list[Problem]

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]


def _all_keys(model: type[BaseModel], seen: set[type[BaseModel]] | None = None) -> set[str]:
    seen = seen if seen is not None else set()
    if model in seen:
        return set()
    seen.add(model)
    keys: set[str] = set()
    for name, info in model.model_fields.items():
        keys.add(info.alias or name)
        stack = [info.annotation]
        while stack:
            ann = stack.pop()
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                keys |= _all_keys(ann, seen)
            stack += list(typing.get_args(ann))
    return keys


LANGUAGE_KEYS = sorted(_all_keys(Playbook) | {"in", "not"})


def _marks(text: str) -> tuple[dict[tuple[str, ...], Mark], dict[tuple[str, ...], Mark]]:
    """(path → value mark, path → key mark), 1-based."""
    values: dict[tuple[str, ...], Mark] = {}
    keys: dict[tuple[str, ...], Mark] = {}

    def walk(node: yaml.Node, path: tuple[str, ...]) -> None:
        values[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                sub = (*path, str(key.value))
                keys[sub] = (key.start_mark.line + 1, key.start_mark.column + 1)
                walk(value, sub)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, (*path, str(i)))

    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if root is not None:
        walk(root, ())
    return values, keys


def yaml_lines(text: str) -> dict[tuple[str, ...], int]:
    """Each YAML path (as strings) → the 1-based line of its value (used by questionnaires)."""
    values, _ = _marks(text)
    return {path: line for path, (line, _col) in values.items()}


_compose_lines = yaml_lines
"""The first version's name, still imported by ``playbooks.questionnaire``."""


def _locate(
    loc: tuple[Any, ...], values: dict[tuple[str, ...], Mark]
) -> tuple[tuple[str, ...], str]:
    """Drop pydantic's union tags from a location; return the YAML path and a dotted name."""
    path: tuple[str, ...] = ()
    for part in (str(p) for p in loc):
        if (*path, part) in values:
            path = (*path, part)
        elif part in _TAGS or "[" in part or part.startswith(("function-", "tagged-union")):
            continue
        else:
            path = (*path, part)
    return path, ".".join(path) or "playbook"


def _validation_problems(
    exc: ValidationError,
    source: str,
    values: dict[tuple[str, ...], Mark],
    keys: dict[tuple[str, ...], Mark],
) -> list[Problem]:
    out: list[Problem] = []
    for err in exc.errors(include_url=False):
        path, dotted = _locate(err["loc"], values)
        if err["type"] == "extra_forbidden":
            key = path[-1] if path else "?"
            text = msg.UNKNOWN_KEY.format(key=key)
            close = difflib.get_close_matches(key, LANGUAGE_KEYS, n=1, cutoff=0.6)
            if close:
                text += " — " + msg.DID_YOU_MEAN.format(suggestion=close[0])
            mark = keys.get(path)
        elif err["type"] == "union_tag_invalid":
            ctx = err.get("ctx", {})
            tags = [t.strip(" '") for t in str(ctx.get("expected_tags", "")).split(",")]
            text = msg.UNKNOWN_TYPE.format(value=ctx.get("tag"), options=", ".join(tags))
            close = difflib.get_close_matches(str(ctx.get("tag")), tags, n=1, cutoff=0.6)
            if close:
                text = msg.UNKNOWN_TYPE_HINT.format(value=ctx.get("tag"), suggestion=close[0])
            mark = None
        elif err["type"] == "union_tag_not_found":
            text = msg.MISSING_TYPE if "discriminator 'type'" in err["msg"] else msg.NOT_A_CONDITION
            mark = None
        elif err["type"] == "missing":
            text = msg.MISSING_KEY.format(key=path[-1] if path else "?")
            mark = None
        else:
            text = str(err["msg"]).removeprefix("Value error, ")
            mark = None
        known = path
        while mark is None and known not in values and known:
            known = known[:-1]
        line, col = mark or values.get(known, (1, 1))
        out.append(Problem(source, line, col, dotted, text))
    return out


def _template_problems(
    pb: Playbook, source: str, values: dict[tuple[str, ...], Mark]
) -> list[Problem]:
    out: list[Problem] = []
    now = dt.datetime(2026, 6, 1, 9, 0, tzinfo=dt.UTC)
    for r, rule in enumerate(pb.rules):
        for a, action in enumerate(rule.actions):
            for template, channel in action.texts():
                path = ("rules", str(r), "actions", str(a), "template")
                line, col = values.get(path, (1, 1))
                where = ".".join(path)
                out += [
                    Problem(source, line, col, where, text, severity)
                    for text, severity in template_problems(template, channel, rule.event_type, now)
                ]
    return out


def _raw_template_problems(
    data: dict[str, Any], source: str, values: dict[tuple[str, ...], Mark], reported: set[str]
) -> list[Problem]:
    """Template problems of a playbook whose shape did not validate, so one ``check``
    shows them together with the structural errors (not one round after another)."""
    out: list[Problem] = []
    now = dt.datetime(2026, 6, 1, 9, 0, tzinfo=dt.UTC)
    rules = data.get("rules")
    for r, rule in enumerate(rules if isinstance(rules, list) else []):
        if not isinstance(rule, dict) or not isinstance(rule.get("actions"), list):
            continue
        trigger = rule.get("trigger")
        event_type = trigger.get("event") if isinstance(trigger, dict) else None
        if trigger is None or not (
            isinstance(trigger, dict)
            and trigger.get("type") == "event"
            and event_type in EVENT_TYPES
        ):
            event_type = None
        for a, action in enumerate(rule["actions"]):
            template = action.get("template") if isinstance(action, dict) else None
            path = ("rules", str(r), "actions", str(a), "template")
            if not isinstance(template, str) or not template or ".".join(path) in reported:
                continue
            line, col = values.get(path, (1, 1))
            channel = str(action.get("channel", "best"))
            out += [
                Problem(source, line, col, ".".join(path), text, severity)
                for text, severity in template_problems(template, channel, event_type, now)
            ]
    return out


def template_problems(
    template: str, channel: str, event_type: str | None, now: dt.datetime
) -> list[tuple[str, str]]:
    """(message, severity) for one template: syntax, unknown names, a sample render, length."""
    try:
        names = field_problems(template, event_type)
    except TemplateError as exc:
        return [(msg.TEMPLATE_SYNTAX.format(problem=exc), "error")]
    if names:
        return [(p, "error") for p in names]
    try:
        text = render(template, sample_context(now), now)
    except TemplateError as exc:
        return [(msg.TEMPLATE_RENDER.format(problem=exc), "error")]
    segments, encoding, odd = sms_segments(text)
    if channel in ("sms", "best") and segments > 2:
        hint = msg.SMS_UCS2_HINT.format(chars="".join(odd[:5])) if odd else ""
        text = msg.SMS_TOO_LONG.format(
            chars=len(text), segments=segments, encoding=encoding, emoji=hint
        )
        return [(text, "warning")]
    return []


def _event_field_problems(
    pb: Playbook, source: str, values: dict[tuple[str, ...], Mark]
) -> list[Problem]:
    """`event.*` fields in a rule whose trigger pins one event type must exist on that type."""
    out: list[Problem] = []
    for r, rule in enumerate(pb.rules):
        if rule.event_type is None:
            continue
        spots: list[tuple[tuple[str, ...], Condition]] = [
            (("rules", str(r), "conditions", str(i)), c) for i, c in enumerate(rule.conditions)
        ]
        spots += [
            (("rules", str(r), "actions", str(a), "when"), act.when)
            for a, act in enumerate(rule.actions)
            if act.when is not None
        ]
        for path, cond in spots:
            line, col = values.get(path, (1, 1))
            for problem in event_fields_of(cond, rule.event_type):
                out.append(Problem(source, line, col, ".".join(path), problem))
    return out


def event_fields_of(cond: Condition, event_type: str) -> list[str]:
    """Problems with the `event.*` names ``cond`` reads, for a rule on ``event_type``."""
    return cond.event_field_problems(event_type)


def check_text(text: str, source: str = "<string>") -> Checked:
    """Validate one playbook in every stage; never raises for bad input."""
    if len(text) > MAX_BYTES:
        return Checked(
            source, None, [Problem(source, 1, 1, "file", msg.TOO_LARGE.format(limit=MAX_BYTES))]
        )
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent):
                at = event.start_mark
                line, col = (at.line + 1, at.column + 1) if at else (1, 1)
                alias = Problem(source, line, col, "playbook", msg.NO_ALIASES)
                return Checked(source, None, [alias])
        data: Any = yaml.safe_load(text)
        values, keys = _marks(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = str(getattr(exc, "problem", None) or exc)
        return Checked(
            source,
            None,
            [Problem(source, line, col, "playbook", msg.NOT_YAML.format(problem=problem))],
        )
    except (ValueError, RecursionError) as exc:  # e.g. absurd nesting, bad unicode
        return Checked(
            source, None, [Problem(source, 1, 1, "playbook", msg.NOT_YAML.format(problem=exc))]
        )
    if not isinstance(data, dict):
        return Checked(source, None, [Problem(source, 1, 1, "playbook", msg.NOT_A_MAPPING)])
    try:
        playbook = Playbook.model_validate(data)
    except ValidationError as exc:
        found = _validation_problems(exc, source, values, keys)
        found += _raw_template_problems(data, source, values, {p.path for p in found})
        return Checked(source, None, found)
    except (ValueError, TypeError, RecursionError) as exc:
        return Checked(source, None, [Problem(source, 1, 1, "playbook", str(exc))])
    problems = _event_field_problems(playbook, source, values)
    problems += _template_problems(playbook, source, values)
    refused = any(p.severity == "error" for p in problems)
    return Checked(source, None if refused else playbook, problems)


def parse_playbook(text: str, source: str = "<string>") -> Playbook:
    """Validate one playbook; raise :class:`PlaybookError` with ``file:line:col: field: problem``."""
    checked = check_text(text, source)
    if checked.playbook is None:
        raise PlaybookError([str(p) for p in checked.errors])
    return checked.playbook


def playbook_files(paths: list[Path] | None = None) -> list[Path]:
    """Every ``*.yaml``/``*.yml`` under ``paths`` (default: the shipped default playbooks)."""
    files: list[Path] = []
    for path in paths or [DEFAULT_PLAYBOOKS]:
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml"))
        else:
            files.append(path)
    return files


def check_file(file: Path) -> Checked:
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        return Checked(
            str(file),
            None,
            [Problem(str(file), 1, 1, "file", msg.CANNOT_READ.format(reason=reason))],
        )
    return check_text(text, str(file))


def check_paths(paths: list[Path] | None = None) -> list[Checked]:
    """Check every file; also refuse a playbook name used by two files."""
    results = [check_file(f) for f in playbook_files(paths)]
    owners: dict[str, str] = {}
    out = []
    for res in results:
        if res.playbook is not None and res.playbook.name in owners:
            text = msg.DUPLICATE_PLAYBOOK.format(
                name=res.playbook.name, other=owners[res.playbook.name]
            )
            res = Checked(res.file, None, [*res.problems, Problem(res.file, 1, 1, "name", text)])
        elif res.playbook is not None:
            owners[res.playbook.name] = res.file
        out.append(res)
    return out


def load_playbooks(paths: list[Path] | None = None) -> list[Playbook]:
    """Load every playbook under ``paths``; all errors reported together as one PlaybookError."""
    results = check_paths(paths)
    errors = [str(p) for r in results for p in r.errors]
    if errors:
        raise PlaybookError(errors)
    return [r.playbook for r in results if r.playbook is not None]
