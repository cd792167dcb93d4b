"""The fields a playbook may name, and the views that give them values.

Conditions, expressions and templates all read the same five roots — ``lead``,
``deal``, ``rep``, ``score`` and ``event`` — built here from a :class:`LeadSignal`.
The set of known names is derived from the schemas themselves (``LeadView``,
``RepView``, ``Score`` and every model in ``nudge.events``), so a field added there
is usable in playbooks at once, and a misspelt one is a load-time error with a
suggestion instead of a rule that silently never fires.

``lead.custom.<name>`` (customer-specific CRM fields) and ``event.answers.<name>``
accept any name: they are not known in advance.
"""

from __future__ import annotations

import difflib
import typing
from typing import Any

from pydantic import BaseModel

from nudge import events as ev
from nudge.signals import DealView, LeadSignal, LeadView, RepView, Score
from playbooks import messages as msg

ROOTS = ("lead", "deal", "rep", "score", "event")
OPEN_PREFIXES = (
    "lead.custom.",
    "deal.custom.",
    "event.fields.custom.",
    "event.answers.",
    "score.cross_sell.",
)
"""Below these prefixes any name is accepted (free-form maps)."""

QUESTIONNAIRE_EVENT = "questionnaire.answered"
"""The event type the conversation agent's answers arrive as (not an inbound event)."""
QUESTIONNAIRE_SOURCE_PREFIX = "nudge.questionnaire."
"""Answers come back as ``lead.updated`` events whose source is this prefix + the id
(``crm.conversations.lead_updated_event``)."""
QUESTIONNAIRE_FIELDS = ("questionnaire", "question", "answer", "answers", "rep_id")
TIMER_EVENT = "timer"
"""The event type of the synthetic signal a due schedule is resumed with."""


def _model_fields(model: type[BaseModel], prefix: str) -> set[str]:
    out: set[str] = set()
    for name, info in model.model_fields.items():
        out.add(prefix + name)
        ann = info.annotation
        for arg in (ann, *typing.get_args(ann)):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                out |= _model_fields(arg, f"{prefix}{name}.")
    return out


def _event_models() -> dict[str, type[BaseModel]]:
    models: dict[str, type[BaseModel]] = {}
    for obj in vars(ev).values():
        if isinstance(obj, type) and issubclass(obj, BaseModel) and "type" in obj.model_fields:
            for literal in typing.get_args(obj.model_fields["type"].annotation):
                models[str(literal)] = obj
    return models


EVENT_MODELS = _event_models()
EVENT_TYPES = (*sorted(EVENT_MODELS), QUESTIONNAIRE_EVENT)

EVENT_FIELDS: dict[str, set[str]] = {
    t: {f.removeprefix("event.") for f in _model_fields(m, "event.")}
    for t, m in EVENT_MODELS.items()
}
EVENT_FIELDS[QUESTIONNAIRE_EVENT] = {"type", "event_id", "occurred_at", "lead_id"} | set(
    QUESTIONNAIRE_FIELDS
)

KNOWN: frozenset[str] = frozenset(
    _model_fields(LeadView, "lead.")
    | {"deal.stage", "deal.value", "deal.status"}
    | _model_fields(DealView, "deal.")
    | _model_fields(RepView, "rep.")
    | _model_fields(Score, "score.")
    | {"score.change", "score.churn", "score.churn.change", "score.cross_sell"}
    | _model_fields(Score, "score.churn.")
    | {"score.best_cross_sell"}
    | {"event." + f for fields in EVENT_FIELDS.values() for f in fields}
)
"""Every dotted field name a playbook may use (plus the open prefixes)."""


def is_known(field: str, event_type: str | None = None) -> bool:
    """Is ``field`` (dotted, with its root) a name playbooks may read?"""
    if any(field.startswith(p) and len(field) > len(p) for p in OPEN_PREFIXES):
        return True
    if event_type is not None and field.startswith("event."):
        sub = field.removeprefix("event.")
        return sub in EVENT_FIELDS.get(event_type, set()) or any(
            ("event." + sub).startswith(p) for p in OPEN_PREFIXES
        )
    return field in KNOWN or field in ROOTS


