"""The Twilio notifier, through the real twilio library, against the local fake API."""

from __future__ import annotations

import pytest

from notifiers import OutboundMessage, Recipient
from notifiers.twilio_sms import RebasedHttpClient, TwilioSmsNotifier
from nudge.errors import ConfigError, PermanentDeliveryError, TransientDeliveryError
from tests.fakes.twilio_server import FakeTwilio

PUBLIC = "https://nudge.example.com"


def notifier(fake: FakeTwilio, **kw: object) -> TwilioSmsNotifier:
    args: dict[str, object] = {
        "from_number": "+1 (500) 555-0006",
        "status_callback": f"{PUBLIC}/webhooks/twilio/status",
        "base_url": fake.url,
        "timeout": 0.5,
    }
    args.update(kw)
    return TwilioSmsNotifier(fake.account_sid, fake.auth_token, **args)  # type: ignore[arg-type]


def message(
    phone: str | None = "(415) 555-0101", text: str = "Acme jumped to 86%"
) -> OutboundMessage:
    return OutboundMessage(
        nudge_id="n_1", recipient=Recipient("rep-1", "Ann", phone=phone), text=text, lead_id="L1"
    )


async def test_sends_e164_with_status_callback(twilio_fake: FakeTwilio) -> None:
    """A send reaches Twilio authenticated, with E.164 numbers, the body and the callback URL."""
    n = notifier(twilio_fake)
    result = await n.send(message())
    await n.close()
    assert result.channel == "sms" and result.provider_id == twilio_fake.messages[0]["Sid"]
    sent = twilio_fake.messages[0]
    assert sent["To"] == "+14155550101" and sent["From"] == "+15005550006"
    assert sent["Body"] == "Acme jumped to 86%"
    assert sent["StatusCallback"] == f"{PUBLIC}/webhooks/twilio/status"


async def test_messaging_service_is_used_instead_of_a_number(twilio_fake: FakeTwilio) -> None:
    """With a Messaging Service SID the text goes from the service, not a number."""
    n = notifier(twilio_fake, from_number=None, messaging_service_sid="MG123")
    await n.send(message())
    await n.close()
    assert twilio_fake.messages[0]["MessagingServiceSid"] == "MG123"
    assert "From" not in twilio_fake.messages[0]


def test_a_sender_is_required() -> None:
    """Neither a from number nor a Messaging Service is a configuration error naming both."""
    with pytest.raises(ConfigError, match="TWILIO_FROM_NUMBER"):
        TwilioSmsNotifier("AC1", "tok")


async def test_429_is_transient_with_retry_after(twilio_fake: FakeTwilio) -> None:
    """Twilio's 429 / 20429 becomes a transient error carrying Retry-After."""
    twilio_fake.fail_next(429, 20429, retry_after=7)
    n = notifier(twilio_fake)
    with pytest.raises(TransientDeliveryError) as err:
        await n.send(message())
    await n.close()
    assert err.value.code == "20429" and err.value.retry_after == 7.0


@pytest.mark.parametrize("status", [500, 503])
async def test_5xx_is_transient(twilio_fake: FakeTwilio, status: int) -> None:
    """A Twilio-side 5xx is worth retrying."""
    twilio_fake.fail_next(status)
    n = notifier(twilio_fake)
    with pytest.raises(TransientDeliveryError):
        await n.send(message())
    await n.close()


async def test_timeout_is_transient(twilio_fake: FakeTwilio) -> None:
    """No answer within the timeout is a transient error, not a hang."""
    twilio_fake.hang_next(2.0)
    n = notifier(twilio_fake)
    with pytest.raises(TransientDeliveryError) as err:
        await n.send(message())
    await n.close()
    assert err.value.code == "timeout"


async def test_unreachable_is_transient() -> None:
    """A provider that refuses connections (an outage) is transient."""
    n = TwilioSmsNotifier(
        "AC1", "tok", from_number="+15005550006", base_url="http://127.0.0.1:9", timeout=0.5
    )
    with pytest.raises(TransientDeliveryError):
        await n.send(message())
    await n.close()


async def test_unsubscribed_recipient_is_permanent_21610(twilio_fake: FakeTwilio) -> None:
    """Sending to a number that texted STOP fails permanently with Twilio's code 21610."""
    twilio_fake.opted_out.add("+14155550101")
    n = notifier(twilio_fake)
    with pytest.raises(PermanentDeliveryError) as err:
        await n.send(message())
    await n.close()
    assert err.value.code == "21610"


async def test_invalid_number_is_permanent_21211(twilio_fake: FakeTwilio) -> None:
    """Twilio's 21211 (invalid To) is permanent and keeps the code."""
    twilio_fake.fail_next(400, 21211)
    n = notifier(twilio_fake)
    with pytest.raises(PermanentDeliveryError) as err:
        await n.send(message())
    await n.close()
    assert err.value.code == "21211"


async def test_unparseable_phone_never_reaches_twilio(twilio_fake: FakeTwilio) -> None:
    """A rep phone that is not a valid number is refused locally, without a request."""
    n = notifier(twilio_fake)
    with pytest.raises(PermanentDeliveryError):
        await n.send(message(phone="12"))
    await n.close()
    assert twilio_fake.requests == 0


async def test_wrong_token_is_refused_by_the_fake(twilio_fake: FakeTwilio) -> None:
    """The fake checks Basic auth like Twilio (401 / 20003), and nothing is sent."""
    n = TwilioSmsNotifier(
        twilio_fake.account_sid, "wrong", from_number="+15005550006", base_url=twilio_fake.url
    )
    with pytest.raises(TransientDeliveryError) as err:
        await n.send(message())
    await n.close()
    assert err.value.code == "20003" and twilio_fake.messages == []


def test_rebase_only_rewrites_twilio_hosts() -> None:
    """Only *.twilio.com URLs are sent to the override; anything else is left alone."""
    client = RebasedHttpClient.__new__(RebasedHttpClient)
    client.base_url = "http://127.0.0.1:8000/prefix"
    assert client.rebase("https://api.twilio.com/2010-04-01/X.json?a=1") == (
        "http://127.0.0.1:8000/prefix/2010-04-01/X.json?a=1"
    )
    assert client.rebase("https://example.com/x") == "https://example.com/x"
