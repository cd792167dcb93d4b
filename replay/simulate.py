"""Replay events through the real state, scorer, evaluator and delivery policy, sending nothing.

This is how a manager sees a rule's blast radius before shipping it: what would
have been sent, to whom, when and why. Leads are folded with
``scoring.state.apply_event`` and rescored with the scorer the worker would use
(the caller passes it: the promoted model or the points scorer) exactly as the
lead agent does; due schedule rows (waits, escalations, timed triggers, digests)
are resumed in time order on the simulated clock, as the scheduler would. Each
nudge then goes through delivery's own policy (:func:`delivery.policy.decide`:
channel, quiet hours in the rep's zone, daily limit), which says send, hold or
suppress and why. A nudge counts as "acted on" (no escalation) when a call or
meeting with the lead is logged after it. Every evaluation is kept in a
:class:`~playbooks.trace.TraceBook`, which ``nudge playbooks explain`` reads.

Opt-outs are not in the event stream, so simulate assumes none.
"""

from __future__ import annotations

import datetime as dt
import heapq
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from delivery.policy import Policy, Rep
from delivery.policy import decide as policy_decide
from nudge.events import LeadEvent, RepUpserted
from nudge.signals import Command, LeadSignal, NudgeCommand, RepView, ScheduleStep, Score
from playbooks.decisions import Logged, logged_decisions
from playbooks.evaluator import Decision, decide
from playbooks.guards import GuardState
from playbooks.model import Playbook
from playbooks.resume import resume, timer_signal
from playbooks.trace import Delivery, TraceBook
from playbooks.windows import track, windows_of
from scoring import LeadState, Scorer, apply_event
from scoring.points import PointsScorer


@dataclass(frozen=True)
class Outcome:
    """One command the playbooks would have issued, with the reason."""

    at: dt.datetime
    command: Command
    playbook: str
    rule: str
    why: dict[str, Any]
    trigger: str = ""
    delivery: Delivery | None = None
    """What delivery policy would do with a nudge: send, hold or suppress, and why."""

    @property
    def decision(self) -> str:
        return self.delivery.action if self.delivery else "issue"

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "playbook": self.playbook,
            "rule": self.rule,
            "lead_id": getattr(self.command, "lead_id", None),
            "rep_id": getattr(self.command, "rep_id", None),
            "decision": self.decision,
            "reason": self.delivery.reason if self.delivery else None,
            "not_before": self.delivery.not_before if self.delivery else None,
            "channel": self.delivery.channel if self.delivery else None,
            "trigger": self.trigger,
            "why": self.why,
            "command": self.command.model_dump(mode="json"),
        }


@dataclass
class Report:
    outcomes: list[Outcome] = field(default_factory=list)
    events: int = 0
    unresolved: int = 0
    duplicates: int = 0
    traces: TraceBook = field(default_factory=lambda: TraceBook(per_lead=100_000, leads=10**9))
    logged: list[Logged] = field(default_factory=list)
    """Every decision to nudge or not, with its propensity (``replay.policy``)."""

    def per_rule(self) -> Counter[str]:
        return Counter(f"{o.playbook}/{o.rule}" for o in self.outcomes if _is_message(o.command))

    def per_rep(self) -> Counter[str]:
        return Counter(
            str(getattr(o.command, "rep_id", None) or f"team:{getattr(o.command, 'team', '?')}")
            for o in self.outcomes
            if _is_message(o.command)
        )


def _is_message(command: Command) -> bool:
    return command.kind in ("nudge", "nudge_team", "ask")


