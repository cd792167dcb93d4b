"""``nudge model train | evaluate | list | promote | rollback | synth``.

Thin wiring over :mod:`scoring`: the registry lives in ``<NUDGE_DATA_DIR>/models`` and a
running worker picks up a promotion by itself (it checks the registry about once a
second), so none of these commands needs the broker. Machine-readable results go to
standard output as JSON; progress goes to standard error.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gzip
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from nudge.clock import utcnow
from nudge.errors import ConfigError, EventRejected, NudgeError
from nudge.events import LeadEvent, RepUpserted, event_to_json, parse_event
from nudge.settings import Settings
from nudge.signals import NudgeCommand


def register(sub: Any) -> None:
    model = sub.add_parser("model", help="train, evaluate, list, promote and roll back models")
    mp = model.add_subparsers(dest="model_command", metavar="SUBCOMMAND", required=True)

    tr = mp.add_parser("train", help="replay an event history and train a model")
    src = tr.add_mutually_exclusive_group(required=True)
    src.add_argument("--events", type=Path, help="NDJSON events to replay (.ndjson[.gz])")
    src.add_argument(
        "--from-store",
        action="store_true",
        help="the score snapshots and nudges the workers recorded in SQLite",
    )
    tr.add_argument("--nudges", type=Path, help="NDJSON nudge commands (for IPW weights)")
    tr.add_argument("--horizon-days", type=float, default=30, help="converted within (30)")
    tr.add_argument("--window-days", type=float, default=180, help="sliding window (180)")
    tr.add_argument("--promote", action="store_true", help="promote the new model at once")
    _target_args(tr)
    tr.add_argument(
        "--truth",
        type=Path,
        help="ground truth JSON from `synth --truth`: its AUC and Brier are printed beside",
    )
    tr.set_defaults(func=_train)

    ev = mp.add_parser("evaluate", help="train and evaluate on any labelled CSV")
    ev.add_argument("--csv", required=True, type=Path, help=".csv or .csv.gz file")
    ev.add_argument("--label", required=True, help="label column: 0/1, true/false, yes/no")
    ev.add_argument("--time-column", help="column giving time order (default: row order)")
    ev.add_argument("--drop", nargs="*", default=[], metavar="C", help="columns to ignore")
    ev.add_argument("--report", type=Path, help="report folder (default <data_dir>/reports/...)")
    ev.set_defaults(func=_evaluate)

    ls = mp.add_parser("list", help="registered models, the promoted one marked *")
    ls.add_argument("--json", action="store_true", help="print JSON")
    _target_args(ls)
    ls.set_defaults(func=_list)

    pr = mp.add_parser("promote", help="make VERSION the model workers use")
    pr.add_argument("version")
    _target_args(pr)
    pr.set_defaults(func=_promote)

    rb = mp.add_parser("rollback", help="go back to the previously promoted model")
    _target_args(rb)
    rb.set_defaults(func=_rollback)

    sy = mp.add_parser("synth", help="write synthetic events with a known conversion process")
    sy.add_argument("--leads", type=int, default=3000)
    sy.add_argument("--days", type=int, default=180)
    sy.add_argument("--seed", type=int, default=7)
    sy.add_argument("--out", default="-", help="file to write (default: standard output)")
    sy.add_argument("--truth", type=Path, help="also write the true probabilities (JSON) here")
    sy.add_argument(
        "--customers",
        type=int,
        default=0,
        help="instead: N customers with products, usage, churn and purchases",
    )
    sy.add_argument(
        "--catalogue", type=Path, help="with --customers: write their product catalogue YAML"
    )
    sy.set_defaults(func=_synth)

    fc = mp.add_parser(
        "forecast",
        help="expected won revenue by month from open deals, per rep and team, with a backtest",
    )
    fc.add_argument("--events", required=True, type=Path, help="NDJSON history (.ndjson[.gz])")
    fc.add_argument("--months", type=int, default=6, help="months to forecast (6: two quarters)")
    fc.add_argument("--json", action="store_true", help="print JSON instead of a table")
    fc.set_defaults(func=_forecast)

    ep = mp.add_parser(
        "evaluate-policy",
        help="a playbook's value off-policy (IPS, doubly robust) from logged decisions",
    )
    ep_src = ep.add_mutually_exclusive_group(required=True)
    ep_src.add_argument(
        "--decisions",
        type=Path,
        help="logged decisions, NDJSON (`nudge playbooks simulate --decisions`)",
    )
    ep_src.add_argument(
        "--from-store",
        action="store_true",
        help="the decisions the workers logged in the record",
    )
    ep.add_argument(
        "--events", required=True, type=Path, help="the history the outcomes are read from"
    )
    ep.add_argument(
        "--playbooks", required=True, nargs="+", type=Path, help="the candidate playbooks"
    )
    ep.add_argument("--horizon-days", type=float, default=30, help="converted within (30)")
    _target_args(ep)
    ep.set_defaults(func=_evaluate_policy)

    inv = mp.add_parser(
        "inventory", help="which data Nudge has, and how far ahead each silo predicts"
    )
    inv_src = inv.add_mutually_exclusive_group(required=True)
    inv_src.add_argument("--events", type=Path, help="NDJSON events (.ndjson[.gz])")
    inv_src.add_argument(
        "--from-store",
        action="store_true",
        help="the score snapshots the workers recorded (one per scored event)",
    )
    inv.add_argument("--step-days", type=float, default=7, help="days between cut-offs (7)")
    inv.add_argument(
        "--out", type=Path, help="JSON to write (default <data_dir>/reports/inventory.json)"
    )
    inv.set_defaults(func=_inventory)


def _target_args(parser: Any) -> None:
    parser.add_argument(
        "--target",
        default="conversion",
        help="conversion (default), churn or cross_sell:<product> from the product catalogue",
    )
    parser.add_argument(
        "--products", type=Path, help="product catalogue YAML (default NUDGE_PRODUCTS)"
    )


def _target(args: argparse.Namespace) -> Any:
    from scoring.targets import load_catalogue, target

    name = getattr(args, "target", "conversion")
    if name == "conversion":
        return target(name)
    return target(name, load_catalogue(getattr(args, "products", None) or Settings().products))


def _registry(args: argparse.Namespace | None = None) -> Any:
    from scoring.registry import Registry

    return Registry(Settings().data_dir, _target(args).name if args else "conversion")


def _open_text(path: Path) -> Any:
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")


def read_all_events(path: Path) -> Iterator[LeadEvent | RepUpserted]:
    """Every event from NDJSON, reps included; a bad line stops with its number and field."""
    with _open_text(path) as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield parse_event(line.strip())
            except EventRejected as exc:
                raise NudgeError(f"{path}: line {number}: {exc.reason}") from None


def read_events(path: Path) -> Iterator[LeadEvent]:
    """Lead events from NDJSON (reps left out); a bad line stops with its number and field."""
    return (e for e in read_all_events(path) if not isinstance(e, RepUpserted))


def read_nudges(path: Path) -> list[NudgeCommand]:
    out = []
    with _open_text(path) as fh:
        for number, line in enumerate(fh, 1):
            if line.strip():
                try:
                    out.append(NudgeCommand.model_validate_json(line))
                except ValueError as exc:
                    raise NudgeError(f"{path}: line {number}: {exc}") from None
    return out


async def _snapshots_from_store(horizon: dt.timedelta) -> Any:
    """Score snapshots and sent nudges (for their propensities) from the CRM store."""
    from crm.store import Store
    from nudge.settings import Settings
    from nudge.signals import NudgeCommand
    from scoring.train import snapshots_from_rows

    store = await Store.open(Settings().store_location)
    try:
        rows = await store.snapshots()
        nudges = [
            NudgeCommand.model_validate_json(r["command_json"])
            for r in await store.outbox()
            if r["playbook"] != "questionnaire"
        ]
    finally:
        await store.close()
    return snapshots_from_rows(rows, nudges, horizon=horizon)


def _train(args: argparse.Namespace) -> int:
    from nudge.settings import Settings
    from scoring.train import replay, train

    horizon = dt.timedelta(days=args.horizon_days)
    tgt = _target(args)
    if args.from_store and tgt.name != "conversion":
        raise ConfigError("--from-store trains conversion only; use --events for other targets")
    if args.from_store:
        snaps = asyncio.run(_snapshots_from_store(horizon))
        print(f"{len(snaps.t):,} snapshots from {Settings().database}", file=sys.stderr)
    else:
        print(f"reading {args.events} ...", file=sys.stderr)
        events = list(read_events(args.events))
        nudges = read_nudges(args.nudges) if args.nudges else []
        snaps = replay(
            events,
            nudges,
            horizon=horizon,
            progress=sys.stderr,
            target=None if tgt.name == "conversion" else tgt,
        )
        print(f"{len(events):,} events -> {len(snaps.t):,} snapshots", file=sys.stderr)
    truth = None
    if args.truth:
        from scoring.synthetic import truth_from_json
        from scoring.synthetic_customers import Customers

        with _open_text(args.truth) as fh:
            doc = json.load(fh)
        if doc.get("process") == "customers":
            world = Customers([], doc["churn"], doc["buy"])
            truth = world.truth(tgt.name, args.horizon_days)
        else:
            truth = truth_from_json(doc, args.horizon_days)
    try:
        result = train(
            snaps,
            horizon=horizon,
            window=dt.timedelta(days=args.window_days),
            now=utcnow(),
            progress=sys.stderr,
            truth=truth,
            target=tgt.name,
        )
    except ValueError as exc:
        raise NudgeError(
            f"{args.events or Settings().database}: not enough history for {tgt.name}: {exc}; "
            "no model was saved, and nothing is scored for this target"
        ) from None
    registry = _registry(args)
    info = registry.save(result.booster_json, result.meta, utcnow())
    summary: dict[str, Any] = {
        "target": tgt.name,
        "version": info.version,
        "path": str(info.path),
        "positives": info.positives,
        "labelled_share": result.meta["labelled_share"],
        "metrics": result.meta["metrics"],
        "promoted": False,
    }
    needed = Settings().min_conversions
    if info.positives < needed:
        summary["note"] = (
            f"trained on {info.positives} conversions; workers use a model only from "
            f"{needed} (NUDGE_MIN_CONVERSIONS) and keep the points scorer until then"
        )
    if args.promote:
        registry.promote(info.version, utcnow())
        _publish(registry)
        summary["promoted"] = True
    print(json.dumps(summary, indent=2))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from scoring.evaluate import evaluate

    report = args.report or Settings().data_dir / "reports" / (
        "evaluate-" + utcnow().strftime("%Y%m%dT%H%M%SZ")
    )
    result = evaluate(
        args.csv,
        args.label,
        time_column=args.time_column,
        drop=args.drop,
        report_dir=report,
    )
    print(json.dumps(result, indent=2, default=str))
    print(f"report: {result['report']}", file=sys.stderr)
    return 0


def _list(args: argparse.Namespace) -> int:
    registry = _registry(args)
    promoted = registry.promoted_version()
    models = registry.list()
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "version": m.version,
                        "promoted": m.version == promoted,
                        "trained_at": m.meta.get("trained_at"),
                        "positives": m.positives,
                        "metrics": m.meta.get("metrics"),
                        "window": m.meta.get("window"),
                    }
                    for m in models
                ],
                indent=2,
            )
        )
        return 0
    if not models:
        print(f"no models in {registry.root}")
    for m in models:
        auc = (m.meta.get("metrics") or {}).get("holdout", {}).get("roc_auc")
        mark = "*" if m.version == promoted else " "
        print(
            f"{mark} {m.version}  trained {m.meta.get('trained_at', '?')[:19]}  "
            f"conversions {m.positives}  holdout AUC {auc}"
        )
    return 0


def _publish(registry: Any) -> None:
    """With a shared PostgreSQL record, tell workers on every host (``streams.model_sync``)."""
    url = Settings().database_url
    if not url:
        return

    async def run() -> None:
        from crm.store import Store
        from streams.model_sync import publish

        store = await Store.open(url)
        try:
            await publish(store, registry, utcnow())
        finally:
            await store.close()

    asyncio.run(run())


def _promote(args: argparse.Namespace) -> int:
    registry = _registry(args)
    info = registry.promote(args.version, utcnow())
    _publish(registry)
    print(f"promoted {info.version}; running workers switch within a second or two")
    return 0


def _rollback(args: argparse.Namespace) -> int:
    registry = _registry(args)
    info = registry.rollback(utcnow())
    _publish(registry)
    if info is None:
        print("no earlier model: workers fall back to the points scorer")
    else:
        print(f"rolled back to {info.version}")
    return 0


def _evaluate_policy(args: argparse.Namespace) -> int:
    """IPS and DR value of the candidate playbooks on the logged decisions: the share of
    decisions followed by a conversion within the horizon, had the candidate decided."""
    from playbooks import load_playbooks
    from playbooks.decisions import Logged
    from replay.policy import evaluate_policy, rewards

    candidate = load_playbooks(args.playbooks)
    logged = []
    if args.from_store:
        logged = [Logged.from_row(row) for row in asyncio.run(_from_store("decisions"))]
        source = str(Settings().store_location)
    else:
        source = str(args.decisions)
        with _open_text(args.decisions) as fh:
            for number, line in enumerate(fh, 1):
                if line.strip():
                    try:
                        logged.append(Logged.from_json(json.loads(line)))
                    except (ValueError, KeyError) as exc:
                        raise NudgeError(f"{args.decisions}: line {number}: {exc}") from None
    if not logged:
        raise ConfigError(f"{source}: no logged decisions")
    tgt = _target(args)
    r = rewards(logged, read_events(args.events), dt.timedelta(days=args.horizon_days), tgt)
    result = evaluate_policy(logged, candidate, r, tgt.name)
    result["target"] = tgt.name
    print(
        f"{result['decisions']:,} decisions ({', '.join(result['rules'])}): logged value "
        f"{result['logged_value']:.3f}; candidate IPS {result['ips']:.3f} "
        f"{result['ips_95']}, DR {result['dr']:.3f} {result['dr_95']}; "
        f"{result['unsupported']} decisions the logged rules could not have made",
        file=sys.stderr,
    )
    print(json.dumps(result, indent=2))
    return 0


async def _from_store(table: str) -> list[dict[str, Any]]:
    """Every row of the record's ``snapshots`` or ``decisions``, oldest first."""
    from crm.store import Store

    store = await Store.open(Settings().store_location)
    try:
        rows: list[dict[str, Any]] = await getattr(store, table)()
        return rows
    finally:
        await store.close()


