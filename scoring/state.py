"""Per-lead state and its update from one event — pure, O(1) per event.

:class:`LeadState` is what the lead agent keeps in its Faust table, one entry per
lead_id: the CRM profile, scorer-specific counters, the current score and a short
score history (for "jumped by Δ within a window" signals), the ids of recent
events so a redelivered event is processed once, and the model features
(:mod:`scoring.features`). The features are folded in by :func:`apply_event`, whatever
scorer is active, so a model promoted later finds every lead's features already built.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from nudge.events import (
    DealLost,
    DealStageChanged,
    DealWon,
    LeadCreated,
    LeadEvent,
    LeadUpdated,
)
from nudge.paths import apply_changes
from nudge.signals import LeadSignal, LeadView, RepView, Score, ScorePoint, TargetScore
from scoring.features import empty_state, update_features

SEEN_WINDOW_S = 24 * 3600
"""A lead remembers the events of its last day (by event time) for de-duplication ..."""
SEEN_MIN = 16
"""... and always its last 16, however old (a redelivery after a long stop is of these) ..."""
SEEN_MAX = 256
"""... but never more than 256 (a lead flooded with events)."""


def event_key(event_id: str) -> str:
    """What the lead state remembers of an event id: 64 bits of its hash, in 11
    characters (a UUID takes 36; two of a lead's remembered events share a key with
    odds of about 1 in 10^15)."""
    digest = hashlib.blake2b(event_id.encode(), digest_size=8).digest()
    return base64.b64encode(digest).decode()[:11]


def remember(seen: dict[str, int], key: str, at: int) -> None:
    """Add an event (``key``, event time ``at``) and forget what is past keeping.

    Each key is kept with the lead's clock when it came (its latest event time so far,
    so a late event is kept as long as a current one): the times never decrease from
    the oldest key to the newest, and forgetting takes keys from the front."""
    newest = max(at, next(reversed(seen.values()), at))
    seen[key] = newest
    cutoff = newest - SEEN_WINDOW_S
    for k, t in list(seen.items())[: max(0, len(seen) - SEEN_MIN)]:
        if t >= cutoff and len(seen) <= SEEN_MAX:
            break
        del seen[k]


CONTACT = "contact"
"""The touch a rep makes: calls, meetings, logged calls and replies (``lead.last_contacted_at``)."""
CONTACT_EVENTS = ("call.started", "call.ended", "meeting.ended")
REPLY_SOURCE = "nudge."
"""``lead.updated`` events from this source are a rep's answers and replies."""


def is_contact(event: LeadEvent) -> bool:
    """A rep touched the lead: a call, a meeting, or the rep's reply about it (not web visits)."""
    if event.type in CONTACT_EVENTS:
        return True
    return isinstance(event, LeadUpdated) and str(event.source).startswith(REPLY_SOURCE)


HISTORY_WINDOW = dt.timedelta(days=7)
HISTORY_MAX = 64
POINTS_CACHED = 1 << 15
"""Score points kept built (:func:`score_point`): the recent history of ~500 busy leads."""


@functools.lru_cache(maxsize=POINTS_CACHED)
def score_point(at: str, value: float) -> ScorePoint:
    """One point of a lead's score history as signals carry it. A lead's signals carry
    the same points event after event (up to 64, one new each time), and building the
    models again was most of a signal's cost (~200 µs for 64 points on a loaded 2-core
    machine, ``bench/bench_lead_step.py --events-per-lead 60``), so they are built once
    (a point is frozen: signals share them)."""
    return ScorePoint(at=dt.datetime.fromisoformat(at), value=value)


