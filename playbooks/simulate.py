"""Replay events through the real state, scorer and evaluator, sending nothing.

This is how a manager sees a rule's blast radius before shipping it: what would
have been sent, to whom, when and why. Leads are folded with
``scoring.state.apply_event`` and rescored with the points scorer exactly as the
lead agent does; due schedule rows (waits, escalations, timed triggers, digests)
are resumed in time order on a simulated clock, as the scheduler would. A
nudge counts as "acted on" (no escalation) when a call or meeting with the lead
is logged after it.
"""

from __future__ import annotations

import datetime as dt
import heapq
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from nudge.events import LeadEvent, RepUpserted
from nudge.signals import Command, LeadSignal, RepView, ScheduleStep, Score
from playbooks.evaluator import Decision, decide
from playbooks.guards import GuardState
from playbooks.model import Playbook
from playbooks.resume import resume, timer_signal
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

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "playbook": self.playbook,
            "rule": self.rule,
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

    def __init__(self, playbooks: list[Playbook], scorer: Scorer | None = None) -> None:
        self.playbooks = playbooks
        self.scorer: Scorer = scorer or PointsScorer()
        self.leads: dict[str, LeadState] = {}
        self.reps: dict[str, RepView] = {}
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
            return
        lead_id = self._resolve(event)
        if lead_id is None:
            self.report.unresolved += 1
            return
        state = self.leads.setdefault(lead_id, LeadState(lead_id=lead_id))
        if not apply_event(state, event):
            self.report.duplicates += 1
            return
        score = self.scorer.rescore(state, event, event.occurred_at)
        state.record_score(score)
        lead = state.view()
        signal = state.signal(event, score, self.reps.get(lead.owner_rep_id or ""), lead)
        self._take(
            decide(signal, self.playbooks, event.occurred_at, state=self.guards), event.occurred_at
        )

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
        score = state.current_score() or Score(
            value=0, model_version="none", rule_based=True, scored_at=now
        )
        return timer_signal(lead, score, step, now, self.reps.get(lead.owner_rep_id or ""))

    def _acted(self, step: ScheduleStep) -> bool:
        state = self.leads.get(step.lead_id or "")
        since = str(step.check.get("since") or "")
        return bool(state and since and state.touches.get("call", "") > since)

    def _take(self, decision: Decision, at: dt.datetime) -> None:
        self.guards = decision.state
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
            self.report.outcomes.append(Outcome(at, command, playbook, rule, why_fired, trigger))


def simulate(
    events: Iterable[LeadEvent | RepUpserted],
    playbooks: list[Playbook],
    *,
    scorer: Scorer | None = None,
    horizon: dt.timedelta = dt.timedelta(days=1),
) -> Report:
    """Replay ``events`` (any order; sorted by time) and report what would be issued."""
    return Simulation(playbooks, scorer).run(events, horizon)