def _inventory(args: argparse.Namespace) -> int:
    """Counts per event type and silo and each silo's AUC by horizon; the cockpit's Data
    page shows the file this writes."""
    from scoring.inventory import from_snapshots, inventory, inventory_of

    if args.step_days <= 0:
        raise ConfigError(f"--step-days must be above 0, not {args.step_days}")
    step = dt.timedelta(days=args.step_days)
    if args.from_store:
        rows = asyncio.run(_from_store("snapshots"))
        result = inventory_of(from_snapshots(rows), step=step)
        source = "the record's score snapshots"
    else:
        result = inventory(read_events(args.events), step=step)
        source = str(args.events)
    result = {"file": source, "made_at": utcnow().isoformat(), **result}
    out = args.out or Settings().data_dir / "reports" / "inventory.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    for silo in result["silos"]:
        figures = "  ".join(
            f"{h} d {v:.2f}" if v is not None else f"{h} d —" for h, v in silo["auc"].items()
        )
        print(
            f"{silo['silo']:<12} {silo['events']:>8,} events {silo['leads']:>6,} leads  AUC {figures}",
            file=sys.stderr,
        )
    print(f"written to {out}", file=sys.stderr)
    json.dump(result, sys.stdout)
    print()
    return 0


def _synth(args: argparse.Namespace) -> int:
    from scoring.synthetic import generate, reps

    if args.customers:
        return _synth_customers(args)
    data = generate(args.leads, args.days, args.seed)
    if args.truth:
        args.truth.write_text(json.dumps(data.truth_json()))
    _write_events(args.out, [*reps(), *data.events])
    print(f"{len(data.events):,} events for {args.leads:,} leads", file=sys.stderr)
    return 0


