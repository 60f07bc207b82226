"""Who is asking: sign-in with a built-in account or behind an auth proxy, the session cookie, CSRF.

Built-in accounts sign in on /aanmelden (throttled after repeated failures). With HR_WEB_AUTH=proxy the user
header of a trusted proxy address names the user, who must exist (with a role) in the accounts table. Both get
a server-side session: an HttpOnly SameSite cookie holding a random token (only its hash is stored) and a
CSRF token every state-changing request must carry.
"""

from __future__ import annotations

import hmac
import logging
from datetime import timedelta
from urllib.parse import quote, urlsplit

from aiohttp import web

from worker.adapters.web_accounts import WebSession
from worker.domain.web_access import SignInThrottle, proxy_address_trusted
from worker.entrypoints.web.app import CONTEXT, OPEN_PATHS, PROBE_PATHS, SESSION, Handler, WebContext, render

log = logging.getLogger(__name__)
COOKIE = "nmbrs_sync_session"
THROTTLE = SignInThrottle()
ROUTES = web.RouteTableDef()
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
NEW_TOKEN = web.RequestKey("new_session_token", str)  # a session made for a proxy user: its cookie to set


def _cookie(response: web.StreamResponse, ctx: WebContext, token: str) -> None:
    response.set_cookie(
        COOKIE,
        token,
        max_age=ctx.settings.hr_web_session_hours * 3600,
        httponly=True,
        samesite="Strict",
        secure=ctx.settings.hr_web_secure_cookies,
        path="/",
    )


async def _proxy_session(request: web.Request, ctx: WebContext, current: WebSession | None) -> WebSession | None:
    """The session of the user the trusted proxy names; a new one when the cookie is for someone else."""
    settings = ctx.settings
    name = request.headers.get(settings.hr_web_user_header, "").strip()
    if not name or not proxy_address_trusted(request.remote or "", settings.hr_web_trusted_proxies):
        return None
    if current is not None and current.user.user_name == name:
        return current
    user = await ctx.accounts.user(name)
    if user is None or user.disabled:
        log.info("proxy user %s has no account here", name)
        return None
    token, _ = await ctx.accounts.create_session(name, timedelta(hours=settings.hr_web_session_hours), ctx.now())
    request[NEW_TOKEN] = token
    return await ctx.accounts.session(token, ctx.now())


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path in PROBE_PATHS:  # no session looked up: a probe must answer while the database is away
        return await handler(request)
    ctx = request.app[CONTEXT]
    token = request.cookies.get(COOKIE)
    session = await ctx.accounts.session(token, ctx.now()) if token else None
    if ctx.settings.hr_web_auth == "proxy":
        session = await _proxy_session(request, ctx, session)
    if session is not None:
        request[SESSION] = session
    elif not request.path.startswith(OPEN_PATHS) or (
        ctx.settings.hr_web_auth == "proxy" and request.path.startswith("/aanmelden")
    ):
        if ctx.settings.hr_web_auth == "proxy":
            t = ctx.t
            return render(request, "error.html", 403, title=t("error.no_account"), message=t("error.no_account_text"))
        if request.method in SAFE_METHODS and not request.headers.get("X-Partial"):
            raise web.HTTPSeeOther(f"/aanmelden?next={quote(request.path_qs)}")
        raise web.HTTPUnauthorized(text=ctx.t("error.signed_out"))
    response = await handler(request)
    if new_token := request.get(NEW_TOKEN):
        _cookie(response, ctx, new_token)
    return response


@web.middleware
async def check_csrf(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A state-changing request must carry the session's CSRF token (form field or header): a page of another
    site cannot post in the user's name, SameSite or not."""
    if request.method not in SAFE_METHODS and request.path != "/aanmelden":
        session: WebSession | None = request.get(SESSION)
        sent = request.headers.get("X-CSRF-Token")
        if sent is None and request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            sent = str((await request.post()).get("csrf", ""))
        if session is None or not sent or not hmac.compare_digest(sent, session.csrf_token):
            t = request.app[CONTEXT].t
            return render(request, "error.html", 403, title=t("error.csrf"), message=t("error.csrf_text"))
    return await handler(request)


def _next(request: web.Request, target: str | None) -> str:
    """Only a path of this site: a sign-in link can never send someone elsewhere."""
    parts = urlsplit(target or "/")
    if parts.scheme or parts.netloc or not (target or "/").startswith("/") or (target or "").startswith("//"):
        return "/overzicht"
    return target or "/overzicht"


@ROUTES.get("/aanmelden")
async def sign_in_page(request: web.Request) -> web.StreamResponse:
    if request.get(SESSION) is not None:
        raise web.HTTPSeeOther(_next(request, request.query.get("next")))
    return render(request, "signin.html", next=_next(request, request.query.get("next")), error=None, name="")


@ROUTES.post("/aanmelden")
async def sign_in(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CONTEXT]
    form = await request.post()
    name = str(form.get("gebruiker", "")).strip()[:64]
    password = str(form.get("wachtwoord", ""))
    target = _next(request, str(form.get("next", "")))
    address = request.remote or ""
    now = ctx.now()
    by_name, by_address = await ctx.accounts.failures(name, address, THROTTLE.since(now))
    locked_until = THROTTLE.locked_until(by_name, by_address, now)
    if locked_until is not None:
        minutes = max(1, int((locked_until - now).total_seconds() // 60) + 1)
        error = ctx.t("signin.locked", minutes=minutes)
        return render(request, "signin.html", 429, next=target, error=error, name=name)
    user = await ctx.accounts.verify_password(name, password) if name and password else None
    if user is None:
        await ctx.accounts.record_failure(name, address, now)
        log.info("sign-in failed for %r from %s", name, address)
        return render(request, "signin.html", 401, next=target, error=ctx.t("signin.failed"), name=name)
    await ctx.accounts.clear_failures(name)
    token, _ = await ctx.accounts.create_session(
        user.user_name, timedelta(hours=ctx.settings.hr_web_session_hours), now
    )
    log.info("%s signed in", user.user_name)
    response = web.HTTPSeeOther(target)
    _cookie(response, ctx, token)
    raise response


@ROUTES.post("/afmelden")
async def sign_out(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CONTEXT]
    if token := request.cookies.get(COOKIE):
        await ctx.accounts.end_session(token)
    response = web.HTTPSeeOther("/aanmelden")
    response.del_cookie(COOKIE, path="/")
    raise response
