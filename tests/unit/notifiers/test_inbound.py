"""Pure inbound rules: SMS keywords, Twilio signatures (fixed vectors), URLs behind a proxy."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json

import pytest

from notifiers.inbound import (
    keyword,
    public_url,
    slack_action_reply,
    slack_signature_ok,
    sms_reply,
    twilio_sign,
    twilio_signature_ok,
    twiml,
)
from tests.fakes.slack_server import sign as slack_sign

NOW = dt.datetime(2026, 3, 2, 17, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("STOP", "opt_out"),
        ("stop", "opt_out"),
        (" Unsubscribe. ", "opt_out"),
        ("STOPALL", "opt_out"),
        ("cancel", "opt_out"),
        ("END", "opt_out"),
        ("quit!", "opt_out"),
        ("START", "opt_in"),
        ("unstop", "opt_in"),
        ("yes", "opt_in"),
        ("HELP", "help"),
        ("info", "help"),
        ("please stop calling acme", "message"),
        ("1", "message"),
        ("", "message"),
    ],
)
def test_keywords(text: str, kind: str) -> None:
    """Only a whole-message keyword counts; a sentence containing 'stop' is a normal reply."""
    assert keyword(text) == kind


def test_twilio_signature_matches_the_documented_algorithm() -> None:
    """Our check accepts exactly HMAC-SHA1(token, url + sorted key/value pairs), base64."""
    token, url = "12345", "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+12349013030",
        "Digits": "1234",
        "From": "+12349013030",
        "To": "+18005551212",
    }
    data = url + "".join(k + params[k] for k in sorted(params))
    expected = base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest())
    assert twilio_sign(token, url, params) == expected.decode()
    assert twilio_signature_ok(token, url, params, expected.decode())
    assert not twilio_signature_ok(token, url, {**params, "Digits": "9"}, expected.decode())
    assert not twilio_signature_ok(token, url, params, None)
    assert not twilio_signature_ok("", url, params, expected.decode())


def test_public_url_prefers_setting_then_forwarded_headers() -> None:
    """NUDGE_PUBLIC_URL wins; without it X-Forwarded-Proto/Host rebuild what the provider called."""
    assert public_url(
        "/webhooks/twilio/sms?x=1",
        configured="https://n.example.com/",
        scheme="http",
        host="10.0.0.5:6066",
        headers={},
    ) == ("https://n.example.com/webhooks/twilio/sms?x=1")
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "n.example.com"}
    assert (
        public_url("/a", configured=None, scheme="http", host="10.0.0.5:6066", headers=headers)
        == "https://n.example.com/a"
    )
    assert (
        public_url("/a", configured=None, scheme="http", host="127.0.0.1:6066", headers={})
        == "http://127.0.0.1:6066/a"
    )


def test_slack_signature_window() -> None:
    """A correct Slack signature passes within 5 minutes and fails when older or tampered."""
    body, ts = b"payload=x", int(NOW.timestamp())
    good = {
        "X-Slack-Request-Timestamp": str(ts),
        "X-Slack-Signature": slack_sign("s3cret", body.decode(), ts),
    }
    assert slack_signature_ok("s3cret", body, good, NOW + dt.timedelta(minutes=4))
    assert not slack_signature_ok("s3cret", body, good, NOW + dt.timedelta(minutes=6))
    assert not slack_signature_ok("s3cret", b"payload=y", good, NOW)
    assert not slack_signature_ok("s3cret", body, {}, NOW)
    assert not slack_signature_ok("", body, good, NOW)


def test_sms_reply_normalises_sender() -> None:
    """The sender number is stored in E.164 and the MessageSid becomes the reply id."""
    r = sms_reply({"From": "+1 415 555 0101", "Body": "STOP", "MessageSid": "SM1"}, NOW, "rep-1")
    assert (r.sender, r.kind, r.reply_id, r.channel) == ("+14155550101", "opt_out", "SM1", "sms")


def test_yes_from_a_subscribed_number_is_a_message() -> None:
    """ "Yes" answers a yes/no question: only from an opted-out number is it an opt-in
    (STOP always opts out)."""
    yes = {"From": "+14155550101", "Body": "Yes", "MessageSid": "SM2"}
    assert sms_reply(yes, NOW, "rep-1", opted_out=False).kind == "message"
    assert sms_reply(yes, NOW, "rep-1", opted_out=True).kind == "opt_in"
    stop = {**yes, "Body": "stop"}
    assert sms_reply(stop, NOW, "rep-1", opted_out=False).kind == "opt_out"


def test_twiml_escapes() -> None:
    """Text in TwiML is XML-escaped."""
    assert "<Message>a &lt;b&gt; &amp; c</Message>" in twiml("a <b> & c")
    assert twiml().endswith("<Response/>")


def test_slack_choice_click() -> None:
    """A questionnaire-choice click carries the choice, nudge and lead ids from the button."""
    body = {"user": {"id": "U1"}, "container": {"message_ts": "1.1"}}
    action = {
        "action_id": "nudge_choice_1",
        "action_ts": "2.2",
        "value": json.dumps({"n": "n_1", "l": "L1", "c": "No"}),
    }
    r = slack_action_reply(body, action, NOW, "rep-1")
    assert (r.action, r.choice, r.text, r.nudge_id, r.lead_id) == (
        "choice",
        "No",
        "No",
        "n_1",
        "L1",
    )
