"""Who may see the cockpit, and which team's leads: tokens, a login form, sessions.

Two kinds of login, both tokens from the environment: ``NUDGE_API_TOKEN`` (every team:
sales ops, the head of sales) and ``NUDGE_COCKPIT_USERS``, one ``name:team:token`` entry
per manager (comma-separated), who sees only the leads, reps and nudges of that team
(``*`` as the team: every team). A :class:`Viewer` is who logged in.

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
from dataclasses import dataclass, field

from nudge.errors import ConfigError

COOKIE = "nudge_session"
SESSION_TTL_S = 12 * 3600
"""A login lasts a working day."""


@dataclass(frozen=True)
class Viewer:
    """Who logged in: a name, and the one team they may see (None: every team)."""

    name: str
    team: str | None
    token: str = field(repr=False)

    def sees(self, team: str | None) -> bool:
        """May this viewer see a lead or rep of ``team``?"""
        return self.team is None or team == self.team


def viewers(api_tokens: list[str], users: str | None) -> list[Viewer]:
    """Everyone who may log in: each ``NUDGE_API_TOKEN`` sees every team; each
    ``NUDGE_COCKPIT_USERS`` entry (``name:team:token``) sees its team. A malformed entry
    is a :class:`ConfigError` naming it by position (never by its token)."""
    out = [
        Viewer("admin" if i == 0 else f"admin-{i + 1}", None, t) for i, t in enumerate(api_tokens)
    ]
    names: set[str] = set()
    for n, entry in enumerate((users or "").split(","), start=1):
        if not entry.strip():
            continue
        name, _, rest = entry.strip().partition(":")
        team, _, token = rest.partition(":")
        where = f"NUDGE_COCKPIT_USERS entry {n}"
        if not name or not team or not token:
            raise ConfigError(f"{where}: expected name:team:token (team * for every team)")
        if len(token) < 16:
            raise ConfigError(f"{where} ({name}): the token is shorter than 16 characters")
        if name in names:
            raise ConfigError(f"{where}: the name {name!r} is given twice")
        names.add(name)
        out.append(Viewer(name, None if team == "*" else team, token))
    if len({v.token for v in out}) != len(out):
        raise ConfigError("NUDGE_COCKPIT_USERS: two logins share one token")
    return out


def _mac(token: str, message: str) -> str:
    return hmac.new(token.encode(), message.encode(), hashlib.sha256).hexdigest()


def viewer_of_token(given: str, people: list[Viewer]) -> Viewer | None:
    """Whose token ``given`` is; compares against every one, in constant time each."""
    match = None
    for v in people:
        if hmac.compare_digest(given.encode(), v.token.encode()):
            match = v
    return match if given else None


def viewer_of_session(value: str, people: list[Viewer], now: float) -> Viewer | None:
    """Who opened the unexpired session ``value`` (its mac is keyed by their token)."""
    expiry, _, rest = value.partition(".")
    nonce, _, mac = rest.partition(".")
    if not (expiry.isdigit() and nonce and mac) or int(expiry) < now:
        return None
    body = f"{expiry}.{nonce}"
    match = None
    for v in people:
        if hmac.compare_digest(mac.encode(), _mac(v.token, body).encode()):
            match = v
    return match


def new_session(token: str, now: float) -> str:
    """The cookie value for a login with ``token`` at ``now`` (epoch seconds)."""
    body = f"{int(now) + SESSION_TTL_S}.{secrets.token_urlsafe(12)}"
    return f"{body}.{_mac(token, body)}"


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
