"""Questionnaires: the two or three quick questions a rep gets after a call or meeting.

A questionnaire is data, like a playbook: a YAML file under
``playbooks/questionnaires/`` validated into the pydantic models below
(``extra="forbid"``; every problem is reported as ``file:line: field: problem``,
through the same line-mark helper as :mod:`playbooks.loader`).

Each question has one ``type`` (``choice``, ``yes_no``, ``number``, ``date``,
``text``) and, usually, the CRM ``field`` its answer is written to. Field paths:

- ``lead.<name>`` for the lead's profile fields (``company``, ``stage``,
  ``deal_value``, ``employees`` ...), ``lead.custom.<key>`` for customer fields;
- ``deal.stage``, ``deal.value`` and ``deal.status`` (the lead's ``stage`` /
  ``deal_value`` / ``status``), ``deal.close_date``, ``deal.next_step``, ``deal.name``
  (the lead's current deal, a row in the store's ``deals``), and ``deal.<key>`` for
  anything else about the deal (its custom field; playbooks read ``deal.custom.<key>``).
  Where each lives: :func:`nudge.paths.profile_key`.

Follow-ups: ``follow_ups: [{when: {answer: "no"}, ask: [q3]}]`` on a question asks
``q3`` right after it when the answer matches. A question named by any ``ask``
is *conditional*: it is asked only when a follow-up triggers it. Targets must come
later in the file than the question that asks them, so no loop is possible and
every question is asked at most once per session.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from nudge.errors import PlaybookError
from nudge.keywords import OPT_OUT
from playbooks.loader import _compose_lines

QUESTIONNAIRES = Path(__file__).with_name("questionnaires")

Scalar = str | int | float | bool
"""What an answer, an option value or a ``when`` condition can hold."""

Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")]
FieldPath = Annotated[
    str,
    Field(
        pattern=r"^(lead\.custom\.[a-z0-9_]+|lead\.[a-z_]+|deal\.[a-z0-9_]+)$",
        description="lead.<field>, lead.custom.<key>, deal.stage, deal.value or deal.<key>",
    ),
]

LEAD_FIELDS = frozenset(
    {"company", "contact_name", "title", "industry", "employees", "deal_value", "stage"}
)
"""``lead.<name>`` fields a questionnaire may write (the CRM profile, see LeadFields)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class When(_Model):
    """The condition of a follow-up: the answer equals ``answer`` (or one of a list)."""

    answer: Scalar | list[Scalar]


class FollowUp(_Model):
    """Ask the questions ``ask`` right after this one when ``when`` matches."""

    when: When
    ask: list[Id] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _one_id_is_a_list(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("ask"), str):
            return {**data, "ask": [data["ask"]]}
        return data


class Option(_Model):
    """One numbered option of a choice; ``value`` (default: the label) goes to the CRM."""

    label: str = Field(min_length=1, max_length=40)
    value: Scalar | None = None

    @property
    def stored(self) -> Scalar:
        return self.label if self.value is None else self.value


class _Question(_Model):
    id: Id
    text: str = Field(min_length=1, max_length=300)
    field: FieldPath | None = Field(default=None, description="where the answer is written")
    follow_ups: list[FollowUp] = []


class ChoiceQuestion(_Question):
    """Reply with an option's number or label."""

    type: Literal["choice"]
    options: list[Option] = Field(min_length=2, max_length=9)

    @model_validator(mode="before")
    @classmethod
    def _plain_labels(cls, data: Any) -> Any:
        """``options: [Great, Good]`` is short for ``[{label: Great}, {label: Good}]``."""
        if isinstance(data, dict) and isinstance(data.get("options"), list):
            opts = [{"label": o} if isinstance(o, str) else o for o in data["options"]]
            return {**data, "options": opts}
        return data


class YesNoQuestion(_Question):
    """Reply yes or no (in several languages); stored as a boolean."""

    type: Literal["yes_no"]


class NumberQuestion(_Question):
    """Reply a number, with or without its unit ("12k", "$12,000", "3 seats")."""

    type: Literal["number"]
    unit: str | None = Field(default=None, max_length=20)
    min: float | None = None
    max: float | None = None
    integer: bool = False


