"""Phone numbers in one form: E.164, via Google's libphonenumber port.

Why a library, not a regex: what is a valid number depends on the country's
numbering plan, which changes; ``phonenumbers`` tracks it. Numbers without a
``+`` are read as ``DEFAULT_REGION`` numbers.
"""

from __future__ import annotations

import phonenumbers

DEFAULT_REGION = "US"


def to_e164(raw: str | None, region: str = DEFAULT_REGION) -> str | None:
    """``"(415) 555-0123"`` → ``"+14155550123"``; None when it is not a valid number."""
    if not raw:
        return None
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
