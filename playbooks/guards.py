"""Guard state: the small memory the evaluator needs, as plain data passed in and out.

Cooldowns (per playbook, rule and lead), sends per rep per local day, the
over-cap messages waiting to be folded into one digest, and which timed trigger
was last planned per lead (so an unchanged plan is not re-sent on every event).
It is a pydantic model so the worker can keep it in a Faust table as JSON; the
evaluator never mutates the object it was given — it returns a new one.

Partitioning: cooldowns and plans are per lead; counts and digests are per rep.
With one playbook worker (or signals keyed by owner) one state object is exact;
with lead-keyed partitions spread over several workers the per-rep cap is per
worker — the worker may key a second state by rep and apply :func:`cap` there.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, BaseModel, ConfigDict

KEEP_COOLDOWNS = dt.timedelta(days=120)
KEEP_COUNTS = dt.timedelta(days=3)
SEP = "|"


class DigestItem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lead_id: str
    text: str
    rule: str


class GuardState(BaseModel):
    """What the guards remember. Start with ``GuardState()``; store ``model_dump_json()``."""

    model_config = ConfigDict(extra="forbid")

    cooldowns: dict[str, AwareDatetime] = {}
    sent: dict[str, int] = {}
    digests: dict[str, list[DigestItem]] = {}
    planned: dict[str, str] = {}

    def cooling(
        self,
        playbook: str,
        rule: str,
        lead_id: str,
        cooldown: dt.timedelta | None,
        now: dt.datetime,
    ) -> bool:
        """Is this rule still cooling down for this lead?"""
        if cooldown is None:
            return False
        last = self.cooldowns.get(SEP.join((playbook, rule, lead_id)))
        return last is not None and now < last + cooldown

    def fired(self, playbook: str, rule: str, lead_id: str, now: dt.datetime) -> None:
        self.cooldowns[SEP.join((playbook, rule, lead_id))] = now

    def count_key(self, playbook: str, rep_id: str, now: dt.datetime, zone: ZoneInfo) -> str:
        return SEP.join((playbook, rep_id, now.astimezone(zone).date().isoformat()))

    def prune(self, now: dt.datetime) -> None:
        """Forget cooldowns and counts too old to matter (keeps the table entry small)."""
        self.cooldowns = {k: v for k, v in self.cooldowns.items() if now - v < KEEP_COOLDOWNS}
        oldest = (now - KEEP_COUNTS).date().isoformat()
        self.sent = {k: v for k, v in self.sent.items() if k.rsplit(SEP, 1)[-1] >= oldest}

    def copy_for_update(self) -> GuardState:
        return self.model_copy(deep=True)


def digest_text(items: list[DigestItem], limit: int = 1600) -> str:
    """One message summarising the nudges held back by the daily cap."""
    head = f"{len(items)} more update{'s' if len(items) != 1 else ''} today:"
    lines = [head] + [f"• {i.text}" for i in items]
    text = "\n".join(lines)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def as_json(state: GuardState) -> dict[str, Any]:
    return state.model_dump(mode="json")
