"""The cockpit's web server: routes, login, security headers, rendering.

Every page is server-rendered HTML with no script at all, and has a JSON twin at the
same path plus ``.json`` (the dict the template renders), so tests and scripts read
exactly what people see. Only ``/login``, ``/logout`` and ``/health`` answer without a
session or bearer token; every other path answers 401 (the login form, or a JSON error)
and shows no lead data. Responses carry a strict Content-Security-Policy (no script,
no frames, nothing from other origins) and ``Cache-Control: no-store``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from cockpit import auth, pages, worker
from cockpit.limits import Limits, started_middleware, timeout_middleware
from crm.reads import Reads
from crm.store import Store

TEMPLATES = Path(__file__).with_name("templates")
OPEN_PATHS = frozenset({"/login", "/logout", "/health"})
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

READS: web.AppKey[Reads] = web.AppKey("reads", Reads)
STORE: web.AppKey[Store] = web.AppKey("store", Store)
VIEWERS: web.AppKey[list[auth.Viewer]] = web.AppKey("viewers", list)
WORKER_TOKEN: web.AppKey[str | None] = web.AppKey("worker_token")
DATA_DIR: web.AppKey[Path] = web.AppKey("data_dir", Path)
WORKER_URL: web.AppKey[str] = web.AppKey("worker_url", str)
PLAYBOOKS: web.AppKey[list[Path]] = web.AppKey("playbooks", list)
PRODUCTS: web.AppKey[Path | None] = web.AppKey("products")
THROTTLE: web.AppKey[auth.LoginThrottle] = web.AppKey("throttle", auth.LoginThrottle)
JINJA: web.AppKey[jinja2.Environment] = web.AppKey("jinja", jinja2.Environment)
DRIVERS: web.AppKey[dict[str, tuple[float, list[dict[str, Any]]]]] = web.AppKey("drivers", dict)

DRIVERS_TTL_S = 300.0
"""The Model page's win/loss drivers are recomputed at most this often (seconds)."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# -- formatting -------------------------------------------------------------------------
def _pct(value: Any, digits: int = 0) -> str:
    return "—" if value is None else f"{float(value) * 100:.{digits}f} %"


def _money(value: Any) -> str:
    return "—" if value is None else f"{float(value):,.0f}"


def _when(value: Any) -> str:
    if not value:
        return "—"
    try:
        at = dt.datetime.fromisoformat(str(value)).astimezone(dt.UTC)
    except ValueError:
        return str(value)
    return at.strftime("%Y-%m-%d %H:%M UTC")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(pct=_pct, money=_money, when=_when)
    return env


# -- auth -------------------------------------------------------------------------------
def viewer(request: web.Request) -> auth.Viewer | None:
    """Who sent ``request``: a bearer token or a session cookie; None when neither holds."""
    people = request.app[VIEWERS]
    given = auth.bearer(request.headers.get("Authorization"))
    if given is not None:
        return auth.viewer_of_token(given, people)
    cookie = request.cookies.get(auth.COOKIE)
    return auth.viewer_of_session(str(cookie), people, time.time()) if cookie else None


VIEWER: web.RequestKey[auth.Viewer] = web.RequestKey("viewer", auth.Viewer)


def wants_json(request: web.Request) -> bool:
    return request.path.endswith(".json") or "application/json" in request.headers.get("Accept", "")


def login_page(request: web.Request, status: int, error: str | None = None) -> web.Response:
    target = request.query.get("next") or (request.path_qs if request.method == "GET" else "/")
    html = (
        request.app[JINJA]
        .get_template("login.html")
        .render(error=error, next=auth.safe_next(target), title="Log in")
    )
    return web.Response(text=html, content_type="text/html", status=status)


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path in OPEN_PATHS:
        return await handler(request)
    who = viewer(request)
    if who is not None:
        request[VIEWER] = who
        return await handler(request)
    if wants_json(request):
        return web.json_response({"error": "login required (NUDGE_API_TOKEN)"}, status=401)
    return login_page(request, 401)


@web.middleware
async def headers_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        response = exc
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    if isinstance(response, web.HTTPException):
        raise response
    return response


async def login(request: web.Request) -> web.StreamResponse:
    if request.method == "GET":
        return login_page(request, 200)
    client = request.remote or "?"
    throttle = request.app[THROTTLE]
    if throttle.blocked(client):
        return login_page(request, 429, "Too many wrong tokens; wait a minute.")
    form = await request.post()
    given = str(form.get("token", ""))
    match = auth.viewer_of_token(given, request.app[VIEWERS])
    if match is None:
        throttle.failed(client)
        return login_page(request, 401, "That token is not valid.")
    response = web.HTTPSeeOther(auth.safe_next(str(form.get("next", "/"))))
    response.set_cookie(
        auth.COOKIE,
        auth.new_session(match.token, time.time()),
        max_age=auth.SESSION_TTL_S,
        httponly=True,
        samesite="Strict",
        secure=request.secure,
        path="/",
    )
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    response = web.HTTPSeeOther("/login")
    response.del_cookie(auth.COOKIE, path="/")
    return response


async def health(request: web.Request) -> web.StreamResponse:
    return web.json_response({"ok": True})


# -- pages ------------------------------------------------------------------------------
def render(request: web.Request, template: str, context: dict[str, Any]) -> web.Response:
    if request.match_info.get("fmt") == ".json":
        return web.Response(
            text=json.dumps(context, default=_json_default),
            content_type="application/json",
        )
    who = request.get(VIEWER)
    html = (
        request.app[JINJA]
        .get_template(template)
        .render(
            **context,
            path=request.path,
            viewer={"name": who.name, "team": who.team} if who else None,
        )
    )
    return web.Response(text=html, content_type="text/html")


