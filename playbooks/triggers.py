"""Triggers: what makes a rule fire. One small model per kind, one function each.

Signal-driven kinds (``event``, ``score.*``, ``deal.stage_changed``,
``questionnaire.answered``) answer :func:`fires` with the values that matched, or
``None``. Time-driven kinds (``date``, ``inactivity``, ``schedule``) never fire on a
signal directly: :func:`plan` turns a signal into a due time for the scheduler, and
the rule runs when the worker resumes the due row.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from nudge.signals import LeadSignal
from playbooks import fields as f
from playbooks import messages as msg
from playbooks.conditions import Compare, holds
from playbooks.schedule import date_due, next_run
from playbooks.types import Duration, Model, TimeOfDay, Zone, human_duration, zone_for

Match = dict[str, Any]
"""Field → value that made a trigger fire (shown by ``simulate`` as "why")."""


class EventTrigger(Model):
    """``{type: event, event: page.viewed, where: {path: {starts_with: /pricing}}}``."""

    type: Literal["event"]
    event: str
    where: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @field_validator("event")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in f.EVENT_TYPES:
            hint = f.suggest(value, set(f.EVENT_TYPES))
            text = msg.BAD_EVENT_TYPE.format(value=value)
            raise ValueError(
                f"{text} — {msg.DID_YOU_MEAN.format(suggestion=hint)}" if hint else text
            )
        return value

    @model_validator(mode="after")
    def _known_fields(self) -> EventTrigger:
        for name, ops in self.where.items():
            field = "event." + name.removeprefix("event.")
            if not f.is_known(field, self.event):
                raise ValueError(f.unknown_field_message(field, self.event))
            Compare.model_validate({"field": field, **ops})
        return self

    def filters(self) -> list[Compare]:
        return [
            Compare.model_validate({"field": "event." + k.removeprefix("event."), **ops})
            for k, ops in self.where.items()
        ]


class ScoreCrossedAbove(Model):
    """Fires when a lead's score goes from below ``value`` to at or above it."""

    type: Literal["score.crossed_above"]
    value: float = Field(gt=0, le=1)


class ScoreCrossedBelow(Model):
    """Fires when a lead's score goes from at or above ``value`` to below it."""

    type: Literal["score.crossed_below"]
    value: float = Field(gt=0, le=1)


class ScoreJumped(Model):
    """Fires when the score rose by at least ``by`` over its lowest point in ``within``."""

    type: Literal["score.jumped"]
    by: float = Field(gt=0, le=1)
    within: Duration = dt.timedelta(hours=24)


class DealStageChanged(Model):
    """Fires on ``deal.stage_changed`` events, optionally only for given stages."""

    type: Literal["deal.stage_changed"]
    to: list[str] | None = None
    from_: list[str] | None = Field(default=None, alias="from")


class QuestionnaireAnswered(Model):
    """Fires when the rep finishes questionnaire ``questionnaire`` (by id)."""

    type: Literal["questionnaire.answered"]
    questionnaire: str = Field(min_length=1)


class DateTrigger(Model):
    """``{type: date, field: lead.custom.lease_expires_on, before: 120d}``, at ``at`` local."""

    type: Literal["date"]
    field: str
    before: Duration | None = None
    after: Duration | None = None
    at: TimeOfDay = dt.time(9, 0)
    tz: Zone = "rep"

    @field_validator("field")
    @classmethod
    def _known(cls, value: str) -> str:
        if not value.startswith(("lead.", "deal.")) or not f.is_known(value):
            raise ValueError(f.unknown_field_message(value))
        return value

    @model_validator(mode="after")
    def _one_offset(self) -> DateTrigger:
        if self.before is not None and self.after is not None:
            raise ValueError(msg.BEFORE_OR_AFTER)
        return self

    @property
    def offset(self) -> dt.timedelta:
        if self.before is not None:
            return -self.before
        return self.after or dt.timedelta(0)


class Inactivity(Model):
    """Fires when a lead has had no touch (CRM, call, web, email) for ``for``."""

    type: Literal["inactivity"]
    for_: Duration = Field(alias="for")


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def _workdays() -> list[Weekday]:
    return ["mon", "tue", "wed", "thu", "fri"]


class ScheduleTrigger(Model):
    """``{type: schedule, at: "08:30", days: [mon, tue, wed, thu, fri], tz: rep}``."""

    type: Literal["schedule"]
    at: TimeOfDay
    days: list[Weekday] = Field(default_factory=_workdays, min_length=1)
    tz: Zone = "rep"


Trigger = Annotated[
    EventTrigger
    | ScoreCrossedAbove
    | ScoreCrossedBelow
    | ScoreJumped
    | DealStageChanged
    | QuestionnaireAnswered
    | DateTrigger
    | Inactivity
    | ScheduleTrigger,
    Field(discriminator="type"),
]
TIMED = (DateTrigger, Inactivity, ScheduleTrigger)


