"""Decisions to nudge or not, as logged: the signal, the rule, what it did, how likely.

Every time a rule's trigger matches a signal (or the rule explores its trigger), the rule
decides: nudge or not. The trace (:class:`playbooks.trace.Evaluation`) says how likely
the rule as written was to decide what it did — its propensity: 1, unless an exploration
coin was drawn. Off-policy evaluation (``replay.policy``) weighs the logged decisions by
it; the worker keeps them in the record (``decisions``), ``simulate`` in its report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nudge.signals import LeadSignal
from playbooks.evaluator import Decision


@dataclass(frozen=True)
class Logged:
    """One logged decision: the signal, which rule, what it did and how likely that was."""

    signal: LeadSignal
    playbook: str
    rule: str
    nudged: bool
    propensity: float

    def to_json(self) -> dict[str, Any]:
        return {
            "at": self.signal.at.isoformat(),
            "playbook": self.playbook,
            "rule": self.rule,
            "lead_id": self.signal.lead.lead_id,
            "event_id": self.signal.event_id,
            "nudged": self.nudged,
            "propensity": self.propensity,
            "signal": self.signal.model_dump(mode="json"),
        }

    def row(self) -> dict[str, Any]:
        """The record's ``decisions`` row (``crm.store.Store.save_decisions``)."""
        return {
            "event_id": self.signal.event_id,
            "lead_id": self.signal.lead.lead_id,
            "playbook": self.playbook,
            "rule": self.rule,
            "at": self.signal.at.isoformat(),
            "nudged": self.nudged,
            "propensity": self.propensity,
            "signal_json": self.signal.model_dump_json(),
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Logged:
        return cls(
            signal=LeadSignal.model_validate_json(row["signal_json"]),
            playbook=str(row["playbook"]),
            rule=str(row["rule"]),
            nudged=bool(row["nudged"]),
            propensity=float(row["propensity"]),
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Logged:
        return cls(
            signal=LeadSignal.model_validate(data["signal"]),
            playbook=str(data["playbook"]),
            rule=str(data["rule"]),
            nudged=bool(data["nudged"]),
            propensity=float(data["propensity"]),
        )


def logged_decisions(signal: LeadSignal, decision: Decision) -> list[Logged]:
    """The decisions (nudge or not, with propensity) in one evaluation's trace."""
    return [
        Logged(signal, ev.playbook, ev.rule, bool(ev.nudges), ev.propensity)
        for ev in decision.trace
        if ev.propensity is not None
    ]
