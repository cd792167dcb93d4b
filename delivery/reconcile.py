"""Settling nudges a crash left in ``sending``: ask the provider whether it got them.

A worker killed between claiming a nudge and recording the provider's answer leaves
the outbox row in ``sending``, and nobody can tell from our side whether the text
went out. The provider can: Twilio keeps a list of the messages it accepted, Slack
the history of the DM (each nudge carries its id in the message metadata). So every
few seconds (and at start) each worker runs :func:`reconcile_stale`:

1. rows in ``sending`` whose stamp (written before every provider call, see
   :meth:`crm.outbox.Outbox.sending`) is older than ``stale_after`` — longer than any
   live send takes, so their sender is dead — are taken over one at a time, by one
   worker only (:meth:`crm.outbox.Outbox.retake`);
2. the nudge is looked up in its channel's log (:class:`notifiers.base.SentLookup`)
   from shortly before the nudge was queued, ignoring provider ids already matched to
   other nudges;
3. found: it is marked ``sent`` with the provider's id (and a ``sent`` attempt noting
   it was found there); not found: it is queued again (a ``transient`` attempt,
   code ``lost_in_crash``) and the ordinary drain sends it — at most once, through the
   same claim as every send.

A channel without such a log (the console) cannot be checked: its rows stay in
``sending`` and are reported, as before. A failed look-up (the provider is down) is
tried again on a later pass. The one window left: a provider that accepted a request
after our client had given up on it and only lists it after the look-up — ``stale_after``
(default 60 s, far beyond the 10 s client timeout) makes that practically impossible.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from crm.outbox import Outbox
from crm.store import Store
from delivery.policy import Policy, Rep
from delivery.sender import DEFAULT_POLICY, outbound_message
from notifiers.base import Notifier, SentLookup
from notifiers.phones import to_e164
from nudge.errors import DeliveryError
from nudge.logs import get_logger
from nudge.signals import NudgeCommand

log = get_logger(__name__)

CLOCK_SKEW = dt.timedelta(minutes=2)
"""Look this far before a nudge was queued: the provider's clock is not ours."""


@dataclass
class Reconciled:
    """What one pass did."""

    found: int = 0
    requeued: int = 0
    unchecked: int = 0

    def __bool__(self) -> bool:
        return bool(self.found or self.requeued or self.unchecked)


async def reconcile_stale(
    store: Store,
    notifiers: Mapping[str, Notifier],
    now: dt.datetime,
    *,
    stale_after: dt.timedelta,
    policy: Policy = DEFAULT_POLICY,
) -> Reconciled:
    """Settle every ``sending`` row whose sender is gone (see the module docstring)."""
    outbox = Outbox(store)
    done = Reconciled()
    for row in await outbox.stale_sending(now - stale_after):
        nudge_id = str(row["nudge_id"])
        ctx = {"nudge_id": nudge_id, "rep_id": row["rep_id"], "channel": row["channel"]}
        if row["channel"] is None:  # claimed, but the sender died before any provider call
            if await outbox.retake(nudge_id, str(row["updated_at"]), now):
                await _requeue(outbox, nudge_id, now, None, "it never reached a provider")
                done.requeued += 1
                log.warning("nudge claimed by a dead worker before any send: queued again", **ctx)
            continue
        notifier = notifiers.get(str(row["channel"]))
        if not isinstance(notifier, SentLookup):
            done.unchecked += 1
            log.warning("nudge left in sending cannot be checked with its provider", **ctx)
            continue
        if not await outbox.retake(nudge_id, str(row["updated_at"]), now):
            continue  # another worker has it
        command = NudgeCommand.model_validate_json(row["command_json"])
        rep_row = await store.get_rep(command.rep_id)
        if rep_row is None:  # cannot happen for a row that was being sent; be safe
            done.unchecked += 1
            continue
        message = outbound_message(command, Rep.from_row(rep_row, policy, to_e164))
        since = dt.datetime.fromisoformat(str(row["created_at"])) - CLOCK_SKEW
        exclude = frozenset(await outbox.provider_ids(command.rep_id))
        try:
            found = await notifier.find_sent(message, since, exclude)
        except DeliveryError as exc:
            log.warning("cannot look the nudge up yet", reason=exc.reason, **ctx)
            continue  # its stamp is fresh again: a later pass tries once it is stale
        if found is not None:
            await outbox.log_attempt(
                nudge_id,
                now,
                channel=found.channel,
                outcome="sent",
                detail="found in the provider's log after a crash",
            )
            await outbox.mark_sent(
                nudge_id, now, channel=found.channel, provider_id=found.provider_id
            )
            done.found += 1
            log.info(
                "nudge found at the provider: marked sent", provider_id=found.provider_id, **ctx
            )
        else:
            await _requeue(outbox, nudge_id, now, str(row["channel"]), "the provider never got it")
            done.requeued += 1
            log.warning("nudge never reached the provider: queued again", **ctx)
    return done


async def _requeue(
    outbox: Outbox, nudge_id: str, now: dt.datetime, channel: str | None, why: str
) -> None:
    await outbox.log_attempt(
        nudge_id,
        now,
        channel=channel,
        outcome="transient",
        error_code="lost_in_crash",
        detail=f"{why}; queued again",
    )
    await outbox.requeue(
        nudge_id, now, now, reason=f"queued again after a crash: {why}", error_code="lost_in_crash"
    )
