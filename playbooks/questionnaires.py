"""The manager's questionnaires: loaded from ``NUDGE_QUESTIONNAIRES``, hot-reloaded, checked.

``NUDGE_QUESTIONNAIRES`` names files or folders, like ``NUDGE_PLAYBOOKS``. The
questionnaires bundled in ``playbooks/questionnaires/`` are always there; a manager's
file with the same id replaces the bundled one. :class:`QuestionnaireSet` re-reads a
file when it changes; an edit that does not validate keeps the last good version of
that file running and says why (``problems``), like a playbook.

``nudge playbooks check`` accepts questionnaire files beside playbooks (a YAML mapping
with ``questions`` and no ``rules`` is a questionnaire) and refuses a playbook whose
``ask`` names a questionnaire that none of them defines (:func:`unknown_asks`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from nudge.errors import PlaybookError
from playbooks.loader import Checked, Problem, yaml_lines
from playbooks.questionnaire import QUESTIONNAIRES, Questionnaire, parse_questionnaire

UNKNOWN_QUESTIONNAIRE = "unknown questionnaire `{name}` — known: {known}"


def questionnaire_files(paths: list[Path]) -> list[Path]:
    """Every ``*.yaml``/``*.yml`` under ``paths`` (files or folders), sorted per folder."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml"))
        else:
            files.append(path)
    return files


def is_questionnaire_file(path: Path) -> bool:
    """Does the file hold a questionnaire (``questions``, no ``rules``) rather than a playbook?"""
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError, ValueError, RecursionError):
        return False
    return isinstance(data, dict) and "questions" in data and "rules" not in data


def read_questionnaire(path: Path) -> tuple[Questionnaire | None, list[str]]:
    """The questionnaire in ``path``, or ``None`` and its problems (``file:line: ...``)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [f"{path}:1: cannot read: {getattr(exc, 'strerror', None) or exc}"]
    try:
        return parse_questionnaire(text, str(path)), []
    except PlaybookError as exc:
        return None, list(exc.problems)


@dataclass
class QuestionnaireSet:
    """The bundled questionnaires plus the manager's, kept current by :meth:`refresh`."""

    paths: list[Path] = field(default_factory=list)
    bundled: dict[str, Questionnaire] = field(default_factory=dict)
    good: dict[Path, Questionnaire] = field(default_factory=dict)
    """The last good questionnaire of each of the manager's files."""
    stamps: dict[Path, tuple[int, int]] = field(default_factory=dict)
    problems: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.bundled:
            for file in questionnaire_files([QUESTIONNAIRES]):
                found, errors = read_questionnaire(file)
                if found is None:  # the package's own files are tested; never expected
                    raise PlaybookError(errors)
                self.bundled[found.id] = found
        self.refresh()

    @property
    def questionnaires(self) -> dict[str, Questionnaire]:
        """By id: the bundled ones, replaced by the manager's of the same id."""
        return {**self.bundled, **{q.id: q for q in self.good.values()}}

    def refused(self) -> list[str]:
        """Problems of the files refused with nothing of theirs running (no good version)."""
        return [
            line
            for file, lines in self.problems.items()
            if Path(file) not in self.good
            for line in lines
        ]

    def get(self, questionnaire_id: str) -> Questionnaire | None:
        return self.questionnaires.get(questionnaire_id)

    def refresh(self) -> list[str]:
        """Re-read the manager's changed files; return what changed, as log-style lines."""
        changes: list[str] = []
        files = questionnaire_files(self.paths)
        for gone in set(self.good) - set(files):
            changes.append(f"{gone}: removed; questionnaire {self.good.pop(gone).id} unloaded")
            self.stamps.pop(gone, None)
            self.problems.pop(str(gone), None)
        owners = {q.id: f for f, q in self.good.items()}
        for file in files:
            try:
                st = file.stat()
            except OSError as exc:
                self.problems[str(file)] = [f"{file}:1: cannot read: {exc.strerror}"]
                continue
            stamp = (st.st_mtime_ns, st.st_size)
            if self.stamps.get(file) == stamp:
                continue
            self.stamps[file] = stamp
            found, errors = read_questionnaire(file)
            other = owners.get(found.id) if found else None
            if found is not None and other is not None and other != file:
                errors = [f"{file}:1: id: questionnaire {found.id!r} is also defined in {other}"]
                found = None
            if found is None:
                self.problems[str(file)] = errors
                kept = self.good.get(file)
                changes.append(
                    f"{file}: refused ({'; '.join(errors)})"
                    + (f"; keeping the last good version of {kept.id}" if kept else "")
                )
                continue
            self.problems.pop(str(file), None)
            self.good[file] = found
            owners[found.id] = file
            changes.append(f"{file}: loaded questionnaire {found.id}")
        return changes


def unknown_asks(checked: list[Checked], known: set[str]) -> list[Checked]:
    """``checked`` with every playbook refused whose ``ask`` names an unknown questionnaire,
    the problem located at that ``questionnaire:`` line."""
    out = []
    for res in checked:
        if res.playbook is None:
            out.append(res)
            continue
        try:
            lines = yaml_lines(Path(res.file).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            lines = {}
        found: list[Problem] = []
        for r, rule in enumerate(res.playbook.rules):
            for a, action in enumerate(rule.actions):
                name = getattr(action, "questionnaire", None)
                if getattr(action, "type", None) != "ask" or name is None or name in known:
                    continue
                path = ("rules", str(r), "actions", str(a), "questionnaire")
                text = UNKNOWN_QUESTIONNAIRE.format(name=name, known=", ".join(sorted(known)))
                found.append(Problem(res.file, lines.get(path, 1), 1, ".".join(path), text))
        out.append(Checked(res.file, None, [*res.problems, *found]) if found else res)
    return out


def checking_asks(questionnaires: QuestionnaireSet) -> Callable[[Path], Checked]:
    """A playbook file check that, as ``nudge playbooks check`` does, also refuses an
    ``ask`` of a questionnaire the running set does not define (for ``PlaybookSet``)."""
    from playbooks.loader import check_file

    def check(path: Path) -> Checked:
        return unknown_asks([check_file(path)], set(questionnaires.questionnaires))[0]

    return check


@dataclass(frozen=True)
class CheckedQuestionnaire:
    """One questionnaire file checked: the questionnaire (``None`` if refused), problems."""

    file: str
    questionnaire: Questionnaire | None
    problems: list[str]


def check_all(
    paths: list[Path] | None, configured: list[Path]
) -> tuple[list[Checked], list[CheckedQuestionnaire]]:
    """What ``nudge playbooks check`` reports: the playbooks under ``paths`` (questionnaire
    files among them are checked as questionnaires), each ``ask`` checked against the
    bundled, the ``configured`` (``NUDGE_QUESTIONNAIRES``) and the checked questionnaires."""
    from playbooks.loader import check_paths, playbook_files

    files = playbook_files(paths)
    asked = [f for f in files if is_questionnaire_file(f)]
    playbook_paths = [f for f in files if f not in asked]
    checked = check_paths(playbook_paths) if playbook_paths or not asked else []
    found = [CheckedQuestionnaire(str(f), *read_questionnaire(f)) for f in asked]
    known = set(QuestionnaireSet(list(configured)).questionnaires)
    known |= {q.questionnaire.id for q in found if q.questionnaire is not None}
    return unknown_asks(checked, known), found
