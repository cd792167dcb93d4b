"""Per-lead model features: their state, its O(1) update from one event, and the catalogue.

Why this shape:

* **One code path.** :func:`update_features` is what the live lead agent calls on every
  event and what :mod:`scoring.train` calls while replaying history, and
  :func:`feature_vector` turns the state into the model's input in both places. There is
  no second implementation to drift (no train/serve skew).
* **O(1) per event.** Counters are exponentially decayed sums, one per (half-life, key).
  Only non-zero counters are stored, so decaying them costs in proportion to the handful
  of event kinds a lead actually shows. An event older than the state's clock (late
  delivery) is added with the decay it would have had, so order does not matter.
* **JSON in the Faust table.** The state is plain dicts of floats under
  ``LeadState.features``; epochs are floats, not ISO strings, so the hot path never parses
  a date.
* **Reasons from one catalogue.** :data:`FEATURES` lists every feature family with its
  meaning and the plain words a rep reads ("3 pricing-page visits in the last day").
  Decayed counts are rounded: "in the last day" means "with a one-day half-life", which
  is the honest reading of an exponentially decayed count.

Feature names: ``n1d:page.viewed`` (decayed count, 1-day half-life, of one event type),
``n7d:silo:web`` (per intent silo), ``n30d:pricing_view`` (special intents),
``hours_since:web``, ``age_days``, ``events_total``, ``call_minutes_30d``,
``employees``, ``deal_value``, ``stage=<value>``, ``industry=<value>`` and
``custom.<key>`` (numeric or yes/no questionnaire answers in ``profile["custom"]``).
The categorical and custom names are discovered from training data and saved with the
model, so a model only ever asks for the names it was trained on.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from nudge.events import SILO, CallEnded, FormSubmitted, LeadEvent, MeetingEnded, PageViewed

HALF_LIVES: dict[str, float] = {"1d": 86400.0, "7d": 7 * 86400.0, "30d": 30 * 86400.0}
"""Counter half-lives in seconds, by the tag used in feature names."""

WINDOW_WORDS = {"1d": "in the last day", "7d": "in the last week", "30d": "in the last month"}

_RATE = {tag: math.log(2) / hl for tag, hl in HALF_LIVES.items()}
SILOS: tuple[str, ...] = ("transaction", "search", "email", "social", "web", "call")
COUNTED_TYPES: tuple[str, ...] = tuple(t for t in SILO if t != "rep.upserted")
OUTCOME_TYPES = frozenset({"deal.won", "deal.lost"})
"""Outcomes are labels, never features: counting them would leak the answer."""

NOUN: dict[str, tuple[str, str]] = {
    "lead.created": ("CRM record created", "CRM records created"),
    "lead.updated": ("CRM update", "CRM updates"),
    "deal.stage_changed": ("deal stage change", "deal stage changes"),
    "deal.won": ("won deal", "won deals"),
    "deal.lost": ("lost deal", "lost deals"),
    "call.started": ("call", "calls"),
    "call.ended": ("finished call", "finished calls"),
    "meeting.ended": ("meeting", "meetings"),
    "page.viewed": ("page view", "page views"),
    "form.submitted": ("form submitted", "forms submitted"),
    "email.opened": ("email opened", "emails opened"),
    "email.clicked": ("email link clicked", "email links clicked"),
    "search.keyword": ("intent search", "intent searches"),
    "social.mention": ("social mention", "social mentions"),
    "silo:transaction": ("CRM activity", "CRM activities"),
    "silo:search": ("search signal", "search signals"),
    "silo:email": ("email interaction", "email interactions"),
    "silo:social": ("social signal", "social signals"),
    "silo:web": ("website action", "website actions"),
    "silo:call": ("call or meeting", "calls or meetings"),
    "pricing_view": ("pricing-page visit", "pricing-page visits"),
    "demo_request": ("demo request", "demo requests"),
}


@dataclass(frozen=True)
class FeatureSpec:
    """One feature family: how its names look, what it means, how a reason is worded.

    Templates are ``str.format`` strings; the fields are filled by :func:`describe`:
    ``{n}`` (rounded value), ``{noun}`` (singular or plural as ``n`` asks), ``{window}``,
    ``{what}`` (silo words), ``{ago}``, ``{field}``/``{level}`` (categoricals),
    ``{key}``/``{answer}`` (custom answers), ``{s}``/``{es}`` (plural endings).
    """

    family: str
    pattern: str
    meaning: str
    reason: str
    zero_reason: str | None = None
    missing_reason: str | None = None


FEATURES: dict[str, FeatureSpec] = {
    spec.family: spec
    for spec in (
        FeatureSpec(
            "count",
            "n<1d|7d|30d>:<event type | silo:<silo> | pricing_view | demo_request>",
            "time-decayed count of the lead's events of that kind (half-life = the window)",
            "{n} {noun} {window}",
            "no {noun} {window}",
        ),
        FeatureSpec(
            "recency",
            "hours_since:<silo | any>",
            "hours since the lead's last event in that intent silo (missing if never)",
            "last {what} {ago}",
            missing_reason="no {what} yet",
        ),
        FeatureSpec(
            "age", "age_days", "days since the lead's first event", "lead is {n} day{s} old"
        ),
        FeatureSpec("total", "events_total", "events seen for the lead", "{n} touch{es} in total"),
        FeatureSpec(
            "call_minutes",
            "call_minutes_30d",
            "time-decayed minutes of calls and meetings (30-day half-life)",
            "{n} minutes of calls and meetings in the last month",
            "no calls or meetings in the last month",
        ),
        FeatureSpec(
            "employees",
            "employees",
            "company size from the CRM",
            "company of {n:,} employees",
            missing_reason="company size unknown",
        ),
        FeatureSpec(
            "deal_value",
            "deal_value",
            "deal value from the CRM",
            "deal worth {n:,}",
            missing_reason="no deal value yet",
        ),
        FeatureSpec(
            "categorical",
            "stage=<value> | industry=<value>",
            "1 if that CRM field has that value (levels learnt from training data)",
            "{field} is {level}",
            "{field} is not {level}",
        ),
        FeatureSpec(
            "custom",
            "custom.<key>",
            "a numeric or yes/no answer from a questionnaire or a custom CRM field",
            "answered {key}: {answer}",
            missing_reason="{key} not answered yet",
        ),
    )
}
"""The catalogue: every feature family the model can see. :func:`describe` words reasons
from it, so changing a reason's wording is a one-line edit here."""

