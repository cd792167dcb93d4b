"""The pure evaluator: (signal, playbooks, now, guard state) → commands and new state.

No I/O: it reads a :class:`LeadSignal` and returns commands (see
``nudge.signals.Command``). Each command's id is derived from (playbook, rule,
lead, triggering event, step), so re-evaluating the same signal — after a crash,
say — yields the same ids and the outbox drops the repeat.

Order of work per signal: audience → trigger (or, for timed triggers, a plan for
the scheduler) → cooldown → conditions (or the exploration coin) → the chain of
actions. Commands are then ordered by rule priority and the per-rep daily cap is
applied: messages over it are folded into one digest, sent later.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

from nudge.logs import get_logger
from nudge.signals import Command, LeadSignal, NudgeCommand, ScheduleStep
from playbooks import fields as f
from playbooks import messages as msg
from playbooks.conditions import holds, matched_values
from playbooks.expressions import ExpressionFailed
from playbooks.fields import views
from playbooks.guards import SEP, DigestItem, GuardState, Plan
from playbooks.model import Playbook, Rule
from playbooks.schedule import schedule_id
from playbooks.steps import Run, StepFailed, run_steps
from playbooks.triggers import fires
from playbooks.types import zone_for

log = get_logger(__name__)


@dataclass(frozen=True)
class Decision:
    """What one evaluation issues, and the guard state to keep for the next one."""

    commands: list[Command]
    state: GuardState
    fired: list[tuple[str, str, dict[str, Any]]]
    """(playbook, rule, matched values) of each rule that fired — the "why"."""


def evaluate(
    signal: LeadSignal,
    playbooks: list[Playbook],
    now: dt.datetime,
    *,
    state: GuardState | None = None,
) -> list[Command]:
    """Every command the playbooks issue for this signal, highest priority first.

    ``state`` is read, never changed; use :func:`decide` to get the next state too.
    """
    return decide(signal, playbooks, now, state=state).commands


def decide(
    signal: LeadSignal,
    playbooks: list[Playbook],
    now: dt.datetime,
    *,
    state: GuardState | None = None,
) -> Decision:
    """:func:`evaluate` plus the updated guard state and the reasons each rule fired."""
    new = (state or GuardState()).copy_for_update()
    data = views(signal)
    runs: list[Run] = []
    for playbook in playbooks:
        if not playbook.enabled or not in_audience(playbook, signal, data, now):
            continue
        for rule in playbook.rules:
            try:
                if rule.timed:
                    step = plan_timed(playbook, rule, signal, data, now, new)
                    if step is not None:
                        runs.append(
                            Run(
                                playbook, rule, signal, data, now, step.schedule_id, commands=[step]
                            )
                        )
                    continue
                match = fires(rule.trigger, signal, data, now)
                if match is None:
                    continue
                run = start(playbook, rule, signal, data, now, signal.event_id, match, new)
                if run is not None:
                    runs.append(run)
            except (StepFailed, ExpressionFailed) as exc:
                log.warning(
                    msg.EVAL_FAILED,
                    playbook=playbook.name,
                    rule=rule.id,
                    lead_id=signal.lead.lead_id,
                    error=str(exc),
                )
    runs.sort(key=lambda r: -r.rule.priority)
    commands = apply_cap(runs, signal, now, new)
    new.prune(now)
    fired = [(r.playbook.name, r.rule.id, r.match) for r in runs if r.match]
    return Decision(commands, new, fired)


def worth_evaluating(signal: LeadSignal, playbooks: list[Playbook]) -> bool:
    """Could any enabled rule act on ``signal``? When not, :func:`decide` would issue
    nothing and fire nothing, so the signal need not be evaluated (or sent to be)."""
    if signal.event_type == f.TIMER_EVENT:
        return True
    return any(rule.trigger.may_fire(signal) for pb in playbooks if pb.enabled for rule in pb.rules)


def in_audience(
    playbook: Playbook, signal: LeadSignal, data: dict[str, Any], now: dt.datetime
) -> bool:
    """Does the playbook apply to this lead, its owner and the owner's team?"""
    aud = playbook.audience
    if aud.reps and signal.lead.owner_rep_id not in aud.reps:
        return False
    if aud.teams and (signal.rep is None or signal.rep.team not in aud.teams):
        return False
    try:
        return all(holds(c, data, now) for c in aud.leads)
    except ExpressionFailed:
        return False


