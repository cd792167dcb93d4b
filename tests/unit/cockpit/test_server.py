"""The cockpit served over real HTTP from a real SQLite record: login, what an
unauthenticated client can see (nothing), every page and its JSON twin, and the limits."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestClient, TestServer

from cockpit.limits import Limits, serve
from cockpit.server import build_app
from crm.outbox import Outbox
from crm.record import LeadFlush, Source
from crm.store import Store
from nudge.events import RepUpserted
from nudge.signals import NudgeCommand

TOKEN = "cockpit-test-token-0123456789"
EAST_TOKEN = "east-manager-token-0123456789"
T0 = dt.datetime(2026, 3, 2, 15, 0, tzinfo=dt.UTC)
PAGES = [
    "/",
    "/leads",
    "/leads/lead-1",
    "/playbooks",
    "/playbooks/hot-lead/crossed",
    "/reps",
    "/model",
    "/inventory",
]


async def fill(store: Store) -> None:
    """Two reps, two leads (one hot and nudged), their scores and one logged call."""
    for rep, team in (("rep-1", "west"), ("rep-2", "east")):
        await store.upsert_rep(
            RepUpserted(
                type="rep.upserted",
                event_id=f"e-{rep}",
                occurred_at=T0,
                source="t",
                rep_id=rep,
                name=f"Rep {rep}",
                phone="+14155550101",
                team=team,
            )
        )
    for lead, company, owner, score, value in (
        ("lead-1", "Acme Logistics", "rep-1", 0.82, 12000.0),
        ("lead-2", "Birchwood Dental", "rep-2", 0.31, 90000.0),
    ):
        crm = Source(kind="crm", at=T0, event_id=f"{lead}-created")
        fields = {"company": company, "owner_rep_id": owner, "deal_value": value, "stage": "new"}
        await store.merge_fields(lead, {f"lead.{k}": v for k, v in fields.items()}, crm, T0)
        score_now = {
            "value": score,
            "model_version": "points-v1",
            "rule_based": True,
            "reasons": [f"{company}: 3 pricing-page visits"],
            "scored_at": T0.isoformat(),
        }
        await store.save_lead_states([LeadFlush(lead, [], score_now, {"score": score_now})], T0)
        await store.save_snapshots(
            [
                {
                    "event_id": f"{lead}-{i}",
                    "lead_id": lead,
                    "event_type": "page.viewed",
                    "occurred_at": T0.timestamp() + 60 * i,
                    "model_version": "points-v1",
                    "score": score * (i + 1) / 3,
                    "state_json": "{}",
                }
                for i in range(3)
            ]
        )
    await store.log_activity(
        "call-1",
        "lead-1",
        "call.ended",
        T0 + dt.timedelta(hours=1),
        rep_id="rep-1",
        duration_s=600,
        detail={},
    )
    today = dt.datetime.now(dt.UTC).date()
    for day, n in (
        (today, 1),
        (today - dt.timedelta(days=1), 2),
        (today - dt.timedelta(days=90), 50),
    ):
        await store.add_rule_counts(
            day.isoformat(),
            {
                ("hot-lead", "crossed", "fired"): n,
                ("hot-lead", "crossed", "cooldown"): 3 * n,
                ("hot-lead", "crossed", "conditions"): n,
            },
        )
    await store.add_rule_counts(today.isoformat(), {("hot-lead", "crossed", "fired"): 1})
    await Outbox(store).enqueue(
        NudgeCommand(
            nudge_id="n-1",
            rep_id="rep-1",
            lead_id="lead-1",
            text="Acme is hot (82 %)",
            playbook="hot-lead",
            rule="crossed",
            trigger_event_id="lead-1-2",
            created_at=T0,
        ),
        T0,
    )


@pytest.fixture(params=["sqlite", "postgresql"])
async def client(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[TestClient]:
    """The cockpit over a filled record, on each store Nudge supports."""
    location: Path | str = (
        str(request.getfixturevalue("postgres").database())
        if request.param == "postgresql"
        else tmp_path / "nudge.db"
    )
    store = await Store.open(location)
    await fill(store)
    await store.close()
    app = build_app(
        location,
        tmp_path,
        [TOKEN, "older-token"],
        Limits(),
        "http://127.0.0.1:9",
        users=f"maria:east:{EAST_TOKEN}",
    )
    async with TestClient(TestServer(app, host="127.0.0.1")) as c:
        yield c


async def test_without_a_login_every_page_is_401_and_shows_no_lead_data(client: TestClient) -> None:
    """HTML pages answer 401 with the login form, JSON twins 401 JSON; no company appears."""
    for path in PAGES + [p + ".json" for p in PAGES if p != "/"]:
        r = await client.get(path)
        body = await r.text()
        assert r.status == 401, path
        assert "Acme" not in body and "Birchwood" not in body and "82" not in body, path
    r = await client.get("/leads", headers={"Authorization": "Bearer wrong"})
    assert r.status == 401
    assert 'name="token"' in await (await client.get("/leads/lead-1")).text()


async def test_login_sets_a_strict_httponly_session_and_returns_to_the_page(
    client: TestClient,
) -> None:
    """A right token → 303 to the asked page with an HttpOnly SameSite=Strict cookie; a
    wrong one → 401 and no cookie; logout ends the session."""
    r = await client.post("/login", data={"token": "nope", "next": "/reps"}, allow_redirects=False)
    assert r.status == 401 and "Set-Cookie" not in r.headers
    r = await client.post("/login", data={"token": TOKEN, "next": "/reps"}, allow_redirects=False)
    assert r.status == 303 and r.headers["Location"] == "/reps"
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    r = await client.get("/reps")
    assert r.status == 200 and "Rep rep-1" in await r.text()
    await client.post("/logout", allow_redirects=False)
    client.session.cookie_jar.clear()
    assert (await client.get("/reps")).status == 401


async def test_login_is_throttled_per_address(client: TestClient) -> None:
    """After ten wrong tokens, even the right one is refused for a while (429)."""
    for _ in range(10):
        await client.post("/login", data={"token": "guess"}, allow_redirects=False)
    r = await client.post("/login", data={"token": TOKEN}, allow_redirects=False)
    assert r.status == 429


async def test_every_page_renders_with_a_bearer_token_and_strict_headers(
    client: TestClient,
) -> None:
    """Each page is 200 HTML with no script and a CSP forbidding scripts and frames."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for path in PAGES:
        r = await client.get(path, headers=auth)
        body = await r.text()
        assert r.status == 200, (path, body[-500:])
        assert "<script" not in body
        assert "default-src 'none'" in r.headers["Content-Security-Policy"]
        assert r.headers["Cache-Control"] == "no-store"
    # the older token still works while rotating
    assert (
        await client.get("/reps", headers={"Authorization": "Bearer older-token"})
    ).status == 200


