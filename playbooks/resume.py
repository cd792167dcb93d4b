"""Resuming a scheduled row: the second half of waits, escalations, timed triggers, digests.

The worker stores every :class:`ScheduleStep` (``crm.schedules``), and when one
comes due it builds a fresh :class:`LeadSignal` for the lead (event type
``timer``; use :func:`timer_signal`) and calls :func:`resume`. Like the
evaluator it is pure and returns commands plus the new guard state. What the
row was planned on is re-checked first — the date still the same, the lead still
untouched, the chain not cancelled — so a stale row fires nothing.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from nudge.logs import get_logger
from nudge.signals import (
    Command,
    LeadSignal,
    LeadView,
    NudgeCommand,
    RepView,
    ScheduleStep,
    Score,
    TargetScore,
    nudge_id_for,
)
from playbooks import messages as msg
from playbooks.conditions import holds
from playbooks.evaluator import Decision, note, plan_timed, start
from playbooks.expressions import ExpressionFailed
from playbooks.fields import TIMER_EVENT, views
from playbooks.guards import GuardState, digest_text
from playbooks.model import Playbook
from playbooks.steps import Run, StepFailed, run_steps
from playbooks.triggers import ScheduleTrigger

log = get_logger(__name__)


def timer_signal(
    lead: LeadView | None,
    score: Score | None,
    step: ScheduleStep,
    now: dt.datetime,
    rep: RepView | None = None,
    targets: dict[str, TargetScore] | None = None,
) -> LeadSignal:
    """The signal a due row is resumed with: the lead as it is now, event type ``timer``.

    The whole step rides in ``event["step"]``, so the worker may send this signal
    through ``lead.signals`` like any other and the playbook agent resumes it with
    :func:`step_of`. ``lead``/``score`` may be ``None`` for digests (about a rep).
    ``targets``: the lead's other scores (churn, cross-sell) as of its last event, so a
    later step can still name ``score.churn``.
    """
    return LeadSignal(
        lead=lead or LeadView(lead_id=step.lead_id or "", owner_rep_id=step.rep_id),
        event={"type": TIMER_EVENT, "step": step.model_dump(mode="json")},
        event_id=step.schedule_id,
        event_type=TIMER_EVENT,
        at=now,
        score=score or Score(value=0, model_version="none", rule_based=True, scored_at=now),
        rep=rep,
        targets=targets or {},
    )


def step_of(signal: LeadSignal) -> ScheduleStep | None:
    """The schedule row a ``timer`` signal carries (``None`` for any other signal)."""
    if signal.event_type != TIMER_EVENT or not isinstance(signal.event.get("step"), dict):
        return None
    return ScheduleStep.model_validate(signal.event["step"])


def resume(
    step: ScheduleStep,
    signal: LeadSignal | None,
    playbooks: list[Playbook],
    now: dt.datetime,
    *,
    state: GuardState | None = None,
    acted: bool = False,
) -> Decision:
    """Commands a due row issues now. ``acted``: for an escalation, the rep replied or acted.

    ``signal`` may be ``None`` only for digests (they are about a rep, not a lead).
    """
    new = (state or GuardState()).copy_for_update()
    if step.purpose == "digest":
        return Decision(_digest(step, new, now), new, [])
    playbook = next((p for p in playbooks if p.name == step.playbook and p.enabled), None)
    rule = playbook.rule(step.rule) if playbook else None
    if playbook is None or rule is None or signal is None:
        return Decision([], new, [])
    data = views(signal)
    try:
        if rule.cancel_if is not None and holds(rule.cancel_if, data, now):
            why = f"cancel_if held: {rule.cancel_if.describe()}"
            return Decision([], new, [], [note(playbook, rule, signal, now, "cancelled", why)])
        if step.purpose in ("date", "inactivity", "tick"):
            return _timed(step, playbook, signal, data, now, new)
        run = Run(playbook, rule, signal, data, now, step.trigger_event_id)
        run.exploration = bool(step.check.get("exploration", False))
        run.propensity = float(step.check.get("propensity", 1.0))
        rep = step.check.get("event_rep")
        run.event_rep = rep if isinstance(rep, str) and rep else None
        run.owner_waits = int(step.check.get("owner_waits", 0))
        if step.purpose == "continue":
            run_steps(run, step.step)
        elif step.purpose == "escalate":
            action = rule.actions[step.step] if step.step < len(rule.actions) else None
            if action is not None and action.resume_as == "escalate" and not acted:
                action.issue(run, step.step)
            run_steps(run, step.step + 1)
        fired = [(playbook.name, rule.id, {"resumed": step.purpose, "step": step.step})]
        if run.commands:
            ev = note(playbook, rule, signal, now, "fired", f"{step.purpose} at step {step.step}")
        else:
            why = "the rep acted on the nudge" if acted else "the remaining steps issued nothing"
            ev = note(playbook, rule, signal, now, "nothing", f"{step.purpose}: {why}")
        ev.nudges = [c.nudge_id for c in run.commands if isinstance(c, NudgeCommand)]
        return Decision(run.commands, new, fired if run.commands else [], [ev])
    except (StepFailed, ExpressionFailed) as exc:
        log.warning(
            msg.EVAL_FAILED,
            playbook=playbook.name,
            rule=rule.id,
            schedule_id=step.schedule_id,
            error=str(exc),
        )
        return Decision([], new, [])


def _timed(
    step: ScheduleStep,
    playbook: Playbook,
    signal: LeadSignal,
    data: dict[str, Any],
    now: dt.datetime,
    state: GuardState,
) -> Decision:
    rule = playbook.rule(step.rule)
    assert rule is not None
    commands: list[Command] = []
    if isinstance(rule.trigger, ScheduleTrigger):
        following = plan_timed(playbook, rule, signal, data, now + dt.timedelta(seconds=1), state)
        if following is not None:
            commands.append(following)
    if not rule.trigger.still_valid(step.check, signal, data):
        planned = ", ".join(f"{k}={v}" for k, v in step.check.items())
        why = f"planned on {planned}, which no longer holds"
        return Decision(commands, state, [], [note(playbook, rule, signal, now, "stale", why)])
    match = {"trigger": rule.trigger.type} | {k: v for k, v in step.check.items()}
    ev = note(playbook, rule, signal, now, "fired", "")
    run = start(playbook, rule, signal, data, now, step.schedule_id, match, state, ev)
    if run is None:
        return Decision(commands, state, [], [ev])
    return Decision(run.commands + commands, state, [(playbook.name, rule.id, run.match)], [ev])


def _digest(step: ScheduleStep, state: GuardState, now: dt.datetime) -> list[Command]:
    key = str(step.check.get("digest", ""))
    items = state.digests.pop(key, [])
    if not items or step.rep_id is None:
        return []
    return [
        NudgeCommand(
            nudge_id=nudge_id_for(step.playbook, "digest", step.rep_id, step.schedule_id),
            rep_id=step.rep_id,
            lead_id=items[0].lead_id,
            text=digest_text(items),
            about=list(dict.fromkeys(i.lead_id for i in items)),
            playbook=step.playbook,
            rule="digest",
            trigger_event_id=step.schedule_id,
            created_at=now,
        )
    ]
