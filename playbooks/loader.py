"""Load playbook YAML files; every problem names the file, line and field.

YAML is parsed with line marks kept, so a pydantic error at ``rules.0.trigger.value``
is reported at the line where that value is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from nudge.errors import PlaybookError
from playbooks.model import Playbook

DEFAULT_PLAYBOOKS = Path(__file__).with_name("default")


def _compose_lines(text: str) -> dict[tuple[str, ...], int]:
    """Map each YAML path (as strings) to its 1-based line."""
    lines: dict[tuple[str, ...], int] = {}

    def walk(node: yaml.Node, path: tuple[str, ...]) -> None:
        lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                lines[(*path, str(key.value))] = key.start_mark.line + 1
                walk(value, (*path, str(key.value)))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, (*path, str(i)))

    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if root is not None:
        walk(root, ())
    return lines


def parse_playbook(text: str, source: str = "<string>") -> Playbook:
    """Validate one playbook; raise :class:`PlaybookError` with ``file:line: field: problem``."""
    try:
        data: Any = yaml.safe_load(text)
        lines = _compose_lines(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        raise PlaybookError([f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}"]) from None
    if not isinstance(data, dict):
        raise PlaybookError([f"{source}:1: a playbook must be a mapping with name, owner, rules"])
    try:
        return Playbook.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            path = tuple(str(p) for p in err["loc"])
            known = path
            while known and known not in lines:
                known = known[:-1]
            line = lines.get(known, 1)
            msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
            problems.append(f"{source}:{line}: {'.'.join(path) or 'playbook'}: {msg}")
        raise PlaybookError(problems) from None


def load_playbooks(paths: list[Path] | None = None) -> list[Playbook]:
    """Load every ``*.yaml``/``*.yml`` under ``paths``; all problems reported together."""
    files: list[Path] = []
    for path in paths or [DEFAULT_PLAYBOOKS]:
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml"))
        else:
            files.append(path)
    playbooks, problems = [], []
    for file in files:
        try:
            playbooks.append(parse_playbook(file.read_text(), str(file)))
        except OSError as exc:
            problems.append(f"{file}: cannot read: {exc.strerror}")
        except PlaybookError as exc:
            problems += exc.problems
    if problems:
        raise PlaybookError(problems)
    return playbooks
