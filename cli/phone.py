"""``nudge phone --rep ID``: a terminal phone for one rep, for development and demos.

It shows every text the rep is sent (it follows the rep's rows in the outbox,
whatever channel delivered them — the console notifier in dev) and sends what
you type to the worker's ``/webhooks/twilio/sms`` exactly as Twilio would: a
form post with ``From``/``To``/``Body``/``MessageSid``, signed with the Twilio
auth token (in dev, the token the worker keeps in ``<data_dir>/dev_twilio_token``).
So a typed reply takes the same path as a real one: signature check, STOP/HELP
handling, the ``replies`` topic.

Run it next to ``nudge worker`` (same ``NUDGE_DATA_DIR`` and ``NUDGE_WEB_PORT``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import html
import re
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any, TextIO

import aiohttp

from crm.outbox import Outbox
from crm.store import Store
from notifiers.inbound import twilio_sign
from notifiers.phones import to_e164
from nudge.errors import ConfigError
from nudge.settings import Settings
from streams.webhooks import twilio_token

DEV_TO_NUMBER = "+15005550006"
"""The "Nudge" number in dev when TWILIO_FROM_NUMBER is unset (Twilio's magic test number)."""
SMS_PATH = "/webhooks/twilio/sms"


def register(sub: Any) -> None:
    phone = sub.add_parser("phone", help="a terminal phone for a rep: see their texts, reply")
    phone.add_argument("--rep", required=True, help="rep id (as in rep.upserted events)")
    phone.add_argument("--url", help="worker base URL (default http://127.0.0.1:<NUDGE_WEB_PORT>)")
    phone.add_argument("--history", type=int, default=5, help="earlier texts to show (default 5)")
    phone.set_defaults(func=_phone)


def _phone(args: argparse.Namespace) -> int:
    settings = Settings()

    async def stdin_lines() -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                return
            yield line.rstrip("\n")

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            run_phone(
                settings, args.rep, stdin_lines(), sys.stdout, url=args.url, history=args.history
            )
        )
    return 0


async def run_phone(
    settings: Settings,
    rep_id: str,
    lines: AsyncIterator[str],
    out: TextIO,
    *,
    url: str | None = None,
    history: int = 5,
    poll: float = 0.5,
) -> None:
    """Show the rep's texts as they arrive and send each input line as an inbound SMS."""
    store = await Store.open(settings.store_location)
    try:
        rep = await store.get_rep(rep_id)
        if rep is None:
            raise ConfigError(
                f"no rep {rep_id!r} in {settings.database}: send a rep.upserted event first "
                "(e.g. `nudge demo` loads sample reps), or check NUDGE_DATA_DIR"
            )
        phone = to_e164(rep["phone"])
        if phone is None:
            raise ConfigError(f"rep {rep_id!r} has no valid phone number ({rep['phone']!r})")
        base = (url or f"http://127.0.0.1:{settings.web_port}").rstrip("/")
        sign_url = (settings.public_url or base).rstrip("/") + SMS_PATH
        token = twilio_token(settings)
        to = to_e164(settings.twilio_from_number) or DEV_TO_NUMBER
        outbox = Outbox(store)
        earlier = await outbox.sent_to_rep(rep_id)
        seq = earlier[-1]["seq"] if earlier else 0
        out.write(f"📱 {rep['name']} ({phone}). Type a reply and press Enter; Ctrl-D to quit.\n")
        for row in earlier[-history:] if history else []:
            _show(out, row)
        out.flush()

        async def follow() -> None:
            nonlocal seq
            while True:
                for row in await outbox.sent_to_rep(rep_id, seq):
                    seq = row["seq"]
                    _show(out, row)
                out.flush()
                await asyncio.sleep(poll)

        follower = asyncio.create_task(follow())
        try:
            async with aiohttp.ClientSession() as session:
                async for line in lines:
                    if not line.strip():
                        continue
                    answer = await send_sms(
                        session, base + SMS_PATH, sign_url, token, phone, to, line
                    )
                    out.write(f"  → {line}\n")
                    if answer:
                        out.write(f"  ← {answer}\n")
                    out.flush()
            await asyncio.sleep(poll * 2)  # let the last texts show
        finally:
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follower
    finally:
        await store.close()


async def send_sms(
    session: aiohttp.ClientSession,
    post_url: str,
    sign_url: str,
    token: str,
    from_: str,
    to: str,
    body: str,
) -> str | None:
    """POST one inbound SMS as Twilio would; returns the TwiML message answered, if any."""
    params = {
        "MessageSid": "SM" + uuid.uuid4().hex,
        "AccountSid": "AC" + "0" * 32,
        "From": from_,
        "To": to,
        "Body": body,
        "NumMedia": "0",
    }
    headers = {"X-Twilio-Signature": twilio_sign(token, sign_url, params)}
    async with session.post(post_url, data=params, headers=headers) as response:
        text = await response.text()
        if response.status != 200:
            raise ConfigError(
                f"the worker answered {response.status} to {post_url}: {text.strip()} "
                "(is `nudge worker` running with the same NUDGE_DATA_DIR?)"
            )
    match = re.search(r"<Message>(.*?)</Message>", text, re.S)
    return html.unescape(match.group(1)) if match else None


def _show(out: TextIO, row: dict[str, Any]) -> None:
    out.write(f"  ← {row['text']}\n")