def _write_events(dest: str, events: list[LeadEvent] | list[LeadEvent | RepUpserted]) -> None:
    out = sys.stdout.buffer if dest == "-" else open(dest, "wb")  # noqa: SIM115
    try:
        for event in events:
            out.write(event_to_json(event) + b"\n")
    finally:
        if out is not sys.stdout.buffer:
            out.close()


def _synth_customers(args: argparse.Namespace) -> int:
    import yaml

    from scoring.synthetic_customers import CATALOGUE, generate_customers

    data = generate_customers(args.customers, args.days, args.seed)
    if args.catalogue:
        args.catalogue.write_text(yaml.safe_dump(CATALOGUE, sort_keys=False))
    if args.truth:
        args.truth.write_text(
            json.dumps({"process": "customers", "churn": data.churn_rate, "buy": data.buy_rate})
        )
    _write_events(args.out, data.events)
    print(f"{len(data.events):,} events for {args.customers:,} customers", file=sys.stderr)
    return 0


def _forecast(args: argparse.Namespace) -> int:
    from scoring.forecast import forecast, format_result
    from scoring.model_scorer import CompiledModel

    if args.months < 1:
        raise ConfigError(f"--months must be at least 1, not {args.months}")
    registry = _registry()
    version = registry.promoted_version()
    if version is None:
        raise ConfigError("no conversion model is promoted: `nudge model train --promote` first")
    info = registry.get(version)
    model = CompiledModel.load(registry, info)
    horizon = float(info.meta.get("horizon_days", 30))
    teams: dict[str, str] = {}
    events: list[LeadEvent] = []
    for event in read_all_events(args.events):
        if isinstance(event, RepUpserted):
            if event.team:
                teams[event.rep_id] = event.team
        else:
            events.append(event)
    if not events:
        raise ConfigError(f"{args.events}: no lead events")
    result = forecast(events, model, horizon_days=horizon, months=args.months, teams=teams)
    if args.json:
        print(json.dumps({"model": version, **result.as_dict()}, indent=2))
        return 0
    print(f"model {version} (won within {horizon:g} days, calibrated)")
    print(format_result(result))
    for title, key in (("by rep", "by_rep"), ("by team", "by_team")):
        totals: dict[str, float] = {}
        for m in result.months:
            for name, v in getattr(m, key).items():
                totals[name] = totals.get(name, 0.0) + v
        if key == "by_team" and not teams:
            continue
        print(f"{title}, next {args.months} months:")
        for name, v in sorted(totals.items(), key=lambda kv: -kv[1]):
            months = "  ".join(f"{getattr(m, key).get(name, 0.0):>10,.0f}" for m in result.months)
            print(f"  {name:<20} {v:>12,.0f}   {months}")
    return 0
