"""Carrying out delivery decisions: the outbox, a notifier, retries, and the drain.

Why this shape: the outbox row is written *before* anything is sent, so a nudge
survives a provider outage or a worker restart; :meth:`crm.outbox.Outbox.claim`
lets exactly one caller send it, so it never goes twice. Each rep's nudges go out
in the order they arrived: a nudge waiting for a retry (or held for quiet hours)
blocks the rep's later ones, and :func:`drain_due` — which the worker calls every
few seconds — releases them, oldest first, once they are due.

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
    """Queue ``command`` durably, then send what is due for its rep; returns its state.

    Safe to call again with the same command (a Kafka redelivery): it is queued
    once and sent at most once.
    """
    outbox = Outbox(store)
    command = await _coded(outbox, command)
    if not await outbox.enqueue(command, now):
        log.info("nudge already in the outbox", nudge_id=command.nudge_id, rep_id=command.rep_id)
    await _drain_rep(outbox, command.rep_id, notifiers, now, policy, retry, sleep)
    row = await outbox.get(command.nudge_id)
    return str(row["state"]) if row else "missing"


async def _coded(outbox: Outbox, command: NudgeCommand) -> NudgeCommand:
    """A nudge offering reply codes gets the rep's next letter (``nudge.codes``): "Reply 1B".
    Conversation messages and digests (one message, several leads) get none."""
    if (
        command.code is not None
        or command.playbook in CONVERSATION_PLAYBOOKS
        or command.about
        or not offers_codes(command.text)
    ):
        return command
    code = next_code(await outbox.recent_codes(command.rep_id))
    return command.model_copy(update={"code": code, "text": with_code(command.text, code)})


async def drain_due(
    store: Store,
    notifiers: Mapping[str, Notifier],
    now: dt.datetime,
    *,
    policy: Policy = DEFAULT_POLICY,
    retry: RetryPolicy = DEFAULT_RETRY,
    sleep: Sleep = asyncio.sleep,
) -> int:
    """Send every queued or held nudge whose time has come, each rep's in order.

    Returns how many nudges left the queue (sent, failed or suppressed).
    """
    outbox = Outbox(store)
    done = 0
    for rep_id in await outbox.due_reps(now):
        done += await _drain_rep(outbox, rep_id, notifiers, now, policy, retry, sleep)
    return done


async def _drain_rep(
    outbox: Outbox,
    rep_id: str,
    notifiers: Mapping[str, Notifier],
    now: dt.datetime,
    policy: Policy,
    retry: RetryPolicy,
    sleep: Sleep,
) -> int:
    """``now`` is when the drain began; the claim and the stamps before each provider call
    add the time since (a long drain must not stamp its last rows with a stale time)."""
    done = 0
    started = time.monotonic()
    async with _lock(rep_id):
        for row in await outbox.pending_for_rep(rep_id):
            if row["not_before"] and dt.datetime.fromisoformat(row["not_before"]) > now:
                break  # the head is waiting (retry or quiet hours): later ones wait behind it
            outcome = await _attempt(outbox, row, notifiers, now, policy, retry, sleep, started)
            if outcome in ("requeued", "held", "skipped"):
                break  # skipped: another worker is sending it and will carry on after it
            done += 1
    return done


async def _attempt(
    outbox: Outbox,
    row: dict[str, Any],
    notifiers: Mapping[str, Notifier],
    now: dt.datetime,
    policy: Policy,
    retry: RetryPolicy,
    sleep: Sleep,
    started: float,
) -> str:
    nudge_id = row["nudge_id"]
    if not await outbox.claim(nudge_id, now + dt.timedelta(seconds=time.monotonic() - started)):
        return "skipped"
    command = NudgeCommand.model_validate_json(row["command_json"])
    rep_row = await outbox.store.get_rep(command.rep_id)
    rep = Rep.from_row(rep_row, policy, to_e164) if rep_row else None
    opted_out = await outbox.sms_opted_out(rep.phone, rep.rep_id) if rep else False
    sent_today = await outbox.sent_since(rep.rep_id, local_day_start(now, rep.zone)) if rep else 0
    decision = decide(
        command, rep, now, sent_today=sent_today, opted_out=opted_out, available=notifiers.keys()
    )
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
    assert rep is not None and decision.channel is not None
    return await _send(outbox, command, rep, decision, notifiers, now, retry, sleep, started)


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
    rep: Rep,
    decision: Decision,
    notifiers: Mapping[str, Notifier],
    now: dt.datetime,
    retry: RetryPolicy,
    sleep: Sleep,
    started: float,
) -> str:
    channel = decision.channel
    assert channel is not None
    nudge_id = command.nudge_id
    ctx = {"nudge_id": nudge_id, "rep_id": rep.rep_id, "channel": channel}
    message = outbound_message(command, rep)
    notifier = notifiers[channel]
    for try_ in range(retry.in_call_retries + 1):
        # a stamp per call: a row whose stamp grows old was left by a dead sender
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
            await _fail(outbox, nudge_id, now, exc, channel, rep, ctx)
            return "failed"
        except DeliveryError as exc:  # unclassified: retrying is the safe side
            return await _requeue(
                outbox, nudge_id, now, TransientDeliveryError(exc.reason, code=exc.code), retry, ctx
            )
        await outbox.log_attempt(nudge_id, now, channel=channel, outcome="sent")
        await outbox.mark_sent(
            nudge_id, now, channel=result.channel, provider_id=result.provider_id
        )
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
    rep: Rep,
    ctx: dict[str, Any],
) -> None:
    await outbox.log_attempt(
        nudge_id, now, channel=channel, outcome="permanent", error_code=exc.code, detail=exc.reason
    )
    await outbox.mark_failed(nudge_id, now, reason=exc.reason, error_code=exc.code)
    log.warning("nudge failed permanently", reason=exc.reason, code=exc.code, **ctx)
    if exc.code == UNSUBSCRIBED and rep.phone:
        await outbox.set_sms_opt_out(
            rep.phone, True, now, rep_id=rep.rep_id, reason="carrier reported 21610"
        )
