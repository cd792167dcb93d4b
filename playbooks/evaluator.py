"""The pure evaluator: (signal, playbooks, now) → commands.

No I/O: it reads a :class:`LeadSignal` and returns :class:`NudgeCommand`s. Each
command's id is derived from (playbook, rule, lead, triggering event), so
re-evaluating the same signal — after a crash, say — yields the same ids and the
outbox drops the repeat.
"""

from __future__ import annotations

import datetime as dt

from nudge.logs import get_logger
from nudge.signals import LeadSignal, NudgeCommand, nudge_id_for
from playbooks.model import Playbook, Rule, ScoreCrossedAbove
from playbooks.templates import render

log = get_logger(__name__)


def triggered(rule: Rule, signal: LeadSignal) -> bool:
    """Does ``signal`` fire ``rule``'s trigger?"""
    trigger = rule.trigger
    if isinstance(trigger, ScoreCrossedAbove):
        prev = signal.score.previous
        return signal.score.value >= trigger.value and (prev is None or prev < trigger.value)
    return False


def evaluate(signal: LeadSignal, playbooks: list[Playbook], now: dt.datetime) -> list[NudgeCommand]:
    """Every command the playbooks issue for this signal, highest priority first."""
    commands: list[NudgeCommand] = []
    for playbook in playbooks:
        if not playbook.enabled:
            continue
        for rule in playbook.rules:
            if not triggered(rule, signal):
                continue
            commands += _actions(playbook, rule, signal, now)
    commands.sort(key=lambda c: -c.priority)
    return commands


def _actions(
    playbook: Playbook, rule: Rule, signal: LeadSignal, now: dt.datetime
) -> list[NudgeCommand]:
    rep_id = signal.lead.owner_rep_id
    if rep_id is None:
        log.warning(
            "rule fired for a lead with no owner",
            playbook=playbook.name,
            rule=rule.id,
            lead_id=signal.lead.lead_id,
        )
        return []
    context = {
        "lead": signal.lead.model_dump(),
        "score": signal.score.model_dump(),
        "event": signal.event,
    }
    out = []
    for i, action in enumerate(rule.actions):
        text = render(action.template, context)
        out.append(
            NudgeCommand(
                nudge_id=nudge_id_for(
                    playbook.name, f"{rule.id}#{i}", signal.lead.lead_id, signal.event_id
                ),
                rep_id=rep_id,
                lead_id=signal.lead.lead_id,
                channel=action.channel,
                text=text[:1600],
                reasons=signal.score.reasons,
                playbook=playbook.name,
                rule=rule.id,
                trigger_event_id=signal.event_id,
                created_at=now,
                priority=rule.priority,
            )
        )
    return out
