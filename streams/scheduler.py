"""The durable scheduler's clock: every second, route what has come due to its owner.

Rows live in SQLite (``crm.schedules``), claimed with a lease so two workers
never fire one row at once and a worker that dies mid-fire has its rows picked up
when the lease runs out. A due row is not evaluated here: it is produced to the
partition that owns its state — a lead's step to ``lead.activity`` (the lead
agent builds the timer signal from the lead as it is now), a rep's digest to
``lead.signals``, a questionnaire reminder to ``conversations`` — and marked done
only once the broker has acknowledged it. Firing a row twice is harmless: every
command it leads to has a deterministic id.
"""

from __future__ import annotations

import json

from nudge.logs import get_logger
from nudge.signals import RepView
from playbooks import timer_signal
from streams.pipeline import Pipeline

log = get_logger(__name__)

BATCH = 200


def signal_key(rep_id: str | None, lead_id: str) -> bytes:
    """``lead.signals`` is keyed by the owning rep, so one agent sees all of a rep's guards."""
    return (rep_id or f"lead:{lead_id}").encode()


async def rep_view(p: Pipeline, rep_id: str | None) -> RepView | None:
    """The rep as playbooks see them (cached for a minute; reps change rarely)."""
    if not rep_id:
        return None
    now = p.clock.now()
    hit = p.rep_cache.get(rep_id)
    if hit is not None and (now - hit[0]).total_seconds() < 60:
        return hit[1]
    row = await (await p.store()).get_rep(rep_id)
    view = (
        None
        if row is None
        else RepView(
            rep_id=rep_id,
            name=row["name"],
            timezone=row["timezone"],
            manager_rep_id=row["manager_rep_id"],
            team=row["team"],
        )
    )
    p.rep_cache[rep_id] = (now, view)
    return view


async def fire_due(p: Pipeline) -> int:
    """Route every due schedule row to its owner; returns how many were fired."""
    schedules = await p.schedules()
    now = p.clock.now()
    steps = await schedules.due(now, BATCH)
    for step in steps:
        try:
            if step.purpose == "questionnaire":
                sent = await p.conversations.send(
                    key=(step.rep_id or "").encode(),
                    value=json.dumps({"timer": step.check}).encode(),
                )
            elif step.lead_id:
                sent = await p.activity.send(
                    key=step.lead_id.encode(),
                    value=json.dumps({"timer": step.model_dump(mode="json")}).encode(),
                )
            else:  # a digest: about a rep, no lead state needed
                signal = timer_signal(None, None, step, now, await rep_view(p, step.rep_id))
                sent = await p.signals.send(
                    key=signal_key(step.rep_id, ""), value=signal.model_dump_json().encode()
                )
            await sent  # acknowledged by the broker before the row is marked done
        except Exception as exc:
            log.error(
                "could not fire a schedule row; it will be retried",
                error=repr(exc),
                schedule_id=step.schedule_id,
            )
            await schedules.release(step.schedule_id, now)
            continue
        await schedules.done(step.schedule_id, now)
        p.stats["schedules.fired"] += 1
    return len(steps)


async def refresh_playbooks(p: Pipeline) -> None:
    """Pick up edited playbook and questionnaire files; a file that no longer validates
    keeps its last version. The questionnaires first: when they change, every playbook is
    checked again (an ``ask`` must name one that exists)."""
    questionnaires = p.questionnaire_set.refresh()
    for change in questionnaires:
        log.info("questionnaires reloaded", change=change)
        p.stats["questionnaires.reloaded"] += 1
        p.refused_questionnaires = p.questionnaire_set.refused()
    playbooks = p.playbook_set.recheck() if questionnaires else p.playbook_set.refresh()
    for change in playbooks:
        log.info("playbooks reloaded", change=change)
        p.stats["playbooks.reloaded"] += 1
