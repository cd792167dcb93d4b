"""Login tokens, session cookies, redirects after login, and the server-made sparkline."""

from __future__ import annotations

from cockpit import auth
from cockpit.svg import sparkline
from nudge.errors import ConfigError

A = "alpha-token-0123456789"
B = "beta-token-0123456789"


def test_a_token_names_its_viewer_and_nothing_else_logs_in() -> None:
    """Rotation: both tokens work; an empty, wrong or prefix token does not."""
    people = auth.viewers([A, B], None)
    assert auth.viewer_of_token(A, people) == people[0]
    assert auth.viewer_of_token(B, people) == people[1]
    assert auth.viewer_of_token(A[:5], people) is None
    assert auth.viewer_of_token("", people) is None
    assert auth.viewer_of_token(A, []) is None


def test_cockpit_users_are_limited_to_their_team() -> None:
    """``name:team:token`` entries; ``*`` is every team; API tokens see every team."""
    people = auth.viewers([A], f"maria:east:{B}, vp:*:gamma-token-0123456789")
    maria = auth.viewer_of_token(B, people)
    assert maria is not None and maria.name == "maria" and maria.team == "east"
    assert maria.sees("east") and not maria.sees("west") and not maria.sees(None)
    vp = auth.viewer_of_token("gamma-token-0123456789", people)
    assert vp is not None and vp.team is None and vp.sees("west")
    assert B not in repr(maria)  # a token never shows in logs or errors


def test_malformed_cockpit_users_are_refused_by_position_never_by_token() -> None:
    for spec, words in (
        ("maria:east", "entry 1: expected name:team:token"),
        (f"maria:east:{A},bob::{B}", "entry 2: expected"),
        ("maria:east:short", "shorter than 16"),
        (f"maria:east:{A},maria:west:{B}", "given twice"),
        (f"maria:east:{A},bob:west:{A}", "share one token"),
    ):
        try:
            auth.viewers([], spec)
        except ConfigError as exc:
            assert words in str(exc), (spec, exc)
            assert A not in str(exc) and B not in str(exc)
        else:
            raise AssertionError(f"accepted {spec!r}")


def test_session_cookie_is_signed_expires_and_dies_with_its_token() -> None:
    """A session made with a token is valid until it expires, and only while that token
    is still configured; a tampered expiry is refused."""
    people = auth.viewers([A], None)
    rotated = auth.viewers([B, A], None)
    value = auth.new_session(A, now=1_000.0)
    assert auth.viewer_of_session(value, people, now=1_001.0) == people[0]
    assert auth.viewer_of_session(value, rotated, now=1_001.0) == rotated[1]
    assert auth.viewer_of_session(value, auth.viewers([B], None), now=1_001.0) is None
    late = 1_000.0 + auth.SESSION_TTL_S + 1
    assert auth.viewer_of_session(value, people, now=late) is None
    expiry, rest = value.split(".", 1)
    assert auth.viewer_of_session(f"{int(expiry) + 10}.{rest}", people, now=1_001.0) is None
    assert auth.viewer_of_session("garbage", people, now=1_001.0) is None


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
