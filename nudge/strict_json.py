"""Strict JSON decoding: what RFC 8259 allows, and nothing Python's ``json`` lets through.

The standard library decoder accepts ``NaN``, ``Infinity`` and ``-Infinity``, turns
``1e999`` into ``inf``, keeps the last of duplicate keys, and returns strings with lone
UTF-16 surrogates (``"\\ud800"``) that no UTF-8 encoder can write back. Each of those
became a silent change to a lead's record (a custom field stored as ``null``, a value
that was not the one sent), so :func:`loads` refuses them all with a reason that names
what was wrong. Used for every event, whether it came over HTTP or from Kafka.
"""

from __future__ import annotations

import json
import math
from typing import Any


class StrictJSONError(ValueError):
    """The text is not strict JSON; ``str(exc)`` says why (and where, when known)."""


def _refuse_constant(name: str) -> Any:
    raise StrictJSONError(f"{name} is not a JSON number")


def _parse_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise StrictJSONError(f"number {text[:40]} is out of range for a 64-bit float")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise StrictJSONError(f"duplicate key {key[:80]!r}")
        result[key] = value
    return result


def _check_strings(value: Any) -> None:
    """Raise on a string holding a lone surrogate anywhere in ``value``."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise StrictJSONError(
                    f"string {item[:40].encode('utf-8', 'backslashreplace').decode()!r} "
                    "holds a lone UTF-16 surrogate"
                ) from None
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


_DECODER = json.JSONDecoder(
    object_pairs_hook=_unique_keys, parse_constant=_refuse_constant, parse_float=_parse_float
)


def loads(raw: bytes | str) -> Any:
    """Decode ``raw`` (UTF-8 bytes or text) or raise :class:`StrictJSONError`."""
    if isinstance(raw, bytes | bytearray):
        try:
            text = bytes(raw).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise StrictJSONError(f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
    else:
        text = raw
    if not text.strip():
        raise StrictJSONError("empty document")
    try:
        value, end = _DECODER.raw_decode(text, _skip_ws(text))
    except json.JSONDecodeError as exc:
        raise StrictJSONError(f"{exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    except RecursionError:
        raise StrictJSONError("nested too deeply") from None
    if text[end:].strip():
        raise StrictJSONError(f"extra data after the document at character {end}")
    # a lone surrogate can only be written as a \u escape (UTF-8 cannot encode one)
    if "\\u" in text or "\\U" in text:
        _check_strings(value)
    return value


def _skip_ws(text: str) -> int:
    return len(text) - len(text.lstrip(" \t\n\r"))