def _json_default(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        return {k: getattr(value, k) for k in value.__dataclass_fields__}
    return str(value)


async def leads_view(request: web.Request) -> web.StreamResponse:
    ctx = await pages.leads(request.app[READS], dict(request.query), request[VIEWER].team)
    page = ctx["page"]
    ctx["prev_url"] = str(request.rel_url.update_query(page=page - 1)) if page > 1 else None
    ctx["next_url"] = str(request.rel_url.update_query(page=page + 1)) if ctx["more"] else None
    return render(request, "leads.html", ctx | {"title": "Leads"})


async def lead_view(request: web.Request) -> web.StreamResponse:
    lead_id = request.match_info["lead_id"]
    ctx = await pages.lead(request.app[READS], lead_id)
    if ctx is None or not request[VIEWER].sees(ctx["lead"].get("team")):
        # another team's lead is as absent as one that does not exist
        raise web.HTTPNotFound(text=f"no lead {lead_id!r}\n")
    ctx["trace"], ctx["trace_note"] = await worker.trace(
        request.app[WORKER_URL], request.app[WORKER_TOKEN], lead_id
    )
    return render(request, "lead.html", ctx | {"title": ctx["lead"]["company"] or lead_id})


async def playbooks_view(request: web.Request) -> web.StreamResponse:
    configured = await asyncio.to_thread(pages.configured_rules, request.app[PLAYBOOKS])
    ctx = await pages.playbooks(request.app[READS], configured, team=request[VIEWER].team)
    return render(request, "playbooks.html", ctx | {"title": "Playbooks"})


async def firings_view(request: web.Request) -> web.StreamResponse:
    m = request.match_info
    ctx = await pages.firings(request.app[READS], m["playbook"], m["rule"], request[VIEWER].team)
    return render(request, "firings.html", ctx | {"title": f"{m['playbook']} / {m['rule']}"})


async def reps_view(request: web.Request) -> web.StreamResponse:
    ctx = await pages.reps(request.app[READS], request[VIEWER].team)
    return render(request, "reps.html", ctx | {"title": "Reps"})


async def model_view(request: web.Request) -> web.StreamResponse:
    data_dir = request.app[DATA_DIR]
    from scoring.registry import Registry

    live = Registry(data_dir).promoted_version()
    found, computed_at = None, None
    if live:
        # every snapshot through the model: done at most once per DRIVERS_TTL_S per model
        cache = request.app[DRIVERS]
        hit = cache.get(live)
        if hit is None or time.time() - hit[0] > DRIVERS_TTL_S:
            snaps = await request.app[READS].snapshots()
            found = await asyncio.to_thread(pages.drivers, data_dir, live, snaps) if snaps else []
            cache.clear()
            cache[live] = hit = (time.time(), found)
        computed_at, found = hit
    ctx = await asyncio.to_thread(pages.model, data_dir, found, request.app[PRODUCTS])
    at = dt.datetime.fromtimestamp(computed_at, dt.UTC).isoformat() if computed_at else None
    return render(request, "model.html", ctx | {"title": "Model", "drivers_at": at})


async def inventory_view(request: web.Request) -> web.StreamResponse:
    ctx = await asyncio.to_thread(pages.inventory, request.app[DATA_DIR])
    return render(request, "inventory.html", ctx | {"title": "Data inventory"})


JSON = r"{fmt:(\.json)?}"


def build_app(
    database: Path | str,
    data_dir: Path,
    tokens: list[str],
    limits: Limits,
    worker_url: str = "http://127.0.0.1:6066",
    playbooks: list[Path] | None = None,
    products: Path | None = None,
    users: str | None = None,
) -> web.Application:
    """The cockpit application; it opens the store (a SQLite file or a PostgreSQL URL) on
    start-up and closes it on cleanup.
    ``worker_url``: the worker asked for a lead's decision trace; ``playbooks``: the
    playbook files or folders the workers load (none: the shipped default); ``products``:
    the product catalogue whose targets the Model page lists; ``users``: the
    ``NUDGE_COCKPIT_USERS`` logins, each limited to one team (``tokens`` see every team)."""
    people = auth.viewers(tokens, users)
    if not people:
        raise ValueError("the cockpit needs at least one token")
    app = web.Application(
        middlewares=[
            started_middleware,
            headers_middleware,
            timeout_middleware(limits.handler_timeout),
            auth_middleware,
        ],
        client_max_size=limits.max_body,
    )
    app[VIEWERS] = people
    app[WORKER_TOKEN] = tokens[0] if tokens else None
    app[DATA_DIR] = data_dir
    app[WORKER_URL] = worker_url
    app[PLAYBOOKS] = list(playbooks or [])
    app[PRODUCTS] = products
    app[THROTTLE] = auth.LoginThrottle()
    app[JINJA] = _environment()
    app[DRIVERS] = {}

    async def open_store(app: web.Application) -> Any:
        store = await Store.open(database)
        app[STORE] = store
        app[READS] = Reads(store)
        yield
        await store.close()

    app.cleanup_ctx.append(open_store)
    app.router.add_route("GET", "/login", login)
    app.router.add_route("POST", "/login", login)
    app.router.add_route("POST", "/logout", logout)
    app.router.add_get("/health", health)
    app.router.add_get("/", leads_view)
    app.router.add_get("/leads" + JSON, leads_view)
    app.router.add_get(r"/leads/{lead_id:[^/]+?}" + JSON, lead_view)
    app.router.add_get("/playbooks" + JSON, playbooks_view)
    app.router.add_get(r"/playbooks/{playbook:[^/]+}/{rule:[^/]+?}" + JSON, firings_view)
    app.router.add_get("/reps" + JSON, reps_view)
    app.router.add_get("/model" + JSON, model_view)
    app.router.add_get("/inventory" + JSON, inventory_view)
    return app
