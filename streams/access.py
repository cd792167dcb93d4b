"""Who may call the worker's web server: bearer tokens, loopback, and a per-client rate.

Pure logic, no aiohttp: :mod:`streams.server` asks these questions for each request.

- A route's ``auth`` (see :mod:`streams.routes`) is one of ``open`` (health probes, the
  API document), ``token`` (ingest and every read API), ``metrics`` (open to a loopback
  peer, else the token), or a provider's signature (``twilio``, ``slack``), which the
  webhook handler checks itself since it needs the body (``twilio``, ``slack``,
  ``segment``, ``zoom``, ``hubspot``).
- Tokens come from ``NUDGE_API_TOKEN``, comma-separated so a new one can be added before
  the old one is removed. A presented token is compared with every configured one in
  constant time (``hmac.compare_digest`` on SHA-256 digests, so neither the length nor
  the position of a mismatch shows in the timing).
- With no token configured the worker only starts on a loopback address
  (:func:`check_bind`), and ``token`` routes are then open to local callers.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Literal

from pydantic import SecretStr

from nudge.errors import ConfigError

Auth = Literal["open", "token", "metrics", "twilio", "slack", "segment", "zoom", "hubspot"]

SIGNED: tuple[Auth, ...] = ("twilio", "slack", "segment", "zoom", "hubspot")
"""Auth kinds checked by the handler from the provider's signature."""


def is_loopback(host: str | None) -> bool:
    """True for 127.0.0.0/8, ::1 (also IPv4-mapped) and ``localhost``."""
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]").split("%")[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def check_bind(host: str, tokens: Sequence[SecretStr]) -> None:
    """Refuse to serve a non-loopback address without an API token."""
    if not is_loopback(host) and not tokens:
        raise ConfigError(
            f"NUDGE_WEB_HOST={host} is reachable from other machines, and without "
            "NUDGE_API_TOKEN anyone there could post events and read metrics: set "
            "NUDGE_API_TOKEN (e.g. `openssl rand -hex 32`), or bind 127.0.0.1"
        )


class Tokens:
    """The configured bearer tokens, kept only as digests."""

    def __init__(self, tokens: Sequence[SecretStr]) -> None:
        self._digests = [
            hashlib.sha256(t.get_secret_value().encode()).digest()
            for t in tokens
            if t.get_secret_value()
        ]

    @property
    def required(self) -> bool:
        return bool(self._digests)

    def accepts(self, authorization: str | None) -> bool:
        """True when the ``Authorization`` header carries one of the tokens."""
        if not authorization:
            return False
        scheme, _, presented = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            return False
        digest = hashlib.sha256(presented.strip().encode()).digest()
        ok = False
        for known in self._digests:  # every one compared: no early exit to time
            ok |= hmac.compare_digest(digest, known)
        return ok


def allowed(auth: Auth, tokens: Tokens, authorization: str | None, peer: str | None) -> bool:
    """Whether a request may reach a route with this ``auth`` (signatures are checked later)."""
    if auth == "open" or auth in SIGNED:
        return True
    if auth == "metrics" and is_loopback(peer):
        return True
    if not tokens.required:
        # only possible on a loopback bind (check_bind): local callers are trusted
        return True
    return tokens.accepts(authorization)


class RateLimiter:
    """A token bucket per client address: ``rate`` requests per second, bursts of ``burst``.

    Holds at most ``max_clients`` buckets; the least recently seen is forgotten first
    (a forgotten client starts again with a full bucket, which errs on letting it in).
    """

    def __init__(
        self,
        rate: float,
        burst: float,
        *,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.max_clients = max_clients
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, client: str) -> float:
        """0 when the request may go ahead, else seconds until it could."""
        now = self.clock()
        level, last = self._buckets.pop(client, (self.burst, now))
        level = min(self.burst, level + (now - last) * self.rate)
        wait = 0.0
        if level >= 1:
            level -= 1
        else:
            wait = (1 - level) / self.rate
        self._buckets[client] = (level, now)
        if len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        return wait
