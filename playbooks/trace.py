"""The decision trace: why a rule did or did not fire for a lead, in words.

Every evaluation of a rule for a lead leaves one :class:`Evaluation`: whether the
trigger matched, the audience, the cooldown, each condition with the value it saw,
the exploration draw, the daily cap, and — once delivery has decided — whether
policy sent, held (quiet hours) or suppressed the nudge and why. ``nudge playbooks
explain`` prints them; the live worker keeps the last few per lead in a bounded
:class:`TraceBook` and serves them on an authenticated route.

Rules whose trigger certainly ignores a signal (a ``page.viewed`` rule on a call)
leave no entry: "no evaluation" is itself the answer then.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, OrderedDict, deque
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Outcome = Literal[
    "fired",
    "trigger",
    "audience",
    "cooldown",
    "conditions",
    "cap",
    "planned",
    "stale",
    "cancelled",
    "nothing",
    "failed",
]
PER_LEAD = 32
"""Evaluations kept per lead by a running worker."""
LEADS = 10_000
"""Leads a running worker keeps evaluations for (least recently evaluated dropped first)."""


@dataclass
class Check:
    """One condition and what it saw."""

    condition: str
    values: dict[str, Any]
    held: bool | None


@dataclass
class Delivery:
    """What delivery policy did with one nudge of the evaluation."""

    nudge_id: str
    rep_id: str
    action: str
    """send, hold or suppress (or the outbox state the worker reached)."""
    reason: str | None = None
    channel: str | None = None
    not_before: str | None = None


@dataclass
class Evaluation:
    """One rule evaluated for one lead on one signal (or due schedule row)."""

    at: str
    playbook: str
    rule: str
    lead_id: str
    event_id: str
    event_type: str
    outcome: Outcome
    reason: str = ""
    checks: list[Check] = field(default_factory=list)
    draw: float | None = None
    explore: float = 0.0
    propensity: float | None = None
    """For a decision to nudge or not (the trigger matched, or was explored): how likely
    the rule as written was to decide what it did — 1 unless a coin was drawn. ``None``:
    no decision (trigger not matched, cooldown, audience, cap)."""
    nudges: list[str] = field(default_factory=list)
    delivery: list[Delivery] = field(default_factory=list)

    @property
    def fired(self) -> bool:
        return self.outcome == "fired"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Evaluation:
        data = dict(data)
        data["checks"] = [Check(**c) for c in data.get("checks") or []]
        data["delivery"] = [Delivery(**d) for d in data.get("delivery") or []]
        return cls(**data)

    def lines(self) -> list[str]:
        """The evaluation in words: the verdict, then each condition and delivery."""
        head = (
            f"{self.at[:16].replace('T', ' ')}  {self.playbook}/{self.rule}  on {self.event_type}"
        )
        verdict = (
            "fired" + (f" ({self.reason})" if self.reason else "")
            if self.fired
            else f"didn't fire: {self.reason}"
        )
        out = [f"{head}: {verdict}"]
        for check in self.checks:
            seen = ", ".join(f"`{k}` was {_show(v)}" for k, v in check.values.items())
            mark = {True: "ok", False: "FAILED", None: "error"}[check.held]
            out.append(f"    {mark:6} {check.condition}" + (f" ({seen})" if seen else ""))
        if self.draw is not None:
            took = "nudged anyway" if self.draw < self.explore else "not explored"
            out.append(f"    exploration draw {self.draw:.3f} vs share {self.explore:g}: {took}")
        for d in self.delivery:
            when = f" until {d.not_before[:16].replace('T', ' ')}" if d.not_before else ""
            why = f" ({d.reason})" if d.reason else ""
            out.append(f"    delivery to {d.rep_id}: {d.action}{when}{why}")
        return out


def _show(value: Any) -> str:
    return "absent" if value is None else repr(value)


def stamp(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).isoformat()


class TraceBook:
    """The last evaluations per lead, bounded in leads and per lead (a running worker's)."""

    def __init__(self, per_lead: int = PER_LEAD, leads: int = LEADS) -> None:
        self.per_lead = per_lead
        self.max_leads = leads
        self._leads: OrderedDict[str, deque[Evaluation]] = OrderedDict()
        self.counts: Counter[tuple[str, str, str]] = Counter()
        """(playbook, rule, outcome) → evaluations since the last :meth:`take_counts`."""

    def record(self, evaluations: list[Evaluation]) -> None:
        for ev in evaluations:
            self.counts[(ev.playbook, ev.rule, ev.outcome)] += 1
            book = self._leads.get(ev.lead_id)
            if book is None:
                book = self._leads[ev.lead_id] = deque(maxlen=self.per_lead)
            self._leads.move_to_end(ev.lead_id)
            book.append(ev)
        while len(self._leads) > self.max_leads:
            self._leads.popitem(last=False)

    def take_counts(self) -> Counter[tuple[str, str, str]]:
        """The evaluation counts gathered since the last call, which starts new ones."""
        counts, self.counts = self.counts, Counter()
        return counts

    def give_back(self, counts: Counter[tuple[str, str, str]]) -> None:
        """Counts taken but not stored (the record was down): kept for the next flush."""
        self.counts.update(counts)

    def delivered(self, lead_id: str, delivery: Delivery) -> None:
        """Attach delivery's decision to the evaluation that issued the nudge."""
        for ev in reversed(self._leads.get(lead_id, ())):
            if delivery.nudge_id in ev.nudges:
                ev.delivery = [d for d in ev.delivery if d.nudge_id != delivery.nudge_id]
                ev.delivery.append(delivery)
                return

    def last(self, lead_id: str, rule: str | None = None) -> list[Evaluation]:
        """The lead's kept evaluations, oldest first (only ``rule``'s when given)."""
        kept = list(self._leads.get(lead_id, ()))
        return [e for e in kept if rule is None or rule in (e.rule, f"{e.playbook}/{e.rule}")]

    def __len__(self) -> int:
        return sum(len(d) for d in self._leads.values())
