"""Field paths: where ``lead.<name>``, ``lead.custom.<key>`` and ``deal.<name>`` live in a
lead's profile — one definition for the store's writer, the lead agent's state,
questionnaires and playbooks.
"""

from __future__ import annotations

from typing import Any


def profile_key(path: str) -> tuple[str, ...]:
    """Where a field path lives in the profile: ``("stage",)``, ``("custom", "x")``.

    ``lead.<name>`` and ``lead.custom.<name>`` as written. The lead's current deal:
    ``deal.stage``, ``deal.value`` and ``deal.status`` are the lead's ``stage``,
    ``deal_value`` and ``status``; ``deal.<name>`` for the other :data:`DEAL_FIELDS` and
    ``deal.custom.<key>`` live under the profile's ``deal``; any other ``deal.<key>`` is
    the deal's custom field ``<key>``.
    """
    scope, _, name = path.partition(".")
    if scope == "lead":
        return ("custom", name[len("custom.") :]) if name.startswith("custom.") else (name,)
    if name in DEAL_ON_LEAD:
        return (DEAL_ON_LEAD[name],)
    if name in DEAL_FIELDS:
        return (DEAL_KEY, name)
    return (DEAL_KEY, "custom", name.removeprefix("custom."))


DEAL_KEY = "deal"
"""The profile key that holds the lead's current deal."""
DEAL_ON_LEAD = {"stage": "stage", "value": "deal_value", "status": "status"}
"""``deal.<name>`` fields kept on the lead itself (one current deal per lead)."""
DEAL_KEYS = (DEAL_KEY, "stage", "deal_value", "status")
"""Profile keys whose change updates the lead's row in ``deals``."""
DEAL_FIELDS = ("deal_id", "name", "close_date", "next_step")
"""The other named fields of a deal (``nudge.signals.DealView``)."""


def set_path(profile: dict[str, Any], path: str, value: Any) -> Any:
    """Set field ``path`` in ``profile``; return the value it had (``None``: none)."""
    key = profile_key(path)
    holder = profile
    for part in key[:-1]:
        holder = holder.setdefault(part, {})
    old = holder.get(key[-1])
    holder[key[-1]] = value
    return old


def get_path(profile: dict[str, Any], path: str) -> Any:
    """The value of field ``path`` in ``profile`` (``None``: not set)."""
    node: Any = profile
    for part in profile_key(path):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


# --- which deal a change is about -------------------------------------------------------

CLOSED = ("won", "lost")
"""Statuses of a deal that is no longer the lead's open deal."""


def implicit_deal_id(lead_id: str) -> str:
    """The id the store gives a lead's deal before any event names one."""
    return f"{lead_id}:deal"


def is_deal_path(path: str) -> bool:
    """Is ``path`` a field of the lead's current deal (``deal.*``, or the lead's stage,
    value and status, which are its current deal's)?"""
    return profile_key(path)[0] in DEAL_KEYS


def deal_route(profile: dict[str, Any], changes: dict[str, Any], lead_id: str) -> str:
    """Which deal ``changes`` address, when they name one (``deal.deal_id``).

    ``current``: no id, the current deal's id, or the lead has no named deal yet (the id
    names it). ``switch``: another deal while the current one is closed (won or lost):
    the named deal becomes the lead's current, open deal (:func:`open_deal`). ``other``:
    another deal while the current one is open: the deal's fields go to that deal alone,
    and the lead's current deal, stage, value and status stay as they are.
    """
    named = changes.get("deal.deal_id")
    current = (profile.get(DEAL_KEY) or {}).get("deal_id")
    if named is None or named == current or current in (None, implicit_deal_id(lead_id)):
        return "current"
    return "switch" if profile.get("status") in CLOSED else "other"


def open_deal(profile: dict[str, Any], deal_id: str) -> None:
    """Make ``deal_id`` the lead's current deal: open, nothing else known about it yet."""
    profile[DEAL_KEY] = {"deal_id": deal_id}
    profile.pop("stage", None)
    profile.pop("deal_value", None)
    profile["status"] = "open"


def apply_changes(profile: dict[str, Any], changes: dict[str, Any], lead_id: str) -> None:
    """Apply ``changes`` (field path → value) to ``profile`` as the lead's state does, the
    deal they name routed by :func:`deal_route` (another open deal's fields are left to
    the store's ``deals``)."""
    route = deal_route(profile, changes, lead_id)
    if route == "switch":
        open_deal(profile, changes["deal.deal_id"])
    for path, value in changes.items():
        if route != "other" or not is_deal_path(path):
            set_path(profile, path, value)
