"""The HR web app's aiohttp application: its resources, the middlewares every request passes (security headers,
errors as pages, sign-in, CSRF) and page rendering. The pages themselves are in pages.py, sign-in in auth.py."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from worker.adapters import metrics
from worker.adapters.command_requests import CommandRequests
from worker.adapters.database import Pool, create_pool, database_error_is_transient
from worker.adapters.live_feed import LiveFeed
from worker.adapters.web_accounts import AccountStore, WebSession
from worker.config import Settings
from worker.domain.web_access import Permission, may
from worker.entrypoints.web.catalogue import Catalogue, catalogue
from worker.entrypoints.web.presenting import day_text, hours_text, moment_text, shown, step_reasons

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# No inline script or style anywhere: the policy allows only files the app serves itself.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
)
PROBE_PATHS = ("/healthz", "/readyz", "/metrics")
OPEN_PATHS = ("/static/", "/aanmelden", *PROBE_PATHS)
STREAMING_ROUTES = frozenset({"/live"})  # open for minutes: a duration says nothing about the app's speed


@dataclass
class WebContext:
    """What every request handler may use; built once per process."""

    settings: Settings
    pool: Pool
    accounts: AccountStore
    requests: CommandRequests
    feed: LiveFeed
    t: Catalogue
    templates: jinja2.Environment
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


CONTEXT = web.AppKey("context", WebContext)
SESSION = web.RequestKey("session", WebSession)  # the signed-in session of a request
NOTICE_COUNT = web.RequestKey("notice_count", int)  # open notices, for the menu (notice_pages.count_notices)


def _static_version() -> str:
    """A digest of the shipped assets: a new release is fetched anew, an unchanged one stays cached."""
    digest = hashlib.sha256()
    for path in sorted((HERE / "static").iterdir()):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def templates(t: Catalogue) -> jinja2.Environment:
    version = _static_version()
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["t"] = t
    env.globals["may"] = may
    env.globals["Permission"] = Permission
    env.globals["static"] = lambda name: f"/static/{name}?v={version}"
    env.globals["shown"] = lambda field_name, value: shown(field_name, value, t)
    env.globals["step_reasons"] = lambda step: step_reasons(step, t)
    env.globals["day"] = day_text
    env.globals["moment"] = moment_text
    env.globals["hours"] = hours_text
    env.globals["live_texts"] = json.dumps({"question": t("live.question"), "red": t("live.red")})
    return env


def render(request: web.Request, template: str, status: int = 200, **values: Any) -> web.Response:
    ctx = request.app[CONTEXT]
    session: WebSession | None = request.get(SESSION)
    # Parts every page may include (a decision's result, a bulk preview) are absent unless given.
    values = {"result": None, "preview": None, "decision": None, "names": {}} | values
    values.setdefault("notice_count", request.get(NOTICE_COUNT))
    body = ctx.templates.get_template(template).render(
        session=session,
        user=session.user if session else None,
        csrf=session.csrf_token if session else "",
        path=request.path,
        **values,
    )
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8")


def session_of(request: web.Request) -> WebSession:
    session: WebSession = request[SESSION]
    return session


def require(request: web.Request, permission: Permission) -> WebSession:
    """The signed-in session, if its role allows `permission`; otherwise a 403 page and nothing done."""
    session = session_of(request)
    if not may(session.user.role, permission):
        t = request.app[CONTEXT].t
        raise web.HTTPForbidden(
            text=render(request, "error.html", 403, title=t("error.forbidden"), message=t("error.forbidden_text")).text,
            content_type="text/html",
        )
    return session


@web.middleware
async def measured(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Counts every answer by route pattern (never the path: ids in it would make a series per record)."""
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as error:
        status = error.status
        raise
    finally:
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
        metrics.WEB_REQUESTS.labels(route, request.method, str(status)).inc()
        if route not in STREAMING_ROUTES:
            metrics.WEB_REQUEST_DURATION.labels(route).observe(time.perf_counter() - started)


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as error:
        response = error
        _secure(response, request)
        raise
    _secure(response, request)
    return response


def _secure(response: web.StreamResponse, request: web.Request) -> None:
    if response.prepared:  # a live stream has sent its headers already
        return
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    if not request.path.startswith("/static/"):
        response.headers["Cache-Control"] = "no-store"


@web.middleware
async def errors_as_pages(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Whatever goes wrong, the person sees a page in their words; the traceback goes to the log only."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception as error:
        t = request.app[CONTEXT].t
        if database_error_is_transient(error):
            # An outage, not a bug: said so (the page works again when the database is back), no traceback.
            log.warning("request %s %s: the database is unavailable (%s)", request.method, request.path, error)
            return render(request, "error.html", 503, title=t("error.database"), message=t("error.database_text"))
        log.exception("request %s %s failed", request.method, request.path)
        return render(request, "error.html", 500, title=t("error.internal"), message=t("error.internal_text"))


def create_app(ctx: WebContext) -> web.Application:
    from worker.entrypoints.web import auth, employee_pages, live, notice_pages, pages, probes

    app = web.Application(
        middlewares=[
            measured,
            security_headers,
            errors_as_pages,
            auth.authenticate,
            auth.check_csrf,
            notice_pages.count_notices,
        ]
    )
    app[CONTEXT] = ctx
    app.add_routes(probes.ROUTES)
    app.add_routes(auth.ROUTES)
    app.add_routes(pages.ROUTES)
    app.add_routes(employee_pages.ROUTES)
    app.add_routes(notice_pages.ROUTES)
    app.add_routes(live.ROUTES)
    app.router.add_static("/static/", HERE / "static")
    return app


async def build_context(settings: Settings) -> AsyncGenerator[WebContext, None]:
    """The process's resources, closed in reverse order when the app stops."""
    pool = await create_pool(settings)
    feed = LiveFeed(settings)
    try:
        await feed.start()
        async with CommandRequests(settings) as requests:
            t = catalogue()
            yield WebContext(settings, pool, AccountStore(pool), requests, feed, t, templates(t))
    finally:
        await feed.stop()
        await pool.close()