async def test_leads_rank_by_expected_value_or_score_and_filter(client: TestClient) -> None:
    """EV ranks the 90k deal at 31 % above the 12k deal at 82 %; by score the reverse;
    filters by rep and team keep only that owner's leads."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    ranked = await (await client.get("/leads.json", headers=auth)).json()
    assert [lead["lead_id"] for lead in ranked["leads"]] == ["lead-2", "lead-1"]
    assert ranked["leads"][0]["expected_value"] == pytest.approx(27900.0)
    by_score = await (await client.get("/leads.json?order=score", headers=auth)).json()
    assert [lead["lead_id"] for lead in by_score["leads"]] == ["lead-1", "lead-2"]
    west = await (await client.get("/leads.json?team=west", headers=auth)).json()
    assert [lead["lead_id"] for lead in west["leads"]] == ["lead-1"]
    rep2 = await (await client.get("/leads.json?rep=rep-2", headers=auth)).json()
    assert [lead["lead_id"] for lead in rep2["leads"]] == ["lead-2"]
    hot = await (await client.get("/leads.json?playbook=hot-lead", headers=auth)).json()
    lead1 = hot["leads"][0]
    assert [lead["lead_id"] for lead in hot["leads"]] == ["lead-1"]
    assert lead1["nudges"] == {"total": 1, "pending": 1}
    assert lead1["last_rep_touch"].startswith("2026-03-02T16:00")
    assert lead1["reasons"] == ["Acme Logistics: 3 pricing-page visits"]
    assert len(lead1["spark"].split('points="')[1].split('"')[0].split()) == 3


async def test_a_team_manager_sees_only_that_teams_leads_reps_and_nudges(
    client: TestClient,
) -> None:
    """maria manages east (rep-2, lead-2): west's lead is absent from the ranking even when
    she asks for west, its page is 404, and west's rep and nudge are on no page of hers."""
    east = {"Authorization": f"Bearer {EAST_TOKEN}"}
    for query in ("", "?team=west", "?rep=rep-1", "?status=all"):
        ranked = await (await client.get("/leads.json" + query, headers=east)).json()
        assert [lead["lead_id"] for lead in ranked["leads"]] in ([], ["lead-2"]), query
        assert ranked["filters"]["teams"] == ["east"]
        assert [r["rep_id"] for r in ranked["filters"]["reps"]] == ["rep-2"]
    assert (await client.get("/leads/lead-2.json", headers=east)).status == 200
    west_lead = await client.get("/leads/lead-1", headers=east)
    assert west_lead.status == 404 and "Acme" not in await west_lead.text()
    reps = await (await client.get("/reps.json", headers=east)).json()
    assert [r["rep_id"] for r in reps["reps"]] == ["rep-2"]
    firings = await (await client.get("/playbooks/hot-lead/crossed.json", headers=east)).json()
    assert firings["nudges"] == []
    rules = await (await client.get("/playbooks.json", headers=east)).json()
    assert rules["rules"] == []
    page = await (await client.get("/", headers=east)).text()
    assert "maria" in page and "team east" in page and "Acme" not in page
    # the head of sales (NUDGE_API_TOKEN) sees both teams
    everyone = {"Authorization": f"Bearer {TOKEN}"}
    reps = await (await client.get("/reps.json", headers=everyone)).json()
    assert sorted(r["rep_id"] for r in reps["reps"]) == ["rep-1", "rep-2"]
    firings = await (await client.get("/playbooks/hot-lead/crossed.json", headers=everyone)).json()
    assert [n["nudge_id"] for n in firings["nudges"]] == ["n-1"]


