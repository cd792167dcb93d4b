"""Carrying out delivery decisions: the outbox, a notifier, retries, and the drain.

Why this shape: the outbox row is written *before* anything is sent, so a nudge
survives a provider outage or a worker restart; :meth:`crm.outbox.Outbox.claim`
lets exactly one caller send it, so it never goes twice. Each rep's nudges go out
in the order they arrived: a nudge waiting for a retry (or held for quiet hours)
blocks the rep's later ones, and :func:`drain_due` — which the worker calls every
few seconds — releases them, oldest first, once they are due.

Batches (:func:`deliver_batch`, the delivery agent's micro-batch): the commands are
snooze-checked and queued in one commit, then each rep they touch is drained once,
several reps at a time (their provider calls overlap) but each rep's nudges one after
another under the rep's lock. A drain reads the rep's record, opt-out and count of the
day once and keeps them up to date as it sends (:class:`RepNow`); each nudge is still
claimed alone, so two workers never send one nudge.

Retries: a transient error (429, 5xx, timeout) is retried ``in_call_retries``
times right away with a short backoff (honouring Retry-After), then the nudge is
put back in the outbox with ``not_before = now + retry_delay(attempts)`` and a
later drain tries again, up to ``max_attempts`` in all. A permanent error is
recorded with the provider's code and never retried; 21610 (the number texted
STOP at the carrier) also puts the number on our own suppression list.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from crm.outbox import Outbox
from crm.store import Store
from delivery.policy import Decision, Policy, Rep, decide, local_day_start, retry_delay
from notifiers.base import Notifier, OutboundMessage
from notifiers.phones import to_e164
from nudge.codes import next_code, offers_codes, with_code
from nudge.errors import DeliveryError, PermanentDeliveryError, TransientDeliveryError
from nudge.logs import get_logger
from nudge.signals import CONVERSATION_PLAYBOOKS, NudgeCommand

log = get_logger(__name__)

UNKNOWN_REP_GRACE = dt.timedelta(minutes=10)
"""How long a nudge for a rep the store does not know yet waits for the rep's record.

The rep's ``rep.upserted`` event and the lead events that trigger a nudge travel on
different partitions (keyed by rep id vs. lead id), often through different workers,
so a nudge can reach delivery a moment before its rep is in the store. It waits
(re-queued with a short backoff, released by the drain) instead of being suppressed
at once; only a rep still unknown after this grace is suppressed as "unknown rep".
"""
UNKNOWN_REP_RETRY_CAP = 30.0

UNSUBSCRIBED = "21610"
"""Twilio: the recipient has replied STOP; the carrier blocks our texts until START."""


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try. Defaults keep a nudge for ~4 h of provider outage."""

    in_call_retries: int = 2
    in_call_base: float = 0.5
    in_call_cap: float = 5.0
    requeue_base: float = 5.0
    requeue_cap: float = 900.0
    max_attempts: int = 25


DEFAULT_POLICY = Policy()
DEFAULT_RETRY = RetryPolicy()
Sleep = Callable[[float], Awaitable[Any]]
_rep_locks: dict[tuple[int, str], asyncio.Lock] = {}


def _lock(rep_id: str) -> asyncio.Lock:
    """One sender per rep at a time in this process (and loop), so nudges keep their order."""
    key = (id(asyncio.get_running_loop()), rep_id)
    return _rep_locks.setdefault(key, asyncio.Lock())


DRAIN_CONCURRENCY = 8
"""How many reps one batch drains at once (provider calls overlap; each rep's in order)."""
SNOOZED = "snoozed"
"""The outcome of a nudge about a lead its rep snoozed: suppressed, never sent."""


@dataclass(frozen=True)
class Outcome:
    """What became of one command of a batch: its outbox row and state (or ``snoozed``)."""

    command: NudgeCommand
    state: str
    row: dict[str, Any] | None


async def deliver(
    command: NudgeCommand,
    store: Store,
    notifiers: Mapping[str, Notifier],
    now: dt.datetime,
    *,
    policy: Policy = DEFAULT_POLICY,
    retry: RetryPolicy = DEFAULT_RETRY,
    sleep: Sleep = asyncio.sleep,
) -> str:
    """:func:`deliver_batch` of one command; returns its state."""
    (outcome,) = await deliver_batch(
        [command], store, notifiers, now, policy=policy, retry=retry, sleep=sleep
    )
    return outcome.state


