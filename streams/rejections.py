"""One path for every rejected event, from HTTP or from Kafka: counted, logged once, kept.

Each rejection increments ``nudge_events_rejected_total{source, reason}`` (source
``http`` or ``kafka``; reason the class from :attr:`EventRejected.kind`), is logged
once at warning level (PII masked by the log pipeline), and is produced to
``events.dead`` with its reason and the payload exactly as received, which is what
``nudge dead list`` shows and ``nudge dead replay`` retries.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from nudge.errors import EventRejected
from nudge.logs import get_logger
from streams.pipeline import Pipeline

log = get_logger(__name__)

MAX_DEAD_RAW = 256 * 1024
"""Largest payload kept in a dead letter; longer ones are cut (and marked so)."""


def dead_letter(reason: str, raw: bytes | None, *, kind: str = "schema", **origin: Any) -> bytes:
    """The ``events.dead`` record: why, where from, and the payload exactly as received."""
    record: dict[str, Any] = {"reason": reason, "kind": kind, **origin}
    if raw is not None:
        if len(raw) > MAX_DEAD_RAW:
            record["raw_truncated_from"] = len(raw)
            raw = raw[:MAX_DEAD_RAW]
        try:
            record["raw"] = raw.decode()
        except UnicodeDecodeError:
            record["raw_base64"] = base64.b64encode(raw).decode()
    return json.dumps(record).encode()


async def reject(
    p: Pipeline, exc: EventRejected, raw: bytes | None, *, source: str, **origin: Any
) -> None:
    """Count, log and dead-letter one rejected event (``origin``: topic/offset or line)."""
    p.stats["events.rejected"] += 1
    p.stats[f"events.rejected.{source}"] += 1
    p.metrics.rejected.labels(source, exc.kind).inc()
    log.warning(
        "event rejected",
        source=source,
        kind=exc.kind,
        reason=exc.reason,
        event_id=exc.event_id,
        **origin,
    )
    key = str(origin.get("topic") or source).encode()
    await p.dead.send(
        force=True,
        key=key,
        value=dead_letter(exc.reason, raw, kind=exc.kind, source=source, **origin),
    )
