"""Running a rule's chain of actions from a given step: the commands it issues now.

Shared by the evaluator (a rule fires on a signal: start at step 0) and by
:mod:`playbooks.resume` (a scheduled row comes due: continue at step N). A ``wait``
or ``escalate`` step ends this run with a :class:`ScheduleStep` that carries the
step to continue at, so a chain survives restarts and needs no sleeping coroutine.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from jinja2 import TemplateError
from pydantic import ValidationError

from nudge.logs import get_logger
from nudge.signals import (
    AskQuestionnaire,
    Command,
    LeadSignal,
    NudgeCommand,
    NudgeTeam,
    ScheduleStep,
    UpdateCrmField,
    command_id_for,
    nudge_id_for,
)
from playbooks.actions import (
    AskAction,
    EscalateAction,
    NudgeAction,
    StopAction,
    UpdateCrmAction,
    WaitAction,
)
from playbooks.conditions import holds
from playbooks.expressions import ExpressionFailed
from playbooks.model import Playbook, Rule
from playbooks.schedule import schedule_id
from playbooks.templates import render

log = get_logger(__name__)


class StepFailed(Exception):
    """One step could not be built on this signal (template or expression failed)."""


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

    @property
    def lead_id(self) -> str:
        return self.signal.lead.lead_id

    def context(self) -> dict[str, Any]:
        return self.data | {
            "match": self.match,
            "playbook": self.playbook.name,
            "rule": self.rule.id,
        }


def recipient(to: str, signal: LeadSignal) -> str | None:
    """``owner`` / ``manager`` → a rep id (``None``: unknown); teams are fanned out later."""
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
            if action.when is not None and not holds(action.when, run.data, run.now):
                continue
        except ExpressionFailed as exc:
            raise StepFailed(str(exc)) from exc
        if isinstance(action, StopAction):
            break
        if isinstance(action, WaitAction | EscalateAction):
            delay = action.for_ if isinstance(action, WaitAction) else action.after
            purpose = "continue" if isinstance(action, WaitAction) else "escalate"
            check = {"nudge_id": run.last_nudge_id, "since": run.now.isoformat()}
            run.commands.append(_schedule(run, purpose, index, delay, check))
            break
        issue(run, index, action)
    return run.commands


def _schedule(
    run: Run, purpose: str, index: int, delay: dt.timedelta, check: dict[str, Any]
) -> ScheduleStep:
    key = f"{run.trigger_id}#{index}"
    return ScheduleStep(
        schedule_id=schedule_id(purpose, run.playbook.name, run.rule.id, run.lead_id, key),
        due_at=run.now + delay,
        partition_key=run.lead_id,
        purpose=purpose,  # type: ignore[arg-type]
        lead_id=run.lead_id,
        rep_id=run.signal.lead.owner_rep_id,
        playbook=run.playbook.name,
        rule=run.rule.id,
        step=index + 1 if purpose == "continue" else index,
        trigger_event_id=run.trigger_id,
        check=check | ({"exploration": run.exploration, "propensity": run.propensity}),
        created_at=run.now,
    )


def _text(run: Run, template: str) -> str:
    try:
        text = render(template, run.context(), run.now)
    except (TemplateError, TypeError, ValueError, ArithmeticError) as exc:
        raise StepFailed(f"template: {exc}") from exc
    if not text:
        raise StepFailed("template rendered an empty message")
    return text[:1600]


def issue(run: Run, index: int, action: Any) -> None:
    pb, rule, lead = run.playbook, run.rule, run.signal.lead
    rule_key = f"{rule.id}#{index}"
    common: dict[str, Any] = {
        "playbook": pb.name,
        "rule": rule.id,
        "trigger_event_id": run.trigger_id,
        "created_at": run.now,
    }
    quiet = rule.quiet_hours.command() if rule.quiet_hours else None
    try:
        if isinstance(action, NudgeAction | EscalateAction):
            text = _text(run, action.template)
            if action.to.startswith("team:"):
                run.commands.append(
                    NudgeTeam(
                        command_id=command_id_for(pb.name, rule_key, lead.lead_id, run.trigger_id),
                        team=action.to.removeprefix("team:"),
                        lead_id=lead.lead_id,
                        channel=action.channel,
                        text=text,
                        reasons=run.signal.score.reasons,
                        priority=rule.priority,
                        quiet_hours=quiet,
                        **common,
                    )
                )
                return
            rep_id = recipient(action.to, run.signal)
            if rep_id is None:
                log.warning(
                    "no recipient for nudge",
                    playbook=pb.name,
                    rule=rule.id,
                    to=action.to,
                    lead_id=lead.lead_id,
                )
                return
            nudge_id = nudge_id_for(pb.name, rule_key, lead.lead_id, run.trigger_id)
            run.last_nudge_id = nudge_id
            run.commands.append(
                NudgeCommand(
                    nudge_id=nudge_id,
                    rep_id=rep_id,
                    lead_id=lead.lead_id,
                    channel=action.channel,
                    text=text,
                    reasons=run.signal.score.reasons,
                    priority=rule.priority,
                    exploration=run.exploration,
                    propensity=run.propensity,
                    quiet_hours=quiet,
                    **common,
                )
            )
        elif isinstance(action, AskAction):
            rep_id = recipient(action.to, run.signal)
            if rep_id is None:
                log.warning(
                    "no recipient for questionnaire",
                    playbook=pb.name,
                    rule=rule.id,
                    lead_id=lead.lead_id,
                )
                return
            run.commands.append(
                AskQuestionnaire(
                    command_id=command_id_for(pb.name, rule_key, lead.lead_id, run.trigger_id),
                    rep_id=rep_id,
                    lead_id=lead.lead_id,
                    questionnaire=action.questionnaire,
                    record_on=action.record_on,
                    channel=action.channel,
                    priority=rule.priority,
                    quiet_hours=quiet,
                    **common,
                )
            )
        elif isinstance(action, UpdateCrmAction):
            run.commands.append(
                UpdateCrmField(
                    command_id=command_id_for(pb.name, rule_key, lead.lead_id, run.trigger_id),
                    lead_id=lead.lead_id,
                    field=action.crm_field(),
                    value=action.value,
                    **common,
                )
            )
    except ValidationError as exc:
        raise StepFailed(str(exc)) from exc
