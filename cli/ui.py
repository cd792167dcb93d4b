"""``nudge ui``: serve the manager's cockpit (:mod:`cockpit`) in a browser.

It runs beside the workers, reading the same database and model registry; it needs no
broker. It binds ``NUDGE_UI_HOST`` (loopback by default). Log in with a token from
``NUDGE_API_TOKEN``; with none set, a loopback cockpit makes a one-off token and prints
it (only to the terminal that started it), and any other address refuses to start.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import secrets
import sys
from typing import Any

from nudge.errors import ConfigError
from nudge.settings import Settings


def register(sub: Any) -> None:
    ui = sub.add_parser("ui", help="serve the manager's cockpit (leads, playbooks, reps, model)")
    ui.add_argument("--host", help="address to bind (default NUDGE_UI_HOST, 127.0.0.1)")
    ui.add_argument("--port", type=int, help="port (default NUDGE_UI_PORT, 6070)")
    ui.set_defaults(func=_ui)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _ui(args: argparse.Namespace) -> int:
    settings = Settings()
    host = args.host or settings.ui_host
    port = settings.ui_port if args.port is None else args.port
    tokens = settings.api_tokens
    users = settings.cockpit_users.get_secret_value() if settings.cockpit_users else None
    if not tokens and not users:
        if not is_loopback(host):
            raise ConfigError(
                f"the cockpit would serve lead data on {host}, which is not loopback: "
                "set NUDGE_API_TOKEN (a long random string) first"
            )
        tokens = [secrets.token_urlsafe(18)]
        print(
            f"NUDGE_API_TOKEN is not set; this session's login token: {tokens[0]}", file=sys.stderr
        )
    asyncio.run(_serve(settings, host, port, tokens, users))
    return 0


async def _serve(
    settings: Settings, host: str, port: int, tokens: list[str], users: str | None
) -> None:
    from aiohttp import web

    from cockpit.limits import Limits, serve
    from cockpit.server import build_app

    limits = Limits()
    worker_url = settings.ui_worker_url or f"http://{settings.web_host}:{settings.web_port}"
    app = build_app(
        settings.store_location,
        settings.data_dir,
        tokens,
        limits,
        worker_url,
        settings.playbooks,
        settings.products,
        users,
    )
    runner = web.AppRunner(
        app, keepalive_timeout=limits.keepalive_timeout, access_log=None, handle_signals=True
    )
    await runner.setup()
    server = await serve(runner, host, port, limits)
    bound = server.sockets[0].getsockname()
    print(f"cockpit on http://{bound[0]}:{bound[1]}/", file=sys.stderr, flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        server.close()
        await runner.cleanup()