class DateQuestion(_Question):
    """Reply a date, absolute or relative ("next tuesday", "12/15"); stored as ISO date."""

    type: Literal["date"]


class TextQuestion(_Question):
    """Reply anything; stored as text, cut at ``max_length``."""

    type: Literal["text"]
    max_length: int = Field(default=500, ge=1, le=4000)


Question = Annotated[
    ChoiceQuestion | YesNoQuestion | NumberQuestion | DateQuestion | TextQuestion,
    Field(discriminator="type"),
]


class Questionnaire(_Model):
    """A named list of questions, with how long to wait before reminding and giving up."""

    id: Id
    title: str = Field(min_length=1, max_length=80)
    intro: str | None = Field(default=None, max_length=200, description="sent before q1")
    version: int = Field(default=1, ge=1)
    remind_after_minutes: int = Field(default=120, ge=1, le=7 * 24 * 60)
    expire_after_minutes: int = Field(default=24 * 60, ge=1, le=30 * 24 * 60)
    questions: list[Question] = Field(min_length=1, max_length=20)

    def question(self, question_id: str) -> Question:
        for q in self.questions:
            if q.id == question_id:
                return q
        raise KeyError(question_id)

    def index_of(self, question_id: str) -> int:
        return next(i for i, q in enumerate(self.questions) if q.id == question_id)

    def conditional_ids(self) -> set[str]:
        """Questions asked only when a follow-up names them."""
        return {qid for q in self.questions for f in q.follow_ups for qid in f.ask}

    def first_pass(self) -> list[str]:
        """The questions asked unconditionally, in file order."""
        conditional = self.conditional_ids()
        return [q.id for q in self.questions if q.id not in conditional]


_YES_NO = {"yes": True, "y": True, "true": True, "no": False, "n": False, "false": False}
"""How a ``when: {answer: ...}`` of a yes/no question may be written (YAML ``no`` is False)."""


def _when_value(question: Question, wanted: Scalar) -> Scalar | None:
    """The stored answer a ``when`` value stands for, or None if it can never match."""
    if isinstance(question, YesNoQuestion):
        return wanted if isinstance(wanted, bool) else _YES_NO.get(str(wanted).casefold())
    if isinstance(question, ChoiceQuestion):
        for option in question.options:
            if wanted == option.stored or str(wanted).casefold() == option.label.casefold():
                return option.stored
        return None
    return wanted


def follow_ups_for(question: Question, value: Scalar) -> list[str]:
    """The question ids to ask next because ``question`` was answered ``value``, in order."""
    ids: list[str] = []
    for follow in question.follow_ups:
        wanted = (
            follow.when.answer if isinstance(follow.when.answer, list) else [follow.when.answer]
        )
        stored = [_when_value(question, w) for w in wanted]
        if any(s == value or str(s).casefold() == str(value).casefold() for s in stored):
            ids += [qid for qid in follow.ask if qid not in ids]
    return ids


