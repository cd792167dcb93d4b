"""The playbook language: a playbook, its audience, guards and rules.

A playbook is a YAML file with a name, an owner and rules; each rule has one
trigger (:mod:`playbooks.triggers`), optional conditions
(:mod:`playbooks.conditions`) and a chain of actions (:mod:`playbooks.actions`).
Every model forbids unknown keys, so a misspelt key is a located load-time
error, never a silently ignored line. Adding a kind = one model in one module,
registered in :mod:`playbooks.kinds`.
"""

from __future__ import annotations

import datetime as dt

from pydantic import Field, model_validator

from nudge.signals import QuietHours
from playbooks import messages as msg
from playbooks.actions import Action
from playbooks.conditions import Condition
from playbooks.triggers import DateTrigger, ScoreCrossedAbove, Trigger
from playbooks.types import Duration, Ident, Model, Share, TimeOfDay
from playbooks.windows import Window

__all__ = ["Audience", "Guards", "Playbook", "Rule", "ScoreCrossedAbove", "Trigger"]


class QuietOverride(Model):
    """This rule's send window, local to the rep (delivery enforces it)."""

    start: TimeOfDay
    end: TimeOfDay

    def command(self) -> QuietHours:
        return QuietHours(start=self.start, end=self.end)


class Audience(Model):
    """Which leads, reps and teams a playbook applies to; empty = everyone."""

    leads: list[Condition] = Field(default_factory=list)
    reps: list[str] = Field(default_factory=list)
    teams: list[str] = Field(default_factory=list)


class Guards(Model):
    """Limits for the whole playbook."""

    max_per_rep_per_day: int | None = Field(default=None, ge=1, le=1000)
    digest_after: Duration = dt.timedelta(hours=2)


class Rule(Model):
    id: Ident
    description: str | None = None
    trigger: Trigger
    conditions: list[Condition] = Field(default_factory=list)
    actions: list[Action] = Field(min_length=1, max_length=32)
    priority: int = Field(default=0, ge=-1000, le=1000)
    cooldown: Duration | None = Field(
        default=None, description="at most one firing per lead per this period"
    )
    explore: Share = Field(
        default=0.0,
        description="share of leads whose trigger matched but conditions did not, nudged anyway",
    )
    explore_trigger: Share = Field(
        default=0.0,
        description="share of signals the trigger did not match on which the rule runs anyway "
        "(conditions and `explore` still apply); logged as exploration with its propensity",
    )
    quiet_hours: QuietOverride | None = None
    cancel_if: Condition | None = Field(
        default=None, description="checked before each delayed step: when it holds, the chain ends"
    )

    @model_validator(mode="after")
    def _chain_makes_sense(self) -> Rule:
        seen_nudge = False
        for action in self.actions:
            if action.needs_nudge_before and not seen_nudge:
                raise ValueError(msg.ESCALATE_WITHOUT_NUDGE)
            seen_nudge = seen_nudge or action.sends_nudge
        if not self.actions[-1].may_end_chain:
            raise ValueError(msg.WAIT_LAST)
        return self

    @property
    def event_type(self) -> str | None:
        """The event type the trigger pins, if any (narrows ``event.*`` field checks)."""
        return self.trigger.event_type

    @property
    def score_based(self) -> bool:
        return self.trigger.score_based

    @property
    def timed(self) -> bool:
        return self.trigger.timed

    @property
    def date_trigger(self) -> DateTrigger | None:
        return self.trigger if isinstance(self.trigger, DateTrigger) else None


class Playbook(Model):
    name: Ident
    description: str = ""
    owner: str = Field(min_length=1)
    version: int = Field(ge=1)
    enabled: bool = True
    audience: Audience = Audience()
    guards: Guards = Guards()
    rules: list[Rule] = Field(min_length=1, max_length=100)

    @model_validator(mode="after")
    def _unique_rules(self) -> Playbook:
        ids = [r.id for r in self.rules]
        for rule_id in ids:
            if ids.count(rule_id) > 1:
                raise ValueError(msg.DUPLICATE_RULE.format(rule=rule_id))
        return self

    def windows(self) -> list[Window]:
        """Every windowed count the playbook reads (the lead stage keeps them per lead)."""
        out = [w for c in self.audience.leads for w in c.windows()]
        for rule in self.rules:
            conds = [*rule.conditions, *(a.when for a in rule.actions if a.when is not None)]
            conds += [rule.cancel_if] if rule.cancel_if is not None else []
            out += rule.trigger.windows() + [w for c in conds for w in c.windows()]
        return out

    def rule(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.id == rule_id), None)