SILO_WORDS = {
    "transaction": "CRM activity",
    "search": "search signal",
    "email": "email interaction",
    "social": "social signal",
    "web": "website visit",
    "call": "call or meeting",
    "any": "touch",
}


def empty_state() -> dict[str, Any]:
    """The features of a lead nothing has happened to yet."""
    return {"at": None, "c": {tag: {} for tag in HALF_LIVES}, "last": {}, "first": None, "n": 0}


def _keys(event: LeadEvent) -> list[str]:
    keys = [event.type, "silo:" + SILO[event.type]]
    if isinstance(event, PageViewed) and event.path.startswith("/pricing"):
        keys.append("pricing_view")
    elif isinstance(event, FormSubmitted) and "demo" in event.form.lower():
        keys.append("demo_request")
    return keys


def update_features(features: dict[str, Any], event: LeadEvent) -> None:
    """Fold one event into ``features`` (a :func:`empty_state` dict) in place. O(1)."""
    if event.type in OUTCOME_TYPES:
        return
    t = event.occurred_at.timestamp()
    at = features["at"]
    counters: dict[str, dict[str, float]] = features["c"]
    if at is None or t >= at:
        if at is not None and t > at:
            for tag, block in counters.items():
                factor = math.exp(-_RATE[tag] * (t - at))
                for key in list(block):
                    value = block[key] * factor
                    if value < 1e-3:
                        del block[key]
                    else:
                        block[key] = value
        features["at"] = t
        weights = {tag: 1.0 for tag in HALF_LIVES}
    else:  # a late event: add it as decayed as it would be by now
        weights = {tag: math.exp(-_RATE[tag] * (at - t)) for tag in HALF_LIVES}
    keys = _keys(event)
    minutes = event.duration_s / 60.0 if isinstance(event, CallEnded | MeetingEnded) else 0.0
    for tag, block in counters.items():
        w = weights[tag]
        for key in keys:
            block[key] = block.get(key, 0.0) + w
        if minutes and tag == "30d":
            block["call_minutes"] = block.get("call_minutes", 0.0) + minutes * w
    last: dict[str, float] = features["last"]
    silo = SILO[event.type]
    for key in (silo, "any"):
        if last.get(key, -math.inf) < t:
            last[key] = t
    if features["first"] is None or t < features["first"]:
        features["first"] = t
    features["n"] += 1


def _profile_value(profile: dict[str, Any], name: str) -> float:
    if name.startswith("custom."):
        value = (profile.get("custom") or {}).get(name[7:])
    else:
        value = profile.get(name)
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        low = value.strip().lower()
        if low in {"yes", "true", "y"}:
            return 1.0
        if low in {"no", "false", "n"}:
            return 0.0
        try:
            return float(low)
        except ValueError:
            return math.nan
    return math.nan


def compile_extractors(names: Sequence[str]) -> list[tuple[int, str, str]]:
    """Pre-parse feature names into (kind, a, b) so :func:`feature_vector` does no parsing.

    Kinds: 0 counter (tag, key), 1 hours since (silo), 2 profile number (name),
    3 categorical (field, value), 4 age, 5 total events.
    """
    out: list[tuple[int, str, str]] = []
    for name in names:
        if name.startswith("n") and ":" in name and name.split(":", 1)[0][1:] in HALF_LIVES:
            tag, key = name.split(":", 1)
            out.append((0, tag[1:], key))
        elif name == "call_minutes_30d":
            out.append((0, "30d", "call_minutes"))
        elif name.startswith("hours_since:"):
            out.append((1, name[12:], ""))
        elif "=" in name:
            fld, value = name.split("=", 1)
            out.append((3, fld, value))
        elif name == "age_days":
            out.append((4, "", ""))
        elif name == "events_total":
            out.append((5, "", ""))
        else:
            out.append((2, name, ""))
    return out


