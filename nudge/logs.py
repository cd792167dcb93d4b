"""structlog setup: JSON in production, pretty in a terminal, PII masked.

Masking runs over every value of every log line, so a phone number or email that
slips into an unexpected key is masked too. ``NUDGE_LOG_PII=true`` turns it off
for debugging on a developer machine.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
_PHONE = re.compile(
    # dates, times and IPv4 addresses look like digit runs too: matched first, kept as they are
    r"(?P<keep>\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2})?)?"
    r"|(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?![\w.]))"
    r"|(?<![\w+])\+?\d[\d ().-]{6,}\d(?!\w)"
)


def mask_pii(text: str) -> str:
    """``jane.doe@acme.com`` → ``j***@acme.com``; ``+14155550123`` → ``+*******0123``."""
    text = _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    return _PHONE.sub(_mask_phone, text)


def _mask_phone(m: re.Match[str]) -> str:
    s = m.group(0)
    if m.group("keep"):
        return s
    digits = sum(c.isdigit() for c in s)
    if digits < 7:
        return s
    keep = 4
    out, seen = [], 0
    for c in s:
        if c.isdigit():
            seen += 1
            out.append(c if seen > digits - keep else "*")
        else:
            out.append(c)
    return "".join(out)


def _mask_value(value: Any) -> Any:
    if isinstance(value, str):
        return mask_pii(value)
    if isinstance(value, dict):
        return {k: _mask_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask_value(v) for v in value]
    return value


def _pii_processor(
    _logger: Any, _name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key, value in list(event_dict.items()):
        if key not in ("timestamp", "level", "logger"):
            event_dict[key] = _mask_value(value)
    return event_dict


def configure_logging(
    *, fmt: str = "auto", level: str = "info", pii: bool = False, stream: Any = None
) -> None:
    """Configure structlog (and route stdlib logging, e.g. Faust's, through the same level)."""
    stream = stream or sys.stderr
    if fmt == "auto":
        fmt = "console" if stream.isatty() else "json"
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if not pii:
        processors.append(_pii_processor)
    if fmt == "json":
        processors += [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    else:
        processors.append(structlog.dev.ConsoleRenderer(colors=stream.isatty()))
    # Libraries log through stdlib logging; aiosqlite alone logs every statement at
    # DEBUG, which cost ~5 % of a busy worker's time even when nothing printed it.
    logging.getLogger().setLevel(logging.getLevelName(level.upper()))
    for noisy in ("aiosqlite", "aiokafka", "faust", "mode"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level.upper())))
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=True,
    )


def get_logger(name: str) -> Any:
    """A structlog logger bound to the module name."""
    return structlog.get_logger(module=name)
