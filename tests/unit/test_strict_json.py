"""Issue 14, finding 6: no silent coercions — what is not strict JSON is refused with a reason."""

from __future__ import annotations

import pytest

from nudge.errors import EventRejected
from nudge.events import parse_event
from nudge.strict_json import StrictJSONError, loads

LEAD = (
    '{"event_id":"e-1","type":"lead.created","occurred_at":"2026-03-02T10:00:00Z",'
    '"source":"crm","lead_id":"L-1","email":"a@example.com",'
)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ('{"a": NaN}', "NaN is not a JSON number"),
        ('{"a": Infinity}', "Infinity is not a JSON number"),
        ('{"a": -Infinity}', "-Infinity is not a JSON number"),
        ('{"a": 1e999}', "out of range"),
        ('{"a": -1e999}', "out of range"),
        ('{"a": 1, "a": 2}', "duplicate key 'a'"),
        ('{"a": {"b": 1, "b": 1}}', "duplicate key 'b'"),
        ('{"a": "\\ud800"}', "lone UTF-16 surrogate"),
        ('{"a": ["x", "\\udfff"]}', "lone UTF-16 surrogate"),
        ('{"\\ud800": 1}', "lone UTF-16 surrogate"),
        ("", "empty document"),
        ("   \n", "empty document"),
        ('{"a": 1} {"b": 2}', "extra data"),
        ('{"a": 1', "line 1"),
    ],
)
def test_refused_with_reason(text: str, why: str) -> None:
    """Each non-strict document is refused, and the reason says what was wrong."""
    with pytest.raises(StrictJSONError, match=None) as info:
        loads(text)
    assert why in str(info.value)


def test_invalid_utf8_refused() -> None:
    """Bytes that are not UTF-8 are refused with the byte offset."""
    with pytest.raises(StrictJSONError, match="not UTF-8"):
        loads(b'{"a": "\xff"}')


def test_valid_documents_unchanged() -> None:
    """Strict JSON decodes as the standard library would, surrogate pairs included."""
    assert loads('{"a": [1, 2.5, -0.0, 1e308, "\\ud83d\\ude00", null, true]}') == {
        "a": [1, 2.5, -0.0, 1e308, "\U0001f600", None, True]
    }
    assert loads(b' [ {"b": {}} ] ') == [{"b": {}}]


@pytest.mark.parametrize(
    ("tail", "why"),
    [
        ('"custom":{"x":NaN}}', "NaN is not a JSON number"),
        ('"custom":{"x":1e999}}', "out of range"),
        ('"custom":{"x":1},"custom":{"x":2}}', "duplicate key 'custom'"),
        ('"company":"\\udc00"}', "lone UTF-16 surrogate"),
    ],
)
def test_event_with_coercible_values_rejected(tail: str, why: str) -> None:
    """An event whose JSON the stdlib would coerce (NaN → null, last key wins) is rejected."""
    with pytest.raises(EventRejected) as info:
        parse_event((LEAD + tail).encode())
    assert why in info.value.reason
    assert info.value.kind == "json"
