"""Meldingen: the list of open and recently resolved notices, and the open count every page's menu shows.
The notices are made by the worker's notice run (worker/service/notices.py); the app only reads them."""

from __future__ import annotations

import logging
from datetime import timedelta

from aiohttp import web

from worker.adapters import notice_store
from worker.adapters.database import database_error_is_transient, read_only
from worker.domain.web_access import Permission
from worker.entrypoints.web.app import CONTEXT, NOTICE_COUNT, SESSION, Handler, render, require
from worker.entrypoints.web.pages import partial

log = logging.getLogger(__name__)
ROUTES = web.RouteTableDef()
RESOLVED_SHOWN = timedelta(days=14)
LIST_LIMIT = 200
# Requests that render no menu: no count needed.
_NO_MENU = ("/static/", "/live", "/healthz", "/readyz", "/metrics")


@web.middleware
async def count_notices(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The open notices for the menu of a signed-in page: one count on a partial index per page. A database
    that cannot answer leaves the count out rather than the page."""
    if request.get(SESSION) is not None and not partial(request) and not request.path.startswith(_NO_MENU):
        try:
            async with read_only(request.app[CONTEXT].pool) as connection:
                count = await notice_store.open_count(connection)
            if count is not None:
                request[NOTICE_COUNT] = count
        except Exception as error:
            if not database_error_is_transient(error):
                raise
            log.warning("notice count unavailable (%s)", type(error).__name__)
    return await handler(request)


@ROUTES.get("/meldingen")
async def notices(request: web.Request) -> web.StreamResponse:
    require(request, Permission.READ)
    ctx = request.app[CONTEXT]
    async with read_only(ctx.pool) as connection:
        open_rows, resolved_rows = await notice_store.notice_list(connection, ctx.now() - RESOLVED_SHOWN, LIST_LIMIT)
    return render(request, "notices.html", open_notices=open_rows, resolved_notices=resolved_rows)
