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
from dataclasses import dataclass, field
from typing import Any

from nudge.logs import get_logger
from nudge.signals import Command, LeadSignal, NudgeCommand, ScheduleStep
from playbooks import fields as f
from playbooks import messages as msg
from playbooks.conditions import Condition, holds, matched_values
from playbooks.expressions import ExpressionFailed
from playbooks.fields import views
from playbooks.guards import SEP, DigestItem, GuardState, Plan
from playbooks.model import Playbook, Rule
from playbooks.schedule import schedule_id
from playbooks.steps import Run, StepFailed, run_steps
from playbooks.trace import Check, Evaluation, Outcome, stamp
from playbooks.triggers import fires
from playbooks.types import human_duration, zone_for

log = get_logger(__name__)


@dataclass(frozen=True)
class Decision:
    """What one evaluation issues, and the guard state to keep for the next one."""

    commands: list[Command]
    state: GuardState
    fired: list[tuple[str, str, dict[str, Any]]]
    """(playbook, rule, matched values) of each rule that fired — the "why"."""
    trace: list[Evaluation] = field(default_factory=list)
    """Every rule evaluated on the signal and how it came out (see :mod:`playbooks.trace`)."""


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


def note(
    playbook: Playbook,
    rule: Rule,
    signal: LeadSignal,
    now: dt.datetime,
    outcome: Outcome,
    reason: str,
) -> Evaluation:
    """A trace entry for ``rule`` on ``signal``."""
    return Evaluation(
        at=stamp(now),
        playbook=playbook.name,
        rule=rule.id,
        lead_id=signal.lead.lead_id,
        event_id=signal.event_id,
        event_type=signal.event_type,
        outcome=outcome,
        reason=reason,
    )


def decide(
    signal: LeadSignal,
    playbooks: list[Playbook],
    now: dt.datetime,
    *,
    state: GuardState | None = None,
    history: bool = False,
) -> Decision:
    """:func:`evaluate` plus the updated guard state, the reasons each rule fired, and
    the trace of every rule that looked at the signal.

    ``history``: the signal is about the past (a connector's initial load, an old event):
    no rule fires; date and inactivity rules are planned, but a moment that had already
    passed is held, not caught up (:func:`plan_timed`)."""
    new = (state or GuardState()).copy_for_update()
    data = views(signal)
    runs: list[Run] = []
    trace: list[Evaluation] = []
    traced: dict[int, Evaluation] = {}
    for playbook in playbooks:
        if not playbook.enabled:
            continue
        outside = audience_problem(playbook, signal, data, now)
        for rule in playbook.rules:
            if outside is not None:
                if rule.trigger.may_fire(signal):
                    trace.append(note(playbook, rule, signal, now, "audience", outside))
                continue
            if history and not rule.timed:
                continue
            try:
                if rule.timed:
                    step = plan_timed(playbook, rule, signal, data, now, new, history)
                    if step is not None:
                        runs.append(
                            Run(
                                playbook, rule, signal, data, now, step.schedule_id, commands=[step]
                            )
                        )
                        due = step.due_at.strftime("%Y-%m-%d %H:%M UTC")
                        trace.append(note(playbook, rule, signal, now, "planned", f"due {due}"))
                    continue
                match = fires(rule.trigger, signal, data, now)
                chance = 1.0
                if match is None and rule.explore_trigger > 0:
                    match, chance = explore_trigger(playbook, rule, signal, now, trace)
                if match is None:
                    if rule.trigger.may_fire(signal) and rule.explore_trigger <= 0:
                        why = rule.trigger.why_not(signal, data, now)
                        trace.append(note(playbook, rule, signal, now, "trigger", why))
                    continue
                ev = note(playbook, rule, signal, now, "fired", "")
                ev.propensity = chance
                trace.append(ev)
                run = start(playbook, rule, signal, data, now, signal.event_id, match, new, ev)
                if run is not None:
                    runs.append(run)
                    traced[id(run)] = ev
            except (StepFailed, ExpressionFailed) as exc:
                log.warning(
                    msg.EVAL_FAILED,
                    playbook=playbook.name,
                    rule=rule.id,
                    lead_id=signal.lead.lead_id,
                    error=str(exc),
                )
                last = trace[-1] if trace else None
                if last is not None and (last.playbook, last.rule) == (playbook.name, rule.id):
                    last.outcome, last.reason, last.nudges = "failed", str(exc), []
                else:
                    trace.append(note(playbook, rule, signal, now, "failed", str(exc)))
    runs.sort(key=lambda r: -r.rule.priority)
    commands = apply_cap(runs, signal, now, new, traced)
    new.prune(now)
    fired = [(r.playbook.name, r.rule.id, r.match) for r in runs if r.match]
    return Decision(commands, new, fired, trace)


