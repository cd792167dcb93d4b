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
