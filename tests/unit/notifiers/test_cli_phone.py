"""``nudge phone``: texts shown from the outbox, typed replies through the signed SMS webhook."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import AsyncIterator
from pathlib import Path

from cli import build_parser
from cli.phone import run_phone
from crm.outbox import Outbox
from crm.store import Store
from delivery import deliver
from notifiers import ConsoleNotifier
from nudge.settings import Settings
from nudge.signals import NudgeCommand
from tests.fakes.fixtures import add_rep
from tests.unit.notifiers.webhooks_server import serve_webhooks

NOON_NY = dt.datetime(2026, 3, 2, 17, 0, tzinfo=dt.UTC)


async def typed(*lines: str) -> AsyncIterator[str]:
    for line in lines:
        yield line


async def test_phone_shows_texts_and_replies_travel_the_sms_webhook(
    store: Store, tmp_path: Path
) -> None:
    """The phone prints the rep's nudge, HELP gets the help text, STOP opts the rep out."""
    settings = Settings(data_dir=tmp_path, twilio_auth_token=None, public_url=None)
    assert settings.database == store.path
    await add_rep(store)
    cmd = NudgeCommand(
        nudge_id="n_1",
        rep_id="rep-1",
        lead_id="L1",
        text="Acme jumped to 86%",
        playbook="p",
        rule="r",
        trigger_event_id="e",
        created_at=NOON_NY,
    )
    await deliver(cmd, store, {"console": ConsoleNotifier(io.StringIO())}, NOON_NY)
    out = io.StringIO()
    async with serve_webhooks(store, settings) as (server, replies):
        await run_phone(
            settings,
            "rep-1",
            typed("HELP", "1", "STOP"),
            out,
            url=str(server.make_url("")),
            poll=0.01,
        )
    shown = out.getvalue()
    assert "← Acme jumped to 86%" in shown and "Reply STOP to stop texts" in shown
    assert [r.kind for r in replies] == ["help", "message", "opt_out"]
    assert await Outbox(store).sms_opted_out("+14155550101", "rep-1")


def test_phone_command_is_registered() -> None:
    """`nudge phone --rep ID` parses."""
    args = build_parser().parse_args(["phone", "--rep", "rep-1"])
    assert args.rep == "rep-1" and callable(args.func)