@dataclass
class LeadState:
    """Everything the lead agent knows about one lead."""

    lead_id: str
    profile: dict[str, Any] = field(default_factory=dict)
    counters: dict[str, float] = field(default_factory=dict)
    counted_at: str | None = None
    touches: dict[str, str] = field(default_factory=dict)
    score: dict[str, Any] | None = None
    history: list[tuple[str, float]] = field(default_factory=list)
    first_scored_at: str | None = None
    windows: dict[str, list[str]] = field(default_factory=dict)
    """Times of recent events per window the playbooks count (``playbooks.windows``)."""
    seen: dict[str, int] = field(default_factory=dict)
    """Recently applied events, :func:`event_key` → event time (epoch s), oldest first."""
    features: dict[str, Any] = field(default_factory=empty_state)
    targets: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Scores beyond conversion, by target (``churn``, ``cross_sell:<product>``):
    ``{"score": Score, "history": [[at, value], ...], "first": at}`` (``scoring.target_scorer``)."""
    closed: list[str] = field(default_factory=list)
    """Targets whose question is answered for this lead (churned, product bought): never
    scored again."""

    # -- (de)serialisation for the Faust table ---------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "lead_id": self.lead_id,
            "profile": self.profile,
            "counters": self.counters,
            "counted_at": self.counted_at,
            "touches": self.touches,
            "score": self.score,
            "history": [list(p) for p in self.history],
            "first_scored_at": self.first_scored_at,
            "windows": self.windows,
            "seen": self.seen,
            "features": self.features,
            "targets": self.targets,
            "closed": self.closed,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LeadState:
        return cls(
            lead_id=data["lead_id"],
            profile=dict(data.get("profile") or {}),
            counters=dict(data.get("counters") or {}),
            counted_at=data.get("counted_at"),
            touches=dict(data.get("touches") or {}),
            score=data.get("score"),
            history=[(str(a), float(v)) for a, v in data.get("history") or []],
            first_scored_at=data.get("first_scored_at"),
            windows=dict(data.get("windows") or {}),
            seen=_seen(data.get("seen"), (data.get("features") or {}).get("at")),
            features=data.get("features") or empty_state(),
            targets=dict(data.get("targets") or {}),
            closed=list(data.get("closed") or []),
        )

    def checkpoint(self) -> dict[str, Any]:
        """The derived state the store keeps a copy of (``crm.record``): all but the
        profile (the store owns it) and the recent event ids."""
        data = self.to_dict()
        del data["profile"], data["seen"]
        return data

    @classmethod
    def rebuilt(
        cls, lead_id: str, profile: dict[str, Any], checkpoint: dict[str, Any]
    ) -> LeadState:
        """A lost table entry, rebuilt from the store: its profile and last checkpoint."""
        return cls.from_dict({**checkpoint, "lead_id": lead_id, "profile": profile, "seen": {}})

    # -- reading -----------------------------------------------------------------
    def view(self) -> LeadView:
        last = max(self.touches.values()) if self.touches else None
        contact = self.touches.get(CONTACT)
        return LeadView(
            lead_id=self.lead_id,
            last_touch_at=dt.datetime.fromisoformat(last) if last else None,
            last_contacted_at=dt.datetime.fromisoformat(contact) if contact else None,
            **self.profile,
        )

    def current_score(self) -> Score | None:
        return Score.model_validate(self.score) if self.score else None

    def score_history(self) -> list[ScorePoint]:
        return [score_point(a, v) for a, v in self.history]

    def signal(
        self, event: LeadEvent, score: Score, rep: RepView | None, view: LeadView | None = None
    ) -> LeadSignal:
        """The signal the playbooks see for ``event`` — one builder for the live worker and
        ``nudge playbooks simulate``, so a simulation evaluates exactly what a worker would."""
        return LeadSignal(
            lead=view or self.view(),
            event=event.model_dump(mode="json", exclude_none=True),
            event_id=event.event_id,
            event_type=event.type,
            at=event.occurred_at,
            score=score,
            history=self.score_history(),
            windows={k: [dt.datetime.fromisoformat(t) for t in v] for k, v in self.windows.items()},
            first_scored_at=(
                dt.datetime.fromisoformat(self.first_scored_at) if self.first_scored_at else None
            ),
            rep=rep,
            targets=self.target_scores(),
        )

    def target_scores(self) -> dict[str, TargetScore]:
        """The lead's scores beyond conversion, as signals carry them."""
        return {
            name: TargetScore(
                score=Score.model_validate(t["score"]),
                history=[score_point(a, v) for a, v in t["history"]],
                first_scored_at=dt.datetime.fromisoformat(t["first"]),
            )
            for name, t in self.targets.items()
        }

    # -- writing -----------------------------------------------------------------
    def record_score(self, score: Score) -> None:
        if self.score is None:
            self.first_scored_at = score.scored_at.isoformat()
        self.score = score.model_dump(mode="json")
        cutoff = score.scored_at - HISTORY_WINDOW
        self.history = [(a, v) for a, v in self.history if dt.datetime.fromisoformat(a) >= cutoff][
            -(HISTORY_MAX - 1) :
        ]
        self.history.append((score.scored_at.isoformat(), score.value))

    def record_target_score(self, target: str, score: Score) -> None:
        """Keep ``score`` as the lead's score for ``target`` (not conversion), with the
        same 7-day history the conversion score keeps."""
        at = score.scored_at.isoformat()
        kept = self.targets.get(target)
        cutoff = score.scored_at - HISTORY_WINDOW
        history = [
            [a, v]
            for a, v in (kept["history"] if kept else [])
            if dt.datetime.fromisoformat(a) >= cutoff
        ][-(HISTORY_MAX - 1) :]
        history.append([at, score.value])
        self.targets[target] = {
            "score": score.model_dump(mode="json"),
            "history": history,
            "first": kept["first"] if kept else at,
        }

    def close_target(self, target: str) -> None:
        """``target``'s question is answered for this lead: drop its score, score it no more."""
        self.targets.pop(target, None)
        if target not in self.closed:
            self.closed.append(target)