async def test_a_team_manager_logs_in_with_a_form_and_stays_in_the_team(
    client: TestClient,
) -> None:
    r = await client.post(
        "/login", data={"token": EAST_TOKEN, "next": "/leads"}, allow_redirects=False
    )
    assert r.status == 303
    ranked = await (await client.get("/leads.json?team=west")).json()
    assert [lead["lead_id"] for lead in ranked["leads"]] == ["lead-2"]


async def test_the_ranking_pages_past_the_limit(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every lead is reachable: page 2 holds what page 1 had no room for."""
    from cockpit import pages

    monkeypatch.setattr(pages, "LIMIT", 1)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    first = await (await client.get("/leads.json", headers=auth)).json()
    second = await (await client.get("/leads.json?page=2", headers=auth)).json()
    third = await (await client.get("/leads.json?page=3", headers=auth)).json()
    assert [lead["lead_id"] for lead in first["leads"]] == ["lead-2"] and first["more"]
    assert [lead["lead_id"] for lead in second["leads"]] == ["lead-1"] and not second["more"]
    assert third["leads"] == []
    html = await (await client.get("/leads?order=ev", headers=auth)).text()
    assert 'rel="next" href="/leads?order=ev&amp;page=2"' in html


async def test_playbooks_page_counts_each_rules_evaluations_and_what_stopped_them(
    client: TestClient,
) -> None:
    """The last 30 days' counters, added up across days and flushes: 2 + 1 + 1 fired,
    9 stopped by cooldown, 3 by conditions (the 90-day-old day is outside)."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    page = await (await client.get("/playbooks.json", headers=auth)).json()
    [row] = page["rules"]
    assert row["evaluations"] == {
        "total": 16,
        "fired": 4,
        "stopped": [["cooldown", 9], ["conditions", 3]],
    }
    html = await (await client.get("/playbooks", headers=auth)).text()
    assert "16 in 30 days, 4 fired; stopped by cooldown 9, conditions 3" in html


async def test_playbooks_page_shows_the_lift_from_the_decisions_workers_logged(
    tmp_path: Path,
) -> None:
    """Decisions an exploration coin took part in (logged with the chance of what was
    decided) make the rule's lift: 2 explored nudges, 1 won within 30 days; 2 leads the
    coin left alone, none won → +50 points. A certain decision (propensity 1) and one
    older than 90 days are not counted."""
    store = await Store.open(tmp_path / "nudge.db")
    await fill(store)
    now = dt.datetime.now(dt.UTC)
    at = (now - dt.timedelta(days=10)).isoformat()
    rows = [
        ("t1", True, 0.2, at),
        ("t2", True, 0.2, at),
        ("c1", False, 0.8, at),
        ("c2", False, 0.8, at),
        ("sure", True, 1.0, at),
        ("old", True, 0.2, (now - dt.timedelta(days=120)).isoformat()),
    ]
    await store.save_decisions(
        [
            {
                "event_id": f"e-{lead}",
                "lead_id": lead,
                "playbook": "hot-lead",
                "rule": "crossed",
                "at": when,
                "nudged": nudged,
                "propensity": p,
                "signal_json": "{}",
            }
            for lead, nudged, p, when in rows
        ]
    )
    won = {
        "event_id": "t1-won",
        "lead_id": "t1",
        "event_type": "deal.won",
        "occurred_at": (now - dt.timedelta(days=5)).timestamp(),
        "model_version": "points-v1",
        "score": 1.0,
        "state_json": "{}",
    }
    await store.save_snapshots([won])
    await store.close()
    app = build_app(tmp_path / "nudge.db", tmp_path, [TOKEN], Limits(), "http://127.0.0.1:9")
    async with TestClient(TestServer(app, host="127.0.0.1")) as c:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        page = await (await c.get("/playbooks.json", headers=auth)).json()
        [row] = page["rules"]
        lift = row["lift"]
        assert (lift["n_treated"], lift["n_control"]) == (2, 2)
        assert lift["treated_rate"] == pytest.approx(0.5)
        assert lift["control_rate"] == pytest.approx(0.0)
        assert lift["lift"] == pytest.approx(0.5)
        html = await (await c.get("/playbooks", headers=auth)).text()
        assert "+50.0 points" in html and "2 explored vs 2 control" in html


async def test_lead_page_shows_timeline_score_changes_and_nudges(client: TestClient) -> None:
    """The lead's JSON twin lists each score change with its model version, the nudge
    with its state, and the call in the timeline; an unknown lead is 404."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    page = await (await client.get("/leads/lead-1.json", headers=auth)).json()
    assert [c["score"] for c in page["score_changes"]] == pytest.approx(
        [0.82, 0.5467, 0.2733], 1e-3
    )
    assert {c["model_version"] for c in page["score_changes"]} == {"points-v1"}
    assert [n["state"] for n in page["nudges"]] == ["queued"]
    assert [(d["deal_id"], d["value"]) for d in page["deals"]] == [("lead-1:deal", 12000.0)]
    assert any(e["kind"] == "activity" and "call.ended" in e["what"] for e in page["timeline"])
    assert (await client.get("/leads/nobody", headers=auth)).status == 404


async def test_listener_limits(tmp_path: Path) -> None:
    """Connections over the cap are refused with 503, a client that never finishes its
    headers is dropped, and a body over the limit is 413."""
    await (await Store.open(tmp_path / "nudge.db")).close()
    limits = Limits(max_connections=3, header_timeout=1.0, max_body=1024)
    runner = web.AppRunner(build_app(tmp_path / "nudge.db", tmp_path, [TOKEN], limits))
    await runner.setup()
    listener = await serve(runner, "127.0.0.1", 0, limits)
    port = listener.sockets[0].getsockname()[1]
    writers: list[asyncio.StreamWriter] = []
    try:
        idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
        writers += [w for _, w in idle]
        await asyncio.sleep(0.1)
        extra, extra_writer = await asyncio.open_connection("127.0.0.1", port)
        writers.append(extra_writer)
        assert (await asyncio.wait_for(extra.read(), 5)).startswith(b"HTTP/1.1 503")
        # the silent ones are closed by the header deadline (1 s, swept each second)
        for silent, _ in idle:
            assert await asyncio.wait_for(silent.read(), 5) == b""
        async with ClientSession() as http:
            r = await http.post(f"http://127.0.0.1:{port}/login", data={"token": "x" * 4000})
            assert r.status == 413
            r = await http.get(f"http://127.0.0.1:{port}/health")
            assert r.status == 200
    finally:
        for w in writers:
            w.close()
        listener.close()
        await runner.cleanup()


async def test_inventory_page_charts_the_latest_inventory(tmp_path: Path) -> None:
    """With an inventory written, /inventory shows each silo's AUC by horizon as a table
    and a server-made SVG chart; without one it says how to make it."""
    await (await Store.open(tmp_path / "nudge.db")).close()
    app = build_app(tmp_path / "nudge.db", tmp_path, [TOKEN], Limits(), "http://127.0.0.1:9")
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with TestClient(TestServer(app, host="127.0.0.1")) as c:
        assert (
            "nudge model inventory --events FILE"
            in await (await c.get("/inventory", headers=auth)).text()
        )
        (tmp_path / "reports").mkdir()
        (tmp_path / "reports" / "inventory.json").write_text(
            json.dumps(
                {
                    "file": "h.ndjson",
                    "made_at": T0.isoformat(),
                    "events": 10,
                    "leads": 2,
                    "cutoffs": 3,
                    "types": [],
                    "silos": [
                        {
                            "silo": "call",
                            "events": 4,
                            "leads": 2,
                            "first_seen": T0.isoformat(),
                            "last_seen": T0.isoformat(),
                            "auc": {"1": 0.97, "7": 0.61, "30": 0.54, "90": None},
                        }
                    ],
                }
            )
        )
        body = await (await c.get("/inventory", headers=auth)).text()
        assert "<svg" in body and "0.97" in body and "0.61" in body


async def test_lead_page_shows_the_workers_decision_trace(tmp_path: Path) -> None:
    """The lead page asks every worker's explain route (with the cockpit's token) and
    shows each kept evaluation in words, newest first, whichever worker kept it (a lead
    moves between workers when partitions are reassigned); a worker that cannot be asked
    is named, and with no worker at all the page says so."""
    from playbooks.trace import Check, Evaluation, TraceBook
    from streams import explain

    books = [TraceBook(), TraceBook()]
    books[0].record(
        [
            Evaluation(
                at="2026-03-02T15:00:00+00:00",
                playbook="hot-lead",
                rule="crossed",
                lead_id="lead-1",
                event_id="e1",
                event_type="page.viewed",
                outcome="conditions",
                reason="a condition failed",
                checks=[Check("lead.employees >= 50", {"lead.employees": 12}, False)],
            )
        ]
    )
    books[1].record(
        [
            Evaluation(
                at="2026-03-02T15:05:00+00:00",
                playbook="hot-lead",
                rule="crossed",
                lead_id="lead-1",
                event_id="e2",
                event_type="page.viewed",
                outcome="cooldown",
                reason="cooldown until 2026-03-02 16:00",
            ),
        ]
    )
    seen: list[str | None] = []

    def fake_worker(book: TraceBook) -> web.Application:
        async def explain_route(request: web.Request) -> web.StreamResponse:
            seen.append(request.headers.get("Authorization"))
            return await explain.handler(type("P", (), {"traces": book})())(request)

        app = web.Application()
        app.router.add_get("/playbooks/explain", explain_route)
        return app

    store = await Store.open(tmp_path / "nudge.db")
    await fill(store)
    await store.close()
    async with (
        TestServer(fake_worker(books[0]), host="127.0.0.1") as first,
        TestServer(fake_worker(books[1]), host="127.0.0.1") as second,
    ):
        urls = f"{first.make_url('/')},{second.make_url('/')}"
        app = build_app(tmp_path / "nudge.db", tmp_path, [TOKEN], Limits(), urls)
        async with TestClient(TestServer(app, host="127.0.0.1")) as c:
            auth = {"Authorization": f"Bearer {TOKEN}"}
            page = await (await c.get("/leads/lead-1.json", headers=auth)).json()
            heads = [e["head"] for e in page["trace"]]
            assert "didn't fire: cooldown until 2026-03-02 16:00" in heads[0]
            assert "didn't fire: a condition failed" in heads[1]
            assert "`lead.employees` was 12" in page["trace"][1]["details"][0]
            assert seen == [f"Bearer {TOKEN}"] * 2
            assert page["trace_note"] is None
            html = await (await c.get("/leads/lead-1", headers=auth)).text()
            assert "cooldown until 2026-03-02 16:00" in html
        one_gone = build_app(
            tmp_path / "nudge.db", tmp_path, [TOKEN], Limits(), f"{urls},http://127.0.0.1:9"
        )
        async with TestClient(TestServer(one_gone, host="127.0.0.1")) as c:
            page = await (await c.get("/leads/lead-1.json", headers=auth)).json()
            assert len(page["trace"]) == 2
            assert "no worker answered at http://127.0.0.1:9" in page["trace_note"]
    gone = build_app(tmp_path / "nudge.db", tmp_path, [TOKEN], Limits(), "http://127.0.0.1:9")
    async with TestClient(TestServer(gone, host="127.0.0.1")) as c:
        page = await (await c.get("/leads/lead-1.json", headers=auth)).json()
        assert page["trace"] == [] and "no worker answered" in page["trace_note"]


async def test_playbooks_page_lists_loaded_rules_that_never_fired_and_refused_files(
    tmp_path: Path,
) -> None:
    """Rules of NUDGE_PLAYBOOKS with no nudge yet are listed; a file the workers would
    refuse is shown with its file:line error."""
    from playbooks.loader import DEFAULT_PLAYBOOKS

    store = await Store.open(tmp_path / "nudge.db")
    await fill(store)
    await store.close()
    books = tmp_path / "books"
    books.mkdir()
    for f in DEFAULT_PLAYBOOKS.iterdir():
        (books / f.name).write_text(f.read_text())
    (books / "broken.yaml").write_text("name: broken\nrules: [{id: x}]\n")
    app = build_app(
        tmp_path / "nudge.db", tmp_path, [TOKEN], Limits(), "http://127.0.0.1:9", [books]
    )
    async with TestClient(TestServer(app, host="127.0.0.1")) as c:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        page = await (await c.get("/playbooks.json", headers=auth)).json()
        assert [r["rule"] for r in page["rules"]] == ["crossed"]  # the one that fired
        assert {r["playbook"] for r in page["never_fired"]} == {"hot-lead"}
        (refused,) = page["refused"]
        assert refused["file"].endswith("broken.yaml")
        assert any("broken.yaml:" in e for e in refused["errors"])
        html = await (await c.get("/playbooks", headers=auth)).text()
        assert "Refused:" in html and "have not fired" in html


async def test_leads_are_open_ones_by_default(tmp_path: Path) -> None:
    """A won lead leaves the default (open) ranking and shows under status=won and all."""
    store = await Store.open(tmp_path / "nudge.db")
    await fill(store)
    await store.db.execute("UPDATE leads SET status = 'won' WHERE lead_id = 'lead-2'")
    await store.db.commit()
    await store.close()
    app = build_app(tmp_path / "nudge.db", tmp_path, [TOKEN], Limits(), "http://127.0.0.1:9")
    async with TestClient(TestServer(app, host="127.0.0.1")) as c:
        auth = {"Authorization": f"Bearer {TOKEN}"}

        async def ids(query: str) -> list[str]:
            page = await (await c.get(f"/leads.json{query}", headers=auth)).json()
            return [lead["lead_id"] for lead in page["leads"]]

        assert await ids("") == ["lead-1"]
        assert await ids("?status=won") == ["lead-2"]
        assert await ids("?status=all") == ["lead-2", "lead-1"]


async def test_model_page_shows_the_live_models_report_and_history(tmp_path: Path) -> None:
    """With a promoted model: its holdout figures, the calibration chart from its
    reliability table, the promote/rollback history; before any: the points scorer."""
    from scoring.registry import Registry

    await (await Store.open(tmp_path / "nudge.db")).close()
    app = build_app(tmp_path / "nudge.db", tmp_path, [TOKEN], Limits(), "http://127.0.0.1:9")
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with TestClient(TestServer(app, host="127.0.0.1")) as c:
        assert "points scorer" in await (await c.get("/model", headers=auth)).text()
        registry = Registry(tmp_path)
        checks = {
            "brier": 0.17,
            "brier_constant": 0.2,
            "roc_auc_95": [0.71, 0.79],
            "top_decile_predicted": 0.52,
            "top_decile_observed": 0.49,
            "reliability": [
                {"n": 50, "predicted": p, "observed": p * 0.9} for p in (0.9, 0.5, 0.1)
            ],
        }
        meta = {
            "features": ["pricing_views_7d"],
            "positives": 80,
            "horizon_days": 30,
            "trained_at": T0.isoformat(),
            "importance": {"pricing_views_7d": 3.0},
            "metrics": {"holdout": {"roc_auc": 0.75}, "holdout_checks": checks},
        }
        first = registry.save(b"{}", meta, T0)
        second = registry.save(b"{}", meta, T0 + dt.timedelta(seconds=1))
        registry.promote(first.version, T0)
        registry.promote(second.version, T0 + dt.timedelta(hours=1))
        registry.rollback(T0 + dt.timedelta(hours=2))
        page = await (await c.get("/model.json", headers=auth)).json()
        assert page["promoted"] == first.version
        assert [h[1] for h in page["history"]] == [
            "rollback",
            f"promote {second.version}",
            f"promote {first.version}",
        ]
        assert page["calibration_chart"].startswith("<svg")
        churn = Registry(tmp_path, "churn")
        churn.promote(churn.save(b"{}", meta, T0).version, T0)
        page = await (await c.get("/model.json", headers=auth)).json()
        by_target = {t["target"]: t for t in page["targets"]}
        assert by_target["conversion"]["promoted"] == first.version
        assert by_target["churn"]["promoted"] is not None and by_target["churn"]["models"] == 1
        html = await (await c.get("/model", headers=auth)).text()
        assert "Calibration (holdout)" in html and "promised 52 %, happened 49 %" in html
