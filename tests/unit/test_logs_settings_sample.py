"""Logging masks PII; the README documents every setting; the bundled sample is current."""

from __future__ import annotations

import re
from pathlib import Path

from cli.sample import SAMPLE_FILE, generate, to_ndjson
from nudge.logs import mask_pii
from nudge.settings import Settings
from streams.views import split_body

ROOT = Path(__file__).resolve().parents[2]


def test_phone_and_email_are_masked_but_ids_are_not() -> None:
    """Phones keep their last 4 digits, emails their first letter; hex ids stay intact."""
    text = mask_pii("call +14155550123 or jane.doe@acme.com about n_668439ac8d282c7698a1c55f")
    assert "+*******0123" in text and "j***@acme.com" in text
    assert "n_668439ac8d282c7698a1c55f" in text
    assert "5550123" not in text and "jane.doe" not in text


def test_dates_times_and_ip_addresses_are_not_taken_for_phones() -> None:
    text = "cooldown until 2026-03-02 16:00, at 2026-03-02T16:00:05Z from 10.1.160.2:6066"
    assert mask_pii(text) == text
    assert mask_pii("on 2026-03-02 call (415) 555-0123") == "on 2026-03-02 call (***) ***-0123"
    assert mask_pii("call +14155550123 from 10.0.0.1") == "call +*******0123 from 10.0.0.1"


def test_readme_lists_every_setting() -> None:
    """Each Settings field appears in the README's settings table under its env var name."""
    readme = (ROOT / "README.md").read_text()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        names = list(alias.choices) if alias is not None else [f"NUDGE_{name.upper()}"]  # type: ignore[union-attr]
        assert any(re.search(rf"`{n}`", readme) for n in names), f"{names[0]} not in README"


def test_bundled_sample_matches_its_generator() -> None:
    """cli/sample_day.ndjson is exactly what the seeded generator produces."""
    assert SAMPLE_FILE.read_text() == to_ndjson(generate())


def test_split_body_accepts_object_array_and_ndjson() -> None:
    """POST /events bodies: one object, a JSON array, or NDJSON with line numbers."""
    assert split_body(b'{"a": 1}') == [(1, b'{"a": 1}')]
    assert split_body(b'[{"a": 1}, {"b": 2}]') == [(1, {"a": 1}), (2, {"b": 2})]
    assert [n for n, _ in split_body(b'{"a": 1}\n\n{"b": 2}\n')] == [1, 3]