def problems(q: Questionnaire) -> list[tuple[tuple[str, ...], str]]:
    """Cross-field problems pydantic cannot see: (YAML path, message) pairs."""
    out: list[tuple[tuple[str, ...], str]] = []
    position: dict[str, int] = {}
    for i, question in enumerate(q.questions):
        if question.id in position:
            out.append((("questions", str(i), "id"), f"duplicate question id {question.id!r}"))
        position.setdefault(question.id, i)
    for i, question in enumerate(q.questions):
        here = ("questions", str(i))
        if question.field and question.field.startswith("lead.") and "." not in question.field[5:]:
            name = question.field[5:]
            if name not in LEAD_FIELDS:
                out.append(
                    (
                        (*here, "field"),
                        f"unknown lead field {name!r}: use one of {sorted(LEAD_FIELDS)} "
                        f"or lead.custom.{name}",
                    )
                )
        if (
            isinstance(question, NumberQuestion)
            and question.min is not None
            and question.max is not None
            and question.min > question.max
        ):
            out.append(((*here, "min"), "min is greater than max"))
        if question.field in ("lead.employees",) and not (
            isinstance(question, NumberQuestion) and question.integer
        ):
            out.append(
                ((*here, "field"), "lead.employees takes a number question with integer: true")
            )
        for j, follow in enumerate(question.follow_ups):
            answers = (
                follow.when.answer if isinstance(follow.when.answer, list) else [follow.when.answer]
            )
            for wanted in answers:
                if _when_value(question, wanted) is None:
                    out.append(
                        (
                            (*here, "follow_ups", str(j), "when", "answer"),
                            f"{wanted!r} can never be an answer to {question.id!r}",
                        )
                    )
            for target in follow.ask:
                where = (*here, "follow_ups", str(j), "ask")
                if target not in position:
                    known = ", ".join(position)
                    out.append((where, f"no question {target!r} (questions: {known})"))
                elif position[target] <= i:
                    out.append((where, f"{target!r} must come after {question.id!r} in the file"))
    texts: list[tuple[tuple[str, ...], str]] = [(("intro",), q.intro or "")]
    texts += [(("questions", str(i), "text"), x.text) for i, x in enumerate(q.questions)]
    for path, text in texts:
        word = _OPT_OUT.search(text)
        if word:
            out.append(
                (
                    path,
                    f"do not invite a reply of {(word['a'] or word['b']).upper()!r}: on SMS that single word opts "
                    "the rep out of every text; say 'reply done to end' instead",
                )
            )
    if not q.first_pass():
        out.append((("questions",), "every question is a follow-up: nothing is asked first"))
    return out


def parse_questionnaire(text: str, source: str = "<string>") -> Questionnaire:
    """Validate one questionnaire; raise :class:`PlaybookError` with ``file:line`` problems."""
    try:
        data: Any = yaml.safe_load(text)
        lines = _compose_lines(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        raise PlaybookError([f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}"]) from None
    if not isinstance(data, dict):
        raise PlaybookError([f"{source}:1: a questionnaire must be a mapping with id, questions"])

    def line(path: tuple[str, ...]) -> int:
        while path and path not in lines:
            path = path[:-1]
        return lines.get(path, 1)

    try:
        questionnaire = Questionnaire.model_validate(data)
    except ValidationError as exc:
        found = []
        for err in exc.errors(include_url=False):
            path = tuple(str(p) for p in err["loc"])
            # pydantic puts the union tag ("yes_no") into the path; YAML has no such key
            shown = tuple(p for p in path if p not in _TYPES)
            if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
                shown = (*shown, "type")
            msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
            found.append(f"{source}:{line(shown)}: {'.'.join(shown) or 'questionnaire'}: {msg}")
        raise PlaybookError(found) from None
    cross = problems(questionnaire)
    if cross:
        raise PlaybookError([f"{source}:{line(p)}: {'.'.join(p)}: {m}" for p, m in cross])
    return questionnaire


_KEYWORDS = "|".join(sorted(w.lower() for w in OPT_OUT))
_OPT_OUT = re.compile(
    rf"\b(?:reply|text|send)\s+['\"]?(?P<a>{_KEYWORDS})\b|\b(?P<b>{_KEYWORDS})['\"]?\s+to\b", re.I
)
"""Twilio's single-word opt-out keywords, when a text invites the rep to send one."""
_TYPES = frozenset({"choice", "yes_no", "number", "date", "text"})


def load_questionnaires(paths: list[Path] | None = None) -> dict[str, Questionnaire]:
    """Every ``*.yaml``/``*.yml`` under ``paths`` by id; all problems reported together."""
    files: list[Path] = []
    for path in paths or [QUESTIONNAIRES]:
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml"))
        else:
            files.append(path)
    found: dict[str, Questionnaire] = {}
    errors: list[str] = []
    for file in files:
        try:
            q = parse_questionnaire(file.read_text(), str(file))
        except OSError as exc:
            errors.append(f"{file}: cannot read: {exc.strerror}")
            continue
        except PlaybookError as exc:
            errors += exc.problems
            continue
        if q.id in found:
            errors.append(f"{file}:1: id: questionnaire {q.id!r} is defined twice")
        found[q.id] = q
    if errors:
        raise PlaybookError(errors)
    return found
