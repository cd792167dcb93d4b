"""Login tokens, session cookies, redirects after login, and the server-made sparkline."""

from __future__ import annotations

from cockpit import auth
from cockpit.svg import sparkline


def test_token_ok_accepts_any_configured_token_and_nothing_else() -> None:
    """Rotation: both tokens work; an empty, wrong or prefix token does not."""
    tokens = ["alpha-123", "beta-456"]
    assert auth.token_ok("alpha-123", tokens) and auth.token_ok("beta-456", tokens)
    assert not auth.token_ok("alpha", tokens)
    assert not auth.token_ok("", tokens)
    assert not auth.token_ok("alpha-123", [])


def test_session_cookie_is_signed_expires_and_dies_with_its_token() -> None:
    """A session made with a token is valid until it expires, and only while that token
    is still configured; a tampered expiry is refused."""
    value = auth.new_session("alpha-123", now=1_000.0)
    assert auth.session_ok(value, ["alpha-123"], now=1_001.0)
    assert auth.session_ok(value, ["beta-456", "alpha-123"], now=1_001.0)
    assert not auth.session_ok(value, ["beta-456"], now=1_001.0)
    assert not auth.session_ok(value, ["alpha-123"], now=1_000.0 + auth.SESSION_TTL_S + 1)
    expiry, rest = value.split(".", 1)
    assert not auth.session_ok(f"{int(expiry) + 10}.{rest}", ["alpha-123"], now=1_001.0)
    assert not auth.session_ok("garbage", ["alpha-123"], now=1_001.0)


def test_bearer_and_safe_next() -> None:
    """Only a Bearer header yields a token; after login only local paths are followed."""
    assert auth.bearer("Bearer abc") == "abc" and auth.bearer("bearer  abc ") == "abc"
    assert auth.bearer("Basic abc") is None and auth.bearer(None) is None
    assert auth.safe_next("/leads/x?y=1") == "/leads/x?y=1"
    for bad in ("//evil.example/", "https://evil.example/", "\\\\evil", "", None, "/\\evil"):
        assert auth.safe_next(bad) == "/"


def test_login_throttle_blocks_after_the_limit_and_forgets_after_the_window() -> None:
    """Ten failures in a minute block that address only, until the minute has passed."""
    now = [0.0]
    throttle = auth.LoginThrottle(limit=10, window_s=60, clock=lambda: now[0])
    for _ in range(10):
        assert not throttle.blocked("1.2.3.4")
        throttle.failed("1.2.3.4")
    assert throttle.blocked("1.2.3.4") and not throttle.blocked("5.6.7.8")
    now[0] = 61.0
    assert not throttle.blocked("1.2.3.4")


def test_sparkline_draws_every_point_in_the_box() -> None:
    """One polyline with a point per score, inside the view box; nothing for no scores."""
    svg = sparkline([(0, 0.1), (1, 0.5), (2, 1.0)], width=100, height=20)
    coords = svg.split('points="')[1].split('"')[0].split()
    assert len(coords) == 3
    for pair in coords:
        x, y = map(float, pair.split(","))
        assert 0 <= x <= 100 and 0 <= y <= 20
    assert "now 100%" in svg
    assert sparkline([]) == ""
