"""``nudge playbooks check`` and ``nudge playbooks simulate``.

``check`` validates playbook and questionnaire files (a questionnaire's ``ask`` must
name one that exists: bundled, ``NUDGE_QUESTIONNAIRES`` or checked beside it) and prints every problem as
``file:line:column: field: message — did you mean …?`` (or JSON for editors and
CI with ``--format json``); exit 1 when any file is refused. ``simulate`` replays
NDJSON events with the worker's own settings (playbooks, scorer, delivery policy)
— sending nothing — and prints, in time order, what would have gone to whom, whether
delivery would send, hold or suppress it, and why. ``explain`` prints the last
evaluations of a lead's rules, from a running worker or from replayed events. All
are thin: the work is in ``playbooks``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

from delivery.policy import Policy
from notifiers import build_notifiers
from nudge.errors import ConfigError, EventRejected, PlaybookError
from nudge.events import LeadEvent, RepUpserted, parse_event
from nudge.settings import Settings
from nudge.signals import AskQuestionnaire, NudgeCommand, NudgeTeam, UpdateCrmField
from playbooks import messages as msg
from playbooks.loader import load_playbooks
from playbooks.questionnaires import check_all
from playbooks.reference import render_reference
from playbooks.trace import Evaluation
from playbooks.types import parse_duration
from replay.simulate import Outcome, Report, simulate
from scoring.model_scorer import LiveScorer


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
    sim.add_argument(
        "--decisions",
        type=Path,
        help="also write every decision to nudge or not, with its propensity, as NDJSON "
        "(for `nudge model evaluate-policy`)",
    )
    sim.set_defaults(func=_simulate)
    exp = pb.add_parser(
        "explain",
        help="why a rule did or did not fire for a lead (a running worker's, or replayed --events)",
    )
    exp.add_argument("--lead", required=True, help="lead id")
    exp.add_argument("--rule", help="only this rule (id, or playbook/rule)")
    exp.add_argument("--events", help="replay this NDJSON file instead of asking the worker")
    exp.add_argument("--playbooks", nargs="*", type=Path, default=None, help="with --events")
    exp.add_argument("--horizon", default="1d", help="with --events (default 1d)")
    exp.add_argument("--last", type=int, default=10, help="how many evaluations (default 10)")
    exp.add_argument("--url", help="the worker's web address (default from NUDGE_WEB_HOST/PORT)")
    exp.add_argument("--format", choices=("text", "json"), default="text")
    exp.set_defaults(func=_explain)
    ref = pb.add_parser("reference", help="print the playbook language reference (Markdown)")
    ref.set_defaults(func=_reference)


def _reference(args: argparse.Namespace) -> int:
    print(render_reference(), end="")
    return 0


def _check(args: argparse.Namespace) -> int:
    results, questionnaires = check_all(args.paths or None, Settings().questionnaires)
    failed = (
        any(r.playbook is None for r in results)
        or any(q.questionnaire is None for q in questionnaires)
        or (args.strict and any(r.problems for r in results))
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
            "questionnaires": [
                {
                    "file": q.file,
                    "questionnaire": q.questionnaire.id if q.questionnaire else None,
                    "accepted": q.questionnaire is not None,
                    "problems": q.problems,
                }
                for q in questionnaires
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
    for q in questionnaires:
        for line in q.problems:
            print(line, file=sys.stderr)
        done = q.questionnaire
        print(f"{q.file}: " + (f"ok (questionnaire {done.id})" if done else "REFUSED"))
    if not results and not questionnaires:
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


def _replay(args: argparse.Namespace) -> Report | None:
    """Replay ``args.events`` as the worker would: its playbooks (``--playbooks`` or
    ``NUDGE_PLAYBOOKS``), its scorer (the promoted model, else the points scorer with
    ``NUDGE_SCORING_RULES``), its delivery policy and channels. ``None``: playbooks refused."""
    settings = Settings()
    try:
        horizon = parse_duration(args.horizon)
    except ValueError as exc:
        raise ConfigError(f"--horizon: {exc}") from None
    try:
        playbooks = load_playbooks(args.playbooks or settings.playbooks or None)
    except PlaybookError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return None
    events, bad = _read_events(args.events)
    for problem in bad:
        print(f"{args.events}: {problem} (skipped)", file=sys.stderr)
    return simulate(
        events,
        playbooks,
        scorer=LiveScorer.from_settings(settings),
        horizon=horizon,
        policy=Policy.from_settings(settings),
        channels=tuple(build_notifiers(settings)),
    )


def _simulate(args: argparse.Namespace) -> int:
    report = _replay(args)
    if report is None:
        return 1
    if args.decisions:
        with args.decisions.open("w", encoding="utf-8") as fh:
            for d in report.logged:
                fh.write(json.dumps(d.to_json()) + "\n")
        print(f"{len(report.logged):,} decisions written to {args.decisions}", file=sys.stderr)
    if args.format == "json":
        print(json.dumps(_as_json(report), indent=2, default=str))
    else:
        print_report(report)
    return 0


def _explain(args: argparse.Namespace) -> int:
    if args.events:
        report = _replay(args)
        if report is None:
            return 1
        found = [e.to_dict() for e in report.traces.last(args.lead, args.rule)]
    else:
        found = _ask_worker(args)
    found = found[-args.last :] if args.last > 0 else found
    if args.format == "json":
        print(json.dumps({"lead": args.lead, "rule": args.rule, "evaluations": found}, indent=2))
        return 0
    if not found:
        what = f"rule {args.rule}" if args.rule else "any rule"
        print(msg.NO_EVALUATION.format(what=what, lead=args.lead))
        return 0
    for data in found:
        print("\n".join(Evaluation.from_dict(data).lines()))
    return 0


def _ask_worker(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The evaluations a running worker kept for the lead (``GET /playbooks/explain``)."""
    settings = Settings()
    base = args.url or f"http://{settings.web_host}:{settings.web_port}"
    query = urllib.parse.urlencode(
        {"lead": args.lead, **({"rule": args.rule} if args.rule else {})}
    )
    request = urllib.request.Request(f"{base.rstrip('/')}/playbooks/explain?{query}")
    token = os.environ.get("NUDGE_API_TOKEN")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise ConfigError(f"{base}: the worker answered {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise ConfigError(
            f"{base}: no worker answered ({getattr(exc, 'reason', exc)}); "
            "start one, or replay events with --events FILE"
        ) from None
    return list(body.get("evaluations") or [])


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
    if outcome.delivery is not None:
        d = outcome.delivery
        until = f" until {d.not_before[:16].replace('T', ' ')} UTC" if d.not_before else ""
        head += f"  → {d.action.upper()}{until}" + (f" ({d.reason})" if d.reason else "")
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
    decisions = Counter(o.decision for o in report.outcomes if o.delivery is not None)
    if decisions:
        print(
            "nudges by delivery decision: "
            + ", ".join(f"{k} {v}" for k, v in sorted(decisions.items()))
        )
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
