"""Carrying out what the playbook agent decided: one function per command kind.

The decisions are pure (``playbooks``); this module only routes them: nudges to
the delivery agent, questionnaires to the conversation agent, CRM field updates
back into ``crm.events`` (so state, score and SQLite all see them) and to
``crm.updates`` (for external CRM connectors), delayed steps into the durable
scheduler.
"""

from __future__ import annotations

import json

from crm.conversations import lead_fields_update
from crm.record import Source
from nudge.events import LeadFields, LeadUpdated, event_to_json
from nudge.logs import get_logger
from nudge.signals import (
    AskQuestionnaire,
    Command,
    NudgeCommand,
    NudgeTeam,
    ScheduleStep,
    UpdateCrmField,
    fan_out,
)
from streams.pipeline import Pipeline

log = get_logger(__name__)

PROFILE_FIELDS = set(LeadFields.model_fields) - {"custom", "deal"}


async def dispatch(p: Pipeline, command: Command) -> None:
    """Route one command to the agent or store that carries it out."""
    if isinstance(command, NudgeCommand):
        await send_nudge(p, command)
    elif isinstance(command, NudgeTeam):
        reps = await (await p.store()).reps_in_team(command.team)
        if not reps:
            log.warning("team has no reps; nudge not sent", team=command.team, rule=command.rule)
        for nudge in fan_out(command, reps):
            await send_nudge(p, nudge)
    elif isinstance(command, AskQuestionnaire):
        await p.conversations.send(
            force=True,
            key=command.rep_id.encode(),
            value=json.dumps({"ask": command.model_dump(mode="json")}).encode(),
        )
    elif isinstance(command, UpdateCrmField):
        await update_crm(p, command)
    elif isinstance(command, ScheduleStep):
        await (await p.schedules()).add(command, p.clock.now())
        p.stats["schedules.added"] += 1


async def send_nudge(p: Pipeline, command: NudgeCommand) -> None:
    await p.nudges.send(
        force=True, key=command.rep_id.encode(), value=command.model_dump_json().encode()
    )
    p.stats["nudges.dispatched"] += 1  # a fired rule may send none (cooldown, cap): count these


async def update_crm(p: Pipeline, command: UpdateCrmField) -> None:
    """A playbook sets a lead field: merged into the record by its one writer (with an
    audit row), then a ``lead.updated`` event (state, score, playbooks see it) and
    ``crm.updates`` (external CRMs)."""
    path = (
        command.field if command.field.startswith(("lead.", "deal.")) else f"lead.{command.field}"
    )
    name = path.removeprefix("lead.")
    if path.startswith("lead.") and not name.startswith("custom.") and name not in PROFILE_FIELDS:
        log.warning("update_crm names an unknown field", field=command.field, rule=command.rule)
        return
    source = Source(
        kind=f"playbook:{command.playbook}",
        at=command.created_at,
        event_id=f"crm-{command.command_id}",
        rep_id=None,
    )
    store = await p.store()
    changes = await store.merge_fields(
        command.lead_id, {path: command.value}, source, p.clock.now()
    )
    if not changes:
        return
    event = LeadUpdated(
        type="lead.updated",
        event_id=f"crm-{command.command_id}",
        occurred_at=command.created_at,
        source=f"nudge.playbook.{command.playbook}",
        lead_id=command.lead_id,
        fields=LeadFields.model_validate(lead_fields_update(changes)),
    )
    await p.crm_events.send(force=True, key=command.lead_id.encode(), value=event_to_json(event))
    await p.crm_updates.send(
        force=True, key=command.lead_id.encode(), value=command.model_dump_json().encode()
    )
