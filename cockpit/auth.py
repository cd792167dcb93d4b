"""Who may see the cockpit: the ``NUDGE_API_TOKEN`` scheme, with a login form.

A manager types a token once; the cockpit answers with a session cookie (HttpOnly,
SameSite=Strict, Secure behind HTTPS) that holds no secret: ``expiry.nonce.mac``, where
the mac is an HMAC-SHA256 of ``expiry.nonce`` keyed by the token that logged in. So the
server keeps no session table, a restart logs nobody out, and removing a token from
``NUDGE_API_TOKEN`` (rotation) ends every session it opened. Scripts may send the token
as ``Authorization: Bearer <token>`` instead. Every comparison is constant-time and
checks every configured token, so timing tells nothing about which matched.

Failed logins are throttled per client address (:class:`LoginThrottle`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import deque
from collections.abc import Callable

COOKIE = "nudge_session"
SESSION_TTL_S = 12 * 3600
"""A login lasts a working day."""


def _mac(token: str, message: str) -> str:
    return hmac.new(token.encode(), message.encode(), hashlib.sha256).hexdigest()


def token_ok(given: str, tokens: list[str]) -> bool:
    """Is ``given`` one of ``tokens``? Compares against all of them, in constant time each."""
    found = False
    for token in tokens:
        found |= hmac.compare_digest(given.encode(), token.encode())
    return found and bool(given)


def new_session(token: str, now: float) -> str:
    """The cookie value for a login with ``token`` at ``now`` (epoch seconds)."""
    body = f"{int(now) + SESSION_TTL_S}.{secrets.token_urlsafe(12)}"
    return f"{body}.{_mac(token, body)}"


def session_ok(value: str, tokens: list[str], now: float) -> bool:
    """Is ``value`` an unexpired session made with one of ``tokens``?"""
    expiry, _, rest = value.partition(".")
    nonce, _, mac = rest.partition(".")
    if not (expiry.isdigit() and nonce and mac) or int(expiry) < now:
        return False
    body = f"{expiry}.{nonce}"
    found = False
    for token in tokens:
        found |= hmac.compare_digest(mac.encode(), _mac(token, body).encode())
    return found


def bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer ...`` header, if that is what it is."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def safe_next(target: str | None) -> str:
    """Where to go after login: a path on this site only (never ``//host`` or a URL)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


class LoginThrottle:
    """At most ``limit`` failed logins per client address in a sliding ``window_s``."""

    def __init__(
        self, limit: int = 10, window_s: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, client: str) -> deque[float]:
        now = self.clock()
        q = self._failures.setdefault(client, deque())
        while q and q[0] < now - self.window_s:
            q.popleft()
        if not q:
            del self._failures[client]
            q = deque()
        return q

    def blocked(self, client: str) -> bool:
        return len(self._recent(client)) >= self.limit

    def failed(self, client: str) -> None:
        if len(self._failures) > 10_000:  # bounded: a flood of addresses cannot grow it
            self._failures.clear()
        self._failures.setdefault(client, deque()).append(self.clock())
