"""What every connector shares: the outcome of one inbound item, a webhook body's JSON,
a YAML map's root, and HMAC helpers."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from nudge import strict_json
from nudge.errors import ConfigError, EventRejected
from nudge.events import LeadEvent
from nudge.strict_json import StrictJSONError


@dataclass
class Outcome:
    """What one webhook body became: events to ingest, and the items skipped with why."""

    events: list[LeadEvent] = field(default_factory=list)
    skipped: list[dict[str, str | int | None]] = field(default_factory=list)

    def skip(self, index: int, reason: str, item_id: str | None = None) -> None:
        self.skipped.append({"index": index, "id": item_id, "reason": reason})

    def summary(self) -> dict[str, object]:
        return {
            "accepted": len(self.events),
            "skipped": len(self.skipped),
            "results": self.skipped,
        }


def hmac_hex(secret: str, message: bytes, digest: str = "sha256") -> str:
    return hmac.new(secret.encode(), message, getattr(hashlib, digest)).hexdigest()


def same(a: str | None, b: str) -> bool:
    """Constant-time comparison that treats a missing value as a mismatch."""
    return a is not None and hmac.compare_digest(a.encode(), b.encode())


def json_body(body: bytes, limit: int) -> Any:
    """The strict-JSON value of a webhook body of at most ``limit`` bytes; EventRejected if not."""
    if len(body) > limit:
        raise EventRejected(f"body is {len(body)} bytes; the limit is {limit}")
    try:
        return strict_json.loads(body)
    except StrictJSONError as exc:
        raise EventRejected(f"body is not strict JSON: {exc}") from None


def yaml_mapping(path: Path, what: str, key: str) -> yaml.MappingNode:
    """The root node of the YAML file ``what`` (e.g. "the field map"), which must be a mapping
    with a ``key:`` key; ConfigError naming the file otherwise."""
    try:
        root = yaml.compose(path.read_text(), Loader=yaml.SafeLoader)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(root, yaml.MappingNode):
        raise ConfigError(f"{path}:1: {what} must be a mapping with a `{key}:` key")
    return root