def fires(
    trigger: Trigger, signal: LeadSignal, data: dict[str, Any], now: dt.datetime
) -> Match | None:
    """The matched values if ``signal`` fires a signal-driven trigger, else ``None``."""
    score, prev = signal.score.value, signal.score.previous
    if signal.event_type == f.TIMER_EVENT or isinstance(trigger, TIMED):
        return None
    if isinstance(trigger, ScoreCrossedAbove):
        if score >= trigger.value and (prev is None or prev < trigger.value):
            return {"score.value": score, "score.previous": prev, "threshold": trigger.value}
        return None
    if isinstance(trigger, ScoreCrossedBelow):
        if score < trigger.value and prev is not None and prev >= trigger.value:
            return {"score.value": score, "score.previous": prev, "threshold": trigger.value}
        return None
    if isinstance(trigger, ScoreJumped):
        since = signal.at - trigger.within
        window = [p.value for p in signal.history if since <= p.at < signal.at]
        low = min(window, default=prev if prev is not None else score)
        was = prev if prev is not None else score
        if score - low >= trigger.by and was - low < trigger.by:
            return {
                "score.value": score,
                "score.low": low,
                "within": human_duration(trigger.within),
            }
        return None
    if isinstance(trigger, DealStageChanged):
        if signal.event_type != "deal.stage_changed":
            return None
        to, frm = signal.event.get("to_stage"), signal.event.get("from_stage")
        if (trigger.to and to not in trigger.to) or (trigger.from_ and frm not in trigger.from_):
            return None
        return {"event.from_stage": frm, "event.to_stage": to}
    if isinstance(trigger, QuestionnaireAnswered):
        # the conversation agent records answers as lead.updated from this source
        source = f"{f.QUESTIONNAIRE_SOURCE_PREFIX}{trigger.questionnaire}"
        if (
            signal.event_type == f.QUESTIONNAIRE_EVENT
            and signal.event.get("questionnaire") == trigger.questionnaire
        ) or (signal.event_type == "lead.updated" and signal.event.get("source") == source):
            return {"event.questionnaire": trigger.questionnaire}
        return None
    if signal.event_type != trigger.event:
        return None
    filters = trigger.filters()
    if all(holds(c, data, now) for c in filters):
        return {"event.type": trigger.event} | {c.field: f.lookup(data, c.field) for c in filters}
    return None


def may_fire(trigger: Trigger, signal: LeadSignal) -> bool:
    """False only if ``trigger`` certainly ignores ``signal`` — a cheap, conservative look
    (event filters, conditions and guards are not checked). Time-driven kinds always
    look: they re-plan on every signal."""
    if isinstance(trigger, TIMED):
        return True
    if isinstance(trigger, ScoreCrossedAbove | ScoreCrossedBelow | ScoreJumped):
        return fires(trigger, signal, {}, signal.at) is not None
    if isinstance(trigger, DealStageChanged):
        return signal.event_type == "deal.stage_changed"
    if isinstance(trigger, QuestionnaireAnswered):
        return signal.event_type in (f.QUESTIONNAIRE_EVENT, "lead.updated")
    return signal.event_type == trigger.event


def plan(
    trigger: Trigger, signal: LeadSignal, data: dict[str, Any], now: dt.datetime
) -> tuple[dt.datetime, dict[str, Any]] | None:
    """For a time-driven trigger: (when it is due, what must still hold then), or ``None``."""
    rep_zone = signal.rep.timezone if signal.rep else None
    if isinstance(trigger, DateTrigger):
        value = f.lookup(data, trigger.field)
        due = date_due(value, trigger.offset, trigger.at, zone_for(trigger.tz, rep_zone), now)
        return None if due is None else (due, {trigger.field: str(value)})
    if isinstance(trigger, Inactivity):
        last = signal.lead.last_touch_at or signal.at
        return last + trigger.for_, {"lead.last_touch_at": last.isoformat()}
    if isinstance(trigger, ScheduleTrigger):
        due = next_run(trigger.at, trigger.days, zone_for(trigger.tz, rep_zone), now)
        return due, {"occurrence": due.isoformat()}
    return None


def still_valid(
    trigger: Trigger, check: dict[str, Any], signal: LeadSignal, data: dict[str, Any]
) -> bool:
    """When a time-driven row comes due: does what it was planned on still hold?"""
    if isinstance(trigger, DateTrigger):
        return str(f.lookup(data, trigger.field)) == check.get(trigger.field)
    if isinstance(trigger, Inactivity):
        last = signal.lead.last_touch_at
        return last is None or last.isoformat() <= str(check.get("lead.last_touch_at"))
    return isinstance(trigger, ScheduleTrigger)


def describe(trigger: Trigger) -> str:
    """A short human description, for ``simulate`` output: ``score.jumped by=0.4, within=1d``."""
    parts = []
    for name, info in type(trigger).model_fields.items():
        value = getattr(trigger, name)
        if name == "type" or value == info.default or value in (None, [], {}):
            continue
        shown = human_duration(value) if isinstance(value, dt.timedelta) else value
        parts.append(f"{info.alias or name}={shown}")
    return trigger.type + (" " + ", ".join(parts) if parts else "")