def _seen(stored: Any, last_at: float | None) -> dict[str, int]:
    """The remembered events of a stored state; a state written when they were a list of
    event ids keeps them as events of its last event's time."""
    if isinstance(stored, dict):
        return dict(stored)  # JSON keeps str keys and int times: a copy, as for a list
    at = int(last_at or 0)
    return {event_key(str(i)): at for i in stored or []}


def apply_event(state: LeadState, event: LeadEvent) -> bool:
    """Fold one event into the lead's profile and touches. False if already seen."""
    key = event_key(event.event_id)
    if key in state.seen:
        return False
    remember(state.seen, key, int(event.occurred_at.timestamp()))
    apply_changes(state.profile, profile_changes(event, state.profile), state.lead_id)
    update_features(state.features, event)
    when = event.occurred_at.astimezone(dt.UTC).isoformat()
    if state.touches.get(event.silo, "") < when:
        state.touches[event.silo] = when
    if is_contact(event) and state.touches.get(CONTACT, "") < when:
        state.touches[CONTACT] = when
    return True


def profile_changes(event: LeadEvent, profile: dict[str, Any]) -> dict[str, Any]:
    """The profile fields ``event`` sets, as field paths (``lead.company``,
    ``lead.custom.x``, ``deal.next_step``) → value: what :func:`apply_event` folds into
    the state and what the store's writer merges (``crm.record``)."""
    changes: dict[str, Any] = {}
    if isinstance(event, LeadCreated | LeadUpdated):
        fields = event.fields.model_dump(mode="json", exclude_none=True)
        for key, value in fields.items():
            if key == "custom":
                changes.update({f"lead.custom.{k}": v for k, v in value.items()})
            elif key == "deal":
                for name, v in value.items():
                    if name == "custom":
                        changes.update({f"deal.custom.{k}": c for k, c in v.items()})
                    else:
                        changes[f"deal.{name}"] = v
            else:
                changes[f"lead.{key}"] = float(value) if key == "deal_value" else value
    elif isinstance(event, DealStageChanged | DealWon | DealLost) and event.deal_id:
        changes["deal.deal_id"] = event.deal_id  # the deal it is about (nudge.paths)
    if isinstance(event, DealStageChanged):
        changes["lead.stage"] = event.to_stage
    elif isinstance(event, DealWon):
        changes["lead.status"] = "won"
        if event.amount is not None:
            changes["lead.deal_value"] = float(event.amount)
    elif isinstance(event, DealLost):
        changes["lead.status"] = "lost"
    if event.email and "email" not in profile:
        changes["lead.email"] = event.email
    if event.phone and "phone" not in profile:
        changes["lead.phone"] = event.phone
    return changes


def snapshot_row(state: LeadState, event: LeadEvent, score: Score) -> dict[str, Any]:
    """What the lead agent records for every score: the feature state as it was then.

    Training reads these back (``scoring.train.snapshots_from_rows``) and turns them
    into vectors with the same code as live scoring, so no train/serve skew; and it
    uses only what the row held at ``occurred_at`` — nothing later leaks in.
    """
    return {
        "event_id": event.event_id,
        "lead_id": state.lead_id,
        "event_type": event.type,
        "occurred_at": event.occurred_at.timestamp(),
        "model_version": score.model_version,
        "score": score.value,
        # serialised now: the state's dicts keep changing with the next event
        "state_json": orjson.dumps(
            {"features": state.features, "profile": state.profile}, default=str
        ).decode(),
    }