def coin(*parts: str) -> float:
    """A deterministic draw in [0, 1): replays and redeliveries make the same choice."""
    digest = hashlib.sha256(SEP.join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def start(
    playbook: Playbook,
    rule: Rule,
    signal: LeadSignal,
    data: dict[str, Any],
    now: dt.datetime,
    trigger_id: str,
    match: dict[str, Any],
    state: GuardState,
) -> Run | None:
    """Cooldown, conditions (or exploration), then the chain from step 0."""
    lead_id = signal.lead.lead_id
    if state.cooling(playbook.name, rule.id, lead_id, rule.cooldown, now):
        return None
    run = Run(playbook, rule, signal, data, now, trigger_id, match=dict(match))
    if not all(holds(c, data, now) for c in rule.conditions):
        if rule.explore <= 0 or coin(playbook.name, rule.id, lead_id, trigger_id) >= rule.explore:
            return None
        run.exploration, run.propensity = True, rule.explore
    run.match |= matched_values(rule.conditions, data)
    run_steps(run)
    if run.commands:
        state.fired(playbook.name, rule.id, lead_id, now)
    return run


def plan_timed(
    playbook: Playbook,
    rule: Rule,
    signal: LeadSignal,
    data: dict[str, Any],
    now: dt.datetime,
    state: GuardState,
) -> ScheduleStep | None:
    """A schedule row for a date / inactivity / schedule trigger, if the plan changed."""
    planned = rule.trigger.plan(signal, data, now)
    if planned is None:
        return None
    due, check = planned
    lead_id = signal.lead.lead_id
    purpose = {"date": "date", "inactivity": "inactivity"}.get(rule.trigger.type, "tick")
    sid = schedule_id(purpose, playbook.name, rule.id, lead_id, repr(sorted(check.items())))
    key = SEP.join((playbook.name, rule.id, lead_id))
    last = state.planned.get(key)
    if last is not None and last.schedule_id == sid:
        return None
    state.planned[key] = Plan(schedule_id=sid, due_at=due)
    return ScheduleStep(
        schedule_id=sid,
        due_at=due,
        partition_key=lead_id,
        purpose=purpose,  # type: ignore[arg-type]
        lead_id=lead_id,
        rep_id=signal.lead.owner_rep_id,
        playbook=playbook.name,
        rule=rule.id,
        step=0,
        trigger_event_id=sid,
        check=check,
        created_at=now,
    )


def apply_cap(
    runs: list[Run], signal: LeadSignal, now: dt.datetime, state: GuardState
) -> list[Command]:
    """Commands in priority order; nudges over a playbook's daily cap become digest items."""
    out: list[Command] = []
    zone = zone_for("rep", signal.rep.timezone if signal.rep else None)
    for run in runs:
        cap = run.playbook.guards.max_per_rep_per_day
        for command in run.commands:
            if not isinstance(command, NudgeCommand) or cap is None:
                out.append(command)
                continue
            key = state.count_key(run.playbook.name, command.rep_id, now, zone)
            if state.sent.get(key, 0) < cap:
                state.sent[key] = state.sent.get(key, 0) + 1
                out.append(command)
                continue
            items = state.digests.setdefault(key, [])
            items.append(DigestItem(lead_id=command.lead_id, text=command.text, rule=command.rule))
            if len(items) == 1:
                out.append(digest_step(run.playbook, command.rep_id, key, command.nudge_id, now))
    return out


def digest_step(
    playbook: Playbook, rep_id: str, key: str, first_id: str, now: dt.datetime
) -> ScheduleStep:
    """The schedule row that will send a rep's digest (named by its first held nudge)."""
    sid = schedule_id("digest", playbook.name, "", rep_id, f"{key}{SEP}{first_id}")
    return ScheduleStep(
        schedule_id=sid,
        due_at=now + playbook.guards.digest_after,
        partition_key=rep_id,
        purpose="digest",
        rep_id=rep_id,
        playbook=playbook.name,
        rule="digest",
        trigger_event_id=sid,
        check={"digest": key},
        created_at=now,
    )
