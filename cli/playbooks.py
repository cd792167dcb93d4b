"""``nudge playbooks check`` and ``nudge playbooks simulate``.

``check`` validates playbook files and prints every problem as
``file:line:column: field: message — did you mean …?`` (or JSON for editors and
CI with ``--format json``); exit 1 when any file is refused. ``simulate`` replays
NDJSON events through the real lead state, points scorer and evaluator — sending
nothing — and prints, in time order, what would have gone to whom and why, then
counts per rule and per rep. Both are thin: the work is in ``playbooks``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from nudge.errors import ConfigError, EventRejected, PlaybookError
from nudge.events import LeadEvent, RepUpserted, parse_event
from nudge.signals import AskQuestionnaire, NudgeCommand, NudgeTeam, UpdateCrmField
from playbooks import messages as msg
from playbooks.loader import check_paths, load_playbooks
from playbooks.reference import render_reference
from playbooks.simulate import Outcome, Report, simulate
from playbooks.types import parse_duration


def register(sub: Any) -> None:
    group = sub.add_parser("playbooks", help="check playbooks and simulate them on past events")
    pb = group.add_subparsers(dest="playbooks_command", metavar="SUBCOMMAND", required=True)
    check = pb.add_parser("check", help="validate playbook files (exit 1 if any is refused)")
    check.add_argument(
        "paths", nargs="*", type=Path, help="files or directories (default: the built-in playbooks)"
    )
    check.add_argument("--format", choices=("text", "json"), default="text")
    check.add_argument("--strict", action="store_true", help="treat warnings as errors")
    check.set_defaults(func=_check)
    sim = pb.add_parser(
        "simulate", help="replay NDJSON events through the playbooks; sends nothing"
    )
    sim.add_argument("--events", required=True, help="NDJSON file, or - for standard input")
    sim.add_argument("--playbooks", nargs="*", type=Path, default=None, help="files or directories")
    sim.add_argument(
        "--horizon",
        default="1d",
        help="also run schedules due this long after the last event (default 1d)",
    )
    sim.add_argument("--format", choices=("text", "json"), default="text")
    sim.set_defaults(func=_simulate)
    ref = pb.add_parser("reference", help="print the playbook language reference (Markdown)")
    ref.set_defaults(func=_reference)


def _reference(args: argparse.Namespace) -> int:
    print(render_reference(), end="")
    return 0


def _check(args: argparse.Namespace) -> int:
    results = check_paths(args.paths or None)
    failed = any(r.playbook is None for r in results) or (
        args.strict and any(r.problems for r in results)
    )
    if args.format == "json":
        doc = {
            "ok": not failed,
            "files": [
                {
                    "file": r.file,
                    "playbook": r.playbook.name if r.playbook else None,
                    "accepted": r.playbook is not None,
                    "problems": [p.as_dict() for p in r.problems],
                }
                for r in results
            ],
        }
        print(json.dumps(doc, indent=2))
        return 1 if failed else 0
    for r in results:
        for problem in r.problems:
            print(problem, file=sys.stderr if problem.severity == "error" else sys.stdout)
        state = (
            f"ok ({r.playbook.name} v{r.playbook.version}, {len(r.playbook.rules)} rules)"
            if r.playbook
            else "REFUSED"
        )
        print(f"{r.file}: {state}")
    if not results:
        print(msg.NO_PLAYBOOKS, file=sys.stderr)
        return 1
    return 1 if failed else 0


def _read_events(path: str) -> tuple[list[LeadEvent | RepUpserted], list[str]]:
    try:
        stream = sys.stdin if path == "-" else open(path, encoding="utf-8")  # noqa: SIM115
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None
    good: list[LeadEvent | RepUpserted] = []
    bad: list[str] = []
    with stream:
        try:
            for number, line in enumerate(stream, 1):
                if line.strip():
                    try:
                        good.append(parse_event(line.strip()))
                    except EventRejected as exc:
                        bad.append(f"line {number}: {exc.reason}")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}: not UTF-8 text ({exc.reason})") from None
    return good, bad


def _simulate(args: argparse.Namespace) -> int:
    try:
        horizon = parse_duration(args.horizon)
    except ValueError as exc:
        raise ConfigError(f"--horizon: {exc}") from None
    try:
        playbooks = load_playbooks(args.playbooks or None)
    except PlaybookError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    events, bad = _read_events(args.events)
    for problem in bad:
        print(f"{args.events}: {problem} (skipped)", file=sys.stderr)
    report = simulate(events, playbooks, horizon=horizon)
    if args.format == "json":
        print(json.dumps(_as_json(report), indent=2, default=str))
    else:
        print_report(report)
    return 0


def describe(outcome: Outcome) -> str:
    """One outcome as two lines: when, what, to whom, which rule, why; then the text."""
    cmd = outcome.command
    when = outcome.at.strftime("%Y-%m-%d %H:%M UTC")
    flags = ""
    if isinstance(cmd, NudgeCommand):
        what = f"{cmd.channel.upper()} → {cmd.rep_id}"
        flags = f" [exploration p={cmd.propensity:.2f}]" if cmd.exploration else ""
    elif isinstance(cmd, NudgeTeam):
        what = f"{cmd.channel.upper()} → team {cmd.team}"
    elif isinstance(cmd, AskQuestionnaire):
        what = f"ASK {cmd.questionnaire} → {cmd.rep_id}"
    elif isinstance(cmd, UpdateCrmField):
        what = f"CRM {cmd.field} = {cmd.value!r}"
    else:
        what = cmd.kind
    why = ", ".join(f"{k}={v}" for k, v in outcome.why.items())
    head = f"{when}  {what}  lead {getattr(cmd, 'lead_id', '?')}  {outcome.playbook}/{outcome.rule}{flags}"
    text = getattr(cmd, "text", None)
    lines = (
        [head, f"    trigger: {outcome.trigger}"]
        + ([f"    why: {why}"] if why else [])
        + ([f"    “{text}”"] if text else [])
    )
    return "\n".join(lines)


def print_report(report: Report) -> None:
    for outcome in report.outcomes:
        print(describe(outcome))
    print()
    print(
        f"{report.events} events replayed, {report.unresolved} unresolved, {report.duplicates} duplicates"
    )
    print(f"{len(report.outcomes)} commands would have been issued")
    print("per rule:")
    for rule, n in report.per_rule().most_common():
        print(f"  {n:5d}  {rule}")
    print("per rep:")
    for rep, n in report.per_rep().most_common():
        print(f"  {n:5d}  {rep}")


def _as_json(report: Report) -> dict[str, Any]:
    return {
        "events": report.events,
        "unresolved": report.unresolved,
        "duplicates": report.duplicates,
        "outcomes": [o.to_dict() for o in report.outcomes],
        "per_rule": dict(report.per_rule()),
        "per_rep": dict(report.per_rep()),
    }
