"""Webhook bodies from the providers are read as strict JSON, like POST /events: NaN,
Infinity and duplicate keys are refused with the reason, never silently coerced."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from connectors import hubspot, segment, zoom
from nudge.errors import EventRejected

PARSERS: dict[str, Callable[[bytes], Any]] = {
    "hubspot": hubspot.notifications,
    "segment": segment.messages,
    "zoom": zoom.parse,
}
HOSTILE = {
    "NaN": (b'{"event": "meeting.ended", "n": NaN}', "NaN"),
    "Infinity": (b'{"event": "meeting.ended", "n": -Infinity}', "Infinity"),
    "1e999": (b'{"event": "meeting.ended", "n": 1e999}', "1e999"),
    "duplicate key": (b'{"event": "a", "event": "b"}', "duplicate"),
    "lone surrogate": (b'{"event": "\\ud800"}', "surrogate"),
}


@pytest.mark.parametrize("provider", sorted(PARSERS))
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_json_is_refused_with_the_reason(provider: str, case: str) -> None:
    body, reason = HOSTILE[case]
    if provider == "hubspot":
        body = b"[" + body + b"]"
    with pytest.raises(EventRejected) as refused:
        PARSERS[provider](body)
    assert reason.lower() in str(refused.value).lower()