SYNONYMS = {
    "url": ("path", "page"),
    "page": ("path",),
    "link": ("path", "url"),
    "name": ("contact_name", "company"),
    "value": ("deal_value",),
    "amount": ("deal_value", "value"),
    "owner": ("owner_rep_id",),
    "rep": ("owner_rep_id", "rep_id"),
    "score": ("value",),
    "last_contact_at": ("last_contacted_at",),
}
"""Words people write for a field, tried before spelling similarity: `event.url` on a
page view is its `path`, not the look-alike `source`."""


def suggest(field: str, candidates: frozenset[str] | set[str] = KNOWN) -> str | None:
    """The closest known name, for "did you mean" hints."""
    close = difflib.get_close_matches(field, sorted(candidates), n=1, cutoff=0.6)
    return close[0] if close else None


def unknown_field_message(field: str, event_type: str | None = None) -> str:
    """``unknown field `x` — did you mean `y`?`` (or the list of roots)."""
    text = msg.UNKNOWN_FIELD.format(field=field)
    pool: set[str] | frozenset[str] = KNOWN | set(ROOTS)
    if event_type is not None and field.startswith("event."):
        pool = {"event." + f for f in EVENT_FIELDS.get(event_type, set())}
    head, _, last = field.rpartition(".")
    hint = next(
        (f"{head}.{alt}" for alt in SYNONYMS.get(last, ()) if f"{head}.{alt}" in pool), None
    ) or suggest(field, pool)
    if hint:
        return f"{text} — {msg.DID_YOU_MEAN.format(suggestion=hint)}"
    if field.split(".")[0] not in ROOTS:
        return f"{text} — {msg.KNOWN_ROOTS.format(roots=', '.join(ROOTS))}"
    return text


class Fields(dict[str, Any]):
    """A dict whose missing keys read as ``None``: optional event fields may be absent."""

    def __missing__(self, key: str) -> Any:
        return None


def _wrap(value: Any) -> Any:
    if isinstance(value, dict):
        return Fields({k: _wrap(v) for k, v in value.items()})
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


CHURN = "churn"
CROSS_SELL = "cross_sell:"


def _score_view(score: Score) -> dict[str, Any]:
    out = score.model_dump(mode="json")
    prev = score.previous
    out["change"] = None if prev is None else round(score.value - prev, 6)
    return out


def best_cross_sell(signal: LeadSignal) -> list[dict[str, Any]]:
    """The lead's cross-sell opportunities, best first: probability × the product's value
    (then probability). Each: ``product``, ``probability``, ``expected_value``, ``reasons``,
    ``model_version``."""
    found = [
        {
            "product": name[len(CROSS_SELL) :],
            "probability": t.score.value,
            "expected_value": t.score.expected_value,
            "reasons": list(t.score.reasons),
            "model_version": t.score.model_version,
        }
        for name, t in signal.targets.items()
        if name.startswith(CROSS_SELL)
    ]
    return sorted(found, key=lambda o: (-(o["expected_value"] or 0.0), -o["probability"]))


def views(signal: LeadSignal) -> dict[str, Any]:
    """The five roots, as plain data (JSON types, ``None`` for absent optional fields).

    ``score`` is the conversion score; ``score.churn`` and ``score.cross_sell.<product>``
    the lead's other scores (``None`` when the lead has none), ``score.best_cross_sell``
    its cross-sell opportunities, best first."""
    lead = signal.lead.model_dump(mode="json")
    score = _score_view(signal.score)
    churn = signal.targets.get(CHURN)
    score["churn"] = _score_view(churn.score) if churn else None
    score["cross_sell"] = {
        name[len(CROSS_SELL) :]: _score_view(t.score)
        for name, t in signal.targets.items()
        if name.startswith(CROSS_SELL)
    }
    score["best_cross_sell"] = best_cross_sell(signal)
    rep = (
        signal.rep.model_dump(mode="json")
        if signal.rep
        else {k: None for k in RepView.model_fields}
    )
    deal = {
        **lead["deal"],
        "stage": lead["stage"],
        "value": lead["deal_value"],
        "status": lead["status"],
    }
    event = dict(signal.event)
    event.setdefault("type", signal.event_type)
    return {
        "windows": signal.windows,
        "lead": _wrap(lead),
        "deal": _wrap(deal),
        "rep": _wrap(rep),
        "score": _wrap(score),
        "event": _wrap(event),
    }


def lookup(data: dict[str, Any], field: str) -> Any:
    """The value at dotted ``field`` in :func:`views` output; ``None`` if absent."""
    node: Any = data
    for part in field.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node
