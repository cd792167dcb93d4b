"""Hostile input at the front door: parsing never fails any other way than EventRejected."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from nudge.errors import EventRejected
from nudge.events import EVENT_TYPES, parse_event
from streams.views import split_body

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=20), children, max_size=6)
    ),
    max_leaves=30,
)

event_like = st.fixed_dictionaries(
    {"type": st.sampled_from(EVENT_TYPES) | st.text(max_size=20)},
    optional={
        "event_id": st.text(max_size=300) | st.integers(),
        "occurred_at": st.text(max_size=40) | st.datetimes().map(str),
        "source": st.text(max_size=20),
        "lead_id": st.text(max_size=20) | st.none(),
        "email": st.emails() | st.text(max_size=20),
        "path": st.text(max_size=50),
        "duration_s": st.floats() | st.integers(),
        "fields": json_values,
        "count": st.integers(),
    },
)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_are_rejected_cleanly(raw: bytes) -> None:
    """Arbitrary bytes either parse or raise EventRejected with a reason; nothing else."""
    try:
        parse_event(raw)
    except EventRejected as exc:
        assert exc.reason


@settings(max_examples=500, deadline=None)
@given(event_like)
def test_event_shaped_garbage_is_rejected_cleanly(data: dict[str, object]) -> None:
    """Plausible-looking events with wrong types and values never raise anything unexpected."""
    for raw in (data, json.dumps(data, default=str).encode()):
        try:
            parse_event(raw)  # type: ignore[arg-type]
        except EventRejected as exc:
            assert exc.reason


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000))
def test_http_bodies_split_or_reject(body: bytes) -> None:
    """Any POST /events body splits into items or is refused with EventRejected."""
    try:
        items = split_body(body)
    except EventRejected:
        return
    assert isinstance(items, list)