async def deliver_batch(
    commands: list[NudgeCommand],
    store: Store,
    notifiers: Mapping[str, Notifier],
    now: dt.datetime,
    *,
    policy: Policy = DEFAULT_POLICY,
    retry: RetryPolicy = DEFAULT_RETRY,
    sleep: Sleep = asyncio.sleep,
    concurrency: int = DRAIN_CONCURRENCY,
) -> list[Outcome]:
    """Queue a batch of commands durably, then send what is due for each rep they touch.

    The batch's commands are snooze-checked, coded and queued in one commit; each rep
    touched is then drained once (up to ``concurrency`` reps at a time, each rep's nudges
    in order). Returns one :class:`Outcome` per command, in order. Safe to call again
    with the same commands (a Kafka redelivery): each is queued once and sent at most once.
    """
    outbox = Outbox(store)
    first = {c.nudge_id: c for c in reversed(commands)}  # a repeated id: its first copy
    known = await outbox.existing(list(first))
    snoozed = await outbox.snoozed(
        [(c.rep_id, c.lead_id) for c in first.values() if c.playbook not in CONVERSATION_PLAYBOOKS],
        now,
    )

    def is_snoozed(c: NudgeCommand) -> bool:
        return c.playbook not in CONVERSATION_PLAYBOOKS and (c.rep_id, c.lead_id) in snoozed

    fresh = [c for c in commands if c.nudge_id not in known and first[c.nudge_id] is c]
    coded = await _coded(outbox, [c for c in fresh if not is_snoozed(c)])
    await outbox.enqueue_many(
        [
            (c, "suppressed", "snoozed by the rep")
            if is_snoozed(c)
            else (coded[c.nudge_id], "queued", None)
            for c in fresh
        ],
        now,
    )
    for c in commands:
        if c.nudge_id in known and not is_snoozed(c):
            log.info("nudge already in the outbox", nudge_id=c.nudge_id, rep_id=c.rep_id)
    reps = list(dict.fromkeys(c.rep_id for c in commands if not is_snoozed(c)))
    await _drain_reps(outbox, reps, notifiers, now, policy, retry, sleep, concurrency)
    rows = await outbox.get_many(list(first))
    return [
        Outcome(c, SNOOZED, None)
        if is_snoozed(c)
        else Outcome(
            c,
            str(rows[c.nudge_id]["state"]) if c.nudge_id in rows else "missing",
            rows.get(c.nudge_id),
        )
        for c in commands
    ]


async def _coded(outbox: Outbox, commands: list[NudgeCommand]) -> dict[str, NudgeCommand]:
    """``nudge_id → command`` as queued: a nudge offering reply codes gets its rep's next
    letter (``nudge.codes``), "Reply 1B"; a rep's letters follow each other in the batch.
    Conversation messages and digests (one message, several leads) get none."""
    out: dict[str, NudgeCommand] = {}
    recent: dict[str, list[str]] = {}
    for command in commands:
        if (
            command.code is not None
            or command.playbook in CONVERSATION_PLAYBOOKS
            or command.about
            or not offers_codes(command.text)
        ):
            out[command.nudge_id] = command
            continue
        if command.rep_id not in recent:
            recent[command.rep_id] = await outbox.recent_codes(command.rep_id)
        code = next_code(recent[command.rep_id])
        recent[command.rep_id].insert(0, code)
        out[command.nudge_id] = command.model_copy(
            update={"code": code, "text": with_code(command.text, code)}
        )
    return out


async def drain_due(
    store: Store,
    notifiers: Mapping[str, Notifier],
    now: dt.datetime,
    *,
    policy: Policy = DEFAULT_POLICY,
    retry: RetryPolicy = DEFAULT_RETRY,
    sleep: Sleep = asyncio.sleep,
    concurrency: int = DRAIN_CONCURRENCY,
) -> int:
    """Send every queued or held nudge whose time has come, each rep's in order.

    Returns how many nudges left the queue (sent, failed or suppressed).
    """
    outbox = Outbox(store)
    reps = await outbox.due_reps(now)
    return await _drain_reps(outbox, reps, notifiers, now, policy, retry, sleep, concurrency)


