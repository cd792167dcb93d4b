"""The ``nudge`` command.

Each command group lives in its own module ``cli/<group>.py`` exposing
``register(subparsers)``; this file only assembles them. Exit codes: 0 success,
1 the input had problems (bad events, bad playbooks), 2 usage or configuration
errors.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from nudge.errors import ConfigError, NudgeError
from nudge.files import private_umask

GROUPS = (
    "run",
    "events",
    "playbooks",
    "leads",
    "dead",
    "topics",
    "phone",
    "model",
    "connect",
    "ui",
)
"""Modules of this package that add subcommands, in help order."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nudge",
        description="Nudge: re-scores leads from CRM, call and web events and nudges reps.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in GROUPS:
        module = importlib.import_module(f"cli.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    private_umask()  # the record, models and tokens Nudge writes are its owner's only
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"nudge: {exc}", file=sys.stderr)
        return 2
    except NudgeError as exc:
        print(f"nudge: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
