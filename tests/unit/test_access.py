"""Who may call the web server, and how much it reads: tokens, loopback, rate, gzip caps."""

from __future__ import annotations

import gzip

import pytest
from pydantic import SecretStr

from nudge.errors import ConfigError
from nudge.settings import Settings
from streams.access import RateLimiter, Tokens, allowed, check_bind, is_loopback
from streams.server import BodyTooLarge, connection_cap, gunzip

TOKENS = Tokens([SecretStr("old-token"), SecretStr("new-token")])


def test_any_configured_token_is_accepted_and_nothing_else() -> None:
    """Both tokens of a rotation work; other schemes, prefixes and empty values do not."""
    assert TOKENS.accepts("Bearer old-token") and TOKENS.accepts("bearer  new-token ")
    for header in (None, "", "Bearer", "Bearer old", "Bearer old-token2", "Basic old-token",
                   "old-token", "Bearer OLD-TOKEN"):  # fmt: skip
        assert not TOKENS.accepts(header), header


def test_auth_kinds() -> None:
    """open and signed routes pass to their handler; metrics is open to loopback peers;
    token routes need the token once one is configured."""
    none = Tokens([])
    assert allowed("open", TOKENS, None, "10.0.0.1")
    assert allowed("twilio", TOKENS, None, "10.0.0.1")
    assert allowed("metrics", TOKENS, None, "127.0.0.1")
    assert not allowed("metrics", TOKENS, None, "10.0.0.1")
    assert allowed("metrics", TOKENS, "Bearer new-token", "10.0.0.1")
    assert not allowed("token", TOKENS, None, "127.0.0.1")
    assert allowed("token", TOKENS, "Bearer old-token", "10.0.0.1")
    assert allowed("token", none, None, "127.0.0.1")


def test_tokens_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """NUDGE_API_TOKEN takes a comma-separated list, kept secret."""
    monkeypatch.setenv("NUDGE_API_TOKEN", " a-1 , b-2 ,")
    settings = Settings()
    assert [t.get_secret_value() for t in settings.api_token] == ["a-1", "b-2"]
    assert "a-1" not in repr(settings)


def test_loopback_and_bind_check() -> None:
    """Only loopback addresses may be bound without a token."""
    for host in ("127.0.0.1", "127.1.2.3", "::1", "localhost", "::ffff:127.0.0.1"):
        assert is_loopback(host), host
        check_bind(host, [])
    for host in ("0.0.0.0", "::", "10.1.2.3", "example.com", "", None):
        assert not is_loopback(host), host
    with pytest.raises(ConfigError, match="NUDGE_API_TOKEN"):
        check_bind("0.0.0.0", [])
    check_bind("0.0.0.0", [SecretStr("t")])


def test_rate_limiter_per_client() -> None:
    """A client gets its burst, then one request per 1/rate seconds; others are unaffected."""
    now = [0.0]
    limiter = RateLimiter(10, 20, clock=lambda: now[0])
    assert [limiter.take("a") for _ in range(20)] == [0.0] * 20
    assert limiter.take("a") == pytest.approx(0.1)
    assert limiter.take("b") == 0.0
    now[0] += 0.1
    assert limiter.take("a") == 0.0
    assert limiter.take("a") > 0


def test_gunzip_caps_the_decoded_size() -> None:
    """gzip bodies decode up to the limit (several members too); a bomb or garbage is refused."""
    assert gunzip(gzip.compress(b"abc") + gzip.compress(b"def"), 10) == b"abcdef"
    with pytest.raises(BodyTooLarge):
        gunzip(gzip.compress(b"x" * 10_000_000), 1_000_000)
    with pytest.raises(ValueError, match="truncated"):
        gunzip(gzip.compress(b"abc" * 100)[:-10], 1000)
    with pytest.raises(ValueError):
        gunzip(b"plain text", 1000)


def test_connection_cap_leaves_room_for_other_files() -> None:
    """The connection cap stays below the open-files limit."""
    assert connection_cap(1000, 20000) == 1000
    assert connection_cap(1000, 1024) == 1024 - 256


def test_events_send_splits_under_the_body_limit() -> None:
    """`nudge events send` posts bodies under the size limit, every line once, in order."""
    from cli.events import chunks

    lines = [f'{{"n": {i}, "pad": "{"x" * (i % 700)}"}}'.encode() for i in range(3000)]
    bodies = chunks(lines, 64 * 1024, max_lines=500)
    assert all(len(b) <= 64 * 1024 for b in bodies)
    assert b"\n".join(bodies).split(b"\n") == lines
    assert chunks([], 100) == []
