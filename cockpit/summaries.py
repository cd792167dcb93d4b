"""Per-rule and per-rep figures from the record's rows — pure, no store.

The inputs are the plain dicts :mod:`crm.reads` returns (outbox rows, replies,
sessions, outcomes); the outputs are what the Playbooks and Reps pages show. Kept apart
from the pages so the arithmetic is tested with hand-made rows.

Definitions (shown on the pages too):

- a nudge *went out* when its outbox state is ``sent`` or ``delivered``;
- a nudge was *answered* when the same rep replied about the same lead (an answer, a
  note, or a call or meeting they logged) within ``REPLY_WINDOW`` after it went out;
- a nudged lead *converted* when its ``deal.won`` came within the horizon after the
  nudge was created.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from cockpit.stats import Lift, Unit, ips_lift, median, wilson

REPLY_WINDOW = dt.timedelta(hours=24)
WENT_OUT = ("sent", "delivered")


def _t(value: str | None) -> float | None:
    return dt.datetime.fromisoformat(value).timestamp() if value else None


def first_replies(
    nudges: Iterable[dict[str, Any]], replies: list[dict[str, Any]]
) -> dict[str, float]:
    """nudge_id → seconds from going out to the rep's first reply about that lead."""
    by_key: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in replies:
        at = _t(r["at"])
        if at is not None:
            by_key[(str(r["rep_id"]), str(r["lead_id"]))].append(at)
    for times in by_key.values():
        times.sort()
    out: dict[str, float] = {}
    window = REPLY_WINDOW.total_seconds()
    for n in nudges:
        sent = _t(n.get("sent_at")) or (_t(n["created_at"]) if n["state"] in WENT_OUT else None)
        if sent is None or n["state"] not in WENT_OUT:
            continue
        later = [t for t in by_key.get((n["rep_id"], n["lead_id"]), []) if t >= sent]
        if later and later[0] - sent <= window:
            out[n["nudge_id"]] = later[0] - sent
    return out


def converted_within(
    nudge: dict[str, Any], outcomes: dict[str, dict[str, Any]], horizon: dt.timedelta
) -> bool:
    won_at = (outcomes.get(nudge["lead_id"]) or {}).get("won_at")
    start = _t(nudge["created_at"])
    return (
        won_at is not None and start is not None and 0 <= won_at - start <= horizon.total_seconds()
    )


def rule_rows(
    nudges: list[dict[str, Any]],
    replies: list[dict[str, Any]],
    outcomes: dict[str, dict[str, Any]],
    horizon: dt.timedelta,
    control: dict[tuple[str, str], list[Unit]] | None = None,
) -> list[dict[str, Any]]:
    """One row per (playbook, rule): volumes by state, why held or suppressed, reply
    rate, conversion of nudged leads and — when the exploration control was logged —
    the IPS-weighted lift with its interval."""
    answered = first_replies(nudges, replies)
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for n in nudges:
        groups[(n["playbook"], n["rule"])].append(n)
    rows = []
    for (playbook, rule), items in sorted(groups.items()):
        states = Counter(n["state"] for n in items)
        why = Counter(
            f"{n['state']}: {n['reason']}"
            for n in items
            if n["state"] in ("held", "suppressed", "failed") and n.get("reason")
        )
        out = [n for n in items if n["state"] in WENT_OUT]
        leads = {n["lead_id"]: n for n in sorted(items, key=lambda n: n["created_at"])}
        won = sum(converted_within(n, outcomes, horizon) for n in leads.values())
        lift: Lift | None = ips_lift(control.get((playbook, rule), [])) if control else None
        newest = max(items, key=lambda n: n["created_at"])
        rows.append(
            {
                "playbook": playbook,
                "rule": rule,
                "nudges": len(items),
                "states": dict(states),
                "why": why.most_common(5),
                "exploration": sum(1 for n in items if n["exploration"]),
                "went_out": len(out),
                "answered": sum(1 for n in out if n["nudge_id"] in answered),
                "reply_rate": (
                    sum(1 for n in out if n["nudge_id"] in answered) / len(out) if out else None
                ),
                "leads": len(leads),
                "converted": won,
                "conversion": won / len(leads) if leads else None,
                "conversion_ci": wilson(won, len(leads)),
                "lift": lift,
                "text": newest["text"],
            }
        )
    return rows


def control_units(
    decisions: list[dict[str, Any]],
    outcomes: dict[str, dict[str, Any]],
    horizon: dt.timedelta,
) -> dict[tuple[str, str], list[Unit]]:
    """(playbook, rule) → the exploration decisions as :class:`Unit` s.

    Each decision is ``{"playbook", "rule", "lead_id", "at" (ISO), "treated",
    "propensity"}``, where ``propensity`` is the probability of being nudged it had: the
    exploration share for a lead whose conditions failed. The outcome is whether the lead
    converted within the horizon after the decision."""
    out: dict[tuple[str, str], list[Unit]] = defaultdict(list)
    for d in decisions:
        won = converted_within({"lead_id": d["lead_id"], "created_at": d["at"]}, outcomes, horizon)
        out[(d["playbook"], d["rule"])].append(
            Unit(bool(d["treated"]), float(d["propensity"]), 1.0 if won else 0.0)
        )
    return dict(out)


def rep_rows(
    reps: list[dict[str, Any]],
    nudges: list[dict[str, Any]],
    replies: list[dict[str, Any]],
    sessions: list[dict[str, Any]],
    first_answers: dict[str, str],
    suppressed_phones: set[str],
    outcomes: dict[str, dict[str, Any]],
    horizon: dt.timedelta,
) -> list[dict[str, Any]]:
    """One row per rep: nudges received, response rate and median time to respond,
    questionnaire completion, opt-out, conversion of the leads they were nudged about."""
    answered = first_replies(nudges, replies)
    rows = []
    for rep in reps:
        rid = rep["rep_id"]
        mine = [n for n in nudges if n["rep_id"] == rid]
        out = [n for n in mine if n["state"] in WENT_OUT]
        delays = [answered[n["nudge_id"]] for n in out if n["nudge_id"] in answered]
        asked = [s for s in sessions if s["rep_id"] == rid]
        completed = sum(1 for s in asked if s["status"] == "completed")
        leads = {n["lead_id"]: n for n in sorted(mine, key=lambda n: n["created_at"])}
        won = sum(converted_within(n, outcomes, horizon) for n in leads.values())
        waits = [
            _t(first_answers[s["session_id"]]) - _t(s["requested_at"])  # type: ignore[operator]
            for s in asked
            if s["session_id"] in first_answers
        ]
        rows.append(
            {
                "rep_id": rid,
                "name": rep["name"],
                "team": rep.get("team"),
                "nudges": len(mine),
                "went_out": len(out),
                "suppressed": sum(1 for n in mine if n["state"] == "suppressed"),
                "answered": len(delays),
                "response_rate": len(delays) / len(out) if out else None,
                "median_response_min": (m / 60 if (m := median(delays)) is not None else None),
                "questionnaires": len(asked),
                "completed": completed,
                "completion": completed / len(asked) if asked else None,
                "median_answer_min": (m / 60 if (m := median(waits)) is not None else None),
                "opted_out": bool(rep.get("sms_opted_out"))
                or (rep.get("phone") or "") in suppressed_phones,
                "nudged_leads": len(leads),
                "converted": won,
                "conversion": won / len(leads) if leads else None,
            }
        )
    return rows
