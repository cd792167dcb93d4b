"""Delivery's pure decisions: channel choice, opt-out, quiet hours, daily limit, backoff."""

from __future__ import annotations

import datetime as dt

from delivery.policy import Rep, decide, retry_delay, window_opens
from nudge.signals import NudgeCommand

NY = "America/New_York"


def cmd(channel: str = "best") -> NudgeCommand:
    return NudgeCommand(
        nudge_id="n_1",
        rep_id="r1",
        lead_id="L1",
        channel=channel,  # type: ignore[arg-type]
        text="hi",
        playbook="p",
        rule="r",
        trigger_event_id="e",
        created_at=dt.datetime(2026, 3, 2, 15, tzinfo=dt.UTC),
    )


def rep(**kw: object) -> Rep:
    args: dict[str, object] = {
        "rep_id": "r1",
        "name": "Ann",
        "phone": "+14155550101",
        "timezone": NY,
    }
    args.update(kw)
    return Rep(**args)  # type: ignore[arg-type]


NOON_NY = dt.datetime(2026, 3, 2, 17, 0, tzinfo=dt.UTC)  # 12:00 in New York (EST)
ALL = {"sms", "slack", "console"}


def test_slack_preferred_when_the_rep_has_it() -> None:
    """With no preference, a rep with a Slack id gets Slack, else SMS."""
    assert (
        decide(
            cmd(), rep(slack_user_id="U1"), NOON_NY, sent_today=0, opted_out=False, available=ALL
        ).channel
        == "slack"
    )
    assert (
        decide(cmd(), rep(), NOON_NY, sent_today=0, opted_out=False, available=ALL).channel == "sms"
    )


def test_rep_preference_and_fallback() -> None:
    """A rep preferring SMS gets SMS; when SMS is not configured, Slack is the fallback."""
    r = rep(slack_user_id="U1", preferred_channel="sms")
    assert decide(cmd(), r, NOON_NY, sent_today=0, opted_out=False, available=ALL).channel == "sms"
    assert (
        decide(cmd(), r, NOON_NY, sent_today=0, opted_out=False, available={"slack"}).channel
        == "slack"
    )


def test_opted_out_rep_with_only_sms_is_suppressed() -> None:
    """STOP means no text at all: a rep reachable only by SMS is suppressed as opted out."""
    d = decide(cmd(), rep(), NOON_NY, sent_today=0, opted_out=True, available={"sms"})
    assert (d.action, d.reason) == ("suppress", "opted out")


def test_opted_out_rep_still_gets_slack() -> None:
    """SMS opt-out does not silence Slack."""
    d = decide(cmd(), rep(slack_user_id="U1"), NOON_NY, sent_today=0, opted_out=True, available=ALL)
    assert (d.action, d.channel) == ("send", "slack")


def test_no_channel() -> None:
    """A rep with no address on any configured channel is suppressed with 'no channel'."""
    d = decide(cmd(), rep(phone=None), NOON_NY, sent_today=0, opted_out=False, available={"sms"})
    assert (d.action, d.reason) == ("suppress", "no channel")


def test_unknown_rep() -> None:
    """A nudge for a rep the CRM does not know is suppressed, not sent somewhere."""
    assert decide(cmd(), None, NOON_NY, sent_today=0, opted_out=False, available=ALL).reason == (
        "unknown rep"
    )


def test_quiet_hours_hold_until_eight_local() -> None:
    """At 22:30 in New York a nudge is held until 08:00 New York time the next day."""
    late = dt.datetime(2026, 3, 3, 3, 30, tzinfo=dt.UTC)  # 22:30 EST on 2 March
    d = decide(cmd(), rep(), late, sent_today=0, opted_out=False, available=ALL)
    assert d.action == "hold" and d.reason == "quiet hours"
    assert d.not_before == dt.datetime(2026, 3, 3, 13, 0, tzinfo=dt.UTC)  # 08:00 EST


def test_early_morning_holds_until_same_day() -> None:
    """At 06:00 local the window opens at 08:00 the same day."""
    opens = window_opens(
        dt.datetime(2026, 7, 1, 10, 0, tzinfo=dt.UTC), rep().zone, dt.time(8), dt.time(21)
    )
    assert opens == dt.datetime(2026, 7, 1, 12, 0, tzinfo=dt.UTC)  # 08:00 EDT


def test_window_across_midnight() -> None:
    """A 20:00-02:00 window is open at 01:00 and closed at 03:00."""
    z = dt.UTC
    assert window_opens(dt.datetime(2026, 1, 1, 1, tzinfo=z), z, dt.time(20), dt.time(2)) is None
    assert window_opens(dt.datetime(2026, 1, 1, 3, tzinfo=z), z, dt.time(20), dt.time(2)) == (
        dt.datetime(2026, 1, 1, 20, tzinfo=z)
    )


def test_daily_limit() -> None:
    """The rep's daily limit suppresses further nudges that day."""
    d = decide(cmd(), rep(daily_limit=3), NOON_NY, sent_today=3, opted_out=False, available=ALL)
    assert (d.action, d.reason) == ("suppress", "daily limit")


def test_daily_limit_counts_nudges_not_questions_or_acknowledgements() -> None:
    """Reproduction 4 (limits): a rep at the daily nudge limit still gets the next
    questionnaire question and the acknowledgement of a reply; only nudges are held to it."""
    r = rep(daily_limit=3)
    for own in ("questionnaire", "reply"):
        question = cmd().model_copy(update={"playbook": own})
        d = decide(question, r, NOON_NY, sent_today=3, opted_out=False, available=ALL)
        assert d.action == "send", own


def test_retry_delay_grows_with_jitter_and_cap() -> None:
    """Backoff doubles per attempt, is jittered within [step/2, step], and is capped."""
    assert retry_delay(1, base=1, rand=lambda: 0.0) == 0.5
    assert retry_delay(4, base=1, rand=lambda: 1.0) == 8.0
    assert retry_delay(50, base=1, cap=60, rand=lambda: 1.0) == 60.0
    assert len({retry_delay(3) for _ in range(20)}) > 1


def test_console_stands_in_for_the_phone_and_respects_stop() -> None:
    """In dev the console is the rep's phone: it sends normally and not after STOP."""
    ok = decide(cmd(), rep(), NOON_NY, sent_today=0, opted_out=False, available={"console"})
    assert (ok.action, ok.channel) == ("send", "console")
    stopped = decide(cmd(), rep(), NOON_NY, sent_today=0, opted_out=True, available={"console"})
    assert (stopped.action, stopped.reason) == ("suppress", "opted out")


def test_unknown_timezone_counts_as_utc() -> None:
    """A rep with a misspelt zone is still served, with quiet hours in UTC."""
    late_utc = dt.datetime(2026, 3, 2, 22, 0, tzinfo=dt.UTC)
    d = decide(
        cmd(), rep(timezone="Mars/Olympus"), late_utc, sent_today=0, opted_out=False, available=ALL
    )
    assert d.action == "hold" and d.not_before == dt.datetime(2026, 3, 3, 8, tzinfo=dt.UTC)