async def _drain_reps(
    outbox: Outbox,
    rep_ids: list[str],
    notifiers: Mapping[str, Notifier],
    now: dt.datetime,
    policy: Policy,
    retry: RetryPolicy,
    sleep: Sleep,
    concurrency: int,
) -> int:
    """Drain each rep, up to ``concurrency`` at a time. Every drain runs to its end (none is
    cut off mid-send); then the first failure, if any, is raised."""
    bound = asyncio.Semaphore(concurrency)

    async def one(rep_id: str) -> int:
        async with bound:
            return await _drain_rep(outbox, rep_id, notifiers, now, policy, retry, sleep)

    done = 0
    results = await asyncio.gather(*(one(r) for r in rep_ids), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
        done += result
    return done


@dataclass
class RepNow:
    """What a drain reads about its rep once, and keeps up to date as it sends."""

    rep: Rep | None
    opted_out: bool
    sent_today: int

    @classmethod
    async def read(cls, outbox: Outbox, rep_id: str, now: dt.datetime, policy: Policy) -> RepNow:
        row = await outbox.store.get_rep(rep_id)
        rep = Rep.from_row(row, policy, to_e164) if row else None
        if rep is None:
            return cls(None, False, 0)
        opted_out = await outbox.sms_opted_out(rep.phone, rep.rep_id)
        sent_today = await outbox.sent_since(rep.rep_id, local_day_start(now, rep.zone))
        return cls(rep, opted_out, sent_today)


async def _drain_rep(
    outbox: Outbox,
    rep_id: str,
    notifiers: Mapping[str, Notifier],
    now: dt.datetime,
    policy: Policy,
    retry: RetryPolicy,
    sleep: Sleep,
) -> int:
    """Send the rep's due nudges in order, reading the rep's record, opt-out and count of
    the day once. ``now`` is when the drain began; the claim and the stamps before each
    provider call add the time since (a long drain must not stamp its last rows with a
    stale time)."""
    done = 0
    started = time.monotonic()
    async with _lock(rep_id):
        known: RepNow | None = None
        for row in await outbox.pending_for_rep(rep_id):
            if row["not_before"] and dt.datetime.fromisoformat(row["not_before"]) > now:
                break  # the head is waiting (retry or quiet hours): later ones wait behind it
            known = known or await RepNow.read(outbox, rep_id, now, policy)
            outcome = await _attempt(outbox, row, known, notifiers, now, retry, sleep, started)
            if outcome in ("requeued", "held", "skipped"):
                break  # skipped: another worker is sending it and will carry on after it
            done += 1
    return done


async def _attempt(
    outbox: Outbox,
    row: dict[str, Any],
    known: RepNow,
    notifiers: Mapping[str, Notifier],
    now: dt.datetime,
    retry: RetryPolicy,
    sleep: Sleep,
    started: float,
) -> str:
    nudge_id = row["nudge_id"]
    command = NudgeCommand.model_validate_json(row["command_json"])
    rep = known.rep
    decision = decide(
        command,
        rep,
        now,
        sent_today=known.sent_today,
        opted_out=known.opted_out,
        available=notifiers.keys(),
    )
    # a send's claim names its channel and is the first call's stamp (one write, not two)
    channel = decision.channel if decision.action == "send" and rep is not None else None
    stamp = now + dt.timedelta(seconds=time.monotonic() - started)
    if not await outbox.claim(nudge_id, stamp, channel):
        return "skipped"
    ctx = {"nudge_id": nudge_id, "rep_id": command.rep_id, "channel": decision.channel}
    if rep is None and now - dt.datetime.fromisoformat(row["created_at"]) < UNKNOWN_REP_GRACE:
        delay = min(UNKNOWN_REP_RETRY_CAP, 2.0 ** int(row["attempts"] or 0))
        await outbox.requeue(
            nudge_id,
            now,
            now + dt.timedelta(seconds=delay),
            reason="waiting for the rep's record (unknown rep)",
            error_code=None,
        )
        log.info("nudge waits for its rep's record", **ctx)
        return "requeued"
    if decision.action == "suppress":
        await outbox.mark_suppressed(nudge_id, now, reason=decision.reason or "suppressed")
        log.info("nudge suppressed", reason=decision.reason, **ctx)
        return "suppressed"
    if decision.action == "hold":
        assert decision.not_before is not None
        await outbox.hold(nudge_id, now, decision.not_before, reason=decision.reason or "held")
        log.info("nudge held", until=decision.not_before.isoformat(), **ctx)
        return "held"
    assert decision.channel is not None
    return await _send(outbox, command, known, decision, notifiers, now, retry, sleep, started)


def outbound_message(command: NudgeCommand, rep: Rep) -> OutboundMessage:
    """What a channel is given to send for ``command`` (and looks up in its log)."""
    return OutboundMessage(
        nudge_id=command.nudge_id,
        recipient=rep.contact,
        text=command.text,
        reasons=tuple(command.reasons),
        choices=tuple(getattr(command, "choices", ()) or ()),
        answer_box=bool(getattr(command, "answer_box", False)),
        lead_id=command.lead_id,
    )


async def _send(
    outbox: Outbox,
    command: NudgeCommand,
    known: RepNow,
    decision: Decision,
    notifiers: Mapping[str, Notifier],
    now: dt.datetime,
    retry: RetryPolicy,
    sleep: Sleep,
    started: float,
) -> str:
    channel, rep = decision.channel, known.rep
    assert channel is not None and rep is not None
    nudge_id = command.nudge_id
    ctx = {"nudge_id": nudge_id, "rep_id": rep.rep_id, "channel": channel}
    message = outbound_message(command, rep)
    notifier = notifiers[channel]
    for try_ in range(retry.in_call_retries + 1):
        if try_:  # a stamp per call (the claim's is the first's): a row whose stamp
            # grows old was left by a dead sender
            await outbox.sending(
                nudge_id, now + dt.timedelta(seconds=time.monotonic() - started), channel
            )
        try:
            result = await notifier.send(message)
        except TransientDeliveryError as exc:
            await outbox.log_attempt(
                nudge_id,
                now,
                channel=channel,
                outcome="transient",
                error_code=exc.code,
                detail=exc.reason,
            )
            log.warning("send failed, will retry", reason=exc.reason, code=exc.code, **ctx)
            wait = exc.retry_after or retry_delay(
                try_ + 1, base=retry.in_call_base, cap=retry.in_call_cap
            )
            if try_ < retry.in_call_retries and wait <= retry.in_call_cap:
                await sleep(wait)
                continue
            return await _requeue(outbox, nudge_id, now, exc, retry, ctx)
        except PermanentDeliveryError as exc:
            await _fail(outbox, nudge_id, now, exc, channel, known, ctx)
            return "failed"
        except DeliveryError as exc:  # unclassified: retrying is the safe side
            return await _requeue(
                outbox, nudge_id, now, TransientDeliveryError(exc.reason, code=exc.code), retry, ctx
            )
        await outbox.sent(nudge_id, now, channel=result.channel, provider_id=result.provider_id)
        if command.playbook not in CONVERSATION_PLAYBOOKS:
            known.sent_today += 1  # as sent_since counts: nudges, not a conversation's
        log.info("nudge sent", provider_id=result.provider_id, **ctx)
        return "sent"
    raise AssertionError("unreachable")  # pragma: no cover


async def _requeue(
    outbox: Outbox,
    nudge_id: str,
    now: dt.datetime,
    exc: TransientDeliveryError,
    retry: RetryPolicy,
    ctx: dict[str, Any],
) -> str:
    attempts = len(await outbox.attempts(nudge_id))
    if attempts >= retry.max_attempts:
        await outbox.mark_failed(
            nudge_id,
            now,
            reason=f"gave up after {attempts} attempts: {exc.reason}",
            error_code=exc.code,
        )
        log.error("nudge failed: provider kept failing", attempts=attempts, **ctx)
        return "failed"
    delay = max(
        exc.retry_after or 0.0,
        retry_delay(attempts, base=retry.requeue_base, cap=retry.requeue_cap),
    )
    not_before = now + dt.timedelta(seconds=delay)
    await outbox.requeue(
        nudge_id, now, not_before, reason=f"retrying: {exc.reason}", error_code=exc.code
    )
    log.warning("nudge queued for retry", not_before=not_before.isoformat(), **ctx)
    return "requeued"


async def _fail(
    outbox: Outbox,
    nudge_id: str,
    now: dt.datetime,
    exc: PermanentDeliveryError,
    channel: str,
    known: RepNow,
    ctx: dict[str, Any],
) -> None:
    """Record a permanent failure (21610 also puts the rep's number on the opt-out list)."""
    rep = known.rep
    assert rep is not None
    await outbox.log_attempt(
        nudge_id, now, channel=channel, outcome="permanent", error_code=exc.code, detail=exc.reason
    )
    await outbox.mark_failed(nudge_id, now, reason=exc.reason, error_code=exc.code)
    log.warning("nudge failed permanently", reason=exc.reason, code=exc.code, **ctx)
    if exc.code == UNSUBSCRIBED and rep.phone:
        await outbox.set_sms_opt_out(
            rep.phone, True, now, rep_id=rep.rep_id, reason="carrier reported 21610"
        )
        known.opted_out = True