def feature_vector(
    features: dict[str, Any],
    profile: dict[str, Any],
    extractors: Sequence[tuple[int, str, str]],
    now: float,
) -> list[float]:
    """The model input for one lead at epoch ``now``; NaN means missing."""
    counters = features["c"]
    at = features["at"]
    decay = {
        tag: (math.exp(-_RATE[tag] * (now - at)) if at is not None and now > at else 1.0)
        for tag in HALF_LIVES
    }
    last = features["last"]
    out: list[float] = []
    append = out.append
    for kind, a, b in extractors:
        if kind == 0:
            append(counters[a].get(b, 0.0) * decay[a])
        elif kind == 1:
            t = last.get(a)
            append((now - t) / 3600.0 if t is not None else math.nan)
        elif kind == 2:
            append(_profile_value(profile, a))
        elif kind == 3:
            append(1.0 if str(profile.get(a)) == b else 0.0)
        elif kind == 4:
            first = features["first"]
            append((now - first) / 86400.0 if first is not None else math.nan)
        else:
            append(float(features["n"]))
    return out


BASE_NAMES: tuple[str, ...] = (
    tuple(f"n{tag}:{t}" for tag in HALF_LIVES for t in COUNTED_TYPES if t not in OUTCOME_TYPES)
    + tuple(f"n{tag}:silo:{s}" for tag in HALF_LIVES for s in SILOS)
    + tuple(f"n{tag}:{k}" for tag in HALF_LIVES for k in ("pricing_view", "demo_request"))
    + tuple(f"hours_since:{s}" for s in (*SILOS, "any"))
    + ("age_days", "events_total", "call_minutes_30d", "employees", "deal_value")
)
"""Every feature whose name does not depend on the data."""


def discover_names(profiles: Iterable[dict[str, Any]], max_levels: int = 20) -> list[str]:
    """The full feature list for a training set: base names plus categorical levels and
    numeric/yes-no custom answers seen in ``profiles`` (most frequent levels first)."""
    levels: dict[str, dict[str, int]] = {"stage": {}, "industry": {}}
    custom: set[str] = set()
    for profile in profiles:
        for fld, seen in levels.items():
            value = profile.get(fld)
            if value is not None:
                seen[str(value)] = seen.get(str(value), 0) + 1
        for key, value in (profile.get("custom") or {}).items():
            if not math.isnan(_profile_value({"custom": {key: value}}, "custom." + key)):
                custom.add(key)
    names = list(BASE_NAMES)
    for fld, seen in levels.items():
        top = sorted(seen, key=lambda v: (-seen[v], v))[:max_levels]
        names += [f"{fld}={v}" for v in top]
    names += [f"custom.{k}" for k in sorted(custom)]
    return names


def family_of(name: str) -> str:
    """The :data:`FEATURES` family a feature name belongs to."""
    head = name.split(":", 1)[0]
    if ":" in name and head[:1] == "n" and head[1:] in HALF_LIVES:
        return "count"
    if name.startswith("hours_since:"):
        return "recency"
    if "=" in name:
        return "categorical"
    if name.startswith("custom."):
        return "custom"
    return {
        "age_days": "age",
        "events_total": "total",
        "call_minutes_30d": "call_minutes",
        "employees": "employees",
        "deal_value": "deal_value",
    }.get(name, "custom")


def describe(name: str, value: float) -> str:
    """The plain-word reason for feature ``name`` having ``value``, from :data:`FEATURES`."""
    spec = FEATURES[family_of(name)]
    n = round(value) if not math.isnan(value) else 0
    fields: dict[str, Any] = {"n": n, "s": "" if n == 1 else "s", "es": "" if n == 1 else "es"}
    template = spec.reason
    if spec.family == "count":
        tag, key = name.split(":", 1)
        one, many = NOUN.get(key, (key, key))
        fields.update(noun=one if n == 1 else many, window=WINDOW_WORDS[tag[1:]])
        if n == 0:
            fields["noun"] = many
            template = spec.zero_reason or template
    elif spec.family == "recency":
        fields["what"] = SILO_WORDS.get(name[12:], name[12:])
        if not math.isnan(value):
            fields["ago"] = f"{n} h ago" if value < 48 else f"{round(value / 24)} days ago"
    elif spec.family == "categorical":
        fields["field"], fields["level"] = name.split("=", 1)
        if value < 0.5:
            template = spec.zero_reason or template
    elif spec.family == "custom":
        fields["key"] = name.removeprefix("custom.")
        fields["answer"] = "yes" if value == 1.0 else "no" if value == 0.0 else f"{value:g}"
    elif spec.family == "call_minutes" and n == 0:
        template = spec.zero_reason or template
    if math.isnan(value):
        template = spec.missing_reason or f"{name} unknown"
    return template.format(**fields)