def explore_trigger(
    playbook: Playbook,
    rule: Rule,
    signal: LeadSignal,
    now: dt.datetime,
    trace: list[Evaluation],
) -> tuple[dict[str, Any] | None, float]:
    """The trigger did not match: with ``rule.explore_trigger``'s chance the rule runs
    anyway (the match says so; the chance is the decision's propensity so far); otherwise
    the decision not to nudge is traced with its propensity, ``1 - share``."""
    share = rule.explore_trigger
    draw = coin(playbook.name, rule.id, signal.lead.lead_id, signal.event_id, "trigger")
    if draw < share:
        return {"explored": "trigger"}, share
    ev = note(playbook, rule, signal, now, "trigger", "trigger did not match; not explored")
    ev.explore, ev.draw, ev.propensity = share, draw, 1.0 - share
    trace.append(ev)
    return None, 1.0


def worth_evaluating(signal: LeadSignal, playbooks: list[Playbook]) -> bool:
    """Could any enabled rule act on ``signal``? When not, :func:`decide` would issue
    nothing and fire nothing, so the signal need not be evaluated (or sent to be)."""
    if signal.event_type == f.TIMER_EVENT:
        return True
    return any(
        rule.explore_trigger > 0 or rule.trigger.may_fire(signal)
        for pb in playbooks
        if pb.enabled
        for rule in pb.rules
    )


def in_audience(
    playbook: Playbook, signal: LeadSignal, data: dict[str, Any], now: dt.datetime
) -> bool:
    """Does the playbook apply to this lead, its owner and the owner's team?"""
    return audience_problem(playbook, signal, data, now) is None


def audience_problem(
    playbook: Playbook, signal: LeadSignal, data: dict[str, Any], now: dt.datetime
) -> str | None:
    """Why the lead is outside the playbook's audience (``None``: inside)."""
    aud = playbook.audience
    owner = signal.lead.owner_rep_id
    if aud.reps and owner not in aud.reps:
        return f"audience: owner {owner} is not one of reps {', '.join(aud.reps)}"
    if aud.teams and (signal.rep is None or signal.rep.team not in aud.teams):
        team = signal.rep.team if signal.rep else None
        return f"audience: owner's team {team} is not one of teams {', '.join(aud.teams)}"
    for cond in aud.leads:
        try:
            if not holds(cond, data, now):
                seen = Check(cond.describe(), cond.reads(data), False)
                return f"audience: {_failed_text(seen)}"
        except ExpressionFailed as exc:
            return f"audience: {exc}"
    return None


