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

from pydantic import AwareDatetime, BaseModel, ConfigDict, field_validator

KEEP_COOLDOWNS = dt.timedelta(days=120)
KEEP_COUNTS = dt.timedelta(days=3)
KEEP_PLANS = dt.timedelta(days=1)
"""A plan is remembered this long after it came due. Forgetting it is safe: planning the
same step again gives the same schedule id, which the scheduler ignores."""
KEEP_HELD = dt.timedelta(days=400)
"""How long a held plan is remembered: longer than any date trigger's reach."""
SEP = "|"
_LONG_AGO = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class Plan(BaseModel):
    """The schedule row last planned for one (playbook, rule, lead), and when it is due."""

    model_config = ConfigDict(extra="forbid")
    schedule_id: str
    due_at: AwareDatetime
    held: bool = False
    """Planned from history when its moment had already passed: not caught up, and
    remembered (until the plan changes, at most :data:`KEEP_HELD`) so the lead's first live
    signals do not plan it again "at once"."""


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
    planned: dict[str, Plan] = {}

    @field_validator("planned", mode="before")
    @classmethod
    def _plans_without_due_time(cls, value: Any) -> Any:
        """A state written before plans carried their due time: keep the ids, due long ago."""
        if isinstance(value, dict):
            return {
                k: {"schedule_id": v, "due_at": _LONG_AGO} if isinstance(v, str) else v
                for k, v in value.items()
            }
        return value

    def cooling(
        self,
        playbook: str,
        rule: str,
        lead_id: str,
        cooldown: dt.timedelta | None,
        now: dt.datetime,
    ) -> bool:
        """Is this rule still cooling down for this lead?"""
        return self.cooling_until(playbook, rule, lead_id, cooldown, now) is not None

    def cooling_until(
        self,
        playbook: str,
        rule: str,
        lead_id: str,
        cooldown: dt.timedelta | None,
        now: dt.datetime,
    ) -> dt.datetime | None:
        """When this rule's cooldown for this lead ends, if it has not yet."""
        if cooldown is None:
            return None
        last = self.cooldowns.get(SEP.join((playbook, rule, lead_id)))
        return last + cooldown if last is not None and now < last + cooldown else None

    def fired(self, playbook: str, rule: str, lead_id: str, now: dt.datetime) -> None:
        self.cooldowns[SEP.join((playbook, rule, lead_id))] = now

    def count_key(self, playbook: str, rep_id: str, now: dt.datetime, zone: ZoneInfo) -> str:
        return SEP.join((playbook, rep_id, now.astimezone(zone).date().isoformat()))

    def prune(self, now: dt.datetime) -> None:
        """Forget cooldowns, counts and plans too old to matter: the entry stays small
        however long the worker runs."""
        self.cooldowns = {k: v for k, v in self.cooldowns.items() if now - v < KEEP_COOLDOWNS}
        self.planned = {
            k: v
            for k, v in self.planned.items()
            if now - v.due_at < (KEEP_HELD if v.held else KEEP_PLANS)
        }
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
