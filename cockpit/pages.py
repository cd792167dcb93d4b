"""What each cockpit page shows, as a plain dict (the HTML template renders it, and the
same dict is the page's ``.json`` twin). Reads go through :class:`crm.reads.Reads` only."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from cockpit import charts, summaries
from cockpit.svg import sparkline
from crm.reads import Reads

HORIZON = dt.timedelta(days=30)
"""Outcome horizon of the Playbooks and Reps pages (the model's default horizon)."""

SPARK_POINTS = 40
LIMIT = 200
"""Leads listed at most (the top of the ranking; narrow it with the filters)."""


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat()


async def team_reps(reads: Reads, team: str | None) -> list[dict[str, Any]]:
    """The reps a viewer of ``team`` sees (None: every rep)."""
    return [r for r in await reads.reps() if team is None or r.get("team") == team]


def _of_team(rows: list[dict[str, Any]], reps: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """``rows`` (nudges) sent to one of ``reps``; all of them when ``reps`` is None."""
    if reps is None:
        return rows
    ids = {r["rep_id"] for r in reps}
    return [r for r in rows if r.get("rep_id") in ids]


async def filters(reads: Reads, team: str | None = None) -> dict[str, Any]:
    reps = await team_reps(reads, team)
    return {
        "reps": [{"rep_id": r["rep_id"], "name": r["name"]} for r in reps],
        "teams": sorted({r["team"] for r in reps if r.get("team")}),
        "stages": await reads.stages(),
        "playbooks": await reads.playbook_names(),
    }


async def leads(reads: Reads, query: dict[str, str], team: str | None = None) -> dict[str, Any]:
    """The ranking, a page of ``LIMIT`` leads at a time (``page``, from 1); a viewer of
    ``team`` sees that team's leads whatever the query asks."""
    chosen = {k: query.get(k) or None for k in ("rep", "team", "stage", "playbook")}
    if team is not None:
        chosen["team"] = team
    order = "score" if query.get("order") == "score" else "ev"
    status = query.get("status", "open")
    chosen["status"] = status if status in ("open", "won", "lost") else None
    page = int(query["page"]) if query.get("page", "").isdigit() and int(query["page"]) > 0 else 1
    rows = await reads.leads(order=order, limit=LIMIT + 1, offset=(page - 1) * LIMIT, **chosen)
    more, rows = len(rows) > LIMIT, rows[:LIMIT]
    ids = [r["lead_id"] for r in rows]
    points = await reads.score_points(ids)
    touches = await reads.last_rep_touch(ids)
    counts = await reads.nudge_counts(ids)
    out = []
    for r in rows:
        detail = r["score_detail"] or {}
        pts = points.get(r["lead_id"], [])[-SPARK_POINTS:]
        out.append(
            {
                "lead_id": r["lead_id"],
                "company": r["company"],
                "contact_name": r["contact_name"],
                "owner": r["owner_name"] or r["owner_rep_id"],
                "owner_rep_id": r["owner_rep_id"],
                "team": r["team"],
                "stage": r["stage"],
                "status": r["status"],
                "deal_value": r["deal_value"],
                "score": r["score"],
                "expected_value": r["expected_value"],
                "model_version": r["model_version"],
                "rule_based": detail.get("rule_based"),
                "reasons": detail.get("reasons", []),
                "spark": sparkline(pts),
                "last_rep_touch": touches.get(r["lead_id"]),
                "nudges": counts.get(r["lead_id"], {"total": 0, "pending": 0}),
            }
        )
    return {
        "leads": out,
        "chosen": chosen,
        "order": order,
        "limit": LIMIT,
        "page": page,
        "first_rank": (page - 1) * LIMIT + 1,
        "more": more,
        "filters": await filters(reads, team),
    }


async def lead(reads: Reads, lead_id: str) -> dict[str, Any] | None:
    row = await reads.lead(lead_id)
    if row is None:
        return None
    snaps = await reads.snapshots_for(lead_id)
    activities = await reads.activities_for(lead_id)
    nudges = await reads.nudges(lead_id=lead_id)
    attempts = await reads.attempts_for([n["nudge_id"] for n in nudges])
    answers = await reads.answers_for(lead_id)
    deals = await reads.deals_for(lead_id)
    changes = await reads.field_changes_for(lead_id)
    notes = await reads.notes_for(lead_id)

    score_changes, previous, version = [], None, None
    for s in snaps:
        if s["score"] != previous or s["model_version"] != version:
            score_changes.append(
                {
                    "at": _iso(s["occurred_at"]),
                    "event_type": s["event_type"],
                    "score": s["score"],
                    "previous": previous,
                    "model_version": s["model_version"],
                }
            )
        previous, version = s["score"], s["model_version"]

    timeline: list[dict[str, Any]] = [
        {
            "at": _iso(s["occurred_at"]),
            "kind": "event",
            "what": s["event_type"],
            "score": s["score"],
        }
        for s in snaps
    ]
    scored = {s["event_id"] for s in snaps}
    timeline += [
        {
            "at": a["occurred_at"],
            "kind": "activity",
            "what": a["type"]
            + (f" ({a['duration_s'] / 60:.0f} min)" if a["duration_s"] else "")
            + (f" by {a['rep_id']}" if a["rep_id"] else ""),
        }
        for a in activities
        if a["activity_id"] not in scored or a["rep_id"]
    ]
    timeline += [
        {
            "at": n["created_at"],
            "kind": "nudge",
            "what": f"{n['rule']} → {n['rep_id']}: {n['state']}",
        }
        for n in nudges
    ]
    timeline += [
        {"at": a["answered_at"], "kind": "answer", "what": f"{a['question_id']}: {a['raw_text']}"}
        for a in answers
    ]
    timeline += [{"at": n["received_at"], "kind": "note", "what": n["text"]} for n in notes]
    timeline.sort(key=lambda e: e["at"], reverse=True)
    for n in nudges:
        n["attempts"] = attempts.get(n["nudge_id"], [])
    return {
        "lead": {k: v for k, v in row.items() if k != "profile"} | {"profile": row["profile"]},
        "reasons": (row["score_detail"] or {}).get("reasons", []),
        "spark": sparkline([(s["occurred_at"], s["score"]) for s in snaps], 320, 60),
        "score_changes": list(reversed(score_changes)),
        "timeline": timeline,
        "nudges": nudges,
        "deals": deals,
        "answers": answers,
        "field_changes": changes,
        "notes": notes,
        "trace": [],
        "trace_note": None,
    }


def configured_rules(paths: list[Path]) -> dict[str, Any]:
    """The rules of the playbooks a worker with these settings loads (``NUDGE_PLAYBOOKS``;
    none: the shipped default), and every file it would refuse, with its errors."""
    from playbooks.loader import check_paths

    rules, refused = [], []
    for checked in check_paths(paths or None):
        if checked.playbook is None:
            refused.append({"file": checked.file, "errors": [str(e) for e in checked.errors]})
            continue
        for rule in checked.playbook.rules:
            rules.append(
                {
                    "playbook": checked.playbook.name,
                    "rule": rule.id,
                    "description": rule.description,
                    "explore": rule.explore,
                    "enabled": checked.playbook.enabled,
                }
            )
    return {"rules": rules, "refused": refused}


async def playbooks(
    reads: Reads,
    configured: dict[str, Any] | None = None,
    decisions: list[dict[str, Any]] | None = None,
    team: str | None = None,
) -> dict[str, Any]:
    """Each rule's firings, delivery, replies and outcomes (only ``team``'s reps' nudges
    when given), and its lift against the exploration control: the ``decisions`` given,
    or those the workers logged in the last 90 days (over every team)."""
    reps = await team_reps(reads, team) if team is not None else None
    nudges = _of_team(await reads.nudges(limit=100_000), reps)
    outcomes = await reads.outcomes()
    if decisions is None:
        since = (dt.datetime.now(dt.UTC) - 3 * HORIZON).isoformat()
        decisions = await reads.explored_decisions(since)
    control = summaries.control_units(decisions, outcomes, HORIZON) if decisions else None
    rows = summaries.rule_rows(nudges, await reads.rep_replies(), outcomes, HORIZON, control)
    since = (dt.datetime.now(dt.UTC) - HORIZON).date().isoformat()
    counts = await reads.rule_counts(since)
    loaded = {(r["playbook"], r["rule"]): r for r in (configured or {}).get("rules", [])}
    for row in rows:
        lift = row["lift"]
        row["lift_chart"] = charts.lift_svg(lift) if lift else ""
        row["loaded"] = loaded.get((row["playbook"], row["rule"]))
        row["evaluations"] = evaluations(counts.get((row["playbook"], row["rule"]), {}))
    fired = {(r["playbook"], r["rule"]) for r in rows}
    never = [
        r | {"evaluations": evaluations(counts.get(key, {}))}
        for key, r in loaded.items()
        if key not in fired
    ]
    return {
        "never_fired": never,
        "refused": (configured or {}).get("refused", []),
        "rules": rows,
        "horizon_days": HORIZON.days,
        "window_h": summaries.REPLY_WINDOW.total_seconds() / 3600,
        "control_logged": bool(decisions),
    }


def evaluations(by_outcome: dict[str, int]) -> dict[str, Any]:
    """A rule's evaluation counts: how many, how many fired, and what stopped the rest
    (most frequent first)."""
    stopped = sorted(
        ((outcome, n) for outcome, n in by_outcome.items() if outcome != "fired"),
        key=lambda item: (-item[1], item[0]),
    )
    return {
        "total": sum(by_outcome.values()),
        "fired": by_outcome.get("fired", 0),
        "stopped": stopped,
    }


async def firings(
    reads: Reads, playbook: str, rule: str, team: str | None = None
) -> dict[str, Any]:
    reps = await team_reps(reads, team) if team is not None else None
    nudges = _of_team(await reads.nudges(playbook=playbook, rule=rule), reps)
    return {"playbook": playbook, "rule": rule, "nudges": nudges}


async def reps(reads: Reads, team: str | None = None) -> dict[str, Any]:
    people = await team_reps(reads, team)
    rows = summaries.rep_rows(
        people,
        _of_team(await reads.nudges(limit=100_000), people),
        await reads.rep_replies(),
        await reads.sessions(),
        await reads.first_answers(),
        {str(s["phone"]) for s in await reads.sms_suppressions()},
        await reads.outcomes(),
        HORIZON,
    )
    return {"reps": rows, "horizon_days": HORIZON.days}


def targets(data_dir: Path, products: Path | None = None) -> list[dict[str, Any]]:
    """Every target the product catalogue defines (conversion first), with its live model."""
    from scoring.registry import Registry
    from scoring.targets import all_targets, load_catalogue

    out = []
    for t in all_targets(load_catalogue(products)):
        registry = Registry(data_dir, t.name)
        live = registry.promoted_version()
        meta = registry.get(live).meta if live else {}
        out.append(
            {
                "target": t.name,
                "promoted": live,
                "models": len(registry.list()),
                "roc_auc": ((meta.get("metrics") or {}).get("holdout") or {}).get("roc_auc"),
                "trained_at": meta.get("trained_at"),
            }
        )
    return out


def drivers(data_dir: Path, version: str, snapshots: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Win/loss drivers of the conversion model ``version`` over the record's snapshots."""
    from scoring.drivers import drivers as win_loss
    from scoring.model_scorer import CompiledModel
    from scoring.registry import Registry
    from scoring.train import snapshots_from_rows

    registry = Registry(data_dir)
    compiled = CompiledModel.load(registry, registry.get(version))
    return win_loss(compiled, snapshots_from_rows(snapshots, names=compiled.names))


def model(
    data_dir: Path,
    drivers: list[dict[str, Any]] | None = None,
    products: Path | None = None,
) -> dict[str, Any]:
    """The conversion registry's models and history, every target's live model, and the
    live conversion model's win/loss ``drivers`` (:func:`drivers`) when given."""
    from scoring.registry import Registry

    registry = Registry(data_dir)
    promoted = registry.promoted_version()
    models = [
        {
            "version": m.version,
            "trained_at": m.meta.get("trained_at"),
            "positives": m.positives,
            "metrics": (m.meta.get("metrics") or {}).get("holdout", {}),
            "promoted": m.version == promoted,
        }
        for m in reversed(registry.list())
    ]
    live = registry.get(promoted).meta if promoted else None
    history_file = registry.root / "HISTORY"
    history = (
        [line.split(" ", 1) for line in history_file.read_text().splitlines() if line.strip()]
        if history_file.is_file()
        else []
    )
    importance = (live or {}).get("importance", {})
    checks = ((live or {}).get("metrics") or {}).get("holdout_checks") or {}
    table = checks.get("reliability") or []
    return {
        "targets": targets(data_dir, products),
        "checks": checks,
        "calibration_chart": charts.calibration_svg(table) if table else "",
        "drivers": drivers or [],
        "promoted": promoted,
        "live": live,
        "models": models,
        "history": list(reversed(history)),
        "importance_chart": charts.importance_svg(importance) if importance else "",
    }


def inventory(data_dir: Path) -> dict[str, Any]:
    """The latest ``nudge model inventory`` result, if one was written."""
    path = data_dir / "reports" / "inventory.json"
    if not path.is_file():
        return {"inventory": None, "report_path": str(path)}
    result = json.loads(path.read_text())
    return {"inventory": result, "report_path": str(path), "chart": charts.inventory_svg(result)}
