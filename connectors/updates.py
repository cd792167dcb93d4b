"""What ``crm.updates`` carries, read into one shape for every CRM connector.

The topic holds several message shapes, written by different parts of the
worker; each gets a deterministic update id, so a redelivered message is
recognised (``crm_writes`` keeps one row per id):

    {"kind": "update_crm", "command_id", "lead_id", "field", "value", ...}
        a playbook set a field                       → field, id ``cmd:<command_id>``
    {"lead_id", "field", "old_value", "new_value", "session_id", "question_id", ...}
        a rep's answer changed a field               → field, id ``answer:<session>:<question>:<field>``
    {"kind": "activity", "lead_id", "activity": {<call.ended / meeting.ended event>}}
        a call or meeting was logged                 → call / meeting, id ``activity:<event_id>``
    {"kind": "note", "note_id", "lead_id", "text"}  → note, id ``note:<note_id>``
    {"kind": "nudge_reply", ...}                     → nothing (the call it logs comes as an activity)

Anything else is recorded as ``ignored`` with the reason, never dropped silently.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Update:
    update_id: str
    lead_id: str
    kind: str
    """field | call | meeting | note | ignored"""
    field: str | None = None
    value: Any = None
    detail: dict[str, Any] = dataclasses.field(default_factory=dict)
    reason: str | None = None

    @classmethod
    def stored(cls, row: dict[str, Any]) -> Update:
        """The update a due ``crm_writes`` row holds (its id, lead and kind; the rest in
        ``payload``)."""
        payload = row["payload"]
        return cls(
            row["update_id"],
            row["lead_id"],
            row["kind"],
            payload.get("field"),
            payload.get("value"),
            payload.get("detail") or {},
            payload.get("reason"),
        )


def read_update(raw: bytes) -> Update:
    """One ``crm.updates`` message as an :class:`Update` (``ignored`` with a reason if unusable)."""
    digest = hashlib.sha256(raw).hexdigest()[:24]
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return Update(f"raw:{digest}", "-", "ignored", reason="not JSON")
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("lead_id"), str)
        or not data["lead_id"]
    ):
        return Update(f"raw:{digest}", "-", "ignored", reason="no lead_id")
    lead_id = data["lead_id"][:256]
    kind = data.get("kind")
    if kind == "update_crm" and isinstance(data.get("field"), str):
        return Update(
            f"cmd:{data.get('command_id') or digest}",
            lead_id,
            "field",
            data["field"],
            data.get("value"),
        )
    if kind is None and isinstance(data.get("field"), str) and "new_value" in data:
        if data.get("session_id") and data.get("question_id"):
            uid = f"answer:{data['session_id']}:{data['question_id']}:{data['field']}"
        else:
            uid = f"answer:{digest}"
        return Update(uid, lead_id, "field", data["field"], data["new_value"], detail=data)
    if kind == "activity" and isinstance(data.get("activity"), dict):
        activity = data["activity"]
        event_id = activity.get("event_id") or digest
        source = str(activity.get("source", ""))
        kinds = {"call.ended": "call", "meeting.ended": "meeting"}
        if activity.get("type") not in kinds:
            return Update(
                f"activity:{event_id}",
                lead_id,
                "ignored",
                reason=f"activity {activity.get('type')!r} is not written",
            )
        return Update(
            f"activity:{event_id}",
            lead_id,
            kinds[activity["type"]],
            detail={**activity, "source": source},
        )
    if kind == "note" and isinstance(data.get("text"), str):
        return Update(f"note:{data.get('note_id') or digest}", lead_id, "note", detail=data)
    if kind == "nudge_reply":
        return Update(
            f"raw:{digest}",
            lead_id,
            "ignored",
            reason="a reply's logged call arrives as an activity",
        )
    return Update(
        f"raw:{digest}", lead_id, "ignored", reason=f"unknown update kind {str(kind)[:40]!r}"
    )
