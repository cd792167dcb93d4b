"""Running a rule's chain of actions from a given step: the commands it issues now.

Shared by the evaluator (a rule fires on a signal: start at step 0) and by
:mod:`playbooks.resume` (a scheduled row comes due: continue at step N). A step
with a delay (``wait``, ``escalate``) ends this run with a :class:`ScheduleStep`
that carries the step to continue at, so a chain survives restarts and needs no
sleeping coroutine. What each step issues is the action kind's own
:meth:`~playbooks.actions.ActionKind.issue`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from jinja2 import TemplateError

from nudge.logs import get_logger
from nudge.signals import Command, LeadSignal, QuietHours, ScheduleStep
from playbooks.expressions import ExpressionFailed
from playbooks.schedule import schedule_id
from playbooks.templates import render

if TYPE_CHECKING:
    from playbooks.model import Playbook, Rule

log = get_logger(__name__)


class StepFailed(Exception):
    """One step could not be built on this signal (template or expression failed)."""


OWNER_WAIT = dt.timedelta(minutes=1)
OWNER_WAITS_MAX = 30
"""A nudge ``to: owner`` about a lead whose owner is not known yet (its web visits reached
Nudge before its CRM record) waits for one: the chain is tried again from that step
every :data:`OWNER_WAIT`, up to this many times (half an hour), then the nudge is dropped
with a warning."""


@dataclass
class Run:
    """Everything one run of a chain needs to know, and the commands it produced."""

    playbook: Playbook
    rule: Rule
    signal: LeadSignal
    data: dict[str, Any]
    now: dt.datetime
    trigger_id: str
    match: dict[str, Any] = field(default_factory=dict)
    exploration: bool = False
    propensity: float = 1.0
    last_nudge_id: str | None = None
    commands: list[Command] = field(default_factory=list)
    event_rep: str | None = None
    """The rep the triggering event named (a meeting's host, a call's rep): ``to: event_rep``.
    Kept in a delayed step's ``check``, so it survives a ``wait``."""
    owner_waits: int = 0
    """How many times this chain has already waited for the lead's owner (:data:`OWNER_WAITS_MAX`)."""
    waiting: bool = False
    """A step asked the chain to stop here and be tried again later (:func:`wait_for_owner`)."""

    @property
    def lead_id(self) -> str:
        return self.signal.lead.lead_id

    @property
    def reasons(self) -> list[str]:
        """The reasons of the score the rule's trigger watches (``score: churn`` → the
        churn score's), else the conversion score's."""
        watched = self.signal.targets.get(getattr(self.rule.trigger, "score", ""))
        return list(watched.score.reasons if watched else self.signal.score.reasons)

    def context(self) -> dict[str, Any]:
        return self.data | {
            "match": self.match,
            "playbook": self.playbook.name,
            "rule": self.rule.id,
        }

    def common(self) -> dict[str, Any]:
        """The fields every command of this run carries."""
        return {
            "playbook": self.playbook.name,
            "rule": self.rule.id,
            "trigger_event_id": self.trigger_id,
            "created_at": self.now,
        }

    def quiet_hours(self) -> QuietHours | None:
        return self.rule.quiet_hours.command() if self.rule.quiet_hours else None

    def recipient(self, to: str) -> str | None:
        """``owner`` / ``manager`` / ``event_rep`` → a rep id (``None``: unknown); teams are
        fanned out later. ``event_rep`` is the owner when the event named no rep."""
        if to == "event_rep":
            return self.event_rep or self.signal.lead.owner_rep_id
        if to == "owner":
            return self.signal.lead.owner_rep_id
        if to == "manager":
            return self.signal.rep.manager_rep_id if self.signal.rep else None
        return None

    def text(self, template: str) -> str:
        """The template rendered for this run (at most one long SMS)."""
        try:
            text = render(template, self.context(), self.now)
        except (TemplateError, TypeError, ValueError, ArithmeticError) as exc:
            raise StepFailed(f"template: {exc}") from exc
        if not text:
            raise StepFailed("template rendered an empty message")
        return text[:1600]


def recipient(to: str, signal: LeadSignal) -> str | None:
    """``owner`` / ``manager`` → a rep id for ``signal``'s lead (``None``: unknown)."""
    if to == "owner":
        return signal.lead.owner_rep_id
    if to == "manager":
        return signal.rep.manager_rep_id if signal.rep else None
    return None


def run_steps(run: Run, start: int = 0) -> list[Command]:
    """Issue the commands of steps ``start..`` until the end, a ``stop``, or a delay."""
    actions = run.rule.actions
    for index in range(start, len(actions)):
        action = actions[index]
        try:
            if action.when is not None and not action.when.holds(run.data, run.now):
                continue
        except ExpressionFailed as exc:
            raise StepFailed(str(exc)) from exc
        if action.ends_chain:
            break
        delay = action.delay()
        if delay is not None:
            purpose = action.resume_as
            check = {"nudge_id": run.last_nudge_id, "since": run.now.isoformat()}
            run.commands.append(_schedule(run, purpose, index, delay, check))
            break
        action.issue(run, index)
        if run.waiting:
            break
    return run.commands


def wait_for_owner(run: Run, index: int) -> bool:
    """Stop the chain at step ``index`` and try it again in :data:`OWNER_WAIT`, when the
    lead may have an owner; ``False`` once it has waited :data:`OWNER_WAITS_MAX` times."""
    if run.owner_waits >= OWNER_WAITS_MAX:
        return False
    waits = run.owner_waits + 1
    check = {"since": run.now.isoformat(), "owner_waits": waits}
    run.commands.append(
        _schedule(run, "continue", index, OWNER_WAIT, check, step=index, key=f"owner{waits}")
    )
    run.waiting = True
    return True


def _schedule(
    run: Run,
    purpose: str,
    index: int,
    delay: dt.timedelta,
    check: dict[str, Any],
    *,
    step: int | None = None,
    key: str = "",
) -> ScheduleStep:
    """The row that continues the chain after step ``index`` (at ``step``, by default the
    next step for ``continue``, this one for an escalation)."""
    key = f"{run.trigger_id}#{index}" + (f"#{key}" if key else "")
    return ScheduleStep(
        schedule_id=schedule_id(purpose, run.playbook.name, run.rule.id, run.lead_id, key),
        due_at=run.now + delay,
        partition_key=run.lead_id,
        purpose=purpose,  # type: ignore[arg-type]
        lead_id=run.lead_id,
        rep_id=run.signal.lead.owner_rep_id,
        playbook=run.playbook.name,
        rule=run.rule.id,
        step=step if step is not None else index + 1 if purpose == "continue" else index,
        trigger_event_id=run.trigger_id,
        check=check
        | {"exploration": run.exploration, "propensity": run.propensity}
        | ({"event_rep": run.event_rep} if run.event_rep else {}),
        created_at=run.now,
    )