class Simulation:
    """The simulated worker: lead states, reps, guard state and a schedule queue."""

    def __init__(
        self,
        playbooks: list[Playbook],
        scorer: Scorer | None = None,
        *,
        policy: Policy | None = None,
        channels: tuple[str, ...] = ("console",),
    ) -> None:
        self.playbooks = playbooks
        self.windows = windows_of(playbooks)
        self.scorer: Scorer = scorer or PointsScorer()
        self.policy = policy or Policy()
        self.channels = channels
        self.leads: dict[str, LeadState] = {}
        self.reps: dict[str, RepView] = {}
        self.delivery_reps: dict[str, Rep] = {}
        self.sent: Counter[tuple[str, str]] = Counter()
        self.identities: dict[str, str] = {}
        self.guards = GuardState()
        self.queue: list[tuple[dt.datetime, str, ScheduleStep]] = []
        self.queued: set[str] = set()
        self.report = Report()

    def run(self, events: Iterable[LeadEvent | RepUpserted], horizon: dt.timedelta) -> Report:
        last: dt.datetime | None = None
        for event in sorted(events, key=lambda e: e.occurred_at):
            self.fire_due(event.occurred_at)
            self.feed(event)
            last = event.occurred_at
        if last is not None:
            self.fire_due(last + horizon)
        return self.report

    def _resolve(self, event: LeadEvent) -> str | None:
        keys = [
            f"{k}:{v}"
            for k in ("email", "phone", "visitor")
            if (v := getattr(event, k if k != "visitor" else "visitor_id"))
        ]
        lead_id = event.lead_id or next(
            (self.identities[k] for k in keys if k in self.identities), None
        )
        if lead_id:
            for key in keys:
                self.identities[key] = lead_id
        return lead_id

    def feed(self, event: LeadEvent | RepUpserted) -> None:
        self.report.events += 1
        if isinstance(event, RepUpserted):
            self.reps[event.rep_id] = RepView(
                rep_id=event.rep_id,
                name=event.name,
                timezone=event.timezone,
                manager_rep_id=event.manager_rep_id,
                team=event.team,
            )
            p = self.policy
            self.delivery_reps[event.rep_id] = Rep(
                rep_id=event.rep_id,
                name=event.name,
                phone=event.phone,
                email=event.email,
                slack_user_id=event.slack_user_id,
                timezone=event.timezone,
                quiet_start=p.quiet_start,
                quiet_end=p.quiet_end,
                daily_limit=p.daily_limit,
            )
            return
        lead_id = self._resolve(event)
        if lead_id is None:
            self.report.unresolved += 1
            return
        state = self.leads.setdefault(lead_id, LeadState(lead_id=lead_id))
        if not apply_event(state, event):
            self.report.duplicates += 1
            return
        windows = self.windows
        if windows or state.windows:
            event_json = event.model_dump(mode="json", exclude_none=True)
            track(state.windows, windows, event.type, event_json, event.occurred_at)
        score = self.scorer.rescore(state, event, event.occurred_at)
        state.record_score(score)
        lead = state.view()
        signal = state.signal(event, score, self.reps.get(lead.owner_rep_id or ""), lead)
        decision = decide(signal, self.playbooks, event.occurred_at, state=self.guards)
        self.report.logged.extend(logged_decisions(signal, decision))
        self._take(decision, event.occurred_at)

    def fire_due(self, until: dt.datetime) -> None:
        while self.queue and self.queue[0][0] <= until:
            due_at, _, step = heapq.heappop(self.queue)
            signal = self._timer_signal(step, due_at)
            acted = self._acted(step)
            decision = resume(step, signal, self.playbooks, due_at, state=self.guards, acted=acted)
            self._take(decision, due_at)

    def _timer_signal(self, step: ScheduleStep, now: dt.datetime) -> LeadSignal | None:
        state = self.leads.get(step.lead_id or "")
        if state is None:
            return None
        lead = state.view()
        score = (
            self.scorer.score_at(state, now)
            if state.score
            else Score(value=0, model_version="none", rule_based=True, scored_at=now)
        )
        rep = self.reps.get(lead.owner_rep_id or "")
        return timer_signal(lead, score, step, now, rep, state.target_scores())

    def _acted(self, step: ScheduleStep) -> bool:
        state = self.leads.get(step.lead_id or "")
        since = str(step.check.get("since") or "")
        return bool(state and since and state.touches.get("call", "") > since)

    def _deliver(self, command: NudgeCommand, at: dt.datetime) -> Delivery:
        """Delivery's policy for one nudge, as the worker's delivery agent would apply it."""
        rep = self.delivery_reps.get(command.rep_id)
        day = at.astimezone(rep.zone).date().isoformat() if rep else ""
        verdict = policy_decide(
            command,
            rep,
            at,
            sent_today=self.sent[(command.rep_id, day)],
            opted_out=False,
            available=self.channels,
        )
        if verdict.action != "suppress":
            when = verdict.not_before or at
            self.sent[
                (command.rep_id, when.astimezone(rep.zone).date().isoformat() if rep else "")
            ] += 1
        return Delivery(
            nudge_id=command.nudge_id,
            rep_id=command.rep_id,
            action=verdict.action,
            reason=verdict.reason,
            channel=verdict.channel,
            not_before=verdict.not_before.isoformat() if verdict.not_before else None,
        )

    def _take(self, decision: Decision, at: dt.datetime) -> None:
        self.guards = decision.state
        self.report.traces.record(decision.trace)
        why = {(p, r): m for p, r, m in decision.fired}
        for command in decision.commands:
            if isinstance(command, ScheduleStep):
                if command.schedule_id not in self.queued:
                    self.queued.add(command.schedule_id)
                    heapq.heappush(self.queue, (command.due_at, command.schedule_id, command))
                continue
            rule = getattr(command, "rule", "")
            playbook = getattr(command, "playbook", "")
            found = next((p.rule(rule) for p in self.playbooks if p.name == playbook), None)
            trigger = found.trigger.describe() if found else rule
            why_fired = why.get((playbook, rule), {})
            delivery = None
            if isinstance(command, NudgeCommand):
                delivery = self._deliver(command, at)
                self.report.traces.delivered(command.lead_id, delivery)
            self.report.outcomes.append(
                Outcome(at, command, playbook, rule, why_fired, trigger, delivery)
            )


def simulate(
    events: Iterable[LeadEvent | RepUpserted],
    playbooks: list[Playbook],
    *,
    scorer: Scorer | None = None,
    horizon: dt.timedelta = dt.timedelta(days=1),
    policy: Policy | None = None,
    channels: tuple[str, ...] = ("console",),
) -> Report:
    """Replay ``events`` (any order; sorted by time) and report what would be issued."""
    return Simulation(playbooks, scorer, policy=policy, channels=channels).run(events, horizon)