def coin(*parts: str) -> float:
    """A deterministic draw in [0, 1): replays and redeliveries make the same choice."""
    digest = hashlib.sha256(SEP.join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def check_conditions(
    conditions: list[Condition], data: dict[str, Any], now: dt.datetime
) -> list[Check]:
    """Each condition, the values it read and whether it held (all are evaluated)."""
    out = []
    for cond in conditions:
        try:
            held: bool | None = holds(cond, data, now)
        except ExpressionFailed:
            held = None
        out.append(Check(cond.describe(), cond.reads(data), held))
    return out


def start(
    playbook: Playbook,
    rule: Rule,
    signal: LeadSignal,
    data: dict[str, Any],
    now: dt.datetime,
    trigger_id: str,
    match: dict[str, Any],
    state: GuardState,
    ev: Evaluation | None = None,
) -> Run | None:
    """Cooldown, conditions (or exploration), then the chain from step 0; ``ev`` (the
    trace entry) is filled in with the outcome."""
    ev = ev or note(playbook, rule, signal, now, "fired", "")
    lead_id = signal.lead.lead_id
    until = state.cooling_until(playbook.name, rule.id, lead_id, rule.cooldown, now)
    if until is not None:
        ev.outcome, ev.reason = "cooldown", f"cooldown until {until:%Y-%m-%d %H:%M} UTC"
        ev.propensity = None  # a guard, not a decision
        return None
    run = Run(playbook, rule, signal, data, now, trigger_id, match=dict(match))
    rep = signal.event.get("rep_id")
    run.event_rep = rep if isinstance(rep, str) and rep else None
    ev.checks = check_conditions(rule.conditions, data, now)
    failed = [c for c in ev.checks if not c.held]
    if failed and failed[0].held is None:  # the first condition not met could not be read
        ev.outcome, ev.reason = "failed", f"{failed[0].condition} could not be evaluated"
        raise ExpressionFailed(ev.reason)
    chance = 1.0 if ev.propensity is None else ev.propensity
    if match.get("explored") == "trigger":
        run.exploration, run.propensity = True, chance
    if failed:
        ev.outcome = "conditions"
        ev.reason = "; ".join(_failed_text(c) for c in failed)
        if rule.explore <= 0:
            ev.propensity = chance
            return None
        ev.explore = rule.explore
        ev.draw = coin(playbook.name, rule.id, lead_id, trigger_id)
        if ev.draw >= rule.explore:
            ev.propensity = chance * (1.0 - rule.explore)
            return None
        chance *= rule.explore
        run.exploration, run.propensity = True, chance
        ev.outcome, ev.reason = "fired", f"exploration (conditions failed: {ev.reason})"
    ev.propensity = chance
    run.match |= matched_values(rule.conditions, data)
    run_steps(run)
    ev.nudges = [c.nudge_id for c in run.commands if isinstance(c, NudgeCommand)]
    if run.commands:
        state.fired(playbook.name, rule.id, lead_id, now)
    elif ev.outcome == "fired":
        ev.outcome, ev.reason = (
            "nothing",
            "the actions issued nothing (no recipient, or every step's `when` failed)",
        )
    return run


def _failed_text(check: Check) -> str:
    seen = ", ".join(
        f"`{k}` was {'absent' if v is None else repr(v)}" for k, v in check.values.items()
    )
    return f"{seen}, needs {check.condition}" if seen else f"needs {check.condition}"


def plan_timed(
    playbook: Playbook,
    rule: Rule,
    signal: LeadSignal,
    data: dict[str, Any],
    now: dt.datetime,
    state: GuardState,
    history: bool = False,
) -> ScheduleStep | None:
    """A schedule row for a date / inactivity / schedule trigger, if the plan changed.

    Planned from ``history``, a moment already passed (a date rule's window opened, a lead
    went quiet, before Nudge saw it live) is held: no row, so no nudge "at once" for every
    lead of an initial load; the plan waits for the next window opening — a changed date, a
    new touch. A plan whose moment is still ahead is planned as usual."""
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
    if history and due <= now:
        state.planned[key] = Plan(schedule_id=sid, due_at=due, held=True)
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
    runs: list[Run],
    signal: LeadSignal,
    now: dt.datetime,
    state: GuardState,
    traced: dict[int, Evaluation] | None = None,
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
            ev = (traced or {}).get(id(run))
            if ev is not None:
                ev.nudges = [n for n in ev.nudges if n != command.nudge_id]
                ev.outcome = "cap"
                ev.reason = (
                    f"over the playbook's cap of {cap} per rep per day: folded into a digest "
                    f"sent {human_duration(run.playbook.guards.digest_after)} after the first held"
                )
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
