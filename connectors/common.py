"""What every connector shares: the outcome of one inbound item, and HMAC helpers."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

from nudge.events import LeadEvent


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
